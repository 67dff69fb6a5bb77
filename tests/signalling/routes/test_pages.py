"""The pages' files without a browser: routes, the string table, no doubled labels."""

from __future__ import annotations

import re

import httpx

from livecore.errors import ErrorCode
from signalling.routes.pages import STATIC
from tests.helpers import Node

I18N = (STATIC / "i18n.js").read_text()


def table(lang: str) -> set[str]:
    start = I18N.index(f"  {lang}: {{")
    end = I18N.index("\n  },", start)
    return set(re.findall(r'^\s+"([^"]+)":', I18N[start:end], re.M))


def test_every_error_code_has_a_sentence_in_both_languages() -> None:
    for lang in ("zh", "en"):
        keys = table(lang)
        missing = [c.value for c in ErrorCode if f"err.{c.value}" not in keys]
        assert missing == [], f"{lang}: no sentence for {missing}"


def test_both_languages_have_the_same_keys() -> None:
    assert table("zh") ^ table("en") == set()


def test_no_key_is_written_twice() -> None:
    """A key given twice in one language silently takes the later sentence (two
    branches each adding the same key: the earlier text is dead)."""
    for lang in ("zh", "en"):
        start = I18N.index(f"  {lang}: {{")
        keys = re.findall(r'^\s+"([^"]+)":', I18N[start : I18N.index("\n  },", start)], re.M)
        assert sorted(k for k in set(keys) if keys.count(k) > 1) == [], lang


#: The package page (/t/{batch}) arrives as one inlined document (one round trip
#: on a phone network), so it carries its own small table in trace.js.
OWN_TABLE = {"trace.html": "trace.js"}


def _labels(text: str) -> set[str]:
    return set(re.findall(r'data-i18n(?:-placeholder|-aria|-title)?="([^"]+)"', text))


def _own_table(script: str, lang: str) -> set[str]:
    source = (STATIC / script).read_text()
    start = source.index(f"  {lang}: {{") + len(f"  {lang}: {{")
    end = source.index("\n  },", start)
    body = re.sub(r'"[^"]*"|`[^`]*`', '""', source[start:end])  # keys, not words in strings
    return set(re.findall(r"(?:^|[\s,{])([a-zA-Z_]\w*):", body))


def test_every_label_the_pages_use_is_in_the_table() -> None:
    keys = table("zh")
    used: set[str] = set()
    for path in STATIC.glob("*.html"):
        if path.name not in OWN_TABLE:
            used |= _labels(path.read_text())
    for path in STATIC.glob("*.js"):
        if path.name not in OWN_TABLE.values():
            used |= set(re.findall(r'\bt\("([a-z0-9_.]+)"', path.read_text()))
    assert sorted(used - keys) == []


def test_the_package_page_has_every_label_in_both_languages() -> None:
    for page, script in OWN_TABLE.items():
        zh, en = _own_table(script, "zh"), _own_table(script, "en")
        assert zh == en
        used = _labels((STATIC / page).read_text())
        used |= set(re.findall(r'\bt\("([a-zA-Z_]\w*)"', (STATIC / script).read_text()))
        assert sorted(used - zh) == []


def test_pages_carry_no_doubled_labels_and_no_hand_written_codec() -> None:
    for path in STATIC.glob("*.html"):
        text = path.read_text()
        assert not re.search(r"[\u4e00-\u9fff]+ [A-Z][a-z]+", text), f"{path.name} doubles a label"
    assert not (STATIC / "msgpack.js").exists()


def test_page_routes(node: Node) -> None:
    for path in ("/r/r1", "/host/r1", "/o/r1", "/d/r1", "/board"):
        answer = httpx.get(f"{node.url}{path}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    bad = httpx.get(f"{node.url}/o/bad%20room")
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_field"
    for vendor in ("msgpack.js", "qrcode.js", "uplot.js", "hls.js", "uplot.css"):
        assert httpx.get(f"{node.url}/static/vendor/{vendor}").status_code == 200, vendor
