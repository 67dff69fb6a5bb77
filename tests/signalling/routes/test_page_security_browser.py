"""Every page under its Content-Security-Policy, and tokens kept out of addresses and
links, in headless Chromium at phone size.

Each page is opened with ``#token=…`` (the way a host, an officer or the brand
receives its link): the page must load with no CSP violation (none reported to
the page, none in the console), the address bar must hold no token once it has
loaded, and no link or source on the page may carry it; the next page of the same
tab still acts with it (sessionStorage), without it in any address.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from clients.python.room import RoomClient
from tests.browser import Watch, chromium_path, phone, wait_js
from tests.helpers import Node, create_room, token
from tests.signalling.routes.pagekit import XIXI
from tests.signalling.routes.trace.trace_helpers import life

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180)]

#: Collects the page's CSP violations from the first byte (before any page script).
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${where}`);
});
"""
#: Every address the page holds: its own, and each link's and source's.
ADDRESSES = """() => [location.href,
  ...[...document.querySelectorAll('[href],[src],[action],[data-url],input[value]')].map(
    (el) => el.getAttribute('href') || el.getAttribute('src') || el.getAttribute('action')
      || el.getAttribute('data-url') || el.value || ''),
  ...[...document.querySelectorAll('a')].map((a) => a.href)]"""
BATCH = "tea-2026-001"


@pytest.fixture
def node(tmp_path: Path, redis_url: str) -> Iterator[Node]:
    """A node with room r1 and a traceability batch; fails first without Chromium in CI."""
    chromium_path()
    started = Node(tmp_path / "node", redis_url=redis_url).start()
    create_room(started.url)
    life(started.url, BATCH)
    yield started
    started.stop()


def csp_problems(watch: Watch) -> list[str]:
    return [p for p in watch.problems if "Content Security Policy" in p or "CSP" in p]


async def opened(browser: Browser, url: str, ready: str) -> tuple[Page, Watch]:
    page, watch = await phone(browser)
    await page.add_init_script(RECORD_VIOLATIONS)
    answer = await page.goto(url)
    assert answer is not None
    headers = await answer.all_headers()
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    await wait_js(page, ready, 20)
    return page, watch


async def no_token_anywhere(page: Page, secret: str) -> None:
    addresses = await page.evaluate(ADDRESSES)
    leaked = [a for a in addresses if secret in a or "token=" in a]
    assert not leaked, leaked
    assert "#" not in page.url, page.url


PAGES = [
    ("viewer", "/r/r1", ("viewer", "v1", "r1"), "document.querySelector('#share')"),
    ("host", "/host/r1", ("host", "host1", "r1"), "document.querySelector('#dashboard-link')"),
    ("officer", "/o/r1", ("viewer", "off1", "r1"), "document.querySelector('main, body')"),
    ("dashboard", "/d/r1", ("host", "host1", "r1"), "document.querySelector('body')"),
    ("board", "/board", ("admin", "ops", "*"), "document.querySelector('body')"),
    ("clips", "/clips/r1", ("host", "host1", "r1"), "document.querySelector('body')"),
    ("clip", "/c/r1~nothing", None, "document.querySelector('body')"),
    ("trace", f"/t/{BATCH}", None, "document.querySelector('body')"),
    ("label", f"/t/{BATCH}/label", None, "document.querySelector('canvas')"),
]


async def test_every_page_passes_its_csp_and_keeps_the_token_to_itself(
    node: Node, browser: Browser
) -> None:
    """Each page, opened with a token in its fragment and something to draw (a group buy
    with a member: progress bars): no CSP violation, no token in the address bar, in
    any link or source, once the page's requests have settled."""
    async with (
        RoomClient(node.url, "r1", token("host", "host1")) as host,
        RoomClient(node.url, "r1", token("viewer", "buyer", community=XIXI)) as buyer,
    ):
        gb = await host.request("groupbuy_open", product="Honey peach", price_cents=3990,
                                    target=5, duration_s=600, max_qty=3)  # fmt: skip
        await buyer.request("groupbuy_join", gb=gb["gb"], qty=1)
    for name, path, who, ready in PAGES:
        value = token(*who) if who is not None else "t" * 40
        page, watch = await opened(browser, f"{node.url}{path}#token={value}", ready)
        await page.wait_for_load_state("networkidle")
        await no_token_anywhere(page, value)
        violations = await page.evaluate("window.__csp")
        assert violations == [] and csp_problems(watch) == [], (name, violations, watch.problems)
        await page.context.close()


async def test_the_next_page_of_the_tab_acts_with_the_kept_token(
    node: Node, browser: Browser
) -> None:
    """The host's dashboard link carries no token, yet the dashboard opened from it in
    the same tab acts with the host's token; a page of another room does not get it."""
    host = token("host", "host1")
    page, _ = await opened(
        browser, f"{node.url}/host/r1#token={host}", "document.querySelector('#dashboard-link')"
    )
    link = await wait_js(page, "document.querySelector('#dashboard-link').getAttribute('href')")
    assert link == "/d/r1"
    await page.goto(f"{node.url}{link}")
    kept = "(async () => (await import('/static/boot.js')).linkToken())()"
    assert await wait_js(page, kept) == host
    await no_token_anywhere(page, host)
    await page.goto(f"{node.url}/r/r2")
    assert await page.evaluate(kept) is None  # the host's token is for r1 only
    await page.context.close()
