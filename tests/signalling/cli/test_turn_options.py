"""``livecore serve``'s STUN/TURN options: checked at start, the secret read from a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from signalling.cli import commands
from signalling.cli.parser import build_parser

SECRET = "coturn-static-auth-secret-0123456789"


def serve_args(*extra: str) -> list[str]:
    return ["serve", "--data-dir", "/nonexistent-livecore-data", *extra]


def secret_file(tmp_path: Path, text: str = SECRET + "\n") -> Path:
    path = tmp_path / "turn-secret"
    path.write_text(text)
    return path


def test_options_become_settings(tmp_path: Path) -> None:
    """Repeated --turn-url/--stun-url, the secret from its file, the lifetime."""
    args = build_parser().parse_args(serve_args(
        "--turn-url", "turn:turn.example.com:3478?transport=udp",
        "--turn-url", "turn:turn.example.com:443?transport=tcp",
        "--stun-url", "stun:turn.example.com:3478",
        "--turn-secret-file", str(secret_file(tmp_path)),
        "--turn-ttl", "600",
    ))  # fmt: skip
    servers = commands._ice_servers(args)
    servers.check()
    assert [str(u) for u in servers.turn] == [
        "turn:turn.example.com:3478?transport=udp",
        "turn:turn.example.com:443?transport=tcp",
    ]
    assert [str(u) for u in servers.stun] == ["stun:turn.example.com:3478"]
    assert servers.secret == SECRET.encode() and servers.ttl_s == 600


def test_environment_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LIVECORE_TURN_URLS / LIVECORE_STUN_URLS are comma-separated lists."""
    monkeypatch.setenv("LIVECORE_TURN_URLS", "turn:a.example.com, turns:a.example.com:5349")
    monkeypatch.setenv("LIVECORE_STUN_URLS", "stun:a.example.com")
    monkeypatch.setenv("LIVECORE_TURN_SECRET_FILE", str(secret_file(tmp_path)))
    servers = commands._ice_servers(build_parser().parse_args(serve_args()))
    assert [str(u) for u in (*servers.stun, *servers.turn)] == [
        "stun:a.example.com", "turn:a.example.com", "turns:a.example.com:5349"
    ]  # fmt: skip
    assert servers.secret == SECRET.encode()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--turn-url", "turn:turn.example.com"], "--turn-url needs --turn-secret-file"),
        (["--turn-secret-file", "{secret}"], "no --turn-url"),
        (["--turn-url", "turn:u:p@turn.example.com", "--turn-secret-file", "{secret}"],
         "--turn-url: turn: URL with user info"),
        (["--turn-url", "turn:turn.example.com?transport=tls", "--turn-secret-file", "{secret}"],
         "turns:HOST:5349"),
        (["--stun-url", "turn:turn.example.com"], "--stun-url:"),
        (["--turn-url", "turn:t.example.com", "--turn-secret-file", "{secret}",
          "--turn-ttl", "5"], "--turn-ttl must be between 60 and 86400"),
        (["--turn-url", "turn:t.example.com", "--turn-secret-file", "{missing}"],
         "--turn-secret-file: cannot read"),
        (["--turn-url", "turn:t.example.com", "--turn-secret-file", "{short}"],
         "at least 16 bytes"),
    ],
)  # fmt: skip
def test_bad_options_stop_the_start_with_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    """Each mistake exits 2 before anything starts, naming the option; no secret printed."""
    short = tmp_path / "short"
    short.write_text("tiny\n")
    paths = {
        "secret": str(secret_file(tmp_path)),
        "missing": str(tmp_path / "missing"),
        "short": str(short),
    }
    args = [a.format(**paths) for a in extra]
    assert commands.main(serve_args(*args)) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert SECRET not in err
