"""The viewer page and host console in headless Chromium, against a real node.

Phone-sized (390×844): the pages load from the node, join the room channel
with the token from the URL fragment, and talk to Python clients in the same
room. Skipped when Chromium is not installed (see tests/browser.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from clients.python.room import RoomClient
from tests.browser import Browser, Page, chromium_path
from tests.helpers import Node, create_room, token

pytestmark = pytest.mark.timeout(90)

WIDTH, HEIGHT = 390, 844
XIXI = "hz-xixi-chengyuan"
#: 700 m south of 西溪澄园 (radius 600 m), inside no community.
OUTSIDE_XIXI = (30.2620, 120.1279)
LIVE = "window.livecore && window.livecore.channel.status === 'live'"


#: Runs in the page: msgpack against Python's bytes, the channel's model on fed batches.
CHANNEL_CHECK = """(async () => {
  const mp = await import('/static/msgpack.js');
  const { RoomChannel } = await import('/static/channel.js');
  const { syncComments } = await import('/static/room.js');
  const hex = __HEX__;
  const bytes = new Uint8Array(hex.match(/../g).map((x) => parseInt(x, 16)));
  const value = mp.decode(bytes);
  const again = [...mp.encode(value)].map((b) => b.toString(16).padStart(2, '0')).join('');
  const ch = new RoomChannel({ room: 'r1', token: 'x', url: 'ws://127.0.0.1:9/none' });
  const closed = [];
  ch.ws = { close: (code) => closed.push(code), readyState: 1 };
  ch._snapshot({ t: 'snapshot', epoch: 'e1', offset: 0, likes: 0, viewers: 1,
    polls: [], comments: [], events: [] });
  const comment = (o) => ({ o, t: 'comment', user: 'u', role: 'viewer', text: 'c' + o });
  const evs = Array.from({ length: 250 }, (_, i) => comment(i + 1));
  ch._batch({ t: 'batch', a: 1, z: 250, ev: evs, st: { likes: 7 } });
  ch._batch({ t: 'batch', a: 240, z: 250, ev: evs.slice(239), st: null });  // replayed
  const list = document.createElement('ol');
  syncComments(list, ch.model.comments, (c) => {
    const li = document.createElement('li'); li.dataset.o = c.o; return li; });
  ch._batch({ t: 'batch', a: 253, z: 253, ev: [comment(253)], st: null });  // a gap
  ch._state({ groups: { g1: { room: { v: 2, n: 2 } } } }, new Set());
  ch._state({ groups: { g1: { room: { v: 1, n: 1 } } } }, new Set());  // older
  return { big: String(value.big), z: value.z, neg: value.neg, s: value.s,
    b: [...value.b], same: again === hex, comments: ch.model.comments.length,
    first: ch.model.comments[0].o, dom: list.children.length, offset: ch.offset,
    likes: ch.model.likes, closed, group: ch.model.groups.g1.room.n };
})()"""


@pytest.fixture
def page_node(tmp_path: Path, redis_url: str) -> Iterator[Node]:
    """A node with room r1 ("Room r1"); skips first when there is no Chromium."""
    chromium_path()
    node = Node(tmp_path / "node", redis_url=redis_url).start()
    create_room(node.url)
    yield node
    node.stop()


def js(value: Any) -> str:
    """A Python value as a JS literal."""
    return json.dumps(value)


def has_comment(text: str) -> str:
    return (
        "[...document.querySelectorAll('#comments li')]"
        f".some((li) => li.textContent.includes({js(text)}))"
    )


async def wait_event(
    client: RoomClient, match: Callable[[dict[str, Any]], bool], wait: float = 10
) -> dict[str, Any]:
    """The client's next event that matches (others are skipped)."""
    while True:
        event = await client.next_event(wait=wait)
        if match(event):
            return event


async def no_horizontal_scroll(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"page is {width} px wide at a {WIDTH} px viewport"


async def test_viewer_page_in_a_live_room(page_node: Node, tmp_path: Path) -> None:
    """Title, comments both ways, likes, a poll vote, joining a group buy, officer apply."""
    viewer = token("viewer", "v1", community=XIXI)
    async with (
        RoomClient(page_node.url, "r1", token("host", "host1")) as host,
        Browser.launch() as browser,
    ):
        page = await browser.new_page(WIDTH, HEIGHT)
        await page.goto(f"{page_node.url}/r/r1#token={viewer}")
        await page.wait_for(LIVE)
        await page.wait_for("document.querySelector('#title').textContent === 'Room r1'")
        assert "Test Store" in await page.evaluate("document.querySelector('#store').textContent")

        # A comment typed into the page comes back into its list (and reaches the host).
        await page.fill("#comment-text", "hello from the page")
        await page.click("#send")
        await page.wait_for(has_comment("hello from the page"))
        assert await page.evaluate("document.querySelector('#comment-text').value") == ""
        got = await wait_event(host, lambda e: e["t"] == "comment")
        assert got["user"] == "v1" and got["text"] == "hello from the page"

        # A comment from a Python client appears in the page.
        await host.request("comment", text="hello from the host")
        await page.wait_for(has_comment("hello from the host"))

        # Taps are batched into like messages (every 300 ms, n ≤ 50); the total comes back.
        await page.evaluate(
            "(() => { const ch = window.livecore.channel, send = ch.send.bind(ch);"
            " window.likesSent = [];"
            " ch.send = (t, f) => { if (t === 'like') likesSent.push(f.n); return send(t, f); };"
            " })()"
        )
        await page.evaluate("for (let i = 0; i < 3; i++) document.querySelector('#like').click()")
        await page.wait_for("window.livecore.channel.model.likes === 3")
        assert await page.evaluate("window.likesSent") == [3]
        await page.evaluate("for (let i = 0; i < 120; i++) document.querySelector('#like').click()")
        assert await page.evaluate("document.querySelector('#like-count').textContent") == "123"
        await page.wait_for("window.livecore.channel.model.likes === 123")
        assert await page.evaluate("window.likesSent") == [3, 50, 50, 20]

        # A poll opened by the host appears; a vote from the page moves the tally.
        poll = (await host.request("poll_open", question="Best fruit?", options=["Peach", "Plum"]))[
            "poll"
        ]
        await page.wait_for(f"document.querySelector('#poll').dataset.poll === {js(poll)}")
        assert not await page.evaluate("document.querySelector('#poll').hidden")
        await page.click("#poll .option[data-i='1']")
        await page.wait_for(
            "document.querySelector('#poll .option[data-i=\"1\"] .pct').textContent"
            ".startsWith('100%')"
        )
        tally = await wait_event(host, lambda e: poll in e.get("tallies", {}))
        assert tally["tallies"][poll]["counts"] == [0, 1]

        # A group buy opened by the host: the page joins with 2 items, sees its progress.
        opened = await host.request(
            "groupbuy_open", product="Honey peach", price_cents=3990, target=2,
            duration_s=600, tiers=[[2, 500]], max_qty=3,
        )  # fmt: skip
        card = f"[data-gb={js(opened['gb'])}]"
        await page.wait_for(f"document.querySelector({js(card + ' button.join')})")
        text = await page.evaluate(f"document.querySelector({js(card)}).textContent")
        assert "本小区已有 0 位邻居参团，还差 2 人成团" in text and "¥39.90" in text
        await page.click(f"{card} .stepper button[aria-label^='增加']")
        await page.click(f"{card} button.join")
        await page.wait_for(
            f"document.querySelector({js(card + ' .gb-count')}).textContent"
            ".includes('本小区已有 1 位邻居参团，还差 1 人成团')"
        )
        bar = f"document.querySelector({js(card + ' .progress')})"
        assert await page.evaluate(f"{bar}.getAttribute('aria-valuenow')") == "1"
        assert "×2" in await page.evaluate(f"document.querySelector({js(card)}).textContent")

        # A neighbour joins from Python: the group forms at the tier price, in the page too.
        async with RoomClient(page_node.url, "r1", token("viewer", "v2", community=XIXI)) as v2:
            await v2.request("groupbuy_join", gb=opened["gb"], qty=1)
        await page.wait_for(f"document.querySelector({js(card)}).dataset.status === 'formed'")
        assert "¥34.90" in await page.evaluate(f"document.querySelector({js(card)}).textContent")

        # Having joined, the viewer may become a share officer: code and links shown.
        await page.click("#officer-apply")
        code = await page.wait_for("document.querySelector('#officer-code')?.textContent")
        assert len(code) == 6
        links = await page.evaluate(
            "[...document.querySelectorAll('#officer input')].map((i) => i.value)"
        )
        assert any(f"/r/r1?ref={code}" in link for link in links)

        await no_horizontal_scroll(page)
        await page.screenshot(tmp_path / "viewer.png")
        assert page.errors == []


async def test_viewer_finds_their_community(page_node: Node) -> None:
    """Outside every community, "find my community" lists the nearby ones to choose from;
    after choosing, the community's group buy can be joined."""
    async with (
        RoomClient(page_node.url, "r1", token("host", "host1")) as host,
        Browser.launch() as browser,
    ):
        opened = await host.request(
            "groupbuy_open", product="Eggs", price_cents=1800, target=3, duration_s=600
        )
        page = await browser.new_page(WIDTH, HEIGHT)
        await page.set_geolocation(*OUTSIDE_XIXI, origin=page_node.url)
        await page.goto(f"{page_node.url}/r/r1#token={token('viewer', 'v9')}")
        await page.wait_for(LIVE)
        card = f"[data-gb={js(opened['gb'])}]"
        await page.wait_for(f"document.querySelector({js(card)})")
        assert not await page.evaluate(f"!!document.querySelector({js(card + ' button.join')})")
        await page.click("#locate")
        await page.wait_for("document.querySelectorAll('#nearby button').length > 0")
        first = await page.evaluate("document.querySelector('#nearby button').textContent")
        assert "西溪澄园" in first
        await page.click("#nearby button")
        await page.wait_for(
            "document.querySelector('#community-name').textContent.includes('西溪澄园')"
        )
        assert await page.evaluate("document.querySelector('#nearby').hidden")
        await page.click(f"{card} button.join")
        await page.wait_for(
            f"document.querySelector({js(card + ' .gb-count')})?.textContent"
            ".includes('本小区已有 1 位邻居参团，还差 2 人成团')"
        )
        await no_horizontal_scroll(page)
        assert page.errors == []


async def test_viewer_page_recovers_after_its_node_restarts(
    page_node: Node, tmp_path: Path, redis_url: str
) -> None:
    """The page reconnects after its node goes away (1001) and replays what it missed
    (hello.since → recovered), without a new snapshot and without duplicates."""
    other = Node(tmp_path / "other", redis_url=redis_url).start()
    try:
        async with (
            RoomClient(other.url, "r1", token("host", "host1")) as host,
            Browser.launch() as browser,
        ):
            page = await browser.new_page(WIDTH, HEIGHT)
            await page.goto(f"{page_node.url}/r/r1#token={token('viewer', 'v1')}")
            await page.wait_for(LIVE)
            await page.evaluate(
                "window.snapshots = 0; window.livecore.channel.on('snapshot', () => snapshots++);"
                "window.statuses = []; window.livecore.channel.on('status', "
                "(s) => statuses.push(s.status + ':' + (s.code || '')))"
            )
            await host.request("comment", text="before the restart")
            await page.wait_for(has_comment("before the restart"))
            page_node.stop()
            await page.wait_for("window.livecore.channel.status === 'reconnecting'")
            await host.request("comment", text="while you were away")
            page_node.start()
            await page.wait_for(LIVE, wait=30)
            await page.wait_for(has_comment("while you were away"))
            await host.request("comment", text="after the restart")
            await page.wait_for(has_comment("after the restart"))
            assert await page.evaluate("window.snapshots") == 0, "recovered, not re-snapshotted"
            assert "reconnecting:1001" in await page.evaluate("window.statuses")
            texts = await page.evaluate(
                "[...document.querySelectorAll('#comments .text')].map((e) => e.textContent)"
            )
            assert texts == ["before the restart", "while you were away", "after the restart"]
            # Reconnect attempts while the node was down may log refused connections.
            errors = [e for e in page.errors if "ERR_CONNECTION_REFUSED" not in e]
            assert errors == []
    finally:
        other.stop()


async def test_host_console_opens_a_poll_and_moderates(page_node: Node, tmp_path: Path) -> None:
    """The host page's poll form opens a poll; tapping a comment offers delete, and it works."""
    async with (
        RoomClient(page_node.url, "r1", token("viewer", "v1")) as viewer,
        Browser.launch() as browser,
    ):
        page = await browser.new_page(WIDTH, HEIGHT)
        await page.goto(f"{page_node.url}/host/r1#token={token('host', 'host1')}")
        await page.wait_for(LIVE)
        await page.wait_for("document.querySelector('#title').textContent === 'Room r1'")

        await page.fill("#poll-question", "Peach or plum?")
        await page.click("#poll-add")
        options = ["Peach", "Plum", "Both"]
        await page.evaluate(
            f"document.querySelectorAll('.poll-option').forEach((el, i) => "
            f"{{ el.value = {js(options)}[i]; }})"
        )
        await page.evaluate("document.querySelector('#poll-duration').value = '60'")
        await page.click("#poll-open")
        opened = await wait_event(viewer, lambda e: e["t"] == "poll_opened")
        assert opened["question"] == "Peach or plum?" and opened["options"] == options
        assert opened["closes_at"] > 0
        await page.wait_for(f"document.querySelector('[data-poll={js(opened['poll'])}]')")

        sent = await viewer.request("comment", text="please delete me")
        item = f"#comments li[data-o='{sent['o']}']"
        await page.wait_for(f"document.querySelector({js(item)})")
        await page.click(f"{item} .c-body")
        await page.click(f"{item} [data-act='delete']")
        deleted = await wait_event(viewer, lambda e: e["t"] == "comment_deleted")
        assert deleted["target"] == sent["o"]
        await page.wait_for(f"!document.querySelector({js(item)})")

        await no_horizontal_scroll(page)
        await page.screenshot(tmp_path / "host.png")
        assert page.errors == []


async def test_host_console_forms_send_cards_group_buys_and_commission(
    page_node: Node,
) -> None:
    """Prices typed in 元 go out as integer cents; tiers, bonus, cards and commission too;
    the console then shows the group buy's progress per community."""
    async with (
        RoomClient(page_node.url, "r1", token("viewer", "v1", community=XIXI)) as viewer,
        Browser.launch() as browser,
    ):
        page = await browser.new_page(WIDTH, HEIGHT)
        await page.goto(f"{page_node.url}/host/r1#token={token('host', 'host1')}")
        await page.wait_for(LIVE)

        async def submit(form: str, values: dict[str, str]) -> None:
            for selector, value in values.items():
                await page.fill(selector, value)
            await page.click(f"{form} button[type=submit]")

        await page.click("#gb-tier-add")
        await page.click("#gb-tier-add")
        await page.evaluate(
            "(() => { const m = document.querySelectorAll('.tier-members'),"
            " d = document.querySelectorAll('.tier-discount');"
            " m[0].value = '5'; d[0].value = '8'; m[1].value = '3'; d[1].value = '4.5'; })()"
        )
        await submit(
            "#gb-form",
            {"#gb-product": "Honey peach", "#gb-price": "39.9", "#gb-target": "6",
             "#gb-duration": "30", "#gb-max": "3", "#gb-bonus-invites": "2", "#gb-bonus": "1"},
        )  # fmt: skip
        opened = await wait_event(viewer, lambda e: e["t"] == "groupbuy_opened")
        assert opened["price_cents"] == 3990 and opened["target"] == 6 and opened["max_qty"] == 3
        assert opened["tiers"] == [[3, 450], [5, 800]] and opened["scope"] == "community"
        assert (opened["bonus_invites"], opened["bonus_cents"]) == (2, 100)

        await submit(
            "#product-form",
            {"#pc-name": "Honey peach 2.5 kg", "#pc-price": "59.90", "#pc-stock": "120"},
        )
        product = await wait_event(viewer, lambda e: e["t"] == "card")
        assert product["card"] == {
            "kind": "product", "name": "Honey peach 2.5 kg", "price_cents": 5990, "stock": 120,
        }  # fmt: skip
        await submit(
            "#trace-form",
            {"#tc-batch": "B-7", "#tc-origin": "Yangshan", "#tc-readings": "4.1 3.9, 4.0"},
        )
        trace = (await wait_event(viewer, lambda e: e["t"] == "card"))["card"]
        assert trace["kind"] == "trace" and [v for _, v in trace["readings"]] == [4.1, 3.9, 4.0]
        assert trace["readings"][1][0] - trace["readings"][0][0] == 600
        await submit("#testimonial-form", {"#tm-author": "Auntie Wang", "#tm-text": "Sweet!"})
        quote = (await wait_event(viewer, lambda e: e["t"] == "card"))["card"]
        assert quote == {"kind": "testimonial", "author": "Auntie Wang", "text": "Sweet!"}

        await submit("#commission-form", {"#cm-l1": "15", "#cm-l2": "2.5"})
        await page.wait_for("document.querySelector('#cm-current').textContent.includes('15%')")
        assert "2.5%" in await page.evaluate("document.querySelector('#cm-current').textContent")

        await viewer.request("groupbuy_join", gb=opened["gb"], qty=2)
        row = f"[data-gb={js(opened['gb'])}] li[data-group={js(XIXI)}]"
        text = await page.wait_for(f"document.querySelector({js(row)})?.textContent")
        assert "1/6" in text and "西溪澄园" in text and "¥39.90" in text
        await no_horizontal_scroll(page)
        assert page.errors == []


async def test_channel_and_msgpack_in_the_browser(page_node: Node) -> None:
    """The page's own msgpack matches Python's; the channel dedupes, bounds and spots gaps."""
    sample = {
        "t": "batch", "a": 1, "z": 2**40, "neg": [-1, -33, -200, -70000, -(2**40)],
        "f": 1.5, "s": "中文" * 20, "b": b"\x00\x01", "n": None, "ok": True,
        "big": 2**63 + 5, "m": {str(i): i for i in range(20)}, "l": list(range(70000)),
    }  # fmt: skip
    packed = msgpack.packb(sample, use_bin_type=True).hex()
    async with Browser.launch() as browser:
        page = await browser.new_page(WIDTH, HEIGHT)
        await page.goto(f"{page_node.url}/r/r1")  # no token: the page does not connect
        result = await page.evaluate(CHANNEL_CHECK.replace("__HEX__", js(packed)))
    assert result["same"], "re-encoding what Python packed gives the same bytes"
    assert result["big"] == str(2**63 + 5) and result["z"] == 2**40
    assert result["neg"] == sample["neg"] and result["s"] == sample["s"] and result["b"] == [0, 1]
    assert result["comments"] == 200 and result["first"] == 51 and result["dom"] == 200
    assert result["offset"] == 250 and result["likes"] == 7
    assert result["closed"] == [4100], "a gap closes the socket to recover with since"
    assert result["group"] == 2, "an older group state does not replace a newer one"
