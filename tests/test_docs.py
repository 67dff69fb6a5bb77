"""docs/ stay in step with the code."""

from __future__ import annotations

import re

from livecore.errors import HTTP_STATUS, ErrorCode
from tests.helpers import ROOT


def test_every_error_code_is_documented_with_its_status() -> None:
    """docs/protocol.md's error table lists exactly the codes of ErrorCode, with their status."""
    text = (ROOT / "docs" / "protocol.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", text, flags=re.M))
    assert rows == {code.value: str(HTTP_STATUS[code]) for code in ErrorCode}
