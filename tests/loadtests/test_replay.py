"""`python -m loadtests replay` against a real node: counts, SLO exit codes, refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import redis.asyncio

from livecore.audience.export import export_room
from livecore.audience.recorder import TraceRecorder
from livecore.audience.trace import Kind, read_trace, write_trace
from loadtests.synth import SynthConfig, generate
from tests.helpers import ROOT, Node

REPLAYED = ("join", "leave", "comment", "like", "vote", "group_join", "group_leave",
            "officer_apply", "reconnect")  # fmt: skip


def replay(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loadtests", "replay", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def recorded_session(tmp_path: Path) -> Path:
    """A small session recorded through TraceRecorder (from a synthetic one, 60 s, 25 viewers)."""
    source = generate(SynthConfig(duration_s=60, peak_viewers=25, seed=5, like_rate=1 / 10))
    rec = TraceRecorder(tmp_path / "rec", "small")
    for e in source.events:  # the recorder stamps its own times: re-stamp afterwards
        rec.record(e.kind, f"user-{e.client}", host=e.client == 0,
                   community=source.communities[e.community] if e.community >= 0 else None,
                   value=e.value if isinstance(e.value, int) else 0,
                   text="x" * int(e.value) if e.kind == Kind.COMMENT else None)  # fmt: skip
    [path] = rec.close()
    recorded = read_trace(path)
    recorded.events = [r._replace(t_ms=s.t_ms) for r, s in zip(recorded.events, source.events,
                                                                strict=True)]  # fmt: skip
    recorded.duration_s = source.duration_s
    return write_trace(tmp_path / "small.lctrace", recorded)


async def test_record_replay_round_trip(
    node: Node, aredis: redis.asyncio.Redis, tmp_path: Path
) -> None:
    """A recorded session replayed at 20× reaches the server event for event."""
    path = recorded_session(tmp_path)
    trace = read_trace(path)
    proc = replay("--trace", str(path), "--target", node.url, "--room", "rt", "--speed", "20",
                  "--duration", "3.5", "--report", str(tmp_path / "r.html"), "--json",
                  "--slo", "lost=0,errors=0,mix_pct=0")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"] is True
    expected = trace.counts()
    for kind in REPLAYED:
        assert result["event_mix"].get(kind, {"sent": 0})["sent"] == expected.get(kind, 0), kind
    assert result["clients_established"] == expected["join"] and result["lost"] == 0
    assert set(result["latency_ms"]) == {"p50", "p95", "p99", "max"}
    assert result["report"].endswith("r.html")
    # What the server stored: every viewer comment (the host's end marker is not exported).
    exported = await export_room(aredis, "rt", tmp_path / "back.lctrace")
    comments = sum(1 for e in exported.events if e.kind == Kind.COMMENT)
    assert comments == expected["comment"]


def test_slo_miss_exits_99(node: Node, tmp_path: Path) -> None:
    """A missed threshold prints the result and exits 99; met thresholds exit 0 (above)."""
    small = generate(SynthConfig(duration_s=60, peak_viewers=10, seed=2))
    path = write_trace(tmp_path / "t.lctrace", small)
    proc = replay("--trace", str(path), "--target", node.url, "--speed", "20", "--duration", "2",
                  "--report", str(tmp_path / "r.html"), "--json", "--slo", "p99_ms=0")  # fmt: skip
    assert proc.returncode == 99, proc.stderr[-2000:]
    assert "SLO missed: p99_ms" in proc.stderr
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["ok"] is True and last["slo_missed"] and "clients_established" in last


def test_non_loopback_target_is_refused() -> None:
    """A target off this machine is refused before any traffic, unless --allow-remote."""
    proc = replay("--target", "http://192.0.2.10:8080", "--duration", "1", timeout=20)
    assert proc.returncode == 2 and "non-loopback" in proc.stderr


def test_help_lists_every_scenario() -> None:
    """`python -m loadtests --help` exits 0 with one line per scenario; each has --help."""
    proc = subprocess.run([sys.executable, "-m", "loadtests", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=20)  # fmt: skip
    assert proc.returncode == 0
    names = "replay fanout groupbuy media sensors highlights recording faults synth export"
    for name in names.split():
        assert f"  {name} " in proc.stdout
    proc = replay("--help", timeout=20)
    assert proc.returncode == 0 and "--scale" in proc.stdout and "default" in proc.stdout
