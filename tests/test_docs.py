"""docs/ stay in step with the code."""

from __future__ import annotations

import re

from livecore.errors import HTTP_STATUS, ErrorCode
from livecore.wire import ClientType, CloseCode, EventType, ServerType
from tests.helpers import ROOT


def test_every_error_code_is_documented_with_its_status() -> None:
    """docs/protocol.md's error table lists exactly the codes of ErrorCode, with their status."""
    text = (ROOT / "docs" / "protocol.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", text, flags=re.M))
    assert rows == {code.value: str(HTTP_STATUS[code]) for code in ErrorCode}


def _table_first_column(title: str) -> set[str]:
    text = (ROOT / "docs" / "protocol.md").read_text()
    section = text.split(title, 1)[1].split("\n### ", 1)[0]
    rows = re.findall(r"^\| `?([a-z_0-9]+)`? \|", section, flags=re.M)
    return set(rows[1:])  # the first row is the header


def test_close_codes_are_documented() -> None:
    """Every CloseCode has a row in the close-code table, and nothing else does."""
    assert _table_first_column("### Close codes") == {str(int(c)) for c in CloseCode}


def test_client_and_event_types_are_documented() -> None:
    """Every client message type and durable event type has a row."""
    client = {t.value for t in ClientType} - {"hello"}
    assert _table_first_column("### Client → server") == client
    assert _table_first_column("### Events (durable") == {t.value for t in EventType}
    assert _table_first_column("### Server → client") == {t.value for t in ServerType}
