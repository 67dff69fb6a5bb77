"""STUN/TURN servers the clients are told about: URLs, time-limited credentials, Link headers.

Pure (no I/O, no clock of its own): the CLI reads the shared secret from a
file, endpoints pass the time in.

Credentials follow the TURN REST API (draft-uberti-behave-turn-rest-00 §2.2),
which coturn implements with ``use-auth-secret`` + ``static-auth-secret``:

- username = ``"<expiry unix time>:<user id>"`` — the caller's own user id, so
  coturn's logs and its per-user quota (``user-quota``) see who allocated;
- credential = ``base64(HMAC-SHA1(secret, username))``.

coturn accepts the pair while ``expiry`` is in the future. Nothing is stored
on the node: any node with the same secret mints credentials any coturn with
that secret accepts.

URLs (RFC 7064 ``stun:``, RFC 7065 ``turn:``/``turns:``) are checked when the
node starts: a host (name, IPv4, or IPv6 in brackets), an optional port, and
for TURN an optional ``?transport=udp|tcp``. User info (``user:pass@``) is
refused: the secret never travels in a URL. They are handed to clients as
``Link: <url>; rel="ice-server"`` header fields (RFC 9725 §4.6, which
registers the ``ice-server`` relation and its ``username``, ``credential``
and ``credential-type`` attributes) and as the JSON of ``RTCIceServer``
dictionaries (W3C webrtc-pc §4.2.2) for pages.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

#: Shortest and longest credential lifetime an operator may configure (seconds).
MIN_TTL_S, MAX_TTL_S = 60, 24 * 3600
DEFAULT_TTL_S = 1800
#: Fewest bytes of a shared secret (coturn compares it as a string: keep it ASCII).
MIN_SECRET_BYTES = 16

_DEFAULT_PORT = {"stun": 3478, "turn": 3478, "turns": 5349}
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


@dataclass(frozen=True, slots=True)
class IceUrl:
    """One checked ``stun:``/``turn:``/``turns:`` URL."""

    scheme: str
    host: str
    port: int | None = None
    transport: str | None = None

    @property
    def needs_credentials(self) -> bool:
        return self.scheme in ("turn", "turns")

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port is not None else ""
        query = f"?transport={self.transport}" if self.transport else ""
        return f"{self.scheme}:{host}{port}{query}"


def parse_ice_url(text: str, *, schemes: tuple[str, ...] = ("turn", "turns")) -> IceUrl:
    """Check ``text`` as an ICE server URL of one of ``schemes``; ``ValueError`` says why."""
    scheme, sep, rest = text.strip().partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in schemes:
        want = " or ".join(f"{s}:" for s in schemes)
        raise ValueError(f"{text!r} is not a {want} URL (e.g. {schemes[0]}:turn.example.com:3478)")
    if "@" in rest:
        raise ValueError(
            f"{scheme}: URL with user info: credentials never go in a URL "
            "(the node mints them from --turn-secret-file)"
        )
    if rest.startswith("//") or "/" in rest or "#" in rest:
        raise ValueError(f"{scheme}: URL {text!r} must be {scheme}:HOST[:PORT][?transport=udp|tcp]")
    hostport, _, query = rest.partition("?")
    host, port = _host_port(hostport, text)
    transport = _transport(scheme, query, text)
    return IceUrl(scheme, host, port, transport)


def _host_port(hostport: str, text: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        host, _, after = hostport[1:].partition("]")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{text!r}: {host!r} is not an IPv6 address") from None
        port_text = after[1:] if after.startswith(":") else None
        if after and port_text is None:
            raise ValueError(f"{text!r}: expected :PORT after the IPv6 address")
    else:
        host, sep, port_text_or_empty = hostport.partition(":")
        port_text = port_text_or_empty if sep else None
        if not _HOST_NAME.match(host):
            raise ValueError(f"{text!r}: {host!r} is not a host name or address")
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: the port must be 1-65535")
    return host, int(port_text)


def _transport(scheme: str, query: str, text: str) -> str | None:
    if not query:
        return None
    if scheme == "stun":
        raise ValueError(f"{text!r}: a stun: URL takes no query")
    name, _, value = query.partition("=")
    value = value.lower()
    if name.lower() != "transport" or value not in ("udp", "tcp"):
        hint = " (TLS is turns:HOST:5349?transport=tcp)" if value == "tls" else ""
        raise ValueError(f"{text!r}: the only query is ?transport=udp or ?transport=tcp{hint}")
    if scheme == "turns" and value == "udp":
        raise ValueError(f"{text!r}: turns: over UDP (DTLS) is not supported by browsers; use tcp")
    return value


def check_secret(secret: bytes) -> bytes:
    """The shared secret, stripped; ``ValueError`` if short or not printable ASCII
    (coturn reads ``static-auth-secret`` as a string)."""
    value = secret.strip()
    if len(value) < MIN_SECRET_BYTES:
        raise ValueError(f"the TURN secret must be at least {MIN_SECRET_BYTES} bytes")
    if not all(0x21 <= b <= 0x7E for b in value):
        raise ValueError("the TURN secret must be printable ASCII without spaces")
    return value


@dataclass(frozen=True, slots=True)
class TurnCredential:
    """A username/credential pair valid until ``expires`` (unix seconds)."""

    username: str
    credential: str
    expires: int


def mint(secret: bytes, user: str, now: float, ttl_s: int) -> TurnCredential:
    """Credentials for ``user`` valid ``ttl_s`` seconds from ``now`` (TURN REST API)."""
    expires = int(now) + ttl_s
    username = f"{expires}:{user}"
    digest = hmac.new(secret, username.encode(), hashlib.sha1).digest()
    return TurnCredential(username, base64.b64encode(digest).decode("ascii"), expires)


@dataclass(frozen=True, slots=True)
class IceServers:
    """The STUN/TURN servers of a deployment and how their credentials are minted."""

    stun: tuple[IceUrl, ...] = ()
    turn: tuple[IceUrl, ...] = ()
    secret: bytes = b""
    ttl_s: int = DEFAULT_TTL_S

    def __bool__(self) -> bool:
        return bool(self.stun or self.turn)

    def __repr__(self) -> str:  # never the secret, in a log line or a traceback
        urls = [str(u) for u in (*self.stun, *self.turn)]
        return f"IceServers(urls={urls}, ttl_s={self.ttl_s})"

    def check(self) -> None:
        """``ValueError`` naming the option at fault."""
        if self.turn and not self.secret:
            raise ValueError("--turn-url needs --turn-secret-file (the coturn static-auth-secret)")
        if self.secret and not self.turn:
            raise ValueError("--turn-secret-file is set but no --turn-url")
        if not MIN_TTL_S <= self.ttl_s <= MAX_TTL_S:
            raise ValueError(
                f"--turn-ttl must be between {MIN_TTL_S} and {MAX_TTL_S}, got {self.ttl_s}"
            )

    def for_user(self, user: str, now: float) -> list[dict[str, Any]]:
        """``RTCIceServer`` dictionaries for ``user``: STUN URLs, then the TURN URLs
        with one credential valid ``ttl_s`` seconds."""
        servers: list[dict[str, Any]] = []
        if self.stun:
            servers.append({"urls": [str(u) for u in self.stun]})
        if self.turn:
            cred = mint(self.secret, user, now, self.ttl_s)
            servers.append(
                {
                    "urls": [str(u) for u in self.turn],
                    "username": cred.username,
                    "credential": cred.credential,
                }
            )
        return servers

    def link_header(self, user: str, now: float) -> str:
        """One ``Link`` field value, a link per URL (RFC 9725 §4.6), or ``""`` if none."""
        links = [link_value(str(u)) for u in self.stun]
        if self.turn:
            cred = mint(self.secret, user, now, self.ttl_s)
            links += [link_value(str(u), cred) for u in self.turn]
        return ", ".join(links)


def link_value(url: str, cred: TurnCredential | None = None) -> str:
    """``<url>; rel="ice-server"`` with the credential's attributes (RFC 9725 §4.6).

    The username is ``digits:user id`` and the credential base64: neither holds a
    quote or backslash, so both are plain quoted strings (RFC 9110 §5.6.4)."""
    value = f'<{url}>; rel="ice-server"'
    if cred is not None:
        value += (
            f'; username="{cred.username}"; credential="{cred.credential}"'
            '; credential-type="password"'
        )
    return value
