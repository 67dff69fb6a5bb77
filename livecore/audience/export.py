"""A trace of a past room, from its durable event history in Redis/Valkey.

Reads ``lc:{room}:events`` (docs/architecture.md "Store layout": a stream
with ids ``<offset>-0``, each entry's field ``d`` a msgpack event) oldest
first, in pages, and turns it into a trace (``source: "exported"``):

- ``comment`` → COMMENT with the text's length (the text itself only with
  ``keep_text``); each user becomes an anonymous client number, with a JOIN
  at their first comment (the history does not hold joins, likes or votes:
  those are ephemeral, so an exported trace carries the room's talkers);
- host actions → ``card`` of kind ``product`` → PRODUCT_PIN (price in
  cents), ``poll_opened`` → POLL_OPEN, ``groupbuy_opened`` → GROUPBUY_OPEN.

Only comments carry a time (``ts``, ms); other events get the time of the
nearest comment before them (offsets are in time order). The history is
capped (about 10,000 events), so a long room exports its last part.

``livecore trace export ROOM`` is the CLI for it (signalling/cli/commands.py);
``python -m loadtests export`` (this module's ``main``) does the same. It lives
beside the trace format, below the server, so that the CLI need not import
the load tester.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Any

import msgpack

from livecore.audience.trace import HOST, Event, Kind, Trace, write_trace
from livecore.store.client import StoreClient

PAGE = 1000
MAX_EVENTS = 100_000


def events_key(room: str) -> str:
    """The room's event stream key (hash-tagged, as in the store layout)."""
    return f"lc:{{{room}}}:events"


async def read_history(redis: StoreClient, room: str) -> list[tuple[int, dict[str, Any]]]:
    """``(offset, event)`` of every event still held, oldest first (bounded)."""
    out: list[tuple[int, dict[str, Any]]] = []
    start = "-"
    while len(out) < MAX_EVENTS:
        page: Any = await redis.xrange(events_key(room), min=start, max="+", count=PAGE)
        if not page:
            break
        for entry_id, fields in page:
            raw = fields.get(b"d", fields.get("d"))
            ident = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            offset = int(ident.split("-", 1)[0])
            try:
                event = msgpack.unpackb(raw, raw=False)
            except (ValueError, TypeError, msgpack.UnpackException):
                continue
            if isinstance(event, dict):
                out.append((offset, event))
        start = f"({ident}"
        if len(page) < PAGE:
            break
    return out


def to_trace(history: list[tuple[int, dict[str, Any]]], room: str, *,
             keep_text: bool = False) -> Trace:  # fmt: skip
    """The trace of ``history`` (see the module doc)."""
    salt = secrets.token_bytes(16)  # a fresh salt per export: ids do not link across exports
    clients: dict[str, int] = {}
    events: list[Event] = []
    t0: int | None = None
    now = 0

    def client_of(user: str) -> int:
        key = hmac.new(salt, user.encode(), hashlib.sha256).hexdigest()
        if key not in clients:
            clients[key] = len(clients) + 1
            events.append(Event(now, clients[key], Kind.JOIN))
        return clients[key]

    for _, event in history:
        kind = event.get("t")
        if kind == "comment" and isinstance(event.get("ts"), int):
            t0 = event["ts"] if t0 is None else t0
            now = max(now, event["ts"] - t0)
            if event.get("role") == "host":
                continue
            client = client_of(str(event.get("user", "")))
            text = str(event.get("text", ""))
            events.append(Event(now, client, Kind.COMMENT, -1, text if keep_text else len(text)))
        elif kind == "card" and (event.get("card") or {}).get("kind") == "product":
            events.append(Event(now, HOST, Kind.PRODUCT_PIN, -1,
                                int(event["card"].get("price_cents") or 0)))  # fmt: skip
        elif kind == "poll_opened":
            events.append(Event(now, HOST, Kind.POLL_OPEN, -1, len(event.get("options") or [])))
        elif kind == "groupbuy_opened":
            events.append(Event(now, HOST, Kind.GROUPBUY_OPEN, -1,
                                int(event.get("price_cents") or 0)))  # fmt: skip
    return Trace(events=events, duration_s=now / 1000 + 1, source="exported",
                 meta={"room_events": len(history), "first_offset":
                       history[0][0] if history else None, "text_kept": keep_text})  # fmt: skip


async def export_room(
    redis: StoreClient, room: str, out: Path, *, keep_text: bool = False
) -> Trace:
    """Write the trace of ``room``'s history to ``out``; returns it."""
    trace = to_trace(await read_history(redis, room), room, keep_text=keep_text)
    write_trace(out, trace)
    return trace
