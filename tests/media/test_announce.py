"""Announced addresses (1:1 NAT): the SDP rewrite, the settings, the start-up refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiortc import RTCSessionDescription
from aiortc.sdp import candidate_to_sdp

from livecore.config import Settings, parse_announce
from media.announce import announce_map, announce_sdp, normal, not_local
from media.icerestart import answer_fragment
from media.peers import PeerConfig, candidate_addresses, create_peer_connection
from signalling import cli

ANSWER = "\r\n".join(
    [
        "v=0",
        "o=- 1 1 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "m=video 40000 UDP/TLS/RTP/SAVPF 96",
        "c=IN IP4 198.51.100.10",
        "a=rtcp:9 IN IP4 198.51.100.10",
        "a=candidate:1 1 udp 2130706431 198.51.100.10 40000 typ host",
        "a=candidate:2 1 udp 2130706431 2001:db8:0:0::10 40000 typ host",
        "a=candidate:3 1 udp 1694498815 203.0.113.99 5000 typ srflx raddr 198.51.100.10 "
        "rport 40000",
        "a=candidate:4 1 udp 2130706431 198.51.100.11 40001 typ host",
        "a=ice-ufrag:abcd",
        "",
    ]
)
MAP = announce_map([("198.51.100.10", "203.0.113.10"), ("2001:db8::10", "2001:db8:1::10")])


def test_rewrite_names_the_announced_addresses() -> None:
    """Candidates, c= and a=rtcp on a bound address name the announced one; the rest
    (another local address, a srflx candidate's own address, its raddr) is untouched."""
    out = announce_sdp(ANSWER, MAP)
    assert candidate_addresses(out) == [
        "203.0.113.10",
        "2001:db8:1::10",
        "203.0.113.99",
        "198.51.100.11",
    ]
    assert "c=IN IP4 203.0.113.10\r\n" in out
    assert "a=rtcp:9 IN IP4 203.0.113.10\r\n" in out
    assert "raddr 198.51.100.10 rport 40000" in out
    assert out.count("\r\n") == ANSWER.count("\r\n") and out.endswith("\r\n")
    assert "a=ice-ufrag:abcd" in out


def test_rewrite_follows_the_family_and_keeps_unmapped_sdp() -> None:
    """An IPv6 c= line mapped to IPv6 stays IP6; an empty map is the identity."""
    sdp = "v=0\nc=IN IP6 2001:DB8::10\na=candidate:1 1 udp 1 2001:db8::10 9 typ host\n"
    out = announce_sdp(sdp, MAP)
    assert out == "v=0\nc=IN IP6 2001:db8:1::10\na=candidate:1 1 udp 1 2001:db8:1::10 9 typ host\n"
    assert announce_sdp(ANSWER, {}) is ANSWER
    assert normal("[2001:DB8::1]") == "2001:db8::1" and normal("host.local") == "host.local"


def test_parse_announce_pairs() -> None:
    """BOUND=ANNOUNCED, one family, IP literals; anything else names the mistake."""
    assert parse_announce("198.51.100.10=203.0.113.10") == ("198.51.100.10", "203.0.113.10")
    assert parse_announce("[2001:DB8::10]=2001:db8:1::10") == ("2001:db8::10", "2001:db8:1::10")
    for bad, words in [
        ("198.51.100.10", "BOUND=ANNOUNCED"),
        ("198.51.100.10=example.com", "BOUND=ANNOUNCED"),
        ("198.51.100.10=2001:db8::1", "IPv4 address to an IPv6"),
        ("198.51.100.10=0.0.0.0", "cannot be announced"),
    ]:
        with pytest.raises(ValueError, match=words):
            parse_announce(bad)


def test_settings_check_the_bound_side() -> None:
    """A mapped address must be one ICE binds (unless ICE binds every interface)."""
    pair = ("198.51.100.10", "203.0.113.10")
    Settings(ice_addresses=("198.51.100.10",), announce_addresses=(pair,)).check()
    Settings(ice_addresses=None, announce_addresses=(pair,)).check()
    with pytest.raises(ValueError, match="not an --ice-address"):
        Settings(announce_addresses=(pair,)).check()
    with pytest.raises(ValueError, match="one announced address"):
        Settings(ice_addresses=None, announce_addresses=(pair, pair)).check()


def test_health_and_banner_show_what_is_announced() -> None:
    """/healthz's ice view and the banner's ice line name each pair and the ports."""
    settings = Settings(
        ice_addresses=("198.51.100.10",),
        announce_addresses=(("198.51.100.10", "203.0.113.10"),),
        udp_mux_port=40000,
    )
    assert settings.ice_view() == {
        "addresses": ["198.51.100.10"],
        "announced": {"198.51.100.10": "203.0.113.10"},
        "udp_ports": "mux 40000",
    }
    assert settings.ice_line() == "198.51.100.10 announced as 203.0.113.10; udp mux 40000"
    assert Settings(udp_ports=(40000, 40099)).ice_line() == "127.0.0.1; udp 40000-40099"


def test_not_local_finds_addresses_no_interface_has() -> None:
    """127.0.0.1 is local; a documentation address the machine lacks is not."""
    assert not_local(["127.0.0.1"]) == []
    assert not_local(["127.0.0.1", "203.0.113.254"]) == ["203.0.113.254"]


def test_serve_refuses_an_ice_address_no_interface_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: a node on a non-local --ice-address started healthy and answered with
    zero candidates. Now it exits 2 at start and says what to do instead."""
    args = ["serve", "--data-dir", str(tmp_path), "--ice-address", "203.0.113.254"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "--ice-address 203.0.113.254: no interface of this machine has this address" in err
    assert "--announce-address PRIVATE=PUBLIC" in err


async def test_answer_names_the_announced_address() -> None:
    """An aiortc answer from a connection bound on 127.0.0.1 announced as 203.0.113.10
    lists only the announced address; the bound socket is unchanged."""
    offerer = create_peer_connection()
    offerer.addTransceiver("video", direction="sendrecv")
    await offerer.setLocalDescription(await offerer.createOffer())
    config = PeerConfig(announce=(("127.0.0.1", "203.0.113.10"),))
    answerer = create_peer_connection(config)
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    answer = answerer.localDescription
    assert isinstance(answer, RTCSessionDescription) and answer.type == "answer"
    assert set(candidate_addresses(answer.sdp)) == {"203.0.113.10"}
    assert "c=IN IP4 203.0.113.10" in answer.sdp
    gatherer = answerer.getTransceivers()[0].receiver.transport.transport.iceGatherer
    assert {c.ip for c in gatherer.getLocalCandidates()} == {"127.0.0.1"}
    # An ICE restart's answer fragment is built from the gatherer's candidates: renamed too.
    fragment = answerer.announced(answer_fragment(answer.sdp, "0", "uf", "pw", [
        "a=candidate:" + candidate_to_sdp(c) for c in gatherer.getLocalCandidates()]))  # fmt: skip
    assert set(candidate_addresses(fragment)) == {"203.0.113.10"}
    await offerer.close()
    await answerer.close()


def test_flags_and_environment_give_the_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    """--announce-address is repeatable; LIVECORE_ANNOUNCE_ADDRESSES is comma-separated;
    a flag wins over the environment."""
    from signalling.cli import commands
    from signalling.cli.parser import build_parser

    monkeypatch.setenv("LIVECORE_ANNOUNCE_ADDRESSES", "198.51.100.10=203.0.113.10, ::1=2001:db8::1")
    assert commands._announce_addresses(None) == (
        ("198.51.100.10", "203.0.113.10"),
        ("::1", "2001:db8::1"),
    )
    args = build_parser().parse_args(
        ["serve", "--announce-address", "127.0.0.1=203.0.113.7", "--announce-address", "::1=::2"]
    )
    assert commands._announce_addresses(args.announce_address) == (
        ("127.0.0.1", "203.0.113.7"),
        ("::1", "::2"),
    )
    monkeypatch.delenv("LIVECORE_ANNOUNCE_ADDRESSES")
    assert commands._announce_addresses(None) == ()
