"""What the CLI reads from the machine: variables, the token secret, word lists, node name.

The I/O side of :mod:`livecore.config` (which stays pure): the environment,
files in the data directory, the host name and process id.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from livecore.keyring import KeyFileError, KeyRing, ring_of

SECRET_FILE = "secret"
SECRET_ENV = "LIVECORE_SECRET"
MIN_SECRET_BYTES = 32


def env(name: str, default: str | None = None) -> str | None:
    """``$LIVECORE_<name>``, or ``default``."""
    return os.environ.get(f"LIVECORE_{name}", default)


def flag(name: str, default: bool) -> bool:
    """A switch's default: ``$LIVECORE_<name>`` set means 1/true/yes is on; unset, ``default``."""
    value = env(name)
    return default if value is None else value.strip().lower() in ("1", "true", "yes")


def load_blocked_words(path: Path | None) -> tuple[str, ...]:
    """Words from a UTF-8 file, one per line (``#`` starts a comment)."""
    if path is None:
        return ()
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        word = line.split("#", 1)[0].strip()
        if word:
            words.append(word)
    return tuple(words)


def default_node_id() -> str:
    """``<hostname>-<pid>``: unique per process, readable in logs and metrics."""
    return f"{socket.gethostname()}-{os.getpid()}"


class SecretError(RuntimeError):
    """The token secret is missing or too weak."""


def load_secret(data_dir: Path, *, create: bool) -> bytes:
    """Return the token-signing secret.

    Order: ``$LIVECORE_SECRET`` (at least 32 bytes), else ``<data_dir>/secret``;
    with ``create`` a random secret is written there (mode 0600) on first use.
    There is never a built-in secret.
    """
    env = os.environ.get(SECRET_ENV)
    if env:
        value = env.encode()
        if len(value) < MIN_SECRET_BYTES:
            raise SecretError(f"{SECRET_ENV} must be at least {MIN_SECRET_BYTES} bytes long")
        return value
    path = data_dir / SECRET_FILE
    if path.exists():
        value = path.read_bytes().strip()
        if len(value) < MIN_SECRET_BYTES:
            raise SecretError(f"{path} holds fewer than {MIN_SECRET_BYTES} bytes")
        return value
    if not create:
        raise SecretError(
            f"no token secret: set {SECRET_ENV} or start `livecore serve` once with "
            f"--data-dir {data_dir} to generate {path}"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(value + b"\n")
    return value


S3_SECRET_ENV = "LIVECORE_S3_SECRET_KEY"


def load_s3_secret(path: Path | None) -> str:
    """The object store's secret key: ``$LIVECORE_S3_SECRET_KEY``, else the file ``path``
    (``--s3-secret-file``); never a command-line value (every process can read those)."""
    value = os.environ.get(S3_SECRET_ENV, "")
    if value:
        return value
    if path is None:
        raise SecretError(f"--s3-endpoint needs a secret key: set {S3_SECRET_ENV} or pass "
                          "--s3-secret-file FILE")  # fmt: skip
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise SecretError(f"--s3-secret-file: cannot read {path}: {exc.strerror}") from None
    if not value:
        raise SecretError(f"--s3-secret-file {path} is empty")
    return value


KEYS_DIR = "keys"


def load_keys(data_dir: Path, secret: bytes) -> KeyRing:
    """The token keys: the legacy ``secret`` (kid ``node``) and every
    ``<data_dir>/keys/*.json`` key file (:mod:`livecore.keyring`). Keys come from
    files only, never from the command line (it is visible to every process)."""
    folder = data_dir / KEYS_DIR
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    try:
        return ring_of(secret, files)
    except KeyFileError as exc:
        raise SecretError(f"{folder}: {exc}") from None


def configure_logging(level: str, debug: Sequence[str] = ()) -> None:
    """Log lines to stderr at ``level`` (the node, and each worker of ``--workers``),
    and the loggers named in ``debug`` at debug."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for name in debug:
        logging.getLogger(name).setLevel(logging.DEBUG)
