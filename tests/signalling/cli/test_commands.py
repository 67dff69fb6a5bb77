"""`livecore token`: minted tokens verify with the server's secret."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest

from livecore import tokens
from signalling import cli
from signalling.cli.environment import load_keys
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


def test_token_signs_with_the_signing_key_file_or_a_given_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """With a node key file marked sign, tokens carry its kid; --key FILE signs with a
    shop key, which mints a viewer of its rooms and refuses an admin (exit 2)."""
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "n2.json").write_text(
        json.dumps({"kid": "n2", "scope": "node", "secret": "z" * 40, "sign": True})
    )
    shop = tmp_path / "shop.json"
    shop.write_text(json.dumps({"kid": "shop-f", "scope": "shop", "rooms": "f-",
                                "secret": "f" * 40}))  # fmt: skip
    base = ["token", "--user", "u", "--data-dir", str(tmp_path)]
    assert cli.main([*base, "--role", "host", "--room", "r1"]) == 0
    token = capsys.readouterr().out.strip()
    assert jwt.get_unverified_header(token)["kid"] == "n2"
    ring = load_keys(tmp_path, TEST_SECRET.encode())
    assert tokens.verify(ring, token, now=time.time(), room="r1").role is tokens.Role.HOST
    assert cli.main([*base, "--role", "viewer", "--room", "f-1", "--key", str(shop)]) == 0
    token = capsys.readouterr().out.strip()
    assert jwt.get_unverified_header(token)["kid"] == "shop-f"
    assert cli.main([*base, "--role", "admin", "--room", "*", "--key", str(shop)]) == 2
    assert "may not sign" in capsys.readouterr().err


def test_a_bad_key_file_stops_the_node_with_its_name(tmp_path: Path) -> None:
    """`serve` refuses to start on a malformed key file, naming it (exit 2)."""
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "broken.json").write_text('{"kid": "x", "scope": "node"}')
    done = subprocess.run(
        [sys.executable, "-m", "signalling", "serve", "--data-dir", str(tmp_path),
         "--redis", "redis://127.0.0.1:1/0"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "broken.json" in done.stderr, done.stderr
