"""The flash sale and coupons on phones (390×844, headless Chromium): the host's sheets,
the viewer's coupon chip and 抢 button, in Chinese and in English."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from clients.python.room import RoomClient
from tests.browser import chromium_path, phone, shot, wait_js
from tests.helpers import Node, create_room, token
from tests.signalling.routes.pagekit import clean, go_live, no_horizontal_scroll, text_of

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]


@pytest.fixture
def node(tmp_path: Path, redis_url: str) -> Iterator[Node]:
    """A node with room r1 (host host1); fails first when there is no Chromium under CI."""
    chromium_path()
    started = Node(tmp_path / "node", redis_url=redis_url).start()
    create_room(started.url)
    yield started
    started.stop()


async def test_host_starts_a_flash_sale_and_a_viewer_grabs_it(node: Node, browser: Browser) -> None:
    """The host creates a coupon and starts a one-unit flash sale from the console's
    sheets; a viewer on a phone claims the coupon, taps 抢 and gets the unit; the card
    says sold out and the host's figures say 1/1 sold. No console errors."""
    host_page, host_watch = await phone(browser)
    await host_page.goto(f"{node.url}/host/r1#token={token('host', 'host1')}")
    await go_live(host_page)
    async with RoomClient(node.url, "r1", token("host", "host1")) as host:
        await host.request("card", kind="product", name="水蜜桃 5斤", price_cents=3990)
    await host_page.click("#quick [data-open=coupon-card]")
    await host_page.fill("#cp-title", "立减5元")
    await host_page.fill("#cp-off", "5")
    await host_page.fill("#cp-quota", "10")
    await host_page.click("#cp-create")
    await wait_js(host_page, "document.querySelector('#coupon-list li') !== null")
    await host_page.keyboard.press("Escape")

    viewer, viewer_watch = await phone(browser)
    await viewer.goto(f"{node.url}/r/r1#token={token('viewer', 'v1')}")
    chip = "document.querySelector('#coupons .coupon-chip')"
    await wait_js(viewer, f"{chip} && !{chip}.disabled")
    await viewer.click("#coupons .coupon-chip")
    await wait_js(viewer, "document.querySelector('#coupons .coupon-chip.claimed') !== null")

    await host_page.click("#quick [data-open=flash-card]")
    await wait_js(host_page, "!document.querySelector('#fl-start').disabled")
    await host_page.fill("#fl-price", "9.9")
    await host_page.fill("#fl-stock", "1")
    await host_page.fill("#fl-countdown", "0")
    await host_page.click("#fl-start")
    await wait_js(
        viewer,
        "document.querySelector('#flash-grab') && !document.querySelector('#flash-grab').disabled",
    )
    assert "限时秒杀" in await text_of(viewer, "#flash")
    await viewer.click("#flash-grab")
    await wait_js(viewer, "document.querySelector('#flash').dataset.phase === 'sold_out'")
    card = await text_of(viewer, "#flash")
    assert "已抢到1件" in card and "已抢光" in card, card
    await wait_js(host_page, "document.querySelector('#flash-figures').textContent.includes('1/1')")
    await no_horizontal_scroll(viewer)
    await shot(viewer, "viewer-flash-sold-out")
    await viewer.click("#lang")
    await wait_js(viewer, "document.querySelector('#flash').textContent.includes('Sold out')")
    assert clean(viewer_watch) == []
    assert clean(host_watch) == []
