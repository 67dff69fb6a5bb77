"""``serve --workers``: the per-worker settings, and real workers on one port."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import psutil
import pytest

from livecore.config import Settings
from loadtests.faults.cluster import free_ports
from signalling.cli.workers import MAX_WORKERS, parse_workers, worker_settings
from tests.helpers import Node, create_room, wait_gone
from tests.media.sources import EncodedClip, encode_video_clip
from tests.signalling.routes.test_whip import auth, frames_within, publish, until_live, watch


def test_parse_workers_counts_and_auto() -> None:
    """A count from 1 to the maximum, or auto (the cores this process may use)."""
    assert parse_workers("3") == 3
    assert parse_workers(" AUTO ") == min(MAX_WORKERS, len(os.sched_getaffinity(0)))
    for bad in ("0", "-1", str(MAX_WORKERS + 1), "two", ""):
        with pytest.raises(ValueError, match="--workers"):
            parse_workers(bad)


def test_each_worker_gets_what_cannot_be_shared() -> None:
    """Node id, a slice of the UDP range, the mux and metrics ports shifted by the index."""
    base = Settings(
        node_id="n", udp_ports=(40000, 40099), udp_mux_port=3478,
        metrics_listen=("127.0.0.1", 9100), record_trace=Path("traces"),
    )  # fmt: skip
    workers = [worker_settings(base, i, 4) for i in range(4)]
    assert [w.node_id for w in workers] == ["n-w0", "n-w1", "n-w2", "n-w3"]
    assert [w.udp_ports for w in workers] == [
        (40000, 40024), (40025, 40049), (40050, 40074), (40075, 40099)
    ]  # fmt: skip
    assert [w.udp_mux_port for w in workers] == [3478, 3479, 3480, 3481]
    assert [w.metrics_listen for w in workers] == [("127.0.0.1", 9100 + i) for i in range(4)]
    assert {w.record_trace for w in workers} == {Path("traces") / f"w{i}" for i in range(4)}
    assert {w.port for w in workers} == {base.port}  # the one shared port
    # What "any free port" means stays so for every worker.
    free = worker_settings(Settings(udp_mux_port=0, metrics_listen=("h", 0)), 1, 2)
    assert free.udp_mux_port == 0 and free.metrics_listen == ("h", 0)


def test_each_worker_has_its_own_node_address() -> None:
    """--node-url's port + i per worker; none given: each worker picks a loopback port."""
    base = Settings(node_url="http://198.51.100.5:8081/")
    assert [worker_settings(base, i, 3).node_url for i in range(3)] == [
        "http://198.51.100.5:8081", "http://198.51.100.5:8082", "http://198.51.100.5:8083"
    ]  # fmt: skip
    six = Settings(node_url="http://[2001:db8::5]:9000")
    assert worker_settings(six, 2, 3).node_url == "http://[2001:db8::5]:9002"
    assert worker_settings(Settings(), 1, 2).node_url is None
    with pytest.raises(ValueError, match="with --workers give a port"):
        worker_settings(Settings(node_url="http://198.51.100.5"), 0, 2)


def test_too_few_udp_ports_is_refused() -> None:
    """Fewer ports than workers: a clear error naming the option."""
    with pytest.raises(ValueError, match="--udp-ports 40000-40002: 3 ports for 4 workers"):
        worker_settings(Settings(udp_ports=(40000, 40002)), 0, 4)


def _node_ids(url: str, want: int, attempts: int = 200) -> set[str]:
    """Node ids answering /healthz on ``url`` over fresh connections, until ``want`` seen."""
    seen: set[str] = set()
    for _ in range(attempts):
        with httpx.Client(timeout=5) as client:  # a new connection: the kernel picks again
            seen.add(client.get(f"{url}/healthz").json()["node_id"])
        if len(seen) >= want:
            break
    return seen


def _workers(node: Node) -> list[psutil.Process]:
    assert node.proc is not None
    found = []
    for kid in psutil.Process(node.proc.pid).children():
        try:  # not the embedded Valkey, nor multiprocessing's resource tracker
            if "spawn_main" in " ".join(kid.cmdline()):
                found.append(kid)
        except psutil.Error:  # a killed worker the supervisor has not reaped yet
            pass
    return found


def _wait(predicate: object, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_two_workers_share_the_port_restart_and_stop(tmp_path: Path) -> None:
    """Both workers answer on the one port; a killed worker is started again and answers
    again; SIGTERM stops every worker and the embedded Valkey, exit 0."""
    node = Node(tmp_path / "data", extra_args=["--workers", "2", "--node-id", "m"]).start(60)
    try:
        assert _wait(lambda: "2 workers on port" in node.output())
        assert _node_ids(node.url, 2) == {"m-w0", "m-w1"}
        workers = _workers(node)
        assert len(workers) == 2
        victim = workers[0]
        victim.kill()
        assert wait_gone(victim.pid)
        # The sibling serves meanwhile; the supervisor starts a new worker in its place.
        assert httpx.get(f"{node.url}/healthz", timeout=5).status_code == 200
        assert _wait(lambda: len(_workers(node)) == 2 and victim not in _workers(node))
        assert _wait(lambda: _node_ids(node.url, 2, attempts=20) == {"m-w0", "m-w1"})
        everyone = [*_workers(node), *psutil.Process(node.proc.pid).children()]  # type: ignore[union-attr]
    finally:
        code = node.stop(signal.SIGTERM, timeout=30)
    assert code == 0
    assert all(wait_gone(p.pid) for p in everyone)


def test_a_killed_supervisor_takes_its_workers_down(tmp_path: Path) -> None:
    """SIGKILL of the supervisor: the workers get the parent-death signal and exit."""
    node = Node(tmp_path / "data", extra_args=["--workers", "2"]).start(60)
    # The node answers once one worker serves; the second may still be starting.
    assert _wait(lambda: len(_workers(node)) == 2), _workers(node)
    workers = _workers(node)
    node.stop(signal.SIGKILL)
    assert all(wait_gone(p.pid, timeout=20) for p in workers)


@pytest.fixture(scope="module")
def h264() -> EncodedClip:
    return encode_video_clip("video/H264", frames=90, gop=30)


async def test_media_across_workers(tmp_path: Path, h264: EncodedClip) -> None:
    """The host publishes to worker 0, a viewer plays at worker 1 (a copy pulled from
    worker 0 over its node address) and another on the shared port; a session is ended
    through a worker that does not hold it, and through the shared port."""
    first = free_ports(2)
    node = Node(tmp_path / "data", extra_args=[
        "--workers", "2", "--node-id", "m", "--node-url", f"http://127.0.0.1:{first}",
    ]).start(60)  # fmt: skip
    w0, w1 = (SimpleNamespace(url=f"http://127.0.0.1:{first + i}") for i in range(2))
    try:
        assert _wait(lambda: "2 workers on port" in node.output())
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{w1.url}/healthz")).json()["node_id"] == "m-w1"
        create_room(node.url)
        pc, created = await publish(w0, [h264])  # type: ignore[arg-type]
        assert created.status_code == 201, created.text
        await until_live(node)
        far, far_answer = await watch(w1, "v1")  # type: ignore[arg-type]
        near, near_answer = await watch(node, "v2")
        for viewer in (far, near):
            assert await frames_within(viewer, 10, 15), viewer.received
        async with httpx.AsyncClient() as http:
            # Worker 1's viewer ended at worker 0: passed on to worker 1.
            far_at = f"{w0.url}{far_answer.headers['location']}"
            gone = await http.delete(far_at, headers=auth("viewer", "v1"))
            assert gone.status_code == 200, gone.text
            again = await http.delete(far_at, headers=auth("viewer", "v1"))
            assert again.status_code == 404 and again.json()["code"] == "session_not_found"
            # The others through the shared port, wherever the kernel sends them.
            for answer, role, user in ((near_answer, "viewer", "v2"), (created, "host", "host1")):
                at = f"{node.url}{answer.headers['location']}"
                ended = await http.delete(at, headers=auth(role, user))
                assert ended.status_code == 200, ended.text
        for viewer in (far, near):
            await viewer.close()
        await pc.close()
    finally:
        node.stop(timeout=30)
