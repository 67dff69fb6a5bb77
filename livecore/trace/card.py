"""What the live room shows when the host pins a batch (pure).

The card is a ``trace`` card (the kind the room already knows: ``batch``,
``origin``, ``report_url``, ``readings``) with more fields: the product, the
page to open (``url``), the stage of the batch's life, whether the chain
verified, and the batch's series with readable names, units, the latest
value and whether it is outside its band.
"""

from __future__ import annotations

from typing import Any

from livecore.trace import series

#: Readings (of the first cold-chain series) in the card's sparkline.
CARD_READINGS = 50


def page_path(batch: str) -> str:
    return f"/t/{batch}"


def report_path(batch: str, sha256: str) -> str:
    return f"/api/batches/{batch}/reports/{sha256}"


def pin_card(
    summary: dict[str, Any],
    latest: list[dict[str, Any]],
    sparkline: list[list[float]],
    *,
    verified: bool,
) -> dict[str, Any]:
    """The card payload for a pinned batch.

    ``summary`` is :func:`livecore.trace.events.summary`; ``latest`` the
    series' latest values (``SeriesStore.latest``); ``sparkline`` ``[t, value]``
    pairs of the batch's main series, oldest first.
    """
    batch = summary["id"]
    card: dict[str, Any] = {
        "kind": "trace",
        "batch": batch,
        "origin": summary["origin"],
        "product": summary["product"],
        "brand": summary["brand"],
        "stage": summary["stage"],
        "url": page_path(batch),
        "verified": verified,
        "readings": [[int(t), v] for t, v in sparkline[-CARD_READINGS:]],
        "series": [live_reading(item, summary["thresholds"]) for item in latest],
    }
    if summary["tested"]:
        card["report_url"] = report_path(batch, summary["tested"][-1]["sha256"])
    return card


def live_reading(item: dict[str, Any], thresholds: dict[str, list[float]]) -> dict[str, Any]:
    """``{series, device, kind, value, at}`` with names, unit, band and excursion flag."""
    kind = item["kind"]
    band = thresholds.get(kind)
    value = item["value"]
    return {
        **item,
        **series.describe(kind),
        "band": band,
        "excursion": band is not None and not band[0] <= value <= band[1],
    }
