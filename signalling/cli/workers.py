"""``livecore serve --workers N|auto``: N node processes on one machine, one port.

One Python process runs one event loop on one core. Rather than having an
operator start, number and balance a node per core by hand, the supervisor
(this module, in the process the command started) starts ``N`` workers, each a
whole node as on a machine of its own:

- every worker binds the same HTTP/websocket port with ``SO_REUSEPORT``, and the
  kernel spreads new connections over them (no balancer in between);
- every worker has its own media (aiortc peers, UDP ports, recordings): a viewer
  whose WHEP lands on a worker that does not hold the publisher is served by a
  copy pulled once from the worker that does (:mod:`media.cascade`), exactly as
  between nodes, over the worker's own node address;
- the store, the secret and the media directory are shared, as between nodes.

A worker's settings differ from the command's only where two processes cannot
share (:func:`worker_settings`): its node id (``<node-id>-w<i>``), its node
address (``--node-url`` port ``+i``, else a free loopback port its siblings
reach), its slice of ``--udp-ports``, ``--udp-mux PORT+i`` and
``--metrics-listen`` port ``+i``.

The supervisor prints the banner once every worker listens, forwards SIGTERM and
SIGINT to the workers and waits for them, and starts again a worker that died
(backing off from 1 s to 30 s while it keeps dying young): its clients reconnect
to a sibling meanwhile, as they would to another node. Workers are started with
``spawn`` (a fresh interpreter: no event loop, thread or socket of the supervisor
leaks into them); their arguments, the token secret included, travel over the
pipe multiprocessing opens to each, never on a command line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue
from types import FrameType
from urllib.parse import urlsplit, urlunsplit

from livecore.config import Settings
from livecore.keyring import KeyRing
from livecore.valkey.embedded import die_with_parent

log = logging.getLogger("livecore.workers")

#: Workers one command starts at most (``auto`` is the cores this process may use).
MAX_WORKERS = 64
#: Seconds every worker has to listen after start, and to stop after SIGTERM.
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
#: Restart back-off for a worker that died: doubles from the first to the last
#: while the worker keeps dying within ``STEADY_S`` of its start.
RESTART_FIRST_S = 1.0
RESTART_LAST_S = 30.0
STEADY_S = 60.0


def parse_workers(value: str) -> int:
    """``--workers``: a count from 1 to :data:`MAX_WORKERS`, or ``auto`` (one per core)."""
    if value.strip().lower() == "auto":
        return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0))))
    try:
        count = int(value)
    except ValueError:
        raise ValueError(f"--workers {value!r}: a number of processes, or 'auto'") from None
    if not 1 <= count <= MAX_WORKERS:
        raise ValueError(f"--workers {count}: from 1 to {MAX_WORKERS}, or 'auto'")
    return count


def worker_settings(settings: Settings, index: int, count: int) -> Settings:
    """Worker ``index``'s settings (0-based, of ``count``): see the module doc.

    Raises ValueError when ``--udp-ports`` has fewer ports than workers.
    """
    udp_ports = settings.udp_ports
    if udp_ports is not None:
        low, high = udp_ports
        share = (high - low + 1) // count
        if share < 1:
            raise ValueError(
                f"--udp-ports {low}-{high}: {high - low + 1} ports for {count} workers; "
                "give each worker at least one"
            )
        udp_ports = (low + index * share, low + (index + 1) * share - 1)
    mux = settings.udp_mux_port
    if mux:
        mux += index
    metrics = settings.metrics_listen
    if metrics is not None and metrics[1]:
        metrics = (metrics[0], metrics[1] + index)
    trace = settings.record_trace
    if trace is not None:
        trace = trace / f"w{index}"
    return dataclasses.replace(
        settings,
        node_id=f"{settings.node_id}-w{index}",
        node_url=_shifted(settings.node_url, index),
        udp_ports=udp_ports,
        udp_mux_port=mux,
        metrics_listen=metrics,
        record_trace=trace,
    )


def _shifted(node_url: str | None, index: int) -> str | None:
    """``--node-url`` with its port + ``index`` (None stays None: each worker then
    takes a free loopback port, see :func:`signalling.server.peer_socket`)."""
    if node_url is None:
        return None
    url = urlsplit(node_url)
    if url.port is None:
        raise ValueError(f"--node-url {node_url}: with --workers give a port (worker i takes +i)")
    host = url.netloc.rsplit(":", 1)[0]
    return urlunsplit(url._replace(netloc=f"{host}:{url.port + index}")).rstrip("/")


def _worker_main(
    settings: Settings, secret: bytes, store: str, ring: KeyRing | None,
    index: int, ready: Queue[int], supervisor_pid: int,
) -> None:  # fmt: skip
    """A worker process: one node on the shared port until SIGTERM (also when the
    supervisor is killed: the kernel's parent-death signal)."""
    from signalling import server
    from signalling.cli.environment import configure_logging

    die_with_parent(supervisor_pid)()
    configure_logging(settings.log_level, settings.log_debug)
    server.run(settings, secret, store, ring, on_ready=lambda: ready.put(index))


@dataclasses.dataclass
class _Slot:
    """One worker's place: its process now, and how young it keeps dying."""

    index: int
    settings: Settings
    process: SpawnProcess | None = None
    started_at: float = 0.0
    backoff_s: float = RESTART_FIRST_S
    restart_at: float | None = None


class Supervisor:
    """Starts, watches and stops the workers of one ``serve --workers`` command."""

    def __init__(
        self,
        settings: Settings,
        secret: bytes,
        store: str,
        ring: KeyRing | None,
        count: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._secret = secret
        self._store = store
        self._ring = ring
        self._clock = clock
        self._ctx = multiprocessing.get_context("spawn")
        self._ready: Queue[int] = self._ctx.Queue(maxsize=4 * count)
        self._slots = [_Slot(i, worker_settings(settings, i, count)) for i in range(count)]
        self._stopping = False

    @property
    def node_ids(self) -> list[str]:
        return [slot.settings.node_id for slot in self._slots]

    def run(self, on_ready: Callable[[], None]) -> int:
        """Start every worker, call ``on_ready`` once all listen, watch them until
        SIGTERM/SIGINT; the exit code (1 when a worker failed to start)."""
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for slot in self._slots:
                self._start(slot)
            if not self._await_ready():
                return 1
            on_ready()
            while not self._stopping:
                self._watch()
            return 0
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _start(self, slot: _Slot) -> None:
        slot.process = self._ctx.Process(
            target=_worker_main,
            args=(
                slot.settings,
                self._secret,
                self._store,
                self._ring,
                slot.index,
                self._ready,
                os.getpid(),
            ),
            name=f"livecore-w{slot.index}",
        )
        slot.process.start()
        slot.started_at = self._clock()
        slot.restart_at = None

    def _await_ready(self) -> bool:
        """Wait until every worker listens; False (and say why) if one died first."""
        waiting = {slot.index for slot in self._slots}
        deadline = self._clock() + START_TIMEOUT_S
        while waiting and not self._stopping:
            with contextlib.suppress(Exception):  # queue.Empty: look at the workers again
                waiting.discard(self._ready.get(timeout=0.2))
            for slot in self._slots:
                process = slot.process
                if slot.index in waiting and process is not None and not process.is_alive():
                    log.error("worker %d exited with %s before it listened",
                              slot.index, process.exitcode)  # fmt: skip
                    return False
            if self._clock() > deadline:
                log.error("workers %s did not listen within %.0f s", sorted(waiting),
                          START_TIMEOUT_S)  # fmt: skip
                return False
        return not self._stopping

    def _watch(self) -> None:
        """One look at the workers: restart the dead ones when their back-off is over."""
        now = self._clock()
        for slot in self._slots:
            process = slot.process
            if process is None or process.is_alive():
                continue
            if slot.restart_at is None:
                young = now - slot.started_at < STEADY_S
                slot.backoff_s = (
                    min(RESTART_LAST_S, slot.backoff_s * 2) if young else RESTART_FIRST_S
                )
                slot.restart_at = now + slot.backoff_s
                log.error("worker %d (%s) exited with %s; starting it again in %.0f s",
                          slot.index, slot.settings.node_id, process.exitcode,
                          slot.backoff_s)  # fmt: skip
            elif now >= slot.restart_at:
                self._start(slot)
        with contextlib.suppress(Exception):  # a restarted worker's ready: nothing to do
            self._ready.get(timeout=0.2)

    def _stop_all(self) -> None:
        """SIGTERM to every live worker; SIGKILL to any still running after the timeout."""
        alive = [s.process for s in self._slots if s.process is not None and s.process.is_alive()]
        for process in alive:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        deadline = self._clock() + STOP_TIMEOUT_S
        for process in alive:
            process.join(max(0.0, deadline - self._clock()))
            if process.is_alive():
                log.error("worker %s did not stop in %.0f s: killed", process.name,
                          STOP_TIMEOUT_S)  # fmt: skip
                process.kill()
                process.join(5)


def hold_port(host: str, port: int) -> socket.socket:
    """Bind (without listening) the port the workers will share, so that ``--port 0``
    names one free port for all of them and no other program takes it between
    restarts. A socket that does not listen receives no connection."""
    from signalling.server import shared_socket

    return shared_socket(host, port)
