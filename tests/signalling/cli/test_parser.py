"""The ``livecore`` command line: one source of defaults (Settings), env over default."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import pytest

from livecore.config import Settings
from signalling.cli.commands import settings_from
from signalling.cli.environment import configure_logging
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


def test_object_storage_from_flags_with_the_secret_from_env_or_a_file(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--s3-* configure object storage; the secret key is read from LIVECORE_S3_SECRET_KEY
    or --s3-secret-file, never taken as a flag; a bad setting names its flag."""
    from livecore.config import ObjectStoreSettings
    from signalling.cli.environment import SecretError

    base = ["serve", "--s3-endpoint", "http://127.0.0.1:9000", "--s3-bucket", "media",
            "--s3-access-key", "AKID", "--s3-prefix", "shop1/"]  # fmt: skip
    assert settings_from(build_parser().parse_args(["serve"])).object_store is None
    with pytest.raises(SecretError, match="LIVECORE_S3_SECRET_KEY"):
        settings_from(build_parser().parse_args(base))
    with pytest.raises(SystemExit):  # there is no flag that takes the secret itself
        build_parser().parse_args([*base, "--s3-secret-key", "s"])
    secret = tmp_path / "s3.secret"
    secret.write_text("from-the-file\n")
    store = settings_from(build_parser().parse_args([*base, "--s3-secret-file", str(secret)]))
    assert store.object_store == ObjectStoreSettings(
        endpoint="http://127.0.0.1:9000", bucket="media", access_key="AKID",
        secret_key="from-the-file", prefix="shop1/",
    )  # fmt: skip
    assert "from-the-file" not in repr(store.object_store)
    clean_env.setenv("LIVECORE_S3_SECRET_KEY", "from-the-env")
    store = settings_from(build_parser().parse_args(base))
    assert store.object_store is not None and store.object_store.secret_key == "from-the-env"
    store.check()
    hls = settings_from(build_parser().parse_args([*base, "--s3-hls"])).object_store
    assert hls is not None and hls.hls and not store.object_store.hls
    for flag, value, named in [("--s3-bucket", "No_Such", "--s3-bucket"),
                               ("--s3-endpoint", "ftp://x", "--s3-endpoint"),
                               ("--s3-endpoint", "http://h/path", "--s3-endpoint"),
                               ("--s3-prefix", "../up/", "--s3-prefix"),
                               ("--s3-prefix", "no-slash", "--s3-prefix"),
                               ("--s3-retry", "0", "--s3-retry")]:  # fmt: skip
        bad = settings_from(build_parser().parse_args([*base, flag, value]))
        with pytest.raises(ValueError, match=named):
            bad.check()


def test_loggers_at_debug_from_flags_or_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    """--log-debug names loggers logged at debug (repeatable); LIVECORE_LOG_DEBUG is a
    comma-separated list; configure_logging sets them, leaving the rest at the level."""
    clean_env.setenv("LIVECORE_LOG_DEBUG", "media.layerforward, media.relay")
    assert settings_from(build_parser().parse_args(["serve"])).log_debug == (
        "media.layerforward", "media.relay",
    )  # fmt: skip
    flags = ["serve", "--log-debug", "media.layerforward"]
    settings = settings_from(build_parser().parse_args(flags))
    assert settings.log_debug == ("media.layerforward",)
    configure_logging("warning", settings.log_debug)
    assert logging.getLogger("media.layerforward").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("media.forwarder").isEnabledFor(logging.DEBUG)
    logging.getLogger("media.layerforward").setLevel(logging.NOTSET)
