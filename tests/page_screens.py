"""Phone-size screenshots of the pages for the README (not a test).

    .venv/bin/python -m tests.page_screens docs/img

Starts a node on a private Valkey, stages a live room (the host page
publishing Chromium's fake camera, a group buy 5 short of forming, comments
from neighbours with nicknames, product, traceability and testimonial cards,
a poll), and saves viewer.png, host.png, officer.png and dashboard.png at
390×844; then the states of issue 27: trace.png, clip.png, away.png,
resume.png, sheet.png and ended.png.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import msgpack
import websockets

from clients.python.room import RoomClient
from livecore.valkey.embedded import EmbeddedValkey
from tests.browser import launch, phone, wait_js
from tests.helpers import Node, free_port, token
from tests.signalling.routes.pagekit import IN_XIXI, LIVE, XIXI, go_live

ROOM = "peach"
COMMENTS = [
    ("王阿姨", "桃子甜吗？上次的特别好吃"),
    ("小李", "已下单！两箱"),
    ("张叔", "自提点在哪里？"),
    ("陈姐", "给孩子带的，要软一点的"),
    ("团长小周", "还差几个人就成团啦，快叫邻居"),
]


async def join_with_ref(node: Node, user: str, ref: str, gb: str) -> None:
    """A neighbour who came through the officer's link joins (hello carries ``ref``)."""
    url = node.url.replace("http", "ws") + f"/ws/{ROOM}"
    async with websockets.connect(url, subprotocols=[websockets.Subprotocol("livecore.v1")]) as ws:
        tok = token("viewer", user, room=ROOM, community=XIXI)
        await ws.send(msgpack.packb({"t": "hello", "token": tok, "ref": ref}))
        await ws.recv()
        await ws.send(msgpack.packb({"t": "groupbuy_join", "gb": gb, "qty": 1, "id": 1}))
        while True:
            answer: dict[str, Any] = msgpack.unpackb(await ws.recv(), raw=False)
            if answer.get("id") == 1:
                return


async def stage(out: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="livecore-screens-"))
    port = free_port()
    valkey = EmbeddedValkey(work / "valkey", tcp_port=port)
    valkey.start()
    node = Node(work / "node", redis_url=valkey.url).start()
    http = httpx.AsyncClient()
    try:
        made = await http.post(
            f"{node.url}/api/rooms",
            json={"id": ROOM, "title": "阳山水蜜桃 · 产地直播", "store": "邻鲜优选 西溪店"},
            headers={"Authorization": f"Bearer {token('host', 'host1', room=ROOM)}"},
        )
        made.raise_for_status()
        async with (
            launch() as browser,
            RoomClient(node.url, ROOM, token("host", "host1", room=ROOM)) as host,
        ):
            host_page, _ = await phone(browser, scale=1)
            await host_page.goto(
                f"{node.url}/host/{ROOM}#token={token('host', 'host1', room=ROOM)}"
            )
            await go_live(host_page)
            gb = (await host.request(
                "groupbuy_open", product="阳山水蜜桃 2.5kg", price_cents=3990, target=30,
                duration_s=1800, tiers=[[20, 300], [30, 500]], max_qty=3,
            ))["gb"]  # fmt: skip
            now = int(time.time())
            await host.request("card", kind="product", name="阳山水蜜桃 2.5kg", price_cents=3990,
                               stock=120, image_url=f"{node.url}/static/img/peach.svg")  # fmt: skip
            readings = [[now - 600 * (5 - i), 3.8 + 0.1 * i] for i in range(6)]
            await host.request(
                "card", kind="trace", batch="YS-0715", origin="无锡阳山", readings=readings
            )
            await host.request(
                "card", kind="testimonial", author="王阿姨", text="上次团的桃子特别甜！"
            )
            for i in range(20):
                async with RoomClient(
                    node.url, ROOM, token("viewer", f"nb{i}", room=ROOM, community=XIXI)
                ) as v:
                    await v.request("groupbuy_join", gb=gb, qty=1)
            for name, text in COMMENTS:
                minted = await http.post(f"{node.url}/api/rooms/{ROOM}/guest", json={"name": name})
                guest = minted.json()
                async with RoomClient(node.url, ROOM, guest["token"]) as v:
                    await v.request("comment", text=text)
                    await v.request("locate", lat=IN_XIXI[0], lng=IN_XIXI[1])
                    await v.request("groupbuy_join", gb=gb, qty=1)
            await host.request(
                "poll_open", question="下一场想团什么？", options=["草莓", "车厘子", "土鸡蛋"]
            )
            await host.request("mark")  # a highlight clip for clip.png

            viewer, _ = await phone(browser, scale=1, geolocation=IN_XIXI)
            await viewer.goto(f"{node.url}/r/{ROOM}")
            await wait_js(viewer, LIVE)
            await viewer.click("#locate")
            await wait_js(
                viewer, "document.querySelector('#dock').textContent.includes('25位邻居')"
            )
            await viewer.wait_for_timeout(3200)  # the toast has gone
            await viewer.screenshot(path=str(out / "viewer.png"))

            await viewer.click("#dock button.join")
            await wait_js(viewer, "!!document.querySelector('#dock .note-ok')")
            await viewer.goto(f"{node.url}/o/{ROOM}")
            await wait_js(viewer, LIVE)
            await viewer.click("#officer-apply")
            code = await wait_js(viewer, "document.querySelector('#officer-code')?.textContent")
            for i in range(4):
                await join_with_ref(node, f"ref{i}", str(code), gb)
            await wait_js(
                viewer, "document.querySelector('#officer-earned').textContent !== '¥0.00'"
            )
            await viewer.wait_for_timeout(6000)
            await viewer.screenshot(path=str(out / "officer.png"))

            dash, _ = await phone(browser, scale=1)
            await dash.goto(f"{node.url}/d/{ROOM}#token={token('host', 'host1', room=ROOM)}")
            await wait_js(dash, "window.livecore.charts.viewers.points >= 4", 20)
            await dash.screenshot(path=str(out / "dashboard.png"))
            await host_page.wait_for_timeout(500)
            await host_page.screenshot(path=str(out / "host.png"))
            await new_states(node, http, host, host_page, viewer, out)
    finally:
        await http.aclose()
        node.stop()
        valkey.stop()


async def new_states(
    node: Node, http: httpx.AsyncClient, host: RoomClient, host_page: Any, viewer: Any, out: Path
) -> None:
    """trace.png (一键溯源 with 已核验 and the journey), clip.png (a marked clip's share
    page), away.png (the host's page went away), resume.png (继续直播), sheet.png (a
    quick chip's form as a bottom sheet) and ended.png (an ended room's console: no
    开播, the replay link)."""
    host_token = token("host", "host1", room=ROOM)
    registered = await http.post(
        f"{node.url}/api/batches",
        json={"id": "YS-0716", "product": "阳山水蜜桃", "brand": "阳山桃农合作社",
              "origin": "无锡阳山", "room": ROOM},
        headers={"Authorization": f"Bearer {host_token}"},
    )  # fmt: skip
    registered.raise_for_status()
    await host.request("batch_pin", batch="YS-0716")
    await viewer.goto(f"{node.url}/r/{ROOM}")
    await wait_js(viewer, LIVE)
    await wait_js(viewer, "!!document.querySelector('#dock .trace-open')")
    await viewer.click("#dock .trace-open")
    await wait_js(viewer, "!!document.querySelector('#sheet .journey li')")
    await viewer.screenshot(path=str(out / "trace.png"))

    deadline = time.monotonic() + 60
    while not (clips := (await http.get(f"{node.url}/api/rooms/{ROOM}/clips")).json()["clips"]):
        assert time.monotonic() < deadline, "no clip within 60 s of the mark"
        await asyncio.sleep(0.5)
    await viewer.goto(node.url + clips[0]["share"])
    await wait_js(viewer, "document.querySelector('#clip').currentTime > 0.5", 20)
    await wait_js(viewer, "!document.querySelector('#group').hidden")
    await viewer.screenshot(path=str(out / "clip.png"))

    await viewer.goto(f"{node.url}/r/{ROOM}")
    await wait_js(viewer, LIVE)
    await host_page.goto("about:blank")  # the host's browser closed mid-live
    await wait_js(viewer, "document.querySelector('#stage-note-text').textContent"
                          " === '主播暂时离开，马上回来'")  # fmt: skip
    await viewer.wait_for_timeout(3200)  # the toast has gone
    await viewer.screenshot(path=str(out / "away.png"))
    await host_page.goto(f"{node.url}/host/{ROOM}#token={host_token}")
    await wait_js(host_page, "document.querySelector('#golive').textContent === '继续直播'")
    await host_page.wait_for_timeout(500)
    await host_page.screenshot(path=str(out / "resume.png"))

    await host_page.click("#quick [data-open=gb-card]")  # a quick chip: the form in a sheet
    await wait_js(host_page, "!document.querySelector('#host-sheet-backdrop').hidden")
    await host_page.wait_for_timeout(300)
    await host_page.screenshot(path=str(out / "sheet.png"))
    ended = await http.post(f"{node.url}/api/rooms/{ROOM}/end",
                            headers={"Authorization": f"Bearer {host_token}"})  # fmt: skip
    ended.raise_for_status()
    await host_page.reload()  # the console opened again after the end
    await wait_js(host_page, "!document.querySelector('#ended-replay').hidden", 60)
    await host_page.wait_for_timeout(500)
    await host_page.screenshot(path=str(out / "ended.png"))


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots")
    target.mkdir(parents=True, exist_ok=True)
    asyncio.run(stage(target))
