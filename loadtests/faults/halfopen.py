"""Half-open TCP connections: clients that joined, then vanished without FIN or
RST (they never send, read or answer a ping again), are reaped in a bounded
time, and their per-room and per-user state leaves with them; a quiet client
that answers pings stays.

The node runs with short keep-alive timers (``ws_ping_interval_s`` 0.5 s,
``ws_idle_timeout_s`` 2 s, ``--room-idle 1``); the bound is the idle timeout,
plus the 1 s sweep, plus the 3 s closing handshake nobody answers.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from clients.python.room import RoomClient
from loadtests.faults.cluster import NodeProc, Valkey, create_room, mint
from loadtests.faults.nodemetrics import NodeMetrics
from loadtests.faults.rawclient import drain, joined_socket

PING_S = 0.5
IDLE_S = 2.0
#: Idle timeout + one sweep (1 s) + the closing handshake's timeout (3 s).
BOUND_S = IDLE_S + 1.0 + 3.0
STRUCTURES = ("ws_connections", "ws_by_user", "ws_by_address", "rooms")


async def _until(node: NodeProc, want: dict[str, int], limit_s: float) -> float | None:
    """Seconds until the node's structures read ``want`` (None: not within ``limit_s``)."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        state = (await NodeMetrics.read(node.url)).state
        if all(state[k] == v for k, v in want.items()):
            return round(time.monotonic() - started, 1)
        await asyncio.sleep(0.1)
    return None


async def run(root: Path, *, clients: int = 5, limit_s: float = 15.0) -> dict[str, Any]:
    store = Valkey(root)
    store.start()
    settings = {"ws_ping_interval_s": PING_S, "ws_idle_timeout_s": IDLE_S}
    node = NodeProc(root / "n", store.url, args=["--room-idle", "1"], settings=settings).start()
    try:
        create_room(node, "r2")
        before = (await NodeMetrics.read(node.url)).state
        sockets = node.client_sockets()
        quiet = RoomClient(node.url, "r2", mint("viewer", "quiet", room="r2"))
        await quiet.connect()  # sends nothing; its library answers the pings
        socks = [await joined_socket(node.port, "r2", mint("viewer", f"gone{i}", room="r2"))
                 for i in range(clients)]  # fmt: skip
        joined = {k: before[k] + 1 + clients for k in ("ws_connections", "ws_by_user")}
        await _until(node, joined, 5)
        gone_at = time.monotonic()  # from here on the raw clients are silent
        with_quiet = {k: before[k] + 1 for k in ("ws_connections", "ws_by_user")}
        reaped_s = await _until(node, with_quiet, limit_s)
        ends = [(await drain(sock, 2))["end"] for sock in socks]  # the node dropped them
        for sock in socks:
            sock.close()
        quiet_stayed = quiet.closed is not None and not quiet.closed.done()
        silent_s = round(time.monotonic() - gone_at, 1)
        await quiet.close()
        left_s = await _until(node, {k: before[k] for k in STRUCTURES}, limit_s)
        await asyncio.sleep(0.5)
        return {
            "half_open": clients,
            "reaped_within_s": reaped_s,
            "bound_s": BOUND_S,
            "dropped": sum(end in ("eof", "reset") for end in ends),
            "quiet_client_kept": quiet_stayed,
            "quiet_client_silent_s": silent_s,
            "state_back": left_s is not None,
            # the store pool may have grown (bounded, 64): only client sockets count
            "leaked_fds": max(0, node.client_sockets() - sockets),
            "crashes": node.crashed(),
        }
    finally:
        node.stop()
        store.stop()
