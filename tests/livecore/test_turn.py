"""livecore.turn: ICE server URLs, TURN REST API credentials, RFC 9725 Link values."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest

from livecore import turn

SECRET = b"s3cret-for-tests-0123456789"
NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("turn:turn.example.com", "turn:turn.example.com"),
        ("turn:turn.example.com:3478?transport=udp", "turn:turn.example.com:3478?transport=udp"),
        ("TURN:198.51.100.7:443?transport=TCP", "turn:198.51.100.7:443?transport=tcp"),
        ("turns:turn.example.com:5349?transport=tcp", "turns:turn.example.com:5349?transport=tcp"),
        ("turn:[2001:db8::7]:3478?transport=udp", "turn:[2001:db8::7]:3478?transport=udp"),
        ("turn:[2001:db8::7]", "turn:[2001:db8::7]"),
    ],
)
def test_turn_urls_accepted_and_normalised(text: str, expected: str) -> None:
    """Valid turn:/turns: URLs round-trip (scheme and transport lower-cased)."""
    assert str(turn.parse_ice_url(text)) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("turn:alice:pw@turn.example.com:3478", "user info"),
        ("turn://turn.example.com:3478", "must be"),
        ("turn:turn.example.com:3478/path", "must be"),
        ("turn:turn.example.com:70000", "port"),
        ("turn:turn.example.com:x", "port"),
        ("turn:turn.example.com?transport=tls", "turns:HOST:5349"),
        ("turn:turn.example.com?transport=sctp", "transport=udp"),
        ("turns:turn.example.com?transport=udp", "DTLS"),
        ("turn:bad_host!", "host name"),
        ("turn:[not-v6]:3478", "IPv6"),
        ("stun:stun.example.com", "not a turn"),
        ("http://turn.example.com", "not a turn"),
        ("turn:", "host name"),
    ],
)
def test_bad_turn_urls_refused_with_a_reason(text: str, why: str) -> None:
    """Each malformed URL is refused, and the message says what is wrong."""
    with pytest.raises(ValueError, match=re.escape(why)):
        turn.parse_ice_url(text)


def test_stun_urls() -> None:
    """stun: URLs take host and port, no query; turn: is not a STUN URL."""
    stun = ("stun",)
    assert str(turn.parse_ice_url("stun:stun.example.com:3478", schemes=stun)) == (
        "stun:stun.example.com:3478"
    )
    with pytest.raises(ValueError, match="no query"):
        turn.parse_ice_url("stun:stun.example.com?transport=udp", schemes=stun)
    with pytest.raises(ValueError, match="not a stun"):
        turn.parse_ice_url("turn:turn.example.com", schemes=stun)


def test_credential_is_the_turn_rest_api_hmac() -> None:
    """username = "<expiry>:<user>", credential = base64(HMAC-SHA1(secret, username))."""
    cred = turn.mint(SECRET, "buyer-7", NOW, 600)
    assert cred.username == f"{int(NOW) + 600}:buyer-7"
    assert cred.expires == int(NOW) + 600
    digest = hmac.new(SECRET, cred.username.encode(), hashlib.sha1).digest()
    assert base64.b64decode(cred.credential) == digest


def test_credential_of_a_user_id_with_a_colon() -> None:
    """User ids may hold ':' (coturn reads the expiry before the first one)."""
    cred = turn.mint(SECRET, "wx:o6_bmjrPTlm6", NOW, 60)
    assert cred.username.split(":", 1) == [str(int(NOW) + 60), "wx:o6_bmjrPTlm6"]


def servers() -> turn.IceServers:
    return turn.IceServers(
        stun=(turn.parse_ice_url("stun:stun.example.com", schemes=("stun",)),),
        turn=(
            turn.parse_ice_url("turn:turn.example.com:3478?transport=udp"),
            turn.parse_ice_url("turns:turn.example.com:5349?transport=tcp"),
        ),
        secret=SECRET,
        ttl_s=900,
    )


LINK = re.compile(
    r'^<(?P<url>[^>]+)>; rel="ice-server"'
    r'(?:; username="(?P<user>[^"]+)"; credential="(?P<cred>[^"]+)"; credential-type="password")?$'
)


def test_link_header_lists_every_server_rfc9725() -> None:
    """One link per URL, TURN ones with username, credential and credential-type."""
    value = servers().link_header("buyer-7", NOW)
    links = [LINK.match(part) for part in value.split(", ")]
    assert all(links), value
    urls = [m["url"] for m in links if m]
    assert urls == [
        "stun:stun.example.com",
        "turn:turn.example.com:3478?transport=udp",
        "turns:turn.example.com:5349?transport=tcp",
    ]
    expected = turn.mint(SECRET, "buyer-7", NOW, 900)
    turn_links = [m for m in links if m and m["url"].startswith("turn")]
    assert {(m["user"], m["cred"]) for m in turn_links} == {
        (expected.username, expected.credential)
    }
    stun_link = links[0]
    assert stun_link is not None and stun_link["user"] is None


def test_rtc_ice_servers_for_a_page() -> None:
    """The page gets RTCIceServer dictionaries: STUN without, TURN with credentials."""
    stun, relay = servers().for_user("buyer-7", NOW)
    assert stun == {"urls": ["stun:stun.example.com"]}
    assert relay["urls"] == [
        "turn:turn.example.com:3478?transport=udp",
        "turns:turn.example.com:5349?transport=tcp",
    ]
    assert relay["username"] == f"{int(NOW) + 900}:buyer-7"
    assert relay["credential"] == turn.mint(SECRET, "buyer-7", NOW, 900).credential


def test_nothing_configured() -> None:
    """No servers: falsy, no Link value, an empty list; check passes."""
    empty = turn.IceServers()
    empty.check()
    assert not empty and empty.link_header("u", NOW) == "" and empty.for_user("u", NOW) == []


def test_settings_checks() -> None:
    """TURN URLs need a secret, a secret needs URLs, the lifetime is bounded."""
    with pytest.raises(ValueError, match="--turn-secret-file"):
        turn.IceServers(turn=servers().turn).check()
    with pytest.raises(ValueError, match="no --turn-url"):
        turn.IceServers(secret=SECRET).check()
    with pytest.raises(ValueError, match="--turn-ttl"):
        turn.IceServers(turn=servers().turn, secret=SECRET, ttl_s=10).check()
    servers().check()


def test_the_secret_is_never_in_a_repr() -> None:
    """repr (log lines, tracebacks, Settings' repr) names URLs and lifetime only."""
    text = repr(servers())
    assert SECRET.decode() not in text and "turn.example.com" in text


def test_secret_checks() -> None:
    """The file's secret is stripped; short or non-ASCII secrets are refused."""
    assert turn.check_secret(SECRET + b"\n") == SECRET
    with pytest.raises(ValueError, match="at least"):
        turn.check_secret(b"short\n")
    with pytest.raises(ValueError, match="printable ASCII"):
        turn.check_secret("秘密秘密秘密秘密秘密秘密".encode())
