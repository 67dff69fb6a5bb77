"""The pages as people use them, in headless Chromium at phone size (390×844).

One browser per module (Playwright driving Debian's Chromium, fake camera);
each test starts its own node and room. Every page must load and work with
no console errors and no failed requests; screenshots land in screenshots/.
A missing Chromium fails these tests under CI=true (see tests/browser.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser

from clients.python.room import RoomClient
from tests.browser import chromium_path, phone, shot, wait_js
from tests.helpers import Node, create_room, token
from tests.signalling.routes.pagekit import (
    IN_XIXI,
    LIVE,
    OUTSIDE_XIXI,
    XIXI,
    clean,
    frames_decoded,
    go_live,
    has_comment,
    js,
    no_horizontal_scroll,
    text_of,
    visible_cjk,
    wait_event,
)  # fmt: skip

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

#: The officer page asks for the clip library, which the Highlights work serves;
#: until that lands the endpoint answers 404 (the page says "no clips yet").
NO_CLIPS_YET = "/clips"


@pytest.fixture
def node(tmp_path: Path, redis_url: str) -> Iterator[Node]:
    """A node with room r1 (host host1); fails first when there is no Chromium under CI."""
    chromium_path()
    started = Node(tmp_path / "node", redis_url=redis_url).start()
    create_room(started.url)
    yield started
    started.stop()


async def test_shared_link_with_no_token_watches_joins_and_the_officer_earns(
    node: Node, browser: Browser
) -> None:
    """The officer's room link, opened on a neighbour's phone with no token: the page
    enters as a guest, plays the host (frames decoded), joins the compound's group buy,
    and the officer's commission appears. A reload is the same guest."""
    host_page, host_watch = await phone(browser)
    await host_page.goto(f"{node.url}/host/r1#token={token('host', 'host1')}")
    await go_live(host_page)
    async with (
        RoomClient(node.url, "r1", token("host", "host1")) as host,
        RoomClient(node.url, "r1", token("viewer", "off1", community=XIXI)) as officer,
    ):
        opened = await host.request(
            "groupbuy_open", product="Honey peach", price_cents=3990, target=2,
            duration_s=600, tiers=[[2, 500]], max_qty=3,
        )  # fmt: skip
        await officer.request("groupbuy_join", gb=opened["gb"], qty=1)
        code = (await officer.request("officer_apply"))["code"]

        page, watch = await phone(browser, geolocation=IN_XIXI)
        await page.goto(f"{node.url}/r/r1?ref={code}")
        await wait_js(page, LIVE)
        guest = await page.evaluate("window.livecore.session.user")
        assert guest.startswith("g-")
        await frames_decoded(page, "host1", 10)
        await wait_js(page, "document.querySelector('#room-status').dataset.status === 'live'")
        assert await text_of(page, "#title") == "Room r1"
        assert "参团前先找到你的小区" in await text_of(page, "#dock")

        await page.click("#locate")
        await wait_js(page, "!!document.querySelector('#dock button.join:not(.locate)')")
        await wait_js(
            page,
            "document.querySelector('#dock').textContent.includes('本小区已有1位邻居参团，还差1人成团')",
        )
        await page.click("#dock button.join")
        await wait_js(page, "document.querySelector('#dock').dataset.status === 'formed'")
        assert "¥34.90" in await text_of(page, "#dock")
        me = await officer.request("officer_me")
        assert me["earned_cents"] == 3490 * 2000 // 10000 and me["referrals"] >= 1
        await no_horizontal_scroll(page)
        await shot(page, "viewer-joined")

        await page.reload()
        await wait_js(page, LIVE)
        assert await page.evaluate("window.livecore.session.user") == guest
        await wait_js(
            page, "(document.querySelector('#dock .note-ok')?.textContent || '').includes('×1')"
        )
        assert clean(watch) == [] and clean(host_watch) == []


async def test_invite_link_counts_for_the_neighbour_bonus(node: Node, browser: Browser) -> None:
    """A buyer's invite link (?inviter=) brings a neighbour who joins as their invitee:
    邻里助力 applies to both pages."""
    async with RoomClient(node.url, "r1", token("host", "host1")) as host:
        await host.request(
            "groupbuy_open", product="Eggs", price_cents=1800, target=5, duration_s=600,
            bonus_invites=1, bonus_cents=200,
        )  # fmt: skip
    first, first_watch = await phone(browser, geolocation=IN_XIXI)
    await first.goto(f"{node.url}/r/r1")
    await wait_js(first, LIVE)
    await first.click("#locate")
    await wait_js(first, "!!document.querySelector('#dock button.join:not(.locate)')")
    await first.click("#dock button.join")
    await wait_js(first, "!!document.querySelector('#dock button.invite')")
    await first.click("#dock button.invite")
    link = await first.evaluate("document.querySelector('#sheet input').value")
    assert "?inviter=g-" in link

    second, second_watch = await phone(browser, geolocation=IN_XIXI)
    await second.goto(link)
    await wait_js(second, LIVE)
    await second.click("#locate")
    await wait_js(second, "!!document.querySelector('#dock button.join:not(.locate)')")
    await second.click("#dock button.join")
    for page in (first, second):
        await wait_js(page, "!!document.querySelector('#dock .bonus.on')")
        assert "¥16.00" in await text_of(page, "#dock")
    assert clean(first_watch) == [] and clean(second_watch) == []


async def test_comments_votes_and_joins_reach_the_other_pages(node: Node, browser: Browser) -> None:
    """A comment typed on one phone shows on another and on the host's; a vote and a
    join move the others' tallies; a toast never blocks a tap on 发送."""
    async with RoomClient(node.url, "r1", token("host", "host1")) as host:
        opened = await host.request(
            "groupbuy_open", product="Plums", price_cents=1200, target=3, duration_s=600
        )
    host_page, host_watch = await phone(browser)
    await host_page.goto(f"{node.url}/host/r1#token={token('host', 'host1')}")
    await wait_js(host_page, LIVE)
    one, one_watch = await phone(browser, geolocation=IN_XIXI)
    two, two_watch = await phone(browser, geolocation=IN_XIXI)
    for page in (one, two):
        await page.goto(f"{node.url}/r/r1")
        await wait_js(page, LIVE)
        await page.click("#locate")
        await wait_js(page, "!!document.querySelector('#dock button.join:not(.locate)')")

    await one.fill("#comment-text", "桃子甜吗？")
    await one.click("#send")
    for page in (one, two, host_page):
        await has_comment(page, "桃子甜吗？")
    assert await one.input_value("#comment-text") == ""

    async with RoomClient(node.url, "r1", token("host", "host1")) as host:
        await host.request("poll_open", question="Next?", options=["Peach", "Plum"])
    await wait_js(one, "!!document.querySelector('#poll .option[data-i=\"1\"]')")
    await one.click("#poll .option[data-i='1']")
    await wait_js(
        two,
        "(document.querySelector('#poll .option[data-i=\"1\"] .pct')?.textContent || '')"
        " === '100%'",
    )
    await one.click("#dock button.join")
    await wait_js(
        two, "document.querySelector('#dock .progress')?.getAttribute('aria-valuenow') === '1'"
    )
    assert "本小区已有1位邻居参团，还差2人成团" in await text_of(two, "#dock")
    row = f"[data-gb={js(opened['gb'])}] li[data-group={js(XIXI)}]"
    await wait_js(
        host_page, f"(document.querySelector({js(row)})?.textContent || '').includes('1/3')"
    )

    # Right after a toast (an error one lasts longest), 发送 still takes the tap.
    await one.evaluate("import('/static/room.js').then((m) => m.toast('网络不太好，请稍后再试'))")
    await wait_js(one, "!!document.querySelector('#toast')?.classList.contains('show')")
    await one.fill("#comment-text", "toast never blocks")
    box = await one.locator("#send").bounding_box()
    assert box is not None
    hit = await one.evaluate(
        f"document.elementFromPoint({box['x'] + box['width'] / 2},"
        f" {box['y'] + box['height'] / 2})?.id"
    )
    assert hit == "send"
    await one.click("#send", timeout=2000)
    await has_comment(two, "toast never blocks")
    await no_horizontal_scroll(one)
    await shot(one, "viewer")
    await shot(host_page, "host")
    for watch in (one_watch, two_watch, host_watch):
        assert clean(watch) == []


async def test_viewer_outside_every_community_chooses_a_nearby_one(
    node: Node, browser: Browser
) -> None:
    async with RoomClient(node.url, "r1", token("host", "host1")) as host:
        opened = await host.request(
            "groupbuy_open", product="Eggs", price_cents=1800, target=3, duration_s=600
        )
    page, watch = await phone(browser, geolocation=OUTSIDE_XIXI)
    await page.goto(f"{node.url}/r/r1")
    await wait_js(page, LIVE)
    await wait_js(page, f"document.querySelector('#dock').dataset.gb === {js(opened['gb'])}")
    assert not await page.evaluate("!!document.querySelector('#dock button.join:not(.locate)')")
    await page.click("#locate")
    await wait_js(page, "document.querySelectorAll('#nearby button').length > 0")
    assert "西溪澄园" in await text_of(page, "#nearby button")
    await page.click("#nearby button")
    await wait_js(page, "document.querySelector('#sheet').hidden")
    await page.click("#dock button.join")
    await wait_js(
        page,
        "(document.querySelector('#dock .gb-count')?.textContent || '')"
        ".includes('本小区已有1位邻居参团，还差2人成团')",
    )
    assert clean(watch) == []


async def test_officer_page_shows_the_qr_code_and_the_live_leaderboard(
    node: Node, browser: Browser
) -> None:
    """From the viewer page's 分享赚佣金 to the officer page: sign-up, link, QR code;
    a neighbour through the link forms the group and the leaderboard shows the officer."""
    async with RoomClient(node.url, "r1", token("host", "host1")) as host:
        opened = await host.request(
            "groupbuy_open", product="Honey peach", price_cents=3000, target=2, duration_s=600
        )
    page, watch = await phone(browser, geolocation=IN_XIXI)
    await page.goto(f"{node.url}/r/r1")
    await wait_js(page, LIVE)
    await page.click("#locate")
    await wait_js(page, "!!document.querySelector('#dock button.join:not(.locate)')")
    await page.click("#dock button.join")
    await wait_js(page, "!!document.querySelector('#dock .note-ok')")
    await page.click("#share")
    await page.wait_for_url("**/o/r1")
    await wait_js(page, LIVE)
    await page.click("#officer-apply")
    code = await wait_js(page, "document.querySelector('#officer-code')?.textContent")
    link = await page.input_value("#officer-link")
    assert link.endswith(f"/r/r1?ref={code}")
    inked = await page.evaluate(
        "(() => { const c = document.querySelector('#qr'); const d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; let dark = 0;"
        " for (let i = 0; i < d.length; i += 4) if (d[i] < 100) dark++;"
        " return dark / (d.length / 4); })()"
    )
    assert 0.2 < inked < 0.8, "the QR code is drawn"
    assert "还没有精彩片段" in await text_of(page, "#clips")

    neighbour, neighbour_watch = await phone(browser, geolocation=IN_XIXI)
    await neighbour.goto(link)
    await wait_js(neighbour, LIVE)
    await neighbour.click("#locate")
    await wait_js(neighbour, f"document.querySelector('#dock').dataset.gb === {js(opened['gb'])}")
    await wait_js(neighbour, "!!document.querySelector('#dock button.join:not(.locate)')")
    await neighbour.click("#dock button.join")
    await wait_js(page, "document.querySelectorAll('#leaderboard li.me').length === 1")
    await wait_js(page, "document.querySelector('#officer-earned').textContent === '¥6.00'")
    await no_horizontal_scroll(page)
    await shot(page, "officer")
    assert clean(watch, NO_CLIPS_YET) == [] and clean(neighbour_watch) == []


async def test_dashboard_and_brand_board_draw_live_data(node: Node, browser: Browser) -> None:
    async with (
        RoomClient(node.url, "r1", token("host", "host1")) as host,
        RoomClient(node.url, "r1", token("viewer", "v1", community=XIXI)) as viewer,
    ):
        opened = await host.request(
            "groupbuy_open", product="Peach", price_cents=2000, target=2, duration_s=600
        )
        await viewer.request("comment", text="hello")
        await viewer.request("like", n=5)
        page, watch = await phone(browser)
        await page.goto(f"{node.url}/d/r1#token={token('host', 'host1')}")
        await wait_js(page, "window.livecore.charts.viewers.points >= 2", 20)
        await viewer.request("groupbuy_join", gb=opened["gb"], qty=3)
        await wait_js(page, "document.querySelector('#k-items').textContent === '3'")
        await wait_js(page, "window.livecore.charts.orders.plot.data[2].at(-1) === 3")
        assert await page.evaluate("document.querySelectorAll('#c-viewers canvas').length") == 1
        assert await page.evaluate("Math.max(...window.livecore.charts.comments.plot.data[1])") >= 1
        assert XIXI in await page.evaluate("document.querySelector('#groups li').dataset.group")
        # The host sees how many members are guests and how many shop-verified (v1 is
        # a shop account: a token the shop signed, not a guest device id).
        await wait_js(
            page, "document.querySelector('#groups .members-split')?.textContent"
            " === '其中游客 0 位 · 店铺认证会员 1 位'",
        )  # fmt: skip
        await shot(page, "dashboard")

        board, board_watch = await phone(browser, width=1280, height=800, mobile=False)
        await board.goto(f"{node.url}/board#token={token('admin', 'hq', room='*')}")
        await wait_js(board, "window.livecore.charts.sales.points >= 2", 20)
        await wait_js(board, "document.querySelector('#k-members').textContent === '1'")
        assert "Room r1" in await text_of(board, "#rooms")
        await shot(board, "board")
    assert clean(watch) == [] and clean(board_watch) == []
    # A viewer's token may not read the dashboard.
    async with httpx.AsyncClient() as http:
        answer = await http.get(
            f"{node.url}/api/rooms/r1/dashboard",
            headers={"Authorization": f"Bearer {token('viewer', 'v1')}"},
        )
    assert answer.status_code == 403 and answer.json()["code"] == "token_wrong_role"


async def test_english_switch_changes_every_visible_label(node: Node, browser: Browser) -> None:
    """Every page: after the switch, no Chinese is left on screen (user content here is
    English); the choice sticks across pages and a reload."""
    async with RoomClient(node.url, "r1", token("host", "host1")) as host:
        await host.request(
            "groupbuy_open", product="Peach", price_cents=2000, target=2, duration_s=600
        )
        await host.request("poll_open", question="Next?", options=["Plum", "Pear"])
    page, watch = await phone(browser)
    urls = [
        f"{node.url}/r/r1",
        f"{node.url}/host/r1#token={token('host', 'host1')}",
        f"{node.url}/o/r1",
        f"{node.url}/d/r1#token={token('host', 'host1')}",
        f"{node.url}/board#token={token('admin', 'hq', room='*')}",
    ]
    for i, url in enumerate(urls):
        await page.goto(url)
        await page.wait_for_load_state("networkidle")
        if i == 0:
            assert visible_cjk(await page.inner_text("body")), "Chinese by default"
            await page.click("#lang")
        await wait_js(page, "document.documentElement.lang === 'en'")
        await page.wait_for_timeout(300)
        left = visible_cjk(await page.inner_text("body"))
        assert left == [], f"{url}: still Chinese: {left}"
    await page.click("#lang")
    await wait_js(page, "document.documentElement.lang === 'zh-CN'")
    assert clean(watch, NO_CLIPS_YET) == []


async def test_host_console_forms_clear_and_moderation(node: Node, browser: Browser) -> None:
    """Prices typed in 元 go out as integer cents; forms clear after submit; a muted
    user is marked; mark-highlight answers in words."""
    async with RoomClient(node.url, "r1", token("viewer", "v1", community=XIXI)) as viewer:
        page, watch = await phone(browser)
        await page.goto(f"{node.url}/host/r1#token={token('host', 'host1')}")
        await wait_js(page, LIVE)
        await page.click("#gb-card summary")
        await page.click("#gb-tier-add")
        await page.fill(".tier-members", "3")
        await page.fill(".tier-discount", "4.5")
        fields = {"#gb-product": "Honey peach", "#gb-price": "39.9", "#gb-target": "6",
                  "#gb-duration": "30", "#gb-max": "3"}  # fmt: skip
        for selector, value in fields.items():
            await page.fill(selector, value)
        await page.click("#gb-open")
        opened = await wait_event(viewer, lambda e: e["t"] == "groupbuy_opened")
        assert opened["price_cents"] == 3990 and opened["tiers"] == [[3, 450]]
        await wait_js(page, "document.querySelector('#gb-product').value === ''")
        assert await page.evaluate("document.querySelectorAll('.tier').length") == 0

        await page.click("#product-card summary")
        await page.fill("#pc-name", "Peach box")
        await page.fill("#pc-price", "59.90")
        await page.click("#product-form button[type=submit]")
        card = await wait_event(viewer, lambda e: e["t"] == "card")
        assert card["card"] == {"kind": "product", "name": "Peach box", "price_cents": 5990}
        await wait_js(page, "document.querySelector('#pc-name').value === ''")

        sent = await viewer.request("comment", text="rude words")
        item = f"#comments li[data-o='{sent['o']}']"
        await page.click(f"{item} .c-body")
        await page.click(f"{item} [data-act='mute']")
        await wait_js(page, f"document.querySelector({js(item)}).classList.contains('is-muted')")
        await page.click(f"{item} [data-act='delete']")
        await wait_event(viewer, lambda e: e["t"] == "comment_deleted")
        await wait_js(page, f"!document.querySelector({js(item)})")

        await page.click("#mark")
        await wait_js(
            page, "(document.querySelector('#toast')?.textContent || '').includes('高光')"
        )
        toast = await text_of(page, "#toast")
        # the host is not live in this test: nothing to clip
        assert toast == "开播后才能标记高光和讲解商品"
        await no_horizontal_scroll(page)
        assert clean(watch) == []


async def test_viewer_page_recovers_after_its_node_restarts(
    node: Node, browser: Browser, tmp_path: Path, redis_url: str
) -> None:
    """The page reconnects after its node goes away (1001) and replays what it missed,
    without a new snapshot and without duplicates."""
    other = Node(tmp_path / "other", redis_url=redis_url).start()
    try:
        async with RoomClient(other.url, "r1", token("host", "host1")) as host:
            page, watch = await phone(browser)
            await page.goto(f"{node.url}/r/r1#token={token('viewer', 'v1')}")
            await wait_js(page, LIVE)
            await page.evaluate(
                "window.snapshots = 0; window.livecore.channel.on('snapshot', () => snapshots++)"
            )
            await host.request("comment", text="before the restart")
            await has_comment(page, "before the restart")
            node.stop()
            await wait_js(page, "window.livecore.channel.status === 'reconnecting'")
            await host.request("comment", text="while you were away")
            node.start()
            await wait_js(page, LIVE, 30)
            await has_comment(page, "while you were away")
            assert await page.evaluate("window.snapshots") == 0, "recovered, not re-snapshotted"
            texts = await page.evaluate(
                "[...document.querySelectorAll('#comments .text')].map((e) => e.textContent)"
            )
            assert texts == ["before the restart", "while you were away"]
            # Reconnect attempts while the node was down may log refused connections.
            assert clean(watch, "ERR_CONNECTION_REFUSED", "/ws/r1") == []
    finally:
        other.stop()


CHANNEL_CHECK = """async (hex) => {
  const mp = await import('/static/vendor/msgpack.js');
  const { RoomChannel } = await import('/static/channel.js');
  const bytes = new Uint8Array(hex.match(/../g).map((x) => parseInt(x, 16)));
  const value = mp.decode(bytes);
  const ch = new RoomChannel({ room: 'r1', token: 'x', url: 'ws://127.0.0.1:9/none' });
  const closed = [];
  ch.ws = { close: (code) => closed.push(code), readyState: 1 };
  ch._snapshot({ t: 'snapshot', epoch: 'e1', offset: 0, likes: 0, viewers: 1,
    polls: [], comments: [], events: [] });
  const comment = (o) => ({ o, t: 'comment', user: 'u', role: 'viewer', text: 'c' + o });
  const evs = Array.from({ length: 250 }, (_, i) => comment(i + 1));
  ch._batch({ t: 'batch', a: 1, z: 250, ev: evs, st: { likes: 7 } });
  ch._batch({ t: 'batch', a: 240, z: 250, ev: evs.slice(239), st: null });
  ch._batch({ t: 'batch', a: 253, z: 253, ev: [comment(253)], st: null });
  ch._state({ groups: { g1: { room: { v: 2, n: 2 } } } }, new Set());
  ch._state({ groups: { g1: { room: { v: 1, n: 1 } } } }, new Set());
  return { z: value.z, neg: value.neg, s: value.s, b: [...value.b],
    comments: ch.model.comments.length, first: ch.model.comments[0].o, offset: ch.offset,
    likes: ch.model.likes, closed, group: ch.model.groups.g1.room.n };
}"""


async def test_channel_and_vendored_msgpack_in_the_browser(node: Node, browser: Browser) -> None:
    """@msgpack/msgpack (vendored) reads what Python packs; the channel dedupes, bounds
    and spots gaps."""
    import msgpack

    sample = {"t": "batch", "z": 2**40, "neg": [-1, -33, -200, -70000, -(2**40)],
              "s": "中文" * 20, "b": b"\x00\x01"}  # fmt: skip
    page, watch = await phone(browser)
    await page.goto(f"{node.url}/static/app.css")
    result = await page.evaluate(CHANNEL_CHECK, msgpack.packb(sample, use_bin_type=True).hex())
    assert result["z"] == 2**40 and result["neg"] == sample["neg"] and result["s"] == sample["s"]
    assert result["b"] == [0, 1]
    assert result["comments"] == 200 and result["first"] == 51
    assert result["offset"] == 250 and result["likes"] == 7
    assert result["closed"] == [4100], "a gap closes the socket to recover with since"
    assert result["group"] == 2, "an older group state does not replace a newer one"
    assert clean(watch, "/favicon.ico") == []  # a stylesheet has no <link rel=icon>


async def test_trace_sheet_wall_and_nickname(node: Node, browser: Browser) -> None:
    """一键溯源 opens a sheet with readable sensor names and units; the testimonial wall
    keeps every testimonial; a guest's nickname shows next to their comment elsewhere."""
    page, watch = await phone(browser)
    async with RoomClient(node.url, "r1", token("host", "host1")) as host:
        await host.request("card", kind="product", name="Peach box", price_cents=5990)
        await host.request("card", kind="trace", batch="YS-0715", origin="Yangshan")
        await host.request("card", kind="testimonial", author="Wang", text="Sweet!")
        await page.goto(f"{node.url}/r/r1")
        await wait_js(page, LIVE)
        await host.request("card", kind="testimonial", author="Li", text="Juicy!")
        device = {"Authorization": f"Bearer {token('device', 'probe1')}"}
        async with httpx.AsyncClient() as http:
            posted = await http.post(
                f"{node.url}/api/rooms/r1/sensors", headers=device,
                json={"readings": [{"kind": "soil_temp_c", "value": 18.5}]},
            )  # fmt: skip
        assert posted.status_code < 300, posted.text
    await wait_js(page, "!!document.querySelector('#dock .trace-open')")
    await wait_js(page, "!!window.livecore.channel.model.sensors.soil_temp_c")
    await page.click("#dock .trace-open")
    sheet = await text_of(page, "#sheet")
    assert "YS-0715" in sheet and "土壤温度" in sheet and "18.5°C" in sheet
    assert "soil_temp_c" not in sheet
    await page.click("#sheet-close")
    await wait_js(page, "document.querySelector('#wall-open').dataset.count === '2'")
    await page.click("#wall-open")
    wall = await page.evaluate(
        "[...document.querySelectorAll('#sheet .wall li')].map((li) => li.textContent)"
    )
    assert len(wall) == 2 and "Juicy!" in wall[0] and "Sweet!" in wall[1]
    await page.click("#sheet-close")

    await page.click("#nick-open")
    await page.fill("#nick-input", "王阿姨")
    await page.click("#nick-save")
    await wait_js(page, "document.querySelector('#sheet').hidden")
    await page.fill("#comment-text", "hello neighbours")
    await page.click("#send")
    other, other_watch = await phone(browser)
    await other.goto(f"{node.url}/r/r1")
    await wait_js(other, LIVE)
    await has_comment(other, "hello neighbours")
    await wait_js(
        other, "(document.querySelector('#comments li .who')?.textContent || '') === '王阿姨'"
    )
    assert clean(watch) == [] and clean(other_watch) == []


async def test_an_unknown_room_says_so_in_plain_words(node: Node, browser: Browser) -> None:
    page, watch = await phone(browser)
    await page.goto(f"{node.url}/r/no-such-room")
    await wait_js(page, "!document.querySelector('#banner').hidden")
    text = await text_of(page, "#banner")
    assert text == "这个直播间不存在，请检查链接"
    assert "令牌" not in await page.inner_text("body") and "token" not in text.lower()
    # The two lookups that found no room are the only failed requests.
    assert clean(watch, "/api/rooms/no-such-room") == []
