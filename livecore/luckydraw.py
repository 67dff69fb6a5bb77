"""Lucky draws (福袋): the spec, the commitment and the winners rule (pure).

A host opens one draw at a time in a room: a prize, how many winners, an
entry task and how long entry stays open. Each entrant enters once. The draw
is verifiable by anyone afterwards (commit-reveal):

1. When the draw opens the server picks a secret 32-byte ``seed`` and
   publishes ``commitment = SHA-256(seed)`` (hex) in the ``draw_opened`` event.
2. Entry closes; the entrant set is frozen.
3. The server reveals ``seed`` with the winners in ``draw_drawn``.

Winners are :func:`winners`: every entrant gets the ticket
``SHA-256(seed ‖ UTF-8(user id))``; the ``k`` entrants with the smallest
tickets (bytes compared as unsigned, ties by user id) win, listed in that
order. Anyone holding the published entrant list checks that the seed hashes
to the commitment and recomputes the same winners (:func:`verify`). The seed
is fixed before the first entry, so the server cannot pick a seed to suit
the entrants; an entrant cannot know their ticket before the reveal.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from livecore.fields import integer, invalid, optional_integer, optional_text, text

SEED_BYTES = 32
MAX_WINNERS = 100
#: Entrants one draw admits at most (the entrant list is published whole).
MAX_ENTRANTS = 50_000
MAX_PRIZE_CHARS = 60
MAX_PHRASE_CHARS = 30
MIN_DURATION_S = 10
MAX_DURATION_S = 3600
MAX_WATCH_MINUTES = 60


class Task(StrEnum):
    """What an entrant must have done to enter."""

    NONE = "none"
    #: Comment the draw's phrase (entering posts the phrase as the entrant's comment).
    COMMENT = "comment"
    #: Watch for ``minutes`` since the entrant first asked to enter this draw.
    WATCH = "watch"
    #: Have joined a group buy of this room.
    GROUPBUY = "groupbuy"


class DrawStatus(StrEnum):
    OPEN = "open"
    #: Entry closed, the entrant set frozen; winners not yet published.
    CLOSED = "closed"
    DRAWN = "drawn"


@dataclass(frozen=True, slots=True)
class DrawSpec:
    """What the host opens."""

    prize: str
    winners: int
    task: Task
    phrase: str
    minutes: int
    closes_at: int

    def public(self) -> dict[str, Any]:
        return {
            "prize": self.prize, "winners": self.winners, "task": self.task.value,
            "phrase": self.phrase or None, "minutes": self.minutes or None,
            "closes_at": self.closes_at,
        }  # fmt: skip


def parse_spec(fields: dict[str, Any], now: int) -> DrawSpec:
    """A draw spec from a ``draw_open`` message's fields, or ``invalid_field``."""
    prize = text(fields, "prize", MAX_PRIZE_CHARS)
    count = integer(fields, "winners", 1, MAX_WINNERS)
    duration = integer(fields, "duration_s", MIN_DURATION_S, MAX_DURATION_S)
    raw_task = fields.get("task", Task.NONE.value)
    if not isinstance(raw_task, str) or raw_task not in {t.value for t in Task}:
        raise invalid("task", "one of " + ", ".join(t.value for t in Task))
    task = Task(raw_task)
    phrase = optional_text(fields, "phrase", MAX_PHRASE_CHARS) or ""
    minutes = optional_integer(fields, "minutes", 1, MAX_WATCH_MINUTES) or 0
    if task is Task.COMMENT and not phrase:
        raise invalid("phrase", "required for a comment task")
    if task is not Task.COMMENT and phrase:
        raise invalid("phrase", "only for a comment task")
    if task is Task.WATCH and not minutes:
        raise invalid("minutes", "required for a watch task")
    if task is not Task.WATCH and minutes:
        raise invalid("minutes", "only for a watch task")
    if task is Task.WATCH and minutes * 60 >= duration:
        raise invalid("minutes", "must be shorter than the draw's duration_s")
    return DrawSpec(prize, count, task, phrase, minutes, now + duration)


def new_seed() -> bytes:
    """A fresh secret seed."""
    return secrets.token_bytes(SEED_BYTES)


def commitment(seed: bytes) -> str:
    """``SHA-256(seed)`` as lowercase hex: published before anyone enters."""
    return hashlib.sha256(seed).hexdigest()


def ticket(seed: bytes, user: str) -> bytes:
    """An entrant's ticket: ``SHA-256(seed ‖ UTF-8(user))``; the smallest win."""
    return hashlib.sha256(seed + user.encode()).digest()


def winners(seed: bytes, entrants: Iterable[str], k: int) -> list[str]:
    """The ``k`` entrants (all when fewer) with the smallest tickets, smallest first.

    A function of the seed and the entrant *set*: order and repeats in
    ``entrants`` do not change the result."""
    ranked = sorted(set(entrants), key=lambda user: (ticket(seed, user), user))
    return ranked[:k]


def verify(
    published: str, seed_hex: str, entrants: Iterable[str], k: int, announced: list[str]
) -> bool:
    """Whether a revealed draw holds: the seed matches the commitment published
    before entry, and the announced winners are exactly what the rule gives."""
    try:
        seed = bytes.fromhex(seed_hex)
    except ValueError:
        return False
    if len(seed) != SEED_BYTES or commitment(seed) != published:
        return False
    return winners(seed, entrants, k) == announced
