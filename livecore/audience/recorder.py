"""Recording live room traffic into traces: the class behind ``livecore serve --record-trace``.

A ``TraceRecorder`` is given what happens in one room as it happens —
``record(kind, user, community=..., value=...)`` — and writes it as a trace
(``livecore.audience.trace``) into a directory. It is sans-I/O until ``close()`` /
rotation, does no network I/O and never blocks the event loop for long (a
flush writes one bounded file):

- **anonymised**: users become client numbers through an HMAC with a salt
  drawn per recorder (never stored), so no user id reaches the file and ids
  do not link across recordings; the host is client 0; a comment's text is
  replaced by its length unless ``keep_text`` (the operator's opt-in);
- **bounded**: at most ``max_events`` events and ``max_seconds`` per file;
  reaching either writes the file and starts the next (``part`` 1, 2, ...);
  at most ``max_files`` files per recorder, after which events are counted in
  ``dropped`` and not kept;
- **timed** by an injected clock (``livecore.clock.Clock``), offsets in ms
  from the recorder's start.

Files are ``<dir>/<room>-<start unix s>-<part>.lctrace``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from pathlib import Path

from livecore.audience.trace import HOST, Event, Kind, Trace, write_trace
from livecore.clock import Clock, SystemClock


class TraceRecorder:
    """Records one room's traffic (see the module doc). Use from one thread."""

    def __init__(
        self,
        directory: Path,
        room: str,
        *,
        clock: Clock | None = None,
        keep_text: bool = False,
        max_events: int = 500_000,
        max_seconds: float = 4 * 3600,
        max_files: int = 24,
        write: Callable[[Path, Trace], object] = write_trace,
    ) -> None:
        self.directory = directory
        self.room = room
        self.clock = clock or SystemClock()
        self.keep_text = keep_text
        self.max_events, self.max_seconds, self.max_files = max_events, max_seconds, max_files
        self._salt = secrets.token_bytes(16)
        self._clients: dict[bytes, int] = {}
        self._communities: dict[str, int] = {}
        self._started = self.clock.time()
        self._part_start = self._started
        self._events: list[Event] = []
        self.files: list[Path] = []
        self.dropped = 0
        self.closed = False
        #: Writes one finished file; the server passes one that runs in a thread.
        self._write = write

    def _client(self, user: str, host: bool) -> int:
        if host:
            return HOST
        key = hmac.new(self._salt, user.encode(), hashlib.sha256).digest()[:12]
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = len(self._clients) + 1
        return client

    def _community(self, name: str | None) -> int:
        if not name:
            return -1
        index = self._communities.get(name)
        if index is None:
            index = self._communities[name] = len(self._communities)
        return index

    def record(
        self,
        kind: Kind,
        user: str,
        *,
        host: bool = False,
        community: str | None = None,
        value: int = 0,
        text: str | None = None,
    ) -> None:
        """One thing that happened now: ``user`` (any id; anonymised here) did ``kind``.

        ``value`` is the payload's shape (likes' taps, vote option, quantity,
        price); for a comment pass ``text``: its length is kept, or the text
        with ``keep_text``.
        """
        if self.closed or len(self.files) >= self.max_files:
            self.dropped += 1
            return
        now = self.clock.time()
        if now - self._part_start >= self.max_seconds:
            self.flush()
            now = self.clock.time()
        payload: int | str = value
        if kind == Kind.COMMENT and text is not None:
            payload = text if self.keep_text else len(text)
        t_ms = max(0, round((now - self._part_start) * 1000))
        if self._events and t_ms < self._events[-1].t_ms:
            t_ms = self._events[-1].t_ms  # a clock step back: keep time order
        self._events.append(
            Event(t_ms, self._client(user, host), kind, self._community(community), payload)
        )
        if len(self._events) >= self.max_events:
            self.flush()

    def flush(self) -> Path | None:
        """Write the events so far as one file and start the next part (None if empty)."""
        now = self.clock.time()
        events, self._events = self._events, []
        start, self._part_start = self._part_start, now
        if not events or len(self.files) >= self.max_files:
            self.dropped += len(events) if events else 0
            return None
        self.directory.mkdir(parents=True, exist_ok=True)
        names = sorted(self._communities, key=self._communities.__getitem__)
        trace = Trace(events=events, duration_s=max(now - start, events[-1].t_ms / 1000),
                      communities=names, source="recorded",
                      meta={"room": self.room, "started_at": round(start),
                            "text_kept": self.keep_text, "part": len(self.files) + 1})  # fmt: skip
        path = self.directory / f"{self.room}-{int(self._started)}-{len(self.files) + 1}.lctrace"
        self._write(path, trace)
        self.files.append(path)
        return path

    def close(self) -> list[Path]:
        """Write what is left; later ``record`` calls are dropped. Returns every file."""
        if not self.closed:
            self.flush()
            self.closed = True
        return self.files
