"""Card checks: product, trace and testimonial cards, and each bad field named."""

from __future__ import annotations

from typing import Any

import pytest

from livecore.cards import MAX_READINGS, validate_card
from livecore.errors import ErrorCode, LivecoreError


def make_product(**fields: Any) -> dict[str, Any]:
    """A valid product card with fields overridden (None removes a field)."""
    card: dict[str, Any] = {"kind": "product", "name": "Peach box", "price_cents": 1999}
    card.update(fields)
    return {k: v for k, v in card.items() if v is not None}


def make_trace(**fields: Any) -> dict[str, Any]:
    """A valid trace card with fields overridden (None removes a field)."""
    card: dict[str, Any] = {"kind": "trace", "batch": "B-7", "origin": "Pinggu"}
    card.update(fields)
    return {k: v for k, v in card.items() if v is not None}


def make_testimonial(**fields: Any) -> dict[str, Any]:
    """A valid testimonial card with fields overridden (None removes a field)."""
    card: dict[str, Any] = {"kind": "testimonial", "author": "Li", "text": "Sweet!"}
    card.update(fields)
    return {k: v for k, v in card.items() if v is not None}


def test_product_card() -> None:
    """A full product card passes with its strings trimmed and its numbers untouched."""
    card = {
        "kind": "product",
        "name": "  Peach box ",
        "price_cents": 1999,
        "image_url": " https://img.example/p.jpg ",
        "stock": 12,
    }
    assert validate_card(card) is None
    assert card == {
        "kind": "product",
        "name": "Peach box",
        "price_cents": 1999,
        "image_url": "https://img.example/p.jpg",
        "stock": 12,
    }


@pytest.mark.parametrize(
    "card",
    [
        make_product(),
        make_product(price_cents=0, stock=0),
        make_product(price_cents=100_000_000, stock=1_000_000),
        make_product(name="x" * 80, image_url="http://img.example/p.jpg"),
    ],
    ids=["minimal", "zeros", "maximums", "longest-name-http"],
)
def test_product_card_bounds(card: dict[str, Any]) -> None:
    """Product cards at the edges of every range pass."""
    validate_card(card)


def test_trace_card() -> None:
    """A full trace card passes with its strings trimmed and its readings kept."""
    readings = [[1700000000, 3.5], [1700000060, 4], [1700000120.5, -1.25]]
    card = {
        "kind": "trace",
        "batch": " B-7 ",
        "origin": "\tPinggu, Beijing\n",
        "report_url": "http://lab.example/r.pdf",
        "readings": readings,
    }
    validate_card(card)
    assert card == {
        "kind": "trace",
        "batch": "B-7",
        "origin": "Pinggu, Beijing",
        "report_url": "http://lab.example/r.pdf",
        "readings": readings,
    }


@pytest.mark.parametrize(
    "card",
    [
        make_trace(),
        make_trace(readings=[]),
        make_trace(readings=[[i, 4.0] for i in range(MAX_READINGS)]),
    ],
    ids=["minimal", "no-readings", "max-readings"],
)
def test_trace_card_bounds(card: dict[str, Any]) -> None:
    """Trace cards without readings or with the maximum number pass."""
    validate_card(card)


def test_testimonial_card() -> None:
    """A testimonial card passes with its strings trimmed."""
    card = {"kind": "testimonial", "author": " Li ", "text": "  So sweet!  "}
    validate_card(card)
    assert card == {"kind": "testimonial", "author": "Li", "text": "So sweet!"}


@pytest.mark.parametrize(
    ("card", "field"),
    [
        # kind
        pytest.param({"kind": "coupon"}, "kind", id="unknown-kind"),
        pytest.param({"name": "x", "price_cents": 1}, "kind", id="no-kind"),
        pytest.param({"kind": 1}, "kind", id="int-kind"),
        pytest.param({"kind": "Product"}, "kind", id="kind-case"),
        # a field of another kind
        pytest.param(make_product(batch="B-1"), "batch", id="product-with-batch"),
        pytest.param(make_trace(name="x"), "name", id="trace-with-name"),
        pytest.param(make_testimonial(price_cents=1), "price_cents", id="testimonial-with-price"),
        pytest.param(make_testimonial(zzz=1, readings=[]), "readings", id="first-extra-sorted"),
        # product
        pytest.param(make_product(price_cents=19.99), "price_cents", id="price-float"),
        pytest.param(make_product(price_cents=1999.0), "price_cents", id="price-integral-float"),
        pytest.param(make_product(price_cents=-1), "price_cents", id="price-negative"),
        pytest.param(make_product(price_cents=True), "price_cents", id="price-bool"),
        pytest.param(make_product(price_cents="1999"), "price_cents", id="price-string"),
        pytest.param(make_product(price_cents=100_000_001), "price_cents", id="price-too-big"),
        pytest.param({"kind": "product", "name": "x"}, "price_cents", id="price-missing"),
        pytest.param(make_product(name=None), "name", id="name-missing"),
        pytest.param(make_product(name="   "), "name", id="name-blank"),
        pytest.param(make_product(name="x" * 81), "name", id="name-too-long"),
        pytest.param(make_product(name=5), "name", id="name-int"),
        pytest.param(make_product(stock=-1), "stock", id="stock-negative"),
        pytest.param(make_product(stock=False), "stock", id="stock-bool"),
        pytest.param(make_product(stock=1_000_001), "stock", id="stock-too-big"),
        pytest.param(make_product(image_url="ftp://img.example/p.jpg"), "image_url", id="url-ftp"),
        pytest.param(make_product(image_url="javascript:alert(1)"), "image_url", id="url-js"),
        pytest.param(make_product(image_url="img.example/p.jpg"), "image_url", id="url-no-scheme"),
        pytest.param(make_product(image_url=""), "image_url", id="url-empty"),
        pytest.param(make_product(image_url="https://" + "x" * 493), "image_url", id="url-501"),
        # trace
        pytest.param(make_trace(batch=None), "batch", id="batch-missing"),
        pytest.param(make_trace(batch="b" * 65), "batch", id="batch-too-long"),
        pytest.param(make_trace(origin=None), "origin", id="origin-missing"),
        pytest.param(make_trace(origin="o" * 121), "origin", id="origin-too-long"),
        pytest.param(make_trace(report_url="file:///etc/passwd"), "report_url", id="report-file"),
        pytest.param(make_trace(readings="3.5"), "readings", id="readings-string"),
        pytest.param(make_trace(readings={"t": 1}), "readings", id="readings-map"),
        pytest.param(
            make_trace(readings=[[i, 1] for i in range(MAX_READINGS + 1)]), "readings", id="51"
        ),
        pytest.param(make_trace(readings=[1700000000, 3.5]), "readings[0]", id="flat-pair"),
        pytest.param(make_trace(readings=[[1]]), "readings[0]", id="pair-of-one"),
        pytest.param(make_trace(readings=[[1, 2], [1, 2, 3]]), "readings[1]", id="triple"),
        pytest.param(make_trace(readings=[[1, "4"]]), "readings[0]", id="string-value"),
        pytest.param(make_trace(readings=[[True, 4]]), "readings[0]", id="bool-time"),
        pytest.param(make_trace(readings=[[1, None]]), "readings[0]", id="nil-value"),
        pytest.param(make_trace(readings=[(1, 2)]), "readings[0]", id="tuple-pair"),
        # testimonial
        pytest.param(make_testimonial(author=None), "author", id="author-missing"),
        pytest.param(make_testimonial(author="a" * 41), "author", id="author-too-long"),
        pytest.param(make_testimonial(text="t" * 301), "text", id="text-too-long"),
        pytest.param(make_testimonial(text=" \n "), "text", id="text-blank"),
    ],
)
def test_bad_field_is_named(card: dict[str, Any], field: str) -> None:
    """Each bad card is invalid_field with a message starting with the bad field's name."""
    with pytest.raises(LivecoreError) as info:
        validate_card(card)
    assert info.value.code is ErrorCode.INVALID_FIELD
    assert info.value.message.startswith(f"{field}: "), info.value.message
