"""The ``livecore`` command line: one source of defaults (Settings), env over default."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from livecore.config import Settings
from signalling.cli.commands import settings_from
from signalling.cli.parser import build_parser


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("LIVECORE_") and name != "LIVECORE_SECRET":
            monkeypatch.delenv(name)
    return monkeypatch


def test_serve_defaults_are_the_settings_defaults(clean_env: pytest.MonkeyPatch) -> None:
    """`livecore serve` with no option and no LIVECORE_* gives Settings() (bar the node name)."""
    settings = settings_from(build_parser().parse_args(["serve"]))
    assert settings.node_id != Settings().node_id  # <hostname>-<pid>, the CLI's own default
    assert dataclasses.replace(settings, node_id=Settings().node_id) == Settings()


def test_environment_sets_a_default_and_a_flag_wins(clean_env: pytest.MonkeyPatch) -> None:
    """LIVECORE_<OPTION> replaces the default, converted like a flag; the flag wins."""
    clean_env.setenv("LIVECORE_TICK_MS", "20")
    clean_env.setenv("LIVECORE_MEDIA_BUDGET", "100")
    clean_env.setenv("LIVECORE_DATA_DIR", "/srv/livecore")
    clean_env.setenv("LIVECORE_DEMO", "yes")
    clean_env.setenv("LIVECORE_NO_RECORD", "0")
    settings = settings_from(build_parser().parse_args(["serve", "--tick-ms", "30"]))
    assert settings.tick_ms == 30
    assert settings.media_budget_bytes == 100 * 1024**2
    assert settings.data_dir == Path("/srv/livecore")
    assert settings.demo and settings.record


def test_a_malformed_variable_is_a_usage_error(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A LIVECORE_PORT that is not a number is refused like --port would be, not a traceback."""
    clean_env.setenv("LIVECORE_PORT", "eighty")
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["serve"])
    assert exit_info.value.code == 2
    assert "--port: invalid int value: 'eighty'" in capsys.readouterr().err
