"""The shopper's whole loop on phones (headless Chromium, 390×844, one real node and
Valkey): reservation → live reminder → coupon claimed → flash sale bought → lucky
draw entered and won → group formed → pickup code redeemed at the counter → the
share officer's commission confirmed by that pickup.

The neighbour is a guest (no account) on one phone for the whole walk; the host's
console goes live from Chromium's fake camera; the host's other steps are room-channel
requests (the console's sheets for them have tests of their own)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser

from clients.python.room import RoomClient
from tests.browser import phone, shot, wait_js
from tests.helpers import Node, create_room, token
from tests.signalling.hub.conftest import FAST
from tests.signalling.routes.pagekit import (
    LIVE,
    XIXI,
    clean,
    go_live,
    no_horizontal_scroll,
    text_of,
)
from tests.signalling.routes.test_walk_browser import join_with_ref, split_text

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]


async def test_a_neighbour_walks_from_the_reservation_to_the_officers_commission(
    tmp_path: Path, redis_url: str, browser: Browser
) -> None:
    """Every step on the neighbour's phone, in Chinese, with no console error and no
    sideways scroll; the officer's page turns 待确认 into 已到账 when the counter
    redeems the neighbour's pickup code."""
    node = Node(tmp_path / "node", redis_url=redis_url, extra_args=FAST).start()
    try:
        create_room(node.url)
        # 1. Before the live: a guest reserves on the room's reservation page.
        phone_page, phone_watch = await phone(browser)
        await phone_page.goto(f"{node.url}/y/r1")
        await wait_js(phone_page, "document.body.dataset.ready === '1'")
        await phone_page.click("#reserve")
        await wait_js(phone_page, "!document.getElementById('done').hidden")
        await no_horizontal_scroll(phone_page)

        # 2. The host goes live from the console: the reservation page reminds.
        host_page, host_watch = await phone(browser)
        await host_page.goto(f"{node.url}/host/r1#token={token('host', 'host1')}")
        await go_live(host_page)
        await wait_js(phone_page, "!document.getElementById('live').hidden", timeout_s=30)
        assert "直播开始了" in await text_of(phone_page, "#live")
        await shot(phone_page, "shopper-walk-reminder")

        async with (
            RoomClient(node.url, "r1", token("host", "host1")) as host,
            RoomClient(node.url, "r1", token("viewer", "off1", community=XIXI)) as officer,
        ):
            # A group buy for the whole room; a buyer of it becomes the share officer on
            # their page and forwards the link into the neighbours' chat.
            gb = (await host.request("groupbuy_open", product="水蜜桃 5斤", price_cents=3990,
                                     target=3, duration_s=3600, scope="room"))["gb"]  # fmt: skip
            await officer.request("groupbuy_join", gb=gb, qty=1)
            officer_page, officer_watch = await phone(browser)
            officer_token = token("viewer", "off1", community=XIXI)
            await officer_page.goto(f"{node.url}/o/r1#token={officer_token}")
            await wait_js(officer_page, LIVE)
            await officer_page.click("#officer-apply")
            await wait_js(officer_page, "!!document.querySelector('#officer-link')")
            code = await text_of(officer_page, "#officer-code")
            link = await officer_page.input_value("#officer-link")
            # The neighbour opens the officer's link from the chat (the reminder's way in
            # is the same page without the referral).
            await phone_page.goto(link)
            await wait_js(phone_page, LIVE)

            # 3. A coupon, claimed during the live.
            await host.request("card", kind="product", name="水蜜桃 5斤", price_cents=3990)
            await host.request("coupon_create", title="立减5元", off_cents=500, quota=10)
            chip = "document.querySelector('#coupons .coupon-chip')"
            await wait_js(phone_page, f"{chip} && !{chip}.disabled")
            await phone_page.click("#coupons .coupon-chip")
            await wait_js(phone_page, "!!document.querySelector('#coupons .coupon-chip.claimed')")

            # 4. A flash sale of one unit, grabbed.
            await host.request("flash_start", price_cents=990, stock=1, duration_s=600)
            grab = "document.querySelector('#flash-grab')"
            await wait_js(phone_page, f"{grab} && !{grab}.disabled")
            await phone_page.click("#flash-grab")
            await wait_js(
                phone_page, "document.querySelector('#flash').dataset.phase === 'sold_out'"
            )
            assert "已抢到1件" in await text_of(phone_page, "#flash")

            # 5. A lucky draw, entered and won.
            opened = await host.request("draw_open", prize="土鸡蛋一盒", winners=1, duration_s=60)
            await wait_js(phone_page, "!!document.querySelector('#draw-enter:not([disabled])')")
            await phone_page.click("#draw-enter")
            await wait_js(phone_page, "document.querySelector('#draw')?.dataset.entered === 'yes'")
            await host.request("draw_roll", draw=opened["draw"])
            await wait_js(phone_page, "document.querySelector('#draw')?.dataset.result === 'won'")
            assert "恭喜你中奖了" in await text_of(phone_page, "#draw")

            # 6. The group buy: the neighbour joins, a second neighbour from the same link
            # joins, and the group is formed.
            join = "document.querySelector('#dock button.join')"
            await wait_js(phone_page, f"!!{join}")
            await phone_page.click("#dock button.join")
            await join_with_ref(node, "n3", code, gb)
            await wait_js(phone_page, "document.querySelector('#dock').dataset.status === 'formed'")
            before = await officer.request("officer_me")
            assert before["pending_cents"] > 0 and before["confirmed_cents"] == 0, before
            pending_line, _ = split_text(before["pending_cents"], 0)
            await wait_js(
                officer_page,
                f"document.querySelector('#officer-split').textContent === {pending_line!r}",
                20,
            )

            # 7. The neighbour's pickup code, redeemed once at the 自提点's counter.
            await wait_js(phone_page, "!!document.querySelector('#dock .pickup-open')")
            await phone_page.click("#dock .pickup-open")
            await wait_js(phone_page, "!!document.querySelector('#pickup-digits')")
            shown = await text_of(phone_page, "#pickup-digits")
            await no_horizontal_scroll(phone_page)
            await shot(phone_page, "shopper-walk-pickup-code")
            counter, counter_watch = await phone(browser)
            await counter.goto(f"{node.url}/p/r1#token={token('pickup', 'counter1')}")
            await wait_js(counter, "document.body.dataset.ready === '1'")
            await counter.fill("#code", shown)
            await counter.click("#redeem")
            await wait_js(counter, "document.body.dataset.ready === 'redeemed'")
            assert "核销成功" in await text_of(counter, "#result")

            # 8. The pickup confirms the neighbour's order: the officer's share of it moves
            # from 待确认 to 已到账, on their page, without a reload.
            after = await officer.request("officer_me")
            assert after["confirmed_cents"] > 0, after
            assert after["confirmed_cents"] + after["pending_cents"] == before["pending_cents"]
            line, _ = split_text(after["pending_cents"], after["confirmed_cents"])
            await wait_js(
                officer_page,
                f"document.querySelector('#officer-split').textContent === {line!r}",
                20,
            )
            await shot(officer_page, "shopper-walk-officer-confirmed")
        for watch in (phone_watch, host_watch, officer_watch, counter_watch):
            assert clean(watch) == []
    finally:
        node.stop()
