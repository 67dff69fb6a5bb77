"""The reservation page, the pickup counter's page and the lucky draw (console sheet and
viewer card) on phone-sized Chromium, real node, real Valkey."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from clients.python.room import RoomClient
from tests.browser import launch, phone, wait_js
from tests.helpers import Node, create_room, token
from tests.signalling.hub.conftest import FAST
from tests.signalling.routes.pagekit import LIVE, clean, go_live, no_horizontal_scroll

pytestmark = [pytest.mark.timeout(180)]


def code_of(node: Node, user: str, gb: str) -> str:
    answer = httpx.post(f"{node.url}/api/rooms/r1/pickup/code", json={"gb": gb},
                        headers={"Authorization": f"Bearer {token('viewer', user)}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return str(answer.json()["shown"])


def reservations(node: Node) -> int:
    answer = httpx.get(f"{node.url}/api/rooms/r1/reservations",
                       headers={"Authorization": f"Bearer {token('host', 'host1')}"})  # fmt: skip
    return int(answer.json()["count"])


async def test_a_neighbour_reserves_and_the_counter_redeems_a_code(
    tmp_path: Path, redis_url: str
) -> None:
    """Reserve by one tap as a guest (QR drawn, count shown, host sees it); the buyer
    opens 提货码 on the viewer page; the counter types it: redeemed, then refused as
    used, in Chinese, no token in the address."""
    node = Node(tmp_path / "node", redis_url=redis_url, extra_args=FAST).start()
    clients: list[RoomClient] = []
    try:
        create_room(node.url)
        for role, user in (("host", "host1"), ("viewer", "m1"), ("viewer", "m2")):
            client = RoomClient(node.url, "r1", token(role, user))
            await client.connect()
            clients.append(client)
        host, m1, m2 = clients
        gb = (await host.request("groupbuy_open", product="水蜜桃", price_cents=1000, target=2,
                                 duration_s=3600, scope="room"))["gb"]  # fmt: skip
        await m1.request("groupbuy_join", gb=gb, qty=2)
        await m2.request("groupbuy_join", gb=gb, qty=1)
        shown = code_of(node, "m1", gb)
        async with launch() as browser:
            page, watch = await phone(browser)
            await page.goto(f"{node.url}/y/r1")
            await wait_js(page, "document.body.dataset.ready === '1'")
            assert "水蜜桃" in await page.inner_text("#products")
            assert await page.evaluate("document.getElementById('qr').width") > 0
            await page.click("#reserve")
            await wait_js(page, "!document.getElementById('done').hidden")
            assert "1人已预约" in await page.inner_text("#count")
            assert reservations(node) == 1
            await page.click("#lang")
            assert "1 reserved" in await page.inner_text("#count")
            await no_horizontal_scroll(page)
            assert watch.errors() == []

            buyer, bwatch = await phone(browser)
            await buyer.goto(f"{node.url}/r/r1#token={token('viewer', 'm1')}")
            await wait_js(buyer, LIVE)
            await wait_js(buyer, "!!document.querySelector('#dock .pickup-open')")
            await buyer.click("#dock .pickup-open")
            await wait_js(buyer, "!!document.querySelector('#pickup-digits')")
            assert await buyer.inner_text("#pickup-digits") == shown
            assert "到自提点出示此码即可提货" in await buyer.inner_text("#sheet")
            await no_horizontal_scroll(buyer)

            counter, cwatch = await phone(browser)
            await counter.goto(f"{node.url}/p/r1#token={token('pickup', 'counter1')}")
            await wait_js(counter, "document.body.dataset.ready === '1'")
            assert "token" not in counter.url
            await counter.fill("#code", shown)
            await counter.click("#redeem")
            await wait_js(counter, "document.body.dataset.ready === 'redeemed'")
            assert "核销成功" in await counter.inner_text("#result")
            await counter.fill("#code", shown)
            await counter.click("#redeem")
            await wait_js(counter, "document.body.dataset.ready === 'refused'")
            assert "已经核销过了" in await counter.inner_text("#result")
            await no_horizontal_scroll(counter)
            cwatch.allowed += ["HTTP 409", "status of 409"]  # the refusal the test asked for
            assert cwatch.errors() == [] and clean(bwatch) == []
    finally:
        for client in clients:
            await client.close()
        node.stop()


async def test_a_lucky_bag_from_the_console_to_the_winners_page(
    tmp_path: Path, redis_url: str
) -> None:
    """The host sends a 福袋 from the console's sheet (comment task); a neighbour taps
    参与 on the viewer card (the phrase becomes their comment); the host taps 开奖; the
    neighbour's page says they won; the console lists them; both phone-sized."""
    node = Node(tmp_path / "node", redis_url=redis_url, extra_args=FAST).start()
    try:
        create_room(node.url)
        async with launch() as browser:
            host, host_watch = await phone(browser)
            await host.goto(f"{node.url}/host/r1#token={token('host', 'host1')}")
            await wait_js(host, LIVE)
            await host.click("#quick [data-open='draw-card']")
            await host.fill("#draw-prize", "土鸡蛋一盒")
            await host.fill("#draw-winners-n", "1")
            await host.select_option("#draw-task", "comment")
            await host.fill("#draw-phrase", "我要福袋")
            await host.click("#draw-open")
            await wait_js(host, "!!document.querySelector('#draw-roll')")

            viewer, viewer_watch = await phone(browser)
            await viewer.goto(f"{node.url}/r/r1")
            await wait_js(viewer, LIVE)
            await wait_js(viewer, "!!document.querySelector('#draw-enter:not([disabled])')")
            assert "评论「我要福袋」参与" in await viewer.inner_text("#draw")
            await viewer.click("#draw-enter")
            await wait_js(viewer, "document.querySelector('#draw')?.dataset.entered === 'yes'")
            await wait_js(viewer, "document.body.innerText.includes('我要福袋')")
            await wait_js(
                host, "(document.querySelector('#draws')?.innerText || '').includes('1人参与')"
            )
            await host.click("#draw-roll")
            await wait_js(viewer, "document.querySelector('#draw')?.dataset.result === 'won'")
            assert "恭喜你中奖了" in await viewer.inner_text("#draw")
            await wait_js(host, "document.querySelectorAll('#draw-winners li').length === 1")
            await viewer.click("#lang")
            assert "You won" in await viewer.inner_text("#draw")
            for page in (host, viewer):
                await no_horizontal_scroll(page)
            assert clean(host_watch) == [] and clean(viewer_watch) == []
    finally:
        node.stop()


async def test_a_reserved_neighbour_is_reminded_when_the_room_goes_live(
    tmp_path: Path, redis_url: str
) -> None:
    """A guest reserves on the reservation page; the host goes live from the console
    (fake camera); the reservation page shows the reminder with the way in."""
    node = Node(tmp_path / "node", redis_url=redis_url, extra_args=FAST).start()
    try:
        create_room(node.url)
        async with launch() as browser:
            page, watch = await phone(browser)
            await page.goto(f"{node.url}/y/r1")
            await wait_js(page, "document.body.dataset.ready === '1'")
            await page.click("#reserve")
            await wait_js(page, "!document.getElementById('done').hidden")
            assert await page.evaluate("document.getElementById('live').hidden")
            host, host_watch = await phone(browser)
            await host.goto(f"{node.url}/host/r1#token={token('host', 'host1')}")
            await go_live(host)
            await wait_js(page, "!document.getElementById('live').hidden", timeout_s=30)
            assert "直播开始了" in await page.inner_text("#live")
            assert await page.get_attribute("#enter", "href") == "/r/r1"
            assert clean(watch) == [] and clean(host_watch) == []
    finally:
        node.stop()
