"""The deployment's Ed25519 signing key for chain heads, made once like the token secret.

Order: ``$LIVECORE_TRACE_KEY`` (the 32-byte private seed as base64url or hex),
else ``<data_dir>/trace-signing.pem`` (PKCS #8); with ``create`` a new key is
written there (mode 0600) on first use. Every node of a deployment must hold
the same key (set the variable, or share the file), as with the token secret.
The key is never put in Valkey: whoever can edit the store must not also be
able to re-sign what they edited.
"""

from __future__ import annotations

import binascii
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from livecore.trace.chain import b64url_decode

KEY_ENV = "LIVECORE_TRACE_KEY"
KEY_FILE = "trace-signing.pem"


class TraceKeyError(RuntimeError):
    """The signing key is missing, unreadable or not Ed25519."""


def _from_env(value: str) -> Ed25519PrivateKey:
    value = value.strip()
    try:
        seed = bytes.fromhex(value) if len(value) == 64 else b64url_decode(value)
    except (ValueError, binascii.Error):
        raise TraceKeyError(f"{KEY_ENV} is neither hex nor base64url") from None
    if len(seed) != 32:
        raise TraceKeyError(f"{KEY_ENV} must hold a 32-byte Ed25519 seed, got {len(seed)} bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def load_signing_key(data_dir: Path, *, create: bool) -> Ed25519PrivateKey:
    """The signing key (see the module doc for where it comes from)."""
    env = os.environ.get(KEY_ENV)
    if env:
        return _from_env(env)
    path = data_dir / KEY_FILE
    if path.exists():
        try:
            key = load_pem_private_key(path.read_bytes(), password=None)
        except ValueError as exc:
            raise TraceKeyError(f"{path} is not a PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise TraceKeyError(f"{path} is not an Ed25519 key")
        return key
    if not create:
        raise TraceKeyError(f"no signing key: set {KEY_ENV} or create {path}")
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of this data dir made it first
        return load_signing_key(data_dir, create=False)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return key
