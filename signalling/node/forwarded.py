"""The client behind a trusted reverse proxy (pure): the address a per-address limit
keys on. The HTTP side gets it from uvicorn's proxy-headers middleware; the room
channel's websockets are read below uvicorn's ASGI layer, so they use this."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


def is_trusted(address: str, proxies: Iterable[str]) -> bool:
    """Whether ``address`` is one of ``proxies`` (addresses, networks, or ``*``)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for proxy in proxies:
        if proxy == "*":
            return True
        try:
            if ip in ipaddress.ip_network(proxy, strict=False):
                return True
        except ValueError:
            continue
    return False


def client_address(peer: str, forwarded_for: Iterable[str], proxies: Iterable[str]) -> str:
    """The client of a connection from ``peer``: when ``peer`` is a trusted proxy, the
    nearest address of ``X-Forwarded-For`` (its values, in header order) that is not
    itself a trusted proxy (RFC 7239 §5.2's order: appended hop by hop), else ``peer``."""
    trusted = tuple(proxies)
    if not trusted or not is_trusted(peer, trusted):
        return peer
    hops = [h.strip() for value in forwarded_for for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a hop that is no address: believe no part of the header
    return peer
