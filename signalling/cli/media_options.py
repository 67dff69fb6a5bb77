"""The media and recording options of ``livecore serve`` (defaults from Settings, as in
:mod:`signalling.cli.serve_options`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from livecore import turn
from livecore.config import FORWARDERS, Settings
from signalling.cli.environment import env, flag

DEFAULTS = Settings()


def add_media_options(serve: argparse.ArgumentParser) -> None:
    """WHIP/WHEP and ICE, then recording (HLS, replay, clips, traces)."""
    _add_media(serve.add_argument_group("media"))
    _add_recording(serve.add_argument_group("recording (HLS, replay, clips)"))
    _add_object_store(
        serve.add_argument_group(
            "object storage for clips, thumbnails and replays (S3-compatible; default: "
            "the local disk only; see docs/operations.md)"
        )
    )
    _add_ice_servers(
        serve.add_argument_group(
            "STUN/TURN for clients (phones behind NAT and firewalls; see docs/operations.md)"
        )
    )


def _add_media(media: argparse._ArgumentGroup) -> None:
    d = DEFAULTS
    ice = ",".join(d.ice_addresses) if d.ice_addresses else "all"
    media.add_argument(
        "--ice-address",
        action="append",
        default=None,
        metavar="ADDR",
        help="local address ICE offers to peers, repeatable; 'all' for every interface "
        f"(env LIVECORE_ICE_ADDRESSES, comma-separated; default {ice}: loopback only)",
    )
    media.add_argument(
        "--announce-address",
        action="append",
        default=None,
        metavar="BOUND=ANNOUNCED",
        help="name ANNOUNCED in ICE candidates instead of the bound --ice-address BOUND, "
        "for a node behind 1:1 NAT (a cloud VM's public address), repeatable, IPv4 or IPv6 "
        "(env LIVECORE_ANNOUNCE_ADDRESSES, comma-separated; default none)",
    )
    media.add_argument(
        "--media-connect-timeout",
        type=float,
        default=env("MEDIA_CONNECT_TIMEOUT") or d.media_connect_timeout_s,
        metavar="SECONDS",
        help="time a WHIP/WHEP session has to connect (ICE and DTLS) before it is "
        f"rolled back (env LIVECORE_MEDIA_CONNECT_TIMEOUT; default {d.media_connect_timeout_s:g})",
    )
    media.add_argument(
        "--pull-idle",
        type=float,
        default=env("PULL_IDLE") or d.pull_idle_s,
        metavar="SECONDS",
        help="a copy of another node's stream closes this long after its last viewer here "
        f"left (env LIVECORE_PULL_IDLE; default {d.pull_idle_s:g})",
    )
    media.add_argument(
        "--media-max-sessions",
        type=int,
        default=env("MEDIA_MAX_SESSIONS") or d.media_max_sessions,
        help="WHIP/WHEP sessions this node holds before answering 503 "
        f"(env LIVECORE_MEDIA_MAX_SESSIONS; default {d.media_max_sessions})",
    )
    media.add_argument(
        "--udp-ports",
        default=env("UDP_PORTS"),
        metavar="LO-HI",
        help="bind media UDP sockets in this port range, e.g. 40000-40999 "
        "(env LIVECORE_UDP_PORTS; default: the OS's ephemeral ports)",
    )
    media.add_argument(
        "--udp-mux",
        type=int,
        default=env("UDP_MUX"),
        metavar="PORT",
        help="one UDP port per ICE address for every media session "
        "(env LIVECORE_UDP_MUX; 0 = any free port; wins over --udp-ports)",
    )
    media.add_argument(
        "--forwarder",
        choices=FORWARDERS,
        default=env("FORWARDER") or d.forwarder,
        help="how viewers are served: lean (one send loop per track) or aiortc's own "
        f"senders (env LIVECORE_FORWARDER; default {d.forwarder})",
    )
    media.add_argument(
        "--costream-max",
        type=int,
        default=env("COSTREAM_MAX") or d.costream_max,
        help="KOCs on air with the host at once "
        f"(env LIVECORE_COSTREAM_MAX; default {d.costream_max})",
    )


def _add_recording(rec: argparse._ArgumentGroup) -> None:
    d = DEFAULTS
    rec.add_argument(
        "--no-record",
        action="store_true",
        default=flag("NO_RECORD", not d.record),
        help="do not record hosts' streams: no HLS, replay or clips (env LIVECORE_NO_RECORD=1)",
    )
    rec.add_argument(
        "--media-dir",
        type=Path,
        default=env("MEDIA_DIR"),
        metavar="DIR",
        help="where recordings, replays and clips are written "
        "(env LIVECORE_MEDIA_DIR; default <data-dir>/media)",
    )
    rec.add_argument(
        "--record-segment",
        type=float,
        default=env("RECORD_SEGMENT") or d.record_segment_s,
        metavar="SECONDS",
        help="segment length: a keyframe is asked for this often "
        f"(env LIVECORE_RECORD_SEGMENT; default {d.record_segment_s:g})",
    )
    rec.add_argument(
        "--record-window",
        type=float,
        default=env("RECORD_WINDOW") or d.record_window_s,
        metavar="SECONDS",
        help="rolling window of segments kept for HLS and clips "
        f"(env LIVECORE_RECORD_WINDOW; default {d.record_window_s:g})",
    )
    rec.add_argument(
        "--media-budget",
        type=int,
        default=env("MEDIA_BUDGET") or d.media_budget_bytes // 1024**2,
        metavar="MB",
        help="disk budget of the media directory; the oldest recordings are pruned first "
        f"(env LIVECORE_MEDIA_BUDGET; default {d.media_budget_bytes // 1024**2})",
    )
    rec.add_argument(
        "--end-grace",
        type=float,
        default=env("END_GRACE") or d.end_grace_s,
        metavar="SECONDS",
        help="a room ends this long after its host's stream ended, unless the host is back "
        f"(env LIVECORE_END_GRACE; default {d.end_grace_s:g})",
    )
    rec.add_argument(
        "--room-retention",
        type=int,
        default=env("ROOM_RETENTION") or d.room_retention_s,
        metavar="SECONDS",
        help="an ended room's keys are removed this long after it ended "
        f"(env LIVECORE_ROOM_RETENTION; default {d.room_retention_s}, "
        f"{d.room_retention_s / 86400:g} days)",
    )
    rec.add_argument(
        "--record-trace",
        type=Path,
        default=env("RECORD_TRACE"),
        metavar="DIR",
        help="record each room's traffic as anonymised audience traces for "
        "`python -m loadtests replay` (env LIVECORE_RECORD_TRACE; default off)",
    )
    rec.add_argument(
        "--record-text",
        action="store_true",
        default=flag("RECORD_TEXT", d.record_text),
        help="keep comment texts in recorded traces (default: lengths only; "
        "env LIVECORE_RECORD_TEXT=1)",
    )
    rec.add_argument(
        "--highlight-time-scale",
        type=float,
        default=d.highlight_time_scale,
        metavar="X",
        help="benchmarks only: the highlight detector reads stream time × X, for an "
        "audience trace replayed X times faster; clips are cut at the window ÷ X "
        f"(default {d.highlight_time_scale:g})",
    )


def _add_object_store(s3: argparse._ArgumentGroup) -> None:
    s3.add_argument("--s3-endpoint", default=env("S3_ENDPOINT"), metavar="URL",
                    help="http(s)://HOST[:PORT] of the S3 API; set = finished media is uploaded "
                    "there and served from it once the local copy is gone "
                    "(env LIVECORE_S3_ENDPOINT; default off)")  # fmt: skip
    s3.add_argument("--s3-bucket", default=env("S3_BUCKET"), metavar="NAME",
                    help="the bucket (it must exist; env LIVECORE_S3_BUCKET)")  # fmt: skip
    s3.add_argument("--s3-region", default=env("S3_REGION") or "us-east-1", metavar="REGION",
                    help="the bucket's region "
                    "(env LIVECORE_S3_REGION; default us-east-1)")  # fmt: skip
    s3.add_argument("--s3-prefix", default=env("S3_PREFIX", "livecore/"), metavar="PREFIX",
                    help="every object key starts with this, e.g. shop1/ (env LIVECORE_S3_PREFIX; "
                    "default livecore/)")  # fmt: skip
    s3.add_argument("--s3-access-key", default=env("S3_ACCESS_KEY"), metavar="ID",
                    help="the access key id (env LIVECORE_S3_ACCESS_KEY); the secret key is "
                    "never a flag: env LIVECORE_S3_SECRET_KEY or --s3-secret-file")  # fmt: skip
    s3.add_argument("--s3-secret-file", type=Path, default=env("S3_SECRET_FILE"),
                    metavar="FILE",
                    help="file holding the secret key "
                    "(env LIVECORE_S3_SECRET_FILE)")  # fmt: skip
    s3.add_argument("--s3-hls", action="store_true", default=flag("S3_HLS", False),
                    help="also upload live HLS (segments and the room's playlist) as they are "
                    "written, so any node serves a room's HLS, even after the recording node "
                    "is gone (env LIVECORE_S3_HLS=1)")  # fmt: skip
    s3.add_argument("--s3-retry", type=float, default=env("S3_RETRY") or 30.0,
                    metavar="SECONDS",
                    help="uploads that failed are tried again this often "
                    "(env LIVECORE_S3_RETRY; default 30)")  # fmt: skip


def _add_ice_servers(ice: argparse._ArgumentGroup) -> None:
    ice.add_argument("--turn-url", action="append", default=None, metavar="URL",
                     help="a TURN server clients may relay through, repeatable: "
                     "turn:HOST[:PORT]?transport=udp|tcp or turns:HOST[:PORT]?transport=tcp "
                     "(env LIVECORE_TURN_URLS, comma-separated; default none)")  # fmt: skip
    ice.add_argument("--turn-secret-file", type=Path, default=env("TURN_SECRET_FILE"),
                     metavar="FILE",
                     help="file holding coturn's static-auth-secret (use-auth-secret): clients "
                     "get credentials minted from it, never the secret (env "
                     "LIVECORE_TURN_SECRET_FILE; required with --turn-url)")  # fmt: skip
    ice.add_argument("--turn-ttl", type=int,
                     default=int(env("TURN_TTL", str(turn.DEFAULT_TTL_S)) or turn.DEFAULT_TTL_S),
                     metavar="SECONDS",
                     help="lifetime of the TURN credentials handed out, "
                     f"{turn.MIN_TTL_S}-{turn.MAX_TTL_S} (env LIVECORE_TURN_TTL; "
                     f"default {turn.DEFAULT_TTL_S})")  # fmt: skip
    ice.add_argument("--stun-url", action="append", default=None, metavar="URL",
                     help="a STUN server clients may use, repeatable: stun:HOST[:PORT] "
                     "(env LIVECORE_STUN_URLS, comma-separated; default none)")  # fmt: skip
