"""The outage scenarios of ``python -m loadtests netlab``: a link down, a network switch.

c: the viewer's phone loses its link on the room page (video back after the
link, comments posted meanwhile shown exactly once); d: the host's phone
loses its link while the host page publishes; e: the host's phone switches
networks. Each measures from the link back (the switch) to the viewer's next
decoded frame. A scenario whose pages do not recover yet says so with its
figures (``ok: false``); nothing is made up for it.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

from playwright.async_api import Page

from clients.python.room import RoomClient
from loadtests.netlab import chromium
from loadtests.netlab.node import LabNode
from loadtests.netlab.scenarios import Bench, Scenario

#: Comments posted every this many seconds during an outage scenario (by turns
#: from TALKERS users, each under the node's per-user comment rate).
COMMENT_EVERY_S = 0.5
TALKERS = 3
#: Seconds comments go on after a link is back (then stop: the room page lists the last 60).
COMMENTS_AFTER_S = 3.0


class Talkers:
    """Comments posted every ``COMMENT_EVERY_S`` from inside the node's namespace (a
    thread with its own loop: its sockets live there), each with a unique mark."""

    def __init__(self, bench: Bench, room: str) -> None:
        self.bench, self.room = bench, room
        self.acked: list[str] = []
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._task: asyncio.Future[None] | None = None

    def start(self) -> None:
        lab, node = self.bench.lab, self.bench.node
        talk = lab.call(lab.node, lambda: asyncio.run(self._talk(node)))
        self._task = asyncio.ensure_future(talk)

    async def _talk(self, node: LabNode) -> None:
        clients = [RoomClient(node.local_url, self.room,
                              self.bench.token("viewer", f"talker{k}", self.room))
                   for k in range(TALKERS)]  # fmt: skip
        for client in clients:
            await client.connect()
        try:
            n = 0
            while not self._stop.is_set():
                mark = f"[nl{n}]"
                try:
                    await clients[n % TALKERS].request("comment", text=f"netlab {mark}", wait=5)
                    self.acked.append(mark)
                except Exception as exc:  # counted: a refused comment is no loss
                    self.failed.append(f"{mark} {type(exc).__name__}: {exc}")
                n += 1
                await asyncio.sleep(COMMENT_EVERY_S)
        finally:
            for client in clients:
                await client.close()

    async def finish(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task


async def _comments_seen(
    page: Page, marks: list[str], within_s: float
) -> tuple[Counter[str], float | None]:
    """How often the page holds or shows each mark (the larger count: its model or its
    list), once it holds all (or at ``within_s``), and when it held all (seconds from
    the call; None: never)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        model, shown = await page.evaluate(chromium.SHOWN_COMMENTS)
        seen = Counter({m: max(sum(m in text for text in model), sum(m in text for text in shown))
                        for m in marks})  # fmt: skip
        if all(seen[m] for m in marks):
            return seen, loop.time() - started
        if loop.time() - started > within_s:
            return seen, None
        await asyncio.sleep(0.2)


async def viewer_outage(bench: Bench) -> Scenario:
    """(c) The viewer's link down, then up, on the room page: video back after the link
    (next decoded frame), and every comment posted meanwhile shown once."""
    result = Scenario("viewer_outage")
    options, lab, phone = bench.options, bench.lab, bench.phone("viewer")
    await bench.publish("r1", "host1", options.clip)
    async with bench.page("viewer", "/r/r1") as page:
        await chromium.wait_js(page, chromium.CHANNEL_LIVE, 20)
        if await chromium.next_stage_frame(page, "host1", 20) is None:
            raise RuntimeError("the room page never played host1 before the outage")
        talkers = Talkers(bench, "r1")
        talkers.start()
        try:
            await asyncio.sleep(2 * COMMENT_EVERY_S)  # comments before the outage too
            await lab.set_link(phone, up=False)
            await asyncio.sleep(options.outage_s)  # the outage itself
            await lab.set_link(phone, up=True)
            during = list(talkers.acked)  # posted before the link came back

            async def talk_on() -> None:  # comments after the link too, then no more
                await asyncio.sleep(COMMENTS_AFTER_S)
                await talkers.finish()

            result.recovery_s, (_, during_shown), _ = await asyncio.gather(
                chromium.next_stage_frame(page, "host1", options.recover_within_s),
                _comments_seen(page, during, options.recover_within_s),
                talk_on(),
            )
        finally:
            await talkers.finish()
        seen, _ = await _comments_seen(page, talkers.acked, 5.0)
    lost = [m for m in talkers.acked if not seen[m]]
    doubled = [m for m in talkers.acked if seen[m] > 1]
    result.detail = {"outage_s": options.outage_s, "comments_posted": len(talkers.acked),
                     "comments_lost": len(lost), "comments_doubled": len(doubled),
                     "comments_back_s": None if during_shown is None
                     else round(during_shown, 2),
                     "comments_refused": len(talkers.failed)}  # fmt: skip
    if result.recovery_s is None:
        result.problems.append(f"no video within {options.recover_within_s:g} s of the link")
    else:
        result.recovery_s = round(result.recovery_s, 2)
    if lost or doubled:
        result.problems.append(f"comments lost {lost[:5]} doubled {doubled[:5]}")
    if not talkers.acked:
        result.problems.append(f"no comment was accepted: {talkers.failed[:3]}")
    return result


async def _host_cut(bench: Bench, name: str, room: str, host: str, switch: bool) -> Scenario:
    """The host page publishes Chromium's fake camera from the host's phone, the room
    page plays it on the viewer's; then the host's link goes down for the outage and
    comes back (``switch``: the phone gets a new address instead). Measured: from the
    link back (the switch) to the viewer's next decoded frame of the host."""
    result = Scenario(name)
    options, lab, phone = bench.options, bench.lab, bench.phone("host")
    await bench.room(room, host)
    async with (
        bench.page("host", f"/host/{room}#token={bench.token('host', host, room)}") as studio,
        bench.page("viewer", f"/r/{room}") as viewer,
    ):
        await chromium.wait_js(studio, chromium.CHANNEL_LIVE, 20)
        await studio.click("#golive")
        await chromium.wait_js(studio, "!!window.livecore.stage.publishing", 20)
        await chromium.wait_js(viewer, chromium.CHANNEL_LIVE, 20)
        if await chromium.next_stage_frame(viewer, host, 20) is None:
            raise RuntimeError(f"the room page never played {host} before the cut")
        if switch:
            moved_from = phone.address
            await lab.switch_address(phone)
            result.detail = {"switched": f"{moved_from} -> {phone.address}"}
        else:
            await lab.set_link(phone, up=False)
            await asyncio.sleep(options.outage_s)  # the outage itself
            await lab.set_link(phone, up=True)
            result.detail = {"outage_s": options.outage_s}
        back = await chromium.next_stage_frame(viewer, host, options.recover_within_s)
        result.detail["host_publishing_after"] = await studio.evaluate(
            "!!window.livecore.stage.publishing"
        )
    if back is None:
        result.problems.append(
            f"the viewer decoded no frame of the host within {options.recover_within_s:g} s"
        )
    else:
        result.recovery_s = round(back, 2)
    return result


async def host_outage(bench: Bench) -> Scenario:
    """(d) The host's link down, then up: the stream back at a viewer after."""
    await bench.unpublish("r1")  # the clip leaves from the host's phone too
    return await _host_cut(bench, "host_outage", "r2", "host2", switch=False)


async def host_switch(bench: Bench) -> Scenario:
    """(e) The host's phone switches networks (a new address): the stream back after."""
    await bench.unpublish("r1")
    return await _host_cut(bench, "host_switch", "r3", "host3", switch=True)
