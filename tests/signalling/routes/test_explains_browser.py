"""讲解 through a real node: a WHIP publisher's H.264 is recorded, the host pins a product
and explains it, the segment becomes that product's explain clip; the REST list ranks
it by clicks and the viewer page (Chromium, phone viewport) shows it on the product card.

Also the refusals: 讲解 before going live (``not_recording``), on a product that is not
the pinned card (``not_pinned``), by a viewer (``token_wrong_role``); a click on a
clip that is not an explanation (``clip_not_found``). A refusal changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiortc import RTCSessionDescription

from clients.python.room import ClientError, RoomClient
from tests.browser import chromium_path, wait_js
from tests.helpers import Node, create_room, token
from tests.media.sources import EncodedClip, encode_opus_clip, encode_video_clip
from tests.media.sources import publisher_offer as make_offer

pytestmark = pytest.mark.timeout(180)
PRODUCT = "赣南脐橙 5斤装"


async def until(check: Callable[[], Awaitable[Any]], within: float) -> Any:
    deadline = time.monotonic() + within
    while not (value := await check()):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)
    return value


@pytest.fixture(scope="module")
def clips() -> list[EncodedClip]:
    return [encode_video_clip("video/H264", frames=150, gop=30), encode_opus_clip(5.0)]


@pytest.fixture
def node(tmp_path: Path, redis_url: str) -> AsyncIterator[Node]:
    n = Node(tmp_path / "node", redis_url=redis_url, extra_args=["--record-segment", "1"])
    n.start()
    create_room(n.url)
    yield n  # type: ignore[misc]
    n.stop()


async def refused(client: RoomClient, kind: str, **fields: Any) -> str:
    with pytest.raises(ClientError) as err:
        await client.request(kind, **fields)
    return err.value.code


async def test_explanation_becomes_the_products_clip(node: Node, clips: list[EncodedClip]) -> None:
    """Pin → 讲解 → 结束讲解: one explain clip of the product, listed, clicked, on the card."""
    from playwright.async_api import async_playwright

    base = node.url
    host = {"Authorization": f"Bearer {token('host', 'host1')}"}
    pc, offer = await make_offer(clips)
    async with (
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        RoomClient(base, "r1", token("host", "host1")) as console,
        RoomClient(base, "r1", token("viewer", "v1")) as audience,
    ):
        card = {"kind": "product", "name": PRODUCT, "price_cents": 2990}
        await console.request("card", **card)
        assert await refused(console, "explain", product=PRODUCT) == "not_recording"
        answer = await http.post("/whip/r1", content=offer,
                                 headers={"Content-Type": "application/sdp", **host})  # fmt: skip
        assert answer.status_code == 201, answer.text
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.text, type="answer"))

        async def recorded() -> bool:
            r = await http.get("/hls/r1/index.m3u8")
            return r.status_code == 200 and r.text.count("#EXTINF") >= 2

        await until(recorded, 30)
        assert await refused(console, "explain", product="别的商品") == "not_pinned"
        assert await refused(audience, "explain", product=PRODUCT) == "token_wrong_role"
        began = (await console.request("explain", product=PRODUCT))["at"]
        await asyncio.sleep(4)
        ended = (await console.request("explain"))["at"]
        assert ended - began >= 3.5
        while (event := await audience.next_event(wait=30))["t"] != "clip_ready":
            pass
        clip = event["clip"]
        assert clip["kind"] == "explain" and clip["product"] == PRODUCT
        assert clip["title"] == f"{PRODUCT} · 主播讲解"
        assert abs(clip["duration"] - (ended - began)) <= 1.2  # GOP 1 s: cut on keyframes

        listed = await http.get("/api/rooms/r1/explains", params={"product": PRODUCT})
        assert listed.status_code == 200
        assert [(c["id"], c["clicks"]) for c in listed.json()["clips"]] == [(clip["id"], 0)]
        clicked = await http.post(f"/api/clips/{clip['id']}/click")
        assert clicked.status_code == 200 and clicked.json()["clicks"] == 1
        bad = await http.post("/api/clips/r1~0123456789ab/click")
        assert bad.status_code == 404 and bad.json()["code"] == "clip_not_found"
        empty = await http.get("/api/rooms/r1/explains", params={"product": ""})
        assert empty.status_code == 422 and empty.json()["code"] == "invalid_field"

        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium_path(), args=[
                "--autoplay-policy=no-user-gesture-required",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"])  # fmt: skip
            try:
                page = await browser.new_page(viewport={"width": 390, "height": 844},
                                              is_mobile=True, has_touch=True)  # fmt: skip
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                await page.goto(f"{base}/r/r1#token={token('viewer', 'v2')}")
                thumb = page.locator("#dock .explains .explain-thumb")
                await thumb.wait_for(timeout=20_000)
                assert await thumb.get_attribute("data-clip") == clip["id"]
                assert await page.inner_text("#dock .explains-label") == "主播讲解"
                box = await thumb.bounding_box()
                assert box is not None and box["height"] >= 44  # one thumb can tap it
                await thumb.tap()
                await page.wait_for_selector(".explain-player video")
                await wait_js(page, "document.querySelector('.explain-player video').currentTime"
                              " > 0.3", 20)  # fmt: skip

                async def clicks(n: int) -> bool:
                    r = await http.get("/api/rooms/r1/explains", params={"product": PRODUCT})
                    return bool(r.json()["clips"][0]["clicks"] == n)

                await until(lambda: clicks(2), 10)  # the tap on the product card counted
                # Its share page: the product, and the way into the room counts a click.
                await page.goto(f"{base}{clip['share']}?ref=OFF1")
                await page.wait_for_selector("#enter:not([hidden])")
                assert await page.inner_text("#clip-title") == clip["title"]
                await page.tap("#enter")
                await page.wait_for_url(f"{base}/r/r1?ref=OFF1")
                await until(lambda: clicks(3), 10)
                assert errors == []
            finally:
                await browser.close()
    await pc.close()
