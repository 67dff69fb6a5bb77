"""Lucky-draw rules (pure): spec checks, commitment, the winners rule and its verification."""

from __future__ import annotations

import hashlib

import pytest

from livecore import luckydraw
from livecore.errors import LivecoreError
from livecore.luckydraw import Task, commitment, parse_spec, verify, winners

NOW = 1_800_000_000
SEED = bytes(range(32))


def spec(**fields: object) -> luckydraw.DrawSpec:
    data: dict[str, object] = {"prize": "土鸡蛋一盒", "winners": 3, "duration_s": 300, **fields}
    return parse_spec(data, now=NOW)


def test_spec_defaults_to_no_task_and_closes_after_its_duration() -> None:
    """A draw without a task closes duration_s after now."""
    got = spec()
    assert got.task is Task.NONE and got.closes_at == NOW + 300


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"task": "comment"}, "phrase"),
        ({"task": "watch"}, "minutes"),
        ({"task": "watch", "minutes": 5}, "minutes"),  # 5 min is not shorter than 300 s
        ({"phrase": "来了"}, "phrase"),
        ({"minutes": 1}, "minutes"),
        ({"task": "lottery"}, "task"),
        ({"winners": 0}, "winners"),
        ({"winners": 101}, "winners"),
        ({"duration_s": 5}, "duration_s"),
        ({"prize": ""}, "prize"),
    ],
)
def test_spec_refuses_what_does_not_fit(fields: dict[str, object], field: str) -> None:
    """Each bad spec is invalid_field naming the field."""
    with pytest.raises(LivecoreError) as err:
        spec(**fields)
    assert err.value.message.startswith(field + ":")


def test_commitment_is_the_seeds_sha256() -> None:
    """The commitment is SHA-256 of the seed bytes, hex."""
    assert commitment(SEED) == hashlib.sha256(SEED).hexdigest()


def test_winners_are_the_smallest_tickets_whatever_the_order() -> None:
    """Order and repeats of the entrants do not matter; k caps the list."""
    users = [f"u{i}" for i in range(50)]
    first = winners(SEED, users, 5)
    assert first == winners(SEED, list(reversed(users)) + users[:10], 5)
    tickets = sorted((hashlib.sha256(SEED + u.encode()).digest(), u) for u in users)
    assert first == [u for _, u in tickets[:5]]
    assert winners(SEED, users[:2], 5) == sorted(users[:2], key=lambda u: luckydraw.ticket(SEED, u))


def test_another_seed_gives_other_winners() -> None:
    """The winners depend on the seed."""
    users = [f"u{i}" for i in range(200)]
    assert winners(SEED, users, 5) != winners(bytes(32), users, 5)


def test_verify_needs_the_committed_seed_and_the_rules_winners() -> None:
    """A forged seed, a changed winner list or another entrant list fails."""
    users = [f"u{i}" for i in range(20)]
    won = winners(SEED, users, 3)
    assert verify(commitment(SEED), SEED.hex(), users, 3, won)
    assert not verify(commitment(SEED), bytes(32).hex(), users, 3, winners(bytes(32), users, 3))
    assert not verify(commitment(SEED), SEED.hex(), users, 3, list(reversed(won)))
    assert not verify(commitment(SEED), SEED.hex(), [*users, "late"], 3, won) or (
        winners(SEED, [*users, "late"], 3) == won
    )
    assert not verify(commitment(SEED), "zz", users, 3, won)
