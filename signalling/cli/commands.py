"""The ``livecore`` commands: ``serve``, ``token`` and ``valkey``.

This package is the composition root, at the top of the top layer: it reads
the machine (environment, secret file), starts the embedded Valkey
(:mod:`livecore.valkey`) and runs :mod:`signalling.server`; nothing imports it.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from livecore import tokens, turn
from livecore.config import (
    ObjectStoreSettings,
    Settings,
    parse_announce,
    parse_listen,
    parse_port_range,
)
from livecore.keyring import KeyRing, SigningKey, parse_key
from livecore.valkey.cluster import LocalCluster
from livecore.valkey.embedded import EmbeddedValkey, EmbeddedValkeyError, embedded_store, redact
from media.announce import normal, not_local
from signalling.cli import workers
from signalling.cli.environment import (
    SECRET_ENV,
    SecretError,
    configure_logging,
    default_node_id,
    env,
    load_blocked_words,
    load_keys,
    load_s3_secret,
    load_secret,
)
from signalling.cli.parser import build_parser
from signalling.cli.serve_options import DEFAULTS


def _recording_settings(args: argparse.Namespace) -> dict[str, object]:
    return {
        "record": not args.no_record,
        "media_dir": Path(args.media_dir) if args.media_dir else None,
        "record_segment_s": args.record_segment,
        "record_window_s": args.record_window,
        "media_budget_bytes": args.media_budget * 1024**2,
        "highlight_time_scale": args.highlight_time_scale,
        "record_trace": Path(args.record_trace) if args.record_trace else None,
        "record_text": args.record_text,
        "end_grace_s": args.end_grace,
        "room_retention_s": args.room_retention,
        "object_store": _object_store(args),
    }


def _object_store(args: argparse.Namespace) -> ObjectStoreSettings | None:
    """--s3-* (or their env); the secret key from the environment or its file."""
    if not args.s3_endpoint:
        return None
    return ObjectStoreSettings(
        endpoint=args.s3_endpoint,
        bucket=args.s3_bucket or "",
        access_key=args.s3_access_key or "",
        secret_key=load_s3_secret(args.s3_secret_file),
        region=args.s3_region,
        prefix=args.s3_prefix,
        retry_s=float(args.s3_retry),
        hls=bool(args.s3_hls),
    )


def settings_from(args: argparse.Namespace) -> Settings:
    """The node's Settings from ``serve``'s options (their defaults are Settings' own)."""
    return Settings(
        host=args.host,
        port=args.port,
        redis_url=args.redis or None,
        data_dir=args.data_dir,
        node_id=args.node_id or default_node_id(),
        public_url=args.public_url,
        node_url=args.node_url,
        log_level=args.log_level,
        log_debug=_log_debug(args.log_debug),
        demo=args.demo,
        tick_ms=args.tick_ms,
        ws_send_buffer=args.ws_send_buffer,
        ws_message_rate=args.ws_message_rate,
        ws_max_per_user=args.ws_max_per_user,
        ws_max_per_ip=args.ws_max_per_ip,
        address_rate=args.address_rate,
        address_burst=args.address_burst,
        ws_ping_interval_s=args.ws_ping_interval,
        ws_idle_timeout_s=args.ws_idle_timeout,
        ws_drain_timeout_s=args.ws_drain_timeout,
        ws_socket_send_buffer=args.ws_socket_send_buffer,
        hello_timeout_s=args.hello_timeout,
        room_idle_s=args.room_idle,
        communities_file=Path(args.communities) if args.communities else None,
        orders_webhook=args.orders_webhook,
        orders_webhook_secret=_webhook_secret(args),
        orders_webhook_allow_http=args.orders_webhook_allow_http,
        ice_addresses=_ice_addresses(args.ice_address),
        announce_addresses=_announce_addresses(args.announce_address),
        trusted_proxies=_trusted_proxies(args.trusted_proxy),
        metrics_listen=parse_listen(args.metrics_listen) if args.metrics_listen else None,
        media_max_sessions=args.media_max_sessions,
        media_connect_timeout_s=args.media_connect_timeout,
        pull_idle_s=args.pull_idle,
        costream_max=args.costream_max,
        udp_ports=parse_port_range(args.udp_ports) if args.udp_ports else None,
        forwarder=args.forwarder,
        udp_mux_port=None if args.udp_mux is None else int(args.udp_mux),
        comment_max_chars=args.comment_max_chars,
        comment_rate=args.comment_rate,
        comment_burst=args.comment_burst,
        blocked_words=load_blocked_words(Path(args.blocked_words) if args.blocked_words else None),
        tls_cert=Path(args.tls_cert) if args.tls_cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
        ice_servers=_ice_servers(args),
        **_recording_settings(args),  # type: ignore[arg-type]
    )


def _serve(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    settings.check()
    check_ice_addresses(settings)
    count = workers.parse_workers(args.workers)
    for index in range(count):  # a --udp-ports range too small for the workers: say it now
        workers.worker_settings(settings, index, count)
    secret = load_secret(settings.data_dir, create=True)
    ring = load_keys(settings.data_dir, secret)
    # Lazy, so that `livecore token` does not load the web and media stacks.
    from signalling import server

    configure_logging(settings.log_level, settings.log_debug)
    with embedded_store(settings) as (resolved, store):
        if count == 1:
            return server.run(resolved, secret, store, ring)
        return _serve_workers(resolved, secret, store, ring, count)


def _serve_workers(
    settings: Settings, secret: bytes, store: str, ring: KeyRing | None, count: int
) -> int:
    """``serve --workers N`` (N > 1): the supervisor of :mod:`signalling.cli.workers`."""
    from signalling import server

    held = workers.hold_port(settings.host, settings.port)
    try:
        settings = dataclasses.replace(settings, port=held.getsockname()[1])
        supervisor = workers.Supervisor(settings, secret, store, ring, count)

        def ready() -> None:
            text = server.banner(settings, ring or secret, store, workers=supervisor.node_ids)
            print(text, flush=True)

        return supervisor.run(ready)
    finally:
        held.close()


def check_ice_addresses(settings: Settings) -> None:
    """Refuse an --ice-address no interface has: ICE would offer no candidate at all."""
    missing = not_local(settings.ice_addresses or ())
    if missing:
        which = "this address" if len(missing) == 1 else "these addresses"
        raise ValueError(
            f"--ice-address {', '.join(missing)}: no interface of this machine has {which}, "
            "so ICE would offer no candidate; behind 1:1 NAT bind the private address and "
            "pass --announce-address PRIVATE=PUBLIC"
        )


def _ice_addresses(flags: list[str] | None) -> tuple[str, ...] | None:
    """--ice-address values (or the env list); 'all' means every interface (None)."""
    from_env = env("ICE_ADDRESSES")
    if not flags and not from_env:
        return DEFAULTS.ice_addresses
    values = [v.strip() for v in flags or (from_env or "").split(",") if v.strip()]
    return None if "all" in values else tuple(normal(v) for v in values)


def _announce_addresses(flags: list[str] | None) -> tuple[tuple[str, str], ...]:
    """--announce-address values (or the env list) as (bound, announced) pairs."""
    values = flags or (env("ANNOUNCE_ADDRESSES") or "").split(",")
    return tuple(parse_announce(v) for v in values if v.strip())


def _ice_servers(args: argparse.Namespace) -> turn.IceServers:
    """--stun-url, --turn-url (or the env lists), the TURN secret read from its file."""
    try:
        stuns = _listed(args.stun_url, "STUN_URLS")
        stun = [turn.parse_ice_url(u, schemes=("stun",)) for u in stuns]
    except ValueError as exc:
        raise ValueError(f"--stun-url: {exc}") from None
    try:
        turns = [turn.parse_ice_url(u) for u in _listed(args.turn_url, "TURN_URLS")]
    except ValueError as exc:
        raise ValueError(f"--turn-url: {exc}") from None
    secret = b""
    if args.turn_secret_file is not None:
        path = Path(args.turn_secret_file)
        try:
            secret = turn.check_secret(path.read_bytes())
        except OSError as exc:
            raise ValueError(f"--turn-secret-file: cannot read {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise ValueError(f"--turn-secret-file {path}: {exc}") from None
    return turn.IceServers(tuple(stun), tuple(turns), secret, args.turn_ttl)


def _listed(flags: list[str] | None, env_name: str) -> list[str]:
    """Repeated flags, else the comma-separated ``LIVECORE_<env_name>``."""
    values = flags or (env(env_name) or "").split(",")
    return [v.strip() for v in values if v.strip()]


def _webhook_secret(args: argparse.Namespace) -> str | None:
    """The orders webhook's key: --orders-webhook-secret-file, else the flag or env."""
    path = args.orders_webhook_secret_file
    if path is not None:
        secret = Path(path).read_text().strip()
        if not secret:
            raise ValueError(f"--orders-webhook-secret-file {path} is empty")
        return secret
    flag: str | None = args.orders_webhook_secret
    return flag


def _trusted_proxies(flags: list[str] | None) -> tuple[str, ...]:
    """--trusted-proxy values (or the env list): peers whose X-Forwarded-For counts."""
    values = flags or (env("TRUSTED_PROXIES") or "").split(",")
    return tuple(v.strip() for v in values if v.strip())


def _log_debug(flags: list[str] | None) -> tuple[str, ...]:
    """--log-debug values (or the env list): loggers logged at debug."""
    values = flags or (env("LOG_DEBUG") or "").split(",")
    return tuple(v.strip() for v in values if v.strip())


def _token(args: argparse.Namespace) -> int:
    role = tokens.Role(args.role)
    if args.room == tokens.ANY_ROOM and role is not tokens.Role.ADMIN:
        raise ValueError("only admin tokens may be valid for any room ('*')")
    key: bytes | SigningKey | KeyRing
    if args.key is not None:
        key, _ = parse_key(Path(args.key).read_text(), Path(args.key).name)
    else:
        key = load_keys(args.data_dir, load_secret(args.data_dir, create=True))
    print(
        tokens.mint(
            key, role=role, room=args.room, user=args.user, ttl_s=args.ttl,
            community=args.community,
        )
    )  # fmt: skip
    return 0


def _valkey(args: argparse.Namespace) -> int:
    if args.cluster:
        return _valkey_cluster(args)
    server = EmbeddedValkey(args.data_dir, tcp_port=args.port)
    server.start()
    url = f"redis://:$(cat {server.dir / 'password'})@127.0.0.1:{server.tcp_port}/0"
    print(f"valkey ready on 127.0.0.1:{server.tcp_port}; for each node:", flush=True)
    print(f'  export LIVECORE_REDIS="{url}"', flush=True)
    _wait_for_signal(lambda: server.process is not None and server.process.poll() is None)
    server.stop()
    return 0


def _valkey_cluster(args: argparse.Namespace) -> int:
    """``livecore valkey --cluster N``: a local cluster in the foreground until a signal."""
    count = args.cluster * (1 + args.replicas)
    cluster = LocalCluster(
        args.data_dir / "cluster", primaries=args.cluster, replicas=args.replicas,
        ports=range(args.port, args.port + count),
    )  # fmt: skip
    cluster.start()
    seeds = ",".join(f"127.0.0.1:{port}" for port in cluster.ports)
    url = f"redis+cluster://:$(cat {cluster.data_dir / 'password'})@{seeds}"
    print(
        f"valkey cluster ready: {args.cluster} primaries, {args.replicas} replicas each, on "
        f"127.0.0.1:{args.port}-{args.port + count - 1}; for each node:",
        flush=True,
    )
    print(f'  export LIVECORE_REDIS="{url}"', flush=True)
    try:
        _wait_for_signal(lambda: any(LocalCluster.running(n) for n in cluster.nodes))
    finally:
        cluster.stop()
    return 0


def _wait_for_signal(alive: Callable[[], bool]) -> None:
    """Block until SIGTERM/SIGINT or until ``alive()`` turns false."""
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop and alive():
        time.sleep(0.2)


def _trace_export(args: argparse.Namespace) -> int:
    """``livecore trace export ROOM --out FILE``: a past room as a load-test trace."""
    import asyncio

    import redis.exceptions

    from livecore.audience.export import export_room
    from livecore.store.client import connect

    if not tokens.valid_id(args.room):
        raise ValueError(f"room {args.room!r} is not 1-64 of A-Z a-z 0-9 _ . : -")
    url = args.redis or EmbeddedValkey(args.data_dir).url

    async def run() -> int:
        client = connect(url)
        try:
            trace = await export_room(client, args.room, args.out, keep_text=args.keep_text)
        except redis.exceptions.RedisError as exc:
            print(f"livecore: error: cannot read room {args.room!r} at {redact(url)}: {exc}",
                  file=sys.stderr)  # fmt: skip
            return 2
        finally:
            await client.aclose()
        if not trace.events:
            print(f"livecore: room {args.room!r} has no events to export", file=sys.stderr)
            return 1
        print(f"wrote {len(trace.events)} events of room {args.room} to {args.out}")
        return 0

    return asyncio.run(run())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "token":
            return _token(args)
        if args.command == "trace":
            return _trace_export(args)
        return _valkey(args)
    except (EmbeddedValkeyError, SecretError, ValueError, OSError) as exc:
        print(f"livecore: error: {exc}", file=sys.stderr)
        return 2


__all__ = ["SECRET_ENV", "main"]
