"""`livecore token`: minted tokens verify with the server's secret."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from livecore import tokens
from signalling import cli
from tests.helpers import ROOT, TEST_SECRET


def test_token_round_trip(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The printed token carries the requested claims."""
    args = ["--role", "koc", "--room", "r1", "--user", "k1", "--community", "c1", "--ttl", "60"]
    assert cli.main(["token", *args, "--data-dir", str(tmp_path)]) == 0
    token = capsys.readouterr().out.strip()
    claims = tokens.verify(TEST_SECRET.encode(), token, now=time.time(), room="r1")
    assert (claims.role, claims.user, claims.community) == (tokens.Role.KOC, "k1", "c1")


def test_token_uses_data_dir_secret(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without $LIVECORE_SECRET the data dir's secret signs (created on first use)."""
    monkeypatch.delenv("LIVECORE_SECRET")
    cli.main(
        ["token", "--role", "viewer", "--room", "r", "--user", "u", "--data-dir", str(tmp_path)]
    )
    token = capsys.readouterr().out.strip()
    secret = (tmp_path / "secret").read_bytes().strip()
    assert tokens.verify(secret, token, now=time.time()).role is tokens.Role.VIEWER


@pytest.mark.parametrize(
    "args",
    [
        ["--role", "viewer", "--room", "*", "--user", "u"],
        ["--role", "viewer", "--room", "r", "--user", "bad user"],
        ["--role", "viewer", "--room", "r", "--user", "u", "--ttl", "0"],
    ],
)
def test_token_bad_input(
    args: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Bad requests exit 2 with one error line."""
    assert cli.main(["token", *args, "--data-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("livecore: error:")


def test_token_help_documents_every_option() -> None:
    """`livecore token --help` lists role, room, user, community and expiry."""
    out = subprocess.run(
        [sys.executable, "-m", "signalling", "token", "--help"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for option in ("--role", "--room", "--user", "--community", "--ttl", "--data-dir"):
        assert option in out
