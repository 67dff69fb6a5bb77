"""TURN through a real coturn: credentials from the node, relay-only browsers, Link headers.

A coturn (``turnserver``, loopback, TURN REST API secret, relaying to
127.0.0.1 only) runs for the module; a node is told its URLs and secret file.
The node's credentials allocate on coturn over UDP and TCP, a tampered or
expired one is refused 401; the WHIP/WHEP answers and an authenticated OPTIONS
carry RFC 9725 ``Link`` headers, a CORS preflight none; the host page
publishes and a viewer page plays, both allowed nothing but relay candidates
(``iceTransportPolicy: "relay"``), through coturn over UDP and over TCP.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import re
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aioice import stun
from aioice import turn as aioice_turn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from playwright.async_api import Browser, Page, Response

from livecore import turn
from loadtests.coturn import Coturn, coturn_available, start_coturn
from tests.browser import phone, wait_js
from tests.helpers import Node, create_room, missing, token
from tests.signalling.routes.pagekit import LIVE, clean, frames_decoded, go_live
from tests.waiting import eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

TTL_S = 600
#: One link of an RFC 9725 §4.6 ``Link`` field: a TURN URL with its credentials.
TURN_LINK = re.compile(
    r'<(?P<url>turns?:127\.0\.0\.1:\d+\?transport=(?:udp|tcp))>; rel="ice-server"; '
    r'username="(?P<username>(?P<expires>\d+):(?P<user>[^"]+))"; '
    r'credential="(?P<credential>[A-Za-z0-9+/]+=*)"; credential-type="password"'
)
STUN_LINK = re.compile(r'<stun:127\.0\.0\.1:\d+>; rel="ice-server"')


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 valid one hour, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    """coturn on 127.0.0.1 (free ports: UDP/TCP, and TLS with a self-signed certificate),
    relaying to 127.0.0.1 only; stopped by PID."""
    if not coturn_available():
        missing("turnserver not installed (make system installs coturn)")
    workdir = tmp_path_factory.mktemp("coturn")
    relay = start_coturn("127.0.0.1", workdir=workdir, tls=self_signed(workdir))
    yield relay
    relay.stop()


@pytest.fixture
def turn_node(tmp_path: Path, redis_url: str, coturn: Coturn) -> Iterator[Node]:
    args = ["--turn-url", coturn.urls["udp"], "--turn-url", coturn.urls["tcp"]]
    args += ["--turn-url", coturn.urls["tls"]]
    args += ["--turn-secret-file", str(coturn.secret_file), "--turn-ttl", str(TTL_S)]
    args += ["--stun-url", f"stun:127.0.0.1:{coturn.port}"]
    node = Node(tmp_path / "node", redis_url=redis_url, extra_args=args).start()
    create_room(node.url)  # host user: host1
    yield node
    node.stop()


def check_links(value: str, user: str, coturn_urls: dict[str, str]) -> list[re.Match[str]]:
    """The Link field holds the STUN URL and the three TURN URLs with one credential of
    ``user`` valid ``TTL_S`` from now; returns the TURN links."""
    parts = value.split(", ")
    assert STUN_LINK.fullmatch(parts[0]), value
    links = [TURN_LINK.fullmatch(p) for p in parts[1:]]
    assert len(links) == 3 and all(links), value
    found = [m for m in links if m]
    assert [m["url"] for m in found] == [coturn_urls[t] for t in ("udp", "tcp", "tls")]
    assert {m["user"] for m in found} == {user}
    assert abs(int(found[0]["expires"]) - (time.time() + TTL_S)) < 30
    return found


async def test_ice_servers_endpoint_and_options_links(turn_node: Node, coturn: Coturn) -> None:
    """GET ice-servers gives the caller's credentials; an OPTIONS with the token gets Link
    headers, a CORS preflight (no token) or a refused token none; Link is exposed."""
    url = turn_node.url
    viewer = token("viewer", "buyer-7")
    async with httpx.AsyncClient(base_url=url) as http:
        got = await http.get("/api/rooms/r1/ice-servers", headers=auth(viewer))
        assert got.status_code == 200 and got.headers["cache-control"] == "no-store"
        body = got.json()
        assert body["ttl"] == TTL_S and abs(body["expires"] - (time.time() + TTL_S)) < 30
        stun_server, relay = body["iceServers"]
        assert stun_server == {"urls": [f"stun:127.0.0.1:{coturn.port}"]}
        assert relay["urls"] == [coturn.urls["udp"], coturn.urls["tcp"], coturn.urls["tls"]]
        assert relay["username"] == f"{body['expires']}:buyer-7"
        assert "credential" in relay

        refused = await http.get("/api/rooms/r1/ice-servers")
        assert refused.status_code == 401
        other_room = await http.get("/api/rooms/r2/ice-servers", headers=auth(viewer))
        assert other_room.status_code == 403, other_room.text

        options = await http.options("/whep/r1", headers=auth(viewer))
        assert options.status_code == 204
        check_links(options.headers["link"], "buyer-7", coturn.urls)
        preflight = await http.options(
            "/whip/r1",
            headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 204 and "link" not in preflight.headers
        assert "Link" in preflight.headers["access-control-expose-headers"]
        for refused_token in ("not-a-token", token("viewer", "buyer-7", room="r2")):
            bad = await http.options("/whip/r1", headers=auth(refused_token))
            assert bad.status_code == 204 and "link" not in bad.headers
        odd_room = await http.options("/whep/no%20such%20room", headers=auth(viewer))
        assert odd_room.status_code == 204 and "link" not in odd_room.headers


async def test_nothing_configured_nothing_handed_out(node: Node) -> None:
    """A node without --turn-url/--stun-url: an empty list for pages, no Link headers."""
    async with httpx.AsyncClient(base_url=node.url) as http:
        got = await http.get("/api/rooms/r1/ice-servers", headers=auth(token("viewer", "v")))
        assert got.status_code == 200 and got.json() == {"iceServers": []}
        options = await http.options("/whep/r1", headers=auth(token("viewer", "v")))
        assert options.status_code == 204 and "link" not in options.headers


def auth(bearer: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {bearer}"}


async def node_relay(node: Node, user: str) -> dict[str, Any]:
    """The TURN entry (RTCIceServer) the node hands a viewer ``user`` of room r1."""
    async with httpx.AsyncClient(base_url=node.url) as http:
        got = await http.get("/api/rooms/r1/ice-servers", headers=auth(token("viewer", user)))
    relay: dict[str, Any] = got.json()["iceServers"][1]
    return relay


async def allocate(coturn: Coturn, username: str, credential: str, transport: str) -> str:
    """A TURN allocation with these credentials (aioice's client) over ``transport`` (udp,
    tcp, or tls trusting coturn's self-signed certificate); the relayed address."""
    context = None
    port = coturn.port
    if transport == "tls":
        context = ssl.create_default_context(cafile=str(coturn.workdir / "cert.pem"))
        port = int(coturn.urls["tls"].rsplit(":", 1)[1].split("?")[0])
    endpoint, _ = await aioice_turn.create_turn_endpoint(
        asyncio.DatagramProtocol, server_addr=("127.0.0.1", port), username=username,
        password=credential, ssl=context, transport="tcp" if context else transport,
    )  # fmt: skip
    try:
        return str(endpoint.get_extra_info("sockname")[0])
    finally:
        endpoint.close()


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_node_credentials_work_wrong_and_expired_ones_fail(
    turn_node: Node, coturn: Coturn, transport: str
) -> None:
    """The node's credentials allocate a relay on coturn; a tampered credential and an
    expired one (same secret) are refused 401 Unauthorized."""
    relay = await node_relay(turn_node, "v1")
    assert await allocate(coturn, relay["username"], relay["credential"], transport) == "127.0.0.1"

    tampered = relay["credential"][:-4] + ("AAA=" if relay["credential"][-4:] != "AAA=" else "BBB=")
    expired = turn.mint(coturn.secret.encode(), "v1", time.time() - 2 * TTL_S, TTL_S)
    for username, credential in ((relay["username"], tampered),
                                 (expired.username, expired.credential)):  # fmt: skip
        with pytest.raises(stun.TransactionFailed) as refused:
            await allocate(coturn, username, credential, transport)
        assert refused.value.response.attributes["ERROR-CODE"][0] == 401


# -- browsers ------------------------------------------------------------------


#: Before the page's scripts: every RTCPeerConnection may use relay candidates only,
#: through the TURN URLs of one transport (the page's own servers, filtered).
RELAY_ONLY = """(() => {
  const transport = %r;
  const Native = window.RTCPeerConnection;
  window.iceConfigs = [];
  function RelayOnly(config, ...rest) {
    const cfg = { ...(config || {}), iceTransportPolicy: "relay" };
    cfg.iceServers = (cfg.iceServers || [])
      .map((s) => ({ ...s, urls: [].concat(s.urls).filter(
        (u) => u.startsWith("turn:") && u.endsWith("?transport=" + transport)) }))
      .filter((s) => s.urls.length);
    window.iceConfigs.push(cfg);
    return new Native(cfg, ...rest);
  }
  RelayOnly.prototype = Native.prototype;
  Object.setPrototypeOf(RelayOnly, Native);
  window.RTCPeerConnection = RelayOnly;
})();"""

#: The selected candidate pair of the page's connection to ``user``'s stream (playing),
#: or of its own stream (publishing, ``user`` null).
SELECTED = """async (user) => {
  const stage = window.livecore.stage;
  const pc = user ? stage.players.get(user).session.pc : stage.publishing.pc;
  const byId = new Map();
  const stats = await pc.getStats();
  stats.forEach((r) => byId.set(r.id, r));
  let pair = null;
  stats.forEach((r) => {
    if (r.type === "transport" && r.selectedCandidatePairId) {
      pair = byId.get(r.selectedCandidatePairId);
    }
  });
  if (!pair) return null;
  const local = byId.get(pair.localCandidateId);
  const remote = byId.get(pair.remoteCandidateId);
  return { type: local.candidateType, relayProtocol: local.relayProtocol || null,
           url: local.url || null, address: local.address, remote: remote.address };
}"""


def media_answers(page: Page, kind: str) -> list[tuple[str, str]]:
    """``(Link field, SDP answer)`` of the page's ``kind`` (whip/whep) 201s, as they arrive."""
    seen: list[tuple[str, str]] = []

    async def on_response(response: Response) -> None:
        if response.request.method == "POST" and f"/{kind}/" in response.url:
            if response.status == 201:
                headers = await response.all_headers()
                seen.append((headers.get("link", ""), await response.text()))

    page.on("response", on_response)
    return seen


def host_candidates_only(answer: str) -> None:
    """The node's own peer gathers host candidates only: no STUN/TURN of its own."""
    candidates = [line for line in answer.splitlines() if line.startswith("a=candidate:")]
    assert candidates and all(" typ host" in c for c in candidates), candidates


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_relay_only_viewer_plays_through_coturn(
    turn_node: Node, coturn: Coturn, browser: Browser, transport: str
) -> None:
    """The host page publishes and a viewer page plays, each peer connection allowed
    nothing but coturn relay candidates of one transport (a phone whose network drops
    UDP: TCP); the viewer decodes the stream; both 201s carry Link headers."""
    host, host_watch = await phone(browser)
    whip = media_answers(host, "whip")
    await host.add_init_script(RELAY_ONLY % transport)
    await host.goto(f"{turn_node.url}/host/r1#token={token('host', 'host1')}")
    await go_live(host)
    await wait_js(host, "window.livecore.stage.publishing.pc.connectionState === 'connected'")
    await eventually(lambda: whip, within=5, what="the WHIP 201")
    check_links(whip[0][0], "host1", coturn.urls)
    host_candidates_only(whip[0][1])

    viewer, viewer_watch = await phone(browser)
    whep = media_answers(viewer, "whep")
    await viewer.add_init_script(RELAY_ONLY % transport)
    started = time.monotonic()
    await viewer.goto(f"{turn_node.url}/r/r1")
    await wait_js(viewer, LIVE)
    await frames_decoded(viewer, "host1", 1)
    first_frame = time.monotonic() - started
    await frames_decoded(viewer, "host1", 30)

    for page, user in ((viewer, "host1"), (host, None)):
        pair: dict[str, Any] = await page.evaluate(SELECTED, user)
        assert pair["type"] == "relay", pair
        assert pair["relayProtocol"] == transport, pair
        assert pair["url"] == coturn.urls[transport], pair
        assert pair["address"] == "127.0.0.1" and pair["remote"] == "127.0.0.1", pair
    configs = await viewer.evaluate("window.iceConfigs")
    assert configs and all(c["iceTransportPolicy"] == "relay" for c in configs)
    guest = configs[0]["iceServers"][0]["username"].split(":", 1)[1]
    assert guest.startswith("g-"), "the guest viewer's credentials carry its own user id"
    await eventually(lambda: whep, within=5, what="the WHEP 201")
    check_links(whep[0][0], guest, coturn.urls)
    host_candidates_only(whep[0][1])
    print(f"\nfirst frame via TURN {transport.upper()}: {first_frame * 1000:.0f} ms after goto")
    assert clean(host_watch) == [] and clean(viewer_watch) == []
    await host.context.close()
    await viewer.context.close()


#: Gather candidates with ``iceServers`` and relay only: the candidate types found and the
#: ICE candidate errors (``icecandidateerror``: the TURN server's error code).
GATHER = """async (iceServers) => {
  const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: "relay" });
  const types = [], errors = [];
  pc.addEventListener("icecandidate", (e) => { if (e.candidate) types.push(e.candidate.type); });
  pc.addEventListener("icecandidateerror", (e) => errors.push(e.errorCode));
  pc.createDataChannel("probe");
  const done = new Promise((resolve) => pc.addEventListener(
    "icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve()));
  await pc.setLocalDescription(await pc.createOffer());
  await done;
  pc.close();
  return { types, errors };
}"""


async def test_browser_gathers_relay_with_node_credentials_only(
    turn_node: Node, coturn: Coturn, browser: Browser
) -> None:
    """Chromium gets a relay candidate from coturn (UDP and TCP) with the node's credentials;
    with a wrong or an expired one it gets none and coturn answers 401. Over TLS it
    refuses coturn's self-signed certificate (error 701): turns: needs a real one."""
    page, _ = await phone(browser)
    await page.goto(f"{turn_node.url}/healthz")
    node_entry = await node_relay(turn_node, "v2")
    relay = {**node_entry, "urls": [coturn.urls["udp"], coturn.urls["tcp"]]}
    good = await page.evaluate(GATHER, [relay])
    assert good["types"] == ["relay", "relay"], good  # one per transport: UDP and TCP
    tls = await page.evaluate(GATHER, [{**node_entry, "urls": [coturn.urls["tls"]]}])
    assert tls == {"types": [], "errors": [701]}, tls

    expired = turn.mint(coturn.secret.encode(), "v2", time.time() - 2 * TTL_S, TTL_S)
    for username, credential in ((relay["username"], "d3JvbmcgY3JlZGVudGlhbA=="),
                                 (expired.username, expired.credential)):  # fmt: skip
        bad = await page.evaluate(GATHER, [{**relay, "username": username,
                                            "credential": credential}])  # fmt: skip
        assert bad["types"] == [] and 401 in bad["errors"], bad
    await page.context.close()
