"""The token secret: from the environment, or generated once into the data dir."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from signalling.cli.environment import SECRET_ENV, SecretError, load_secret


def test_generated_once_and_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """First use writes a 0600 secret; later uses read the same one."""
    monkeypatch.delenv(SECRET_ENV)
    first = load_secret(tmp_path, create=True)
    assert len(first) >= 32
    assert load_secret(tmp_path, create=False) == first
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600


def test_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$LIVECORE_SECRET is used as is when set."""
    monkeypatch.setenv(SECRET_ENV, "e" * 40)
    assert load_secret(tmp_path, create=True) == b"e" * 40
    assert not (tmp_path / "secret").exists()


def test_weak_env_secret_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Short secrets are refused with the variable's name."""
    monkeypatch.setenv(SECRET_ENV, "short")
    with pytest.raises(SecretError, match=SECRET_ENV):
        load_secret(tmp_path, create=True)


def test_missing_without_create(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without create, a missing secret says how to get one."""
    monkeypatch.delenv(SECRET_ENV)
    with pytest.raises(SecretError, match="livecore serve"):
        load_secret(tmp_path, create=False)
