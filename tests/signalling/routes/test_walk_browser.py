"""The whole loop walked on phone-sized Chromium: a host, three neighbours, an officer.

Each test is one stretch of the walk that used to break (issue 27's numbered
items): a host page that reloads mid-live, 下播 and the replay, the trace sheet
and registering a batch from the console, a marked clip from the console to a
neighbour's share page, and the demo's shop confirming commission. Real node,
real Valkey, headless Chromium with a fake camera (H.264), as the other page
tests. Screenshots of the new states land in screenshots/.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest
import websockets
from playwright.async_api import Browser, Page

from clients.python.room import RoomClient
from tests.browser import chromium_path, phone, shot, wait_js
from tests.helpers import Node, create_room, token
from tests.signalling.routes.pagekit import (
    IN_XIXI,
    LIVE,
    XIXI,
    clean,
    frames_decoded,
    go_live,
    no_horizontal_scroll,
    text_of,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(240)]

HOST_LINK = "/host/r1#token={}"
OFFICER_LINK = "/o/r1#token={}"
#: Where a console card sits: its box and whether it is fixed (a bottom sheet).
SHEET_BOX = """(sel) => {
  const el = document.querySelector(sel);
  const box = el.getBoundingClientRect();
  return { top: Math.round(box.top), bottom: Math.round(box.bottom),
           fixed: getComputedStyle(el).position === 'fixed' };
}"""
#: How long each part of the live runs before the reload and before 下播 (a pace:
#: the replay must hold both parts).
PART_S = 7.0


def start_node(tmp_path: Path, redis_url: str, *extra: str) -> Node:
    chromium_path()
    args = ["--record-segment", "1", "--end-grace", "60", *extra]
    node = Node(tmp_path / "node", redis_url=redis_url, extra_args=args).start()
    create_room(node.url)  # host user: host1
    return node


@pytest.fixture
def node(tmp_path: Path, redis_url: str) -> Iterator[Node]:
    started = start_node(tmp_path, redis_url)
    yield started
    started.stop()


@pytest.fixture
def demo_node(tmp_path: Path, redis_url: str) -> Iterator[Node]:
    started = start_node(tmp_path, redis_url, "--demo")
    yield started
    started.stop()


async def host_page(browser: Browser, node: Node) -> tuple[Page, Any]:
    page, watch = await phone(browser)
    await page.goto(node.url + HOST_LINK.format(token("host", "host1")))
    await wait_js(page, LIVE)
    return page, watch


async def never_within(page: Page, expression: str, seconds: float) -> None:
    """``expression`` stays false for ``seconds`` (looked at every 0.1 s)."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        assert not await page.evaluate(expression), f"{expression} became true"
        await asyncio.sleep(0.1)


async def test_a_host_page_reload_keeps_the_live_and_下播_ends_it_with_the_whole_replay(
    node: Node, browser: Browser
) -> None:
    """Items 1, 4 and 5, and an ended room. The dashboard opened mid-live starts with
    the live so far. The host's page is reloaded mid-live: the neighbour's page says
    主播暂时离开，马上回来 (never 直播已结束); the reopened console offers 继续直播,
    and the live goes on. 下播 asks, then ends the room at once (not after the 60 s
    grace); the replay button comes within seconds, holds both parts of the live, and
    plays in the clear (no overlay on it; the dock no longer says 主播还没开团). The
    ended room's console, open or opened again, offers no 开播 but links the replay."""
    host, host_watch = await host_page(browser, node)
    await go_live(host)
    viewer, viewer_watch = await phone(browser, geolocation=IN_XIXI)
    await viewer.goto(f"{node.url}/r/r1")
    await wait_js(viewer, LIVE)
    await frames_decoded(viewer, "host1", 10)
    await asyncio.sleep(PART_S)  # a pace: the first part of the live

    # The dashboard opened mid-live draws the live so far, not an empty chart.
    dashboard, dashboard_watch = await phone(browser)
    opened_at = await dashboard.evaluate("Date.now() / 1000")
    await dashboard.goto(f"{node.url}/d/r1#token={token('host', 'host1')}")
    await wait_js(dashboard, "window.livecore.charts.viewers.points >= 1")
    first = await dashboard.evaluate("window.livecore.charts.viewers.plot.data[0][0]")
    assert first < opened_at - 3, "the charts start with the history of the live"
    assert await dashboard.evaluate("Math.max(...window.livecore.charts.viewers.plot.data[1])") >= 1
    await shot(dashboard, "walk-dashboard-history")
    await dashboard.close()
    assert clean(dashboard_watch) == []

    # The host page goes away (the phone's browser is closed), then the host link is
    # opened again.
    await host.goto("about:blank")
    await wait_js(viewer, "document.querySelector('#stage-note-text').textContent"
                          " === '主播暂时离开，马上回来'")  # fmt: skip
    assert await viewer.is_visible("#stage-note")
    assert await text_of(viewer, "#room-status") == "直播中"
    await never_within(viewer, "!document.querySelector('#ended').hidden", 3.0)
    await shot(viewer, "walk-viewer-host-away")

    await host.goto(node.url + HOST_LINK.format(token("host", "host1")))
    await wait_js(host, LIVE)
    await wait_js(host, "document.querySelector('#golive').textContent === '继续直播'")
    assert await host.is_visible("#away-note")
    assert await text_of(host, "#room-status") == "直播中"
    await shot(host, "walk-host-resume")
    await host.click("#golive")
    await wait_js(host, "!!window.livecore.stage.publishing", 20)
    await wait_js(host, "document.querySelector('#golive').textContent === '下播'")
    assert not await host.is_visible("#away-note")
    await frames_decoded(viewer, "host1", 10)
    await wait_js(viewer, "document.querySelector('#stage-note').hidden")
    await asyncio.sleep(PART_S)  # a pace: the second part of the live

    # 下播 asks first; "继续播" keeps the live.
    await host.click("#golive")
    await wait_js(host, "document.querySelector('#end-dialog').open")
    await shot(host, "walk-host-end-confirm")
    await host.click("#end-cancel")
    await wait_js(host, "!document.querySelector('#end-dialog').open")
    assert await host.evaluate("!!window.livecore.stage.publishing")
    await host.click("#golive")
    await wait_js(host, "document.querySelector('#end-dialog').open")
    ended_at = time.monotonic()
    await host.click("#end-confirm")
    await wait_js(viewer, "!document.querySelector('#ended').hidden", 10)
    assert time.monotonic() - ended_at < 10, "下播 ends now, not after the grace"
    assert await text_of(viewer, "#room-status") == "已结束"
    await wait_js(host, "document.querySelector('#room-status').dataset.status === 'ended'")
    async with httpx.AsyncClient(base_url=node.url) as http:
        assert (await http.get("/api/rooms/r1")).json()["status"] == "ended"

    await wait_js(viewer, "!document.querySelector('#replay').hidden", 30)
    assert time.monotonic() - ended_at < 30, "the replay button within seconds of 下播"
    assert "主播还没开团" not in await text_of(viewer, "#dock")
    # The console of the ended room offers no 开播: it says the live has ended and
    # links to the replay, and so does the console opened again.
    await wait_js(host, "document.querySelector('#golive').hidden")
    assert await host.is_visible("#ended-note")
    assert "已经结束" in await text_of(host, "#ended-note")
    await wait_js(host, "!document.querySelector('#ended-replay').hidden", 30)
    replay_link = await host.get_attribute("#ended-replay", "href") or ""
    assert replay_link.startswith("/replay/r1.mp4?v="), replay_link  # versioned: immutable
    await host.reload()  # the console opened again (the same link: a reload)
    await wait_js(host, LIVE)
    await wait_js(host, "document.querySelector('#room-status').dataset.status === 'ended'")
    await wait_js(host, "!document.querySelector('#ended-replay').hidden", 10)
    assert not await host.is_visible("#golive") and await host.is_visible("#ended-note")
    assert not await host.is_visible("#mark"), "no live controls on an ended room"
    await shot(host, "walk-host-ended")
    await viewer.click("#replay")
    await wait_js(viewer, "document.querySelector('#player').currentTime > 1", 20)
    length = await viewer.evaluate("document.querySelector('#player').duration")
    assert length >= 2 * PART_S - 3, f"the replay holds both parts of the live ({length:.1f} s)"
    assert await viewer.evaluate("document.querySelector('#ended').hidden")
    assert await viewer.evaluate("document.querySelector('#stage-note').hidden")
    hit = await viewer.evaluate("document.elementFromPoint(195, 300)?.id")
    assert hit == "player", f"a tap on the replay reaches the video, not {hit!r}"
    await shot(viewer, "walk-viewer-replay")
    assert clean(host_watch) == [] and clean(viewer_watch) == []


async def test_the_console_registers_a_batch_and_the_trace_sheet_verifies_it(
    node: Node, browser: Browser
) -> None:
    """Items 6 and 2. The quick chip opens the trace card as a bottom sheet on the
    phone. Pinning an unknown batch tells the host to register it (not the
    shopper's sentence) and opens the form with its id; registering pins it. The
    neighbour's 一键溯源 sheet shows 已核验, the life journey and the link to /t/{batch}."""
    host, host_watch = await host_page(browser, node)
    viewer, viewer_watch = await phone(browser, geolocation=IN_XIXI)
    await viewer.goto(f"{node.url}/r/r1")
    await wait_js(viewer, LIVE)

    await host.click("#quick [data-open=trace-card]")  # one tap from the top of the console
    await wait_js(host, "document.querySelector('#trace-card').open")
    assert await host.evaluate("document.activeElement.id") == "bp-batch"
    # On the phone the card is a bottom sheet over the stage, not a scroll away.
    sheet = await host.evaluate(SHEET_BOX, "#trace-card")
    assert sheet["bottom"] == 844 and sheet["top"] > 0 and sheet["fixed"], sheet
    assert await host.is_visible("#host-sheet-backdrop")
    await host.fill("#bp-batch", "peach-2026-07")
    await host.click("#batch-form button[type=submit]")
    await wait_js(host, "document.querySelector('#batch-new').open")
    assert await host.input_value("#bn-id") == "peach-2026-07"
    toast = await text_of(host, "#toast")
    assert "还没登记" in toast and "包装上的二维码" not in toast
    await host.fill("#bn-product", "阳山水蜜桃")
    await host.fill("#bn-brand", "阳山桃农合作社")
    await host.fill("#bn-origin", "无锡阳山")
    await shot(host, "walk-host-register-batch")
    await host.click("#bn-save")
    await wait_js(host, "(document.querySelector('#toast')?.textContent || '').includes('已登记')")
    await host.click("#host-sheet-backdrop", position={"x": 195, "y": 40})  # a tap above it
    await wait_js(host, "document.querySelector('#host-sheet-backdrop').hidden")
    assert not (await host.evaluate(SHEET_BOX, "#trace-card"))["fixed"]

    await wait_js(viewer, "!!document.querySelector('#dock .trace-open')")
    await viewer.click("#dock .trace-open")
    await wait_js(viewer, "!!document.querySelector('#sheet .journey li[data-type=registered]')")
    sheet = await text_of(viewer, "#sheet")
    assert "已核验" in sheet and "阳山水蜜桃" in sheet and "生命旅程" in sheet
    link = await viewer.get_attribute("#sheet a.trace-page", "href")
    assert link == "/t/peach-2026-07"
    await no_horizontal_scroll(viewer)
    await shot(viewer, "walk-viewer-trace")
    async with httpx.AsyncClient(base_url=node.url) as http:
        page = await http.get(link)
        assert page.status_code == 200 and "peach-2026-07" in page.text
        # The demo's shop is not there on a node started without --demo.
        refused = await http.post(
            "/api/rooms/r1/demo/receipts", json={"gb": "g1", "group": XIXI},
            headers={"Authorization": f"Bearer {token('host', 'host1')}"},
        )  # fmt: skip
        assert refused.status_code == 404 and refused.json()["code"] == "not_found"
    assert clean(host_watch, "/demo/receipts") == [] and clean(viewer_watch) == []


async def test_a_marked_clip_reaches_the_console_and_a_neighbours_share_page(
    node: Node, browser: Browser
) -> None:
    """Items 7 and 3. After 标记高光 the console lists the clip when it is ready (a toast
    says so), with its share page and a delete. The share page on a neighbour's phone
    plays by itself (muted), prints the group price (never ¥NaN), and has the English
    switch; the host deletes the clip and the list empties."""
    host, host_watch = await host_page(browser, node)
    async with RoomClient(node.url, "r1", token("host", "host1")) as client:
        await client.request(
            "groupbuy_open", product="阳山水蜜桃", price_cents=3990, target=5, duration_s=600
        )
    await go_live(host)
    assert "还没有片段" in await text_of(host, "#host-clips")
    await wait_js(host, "!!window.livecore.stage.publishing")
    await asyncio.sleep(4)  # a pace: some recorded seconds before the mark
    await host.click("#mark")
    await wait_js(host, "!!document.querySelector('#host-clips li[data-clip]')", 60)
    await shot(host, "walk-host-clips")
    share = await host.get_attribute("#host-clips li[data-clip] a", "href")
    assert share and share.startswith("/c/r1~")

    neighbour, neighbour_watch = await phone(browser, geolocation=IN_XIXI)
    await neighbour.goto(node.url + share)
    await wait_js(neighbour, "document.querySelector('#clip').currentTime > 0.3", 20)
    assert await neighbour.evaluate("!document.querySelector('#clip').paused")
    await wait_js(neighbour, "!document.querySelector('#group').hidden")
    body = await text_of(neighbour, "body")
    assert "NaN" not in body and "团购价 ¥39.90" in body
    await shot(neighbour, "walk-clip-share")
    await neighbour.click("#lang")
    await wait_js(neighbour, "document.documentElement.lang === 'en'")
    assert await text_of(neighbour, "#enter") == "Join the live and buy together"
    assert "group price ¥39.90" in await text_of(neighbour, "#group-product")
    await no_horizontal_scroll(neighbour)

    await host.click("#host-clips li[data-clip] .clip-delete")
    await wait_js(host, "!document.querySelector('#host-clips li[data-clip]')")
    async with httpx.AsyncClient(base_url=node.url) as http:
        assert (await http.get("/api/rooms/r1/clips")).json()["clips"] == []
    assert clean(host_watch) == [] and clean(neighbour_watch) == []


async def join_with_ref(node: Node, user: str, ref: str, gb: str) -> None:
    """A neighbour who came through the officer's link joins (hello carries ``ref``)."""
    url = node.url.replace("http", "ws") + "/ws/r1"
    async with websockets.connect(url, subprotocols=[websockets.Subprotocol("livecore.v1")]) as ws:
        tok = token("viewer", user, community=XIXI)
        await ws.send(msgpack.packb({"t": "hello", "token": tok, "ref": ref}))
        await ws.recv()
        await ws.send(msgpack.packb({"t": "groupbuy_join", "gb": gb, "qty": 1, "id": 1}))
        while True:
            answer: dict[str, Any] = msgpack.unpackb(await ws.recv(), raw=False)
            if answer.get("id") == 1:
                assert answer.get("t") != "error", answer
                return


def yuan(cents: int) -> str:
    return f"¥{cents // 100}.{cents % 100:02d}"


def split_text(pending_cents: int, confirmed_cents: int) -> tuple[str, str]:
    """The officer page's line before and after the receipt (待确认 → 已到账)."""
    before = f"待确认收货 {yuan(pending_cents)} · 已到账 {yuan(confirmed_cents)}"
    after = f"待确认收货 {yuan(0)} · 已到账 {yuan(pending_cents + confirmed_cents)}"
    return before, after


async def test_the_demo_shop_confirms_the_officers_commission(
    demo_node: Node, browser: Browser
) -> None:
    """Item 8. On a --demo node, the officer signs up on the officer page on their phone
    and shares its link; a group formed by the officer's referrals shows a labelled
    demo receipt button on the console; one tap confirms the orders and the officer's
    commission turns from pending to confirmed, on the officer's page without a
    reload, with no webhook flags. On the way, the neighbour's first join asks for a
    nickname, which the console then shows."""
    host, host_watch = await host_page(browser, demo_node)
    async with (
        RoomClient(demo_node.url, "r1", token("host", "host1")) as client,
        RoomClient(demo_node.url, "r1", token("viewer", "off1", community=XIXI)) as officer,
    ):
        opened = await client.request(
            "groupbuy_open", product="土鸡蛋", price_cents=1800, target=3, duration_s=600
        )
        await officer.request("groupbuy_join", gb=opened["gb"], qty=1)  # buyers may apply
        # The officer, on their phone, signs up on the officer page and takes its link.
        officer_page, officer_watch = await phone(browser)
        officer_link = OFFICER_LINK.format(token("viewer", "off1", community=XIXI))
        await officer_page.goto(demo_node.url + officer_link)
        await wait_js(officer_page, LIVE)
        await officer_page.click("#officer-apply")
        await wait_js(officer_page, "!!document.querySelector('#officer-link')")
        code = await text_of(officer_page, "#officer-code")
        link = await officer_page.input_value("#officer-link")
        assert link == f"{demo_node.url}/r/r1?ref={code}"
        await no_horizontal_scroll(officer_page)
        neighbour, neighbour_watch = await phone(browser, geolocation=IN_XIXI)
        await neighbour.goto(link)
        await wait_js(neighbour, LIVE)
        await neighbour.click("#locate")
        await wait_js(neighbour, "!!document.querySelector('#dock button.join:not(.locate)')")
        await neighbour.click("#dock button.join")
        # The first join asks a guest for a nickname once (a bar, not a sheet in the way).
        await wait_js(neighbour, "!document.querySelector('#nick-ask').hidden")
        await neighbour.click("#nick-ask-go")
        await neighbour.fill("#nick-input", "桃子妈妈")
        await neighbour.click("#nick-save")
        await wait_js(neighbour, "document.querySelector('#sheet').hidden")
        await neighbour.fill("#comment-text", "刚参团了")
        await neighbour.click("#send")
        await wait_js(
            host, "[...document.querySelectorAll('#comments .who')]"
            ".some((w) => w.textContent === '桃子妈妈')",
        )  # fmt: skip
        assert await neighbour.is_hidden("#nick-ask"), "asked once"
        await join_with_ref(demo_node, "n3", code, opened["gb"])
        await wait_js(neighbour, "document.querySelector('#dock').dataset.status === 'formed'")
        before = await officer.request("officer_me")
        assert before["pending_cents"] > 0 and before["confirmed_cents"] == 0
        pending, confirmed = split_text(before["pending_cents"], 0)
        await wait_js(
            officer_page,
            f"document.querySelector('#officer-split').textContent === {pending!r}",
            20,
        )
        await shot(officer_page, "walk-officer-pending")

        assert await host.is_visible("#demo-shop")
        assert "演示" in await text_of(host, "#demo-shop")
        button = f"[data-gb='{opened['gb']}'] li[data-group='{XIXI}'] .demo-receive"
        await wait_js(host, f"!!document.querySelector({button!r})")
        await shot(host, "walk-host-demo-shop")
        await host.click(button)
        await wait_js(
            host, "(document.querySelector('#toast')?.textContent || '').includes('已确认收货')"
        )
        after = await officer.request("officer_me")
        assert after["confirmed_cents"] == before["pending_cents"] and after["pending_cents"] == 0
        # The officer's page turns 待确认 into 已到账 by itself (no reload).
        await wait_js(
            officer_page,
            f"document.querySelector('#officer-split').textContent === {confirmed!r}",
            20,
        )
        await shot(officer_page, "walk-officer-confirmed")
    assert clean(host_watch) == [] and clean(neighbour_watch) == [] and clean(officer_watch) == []
