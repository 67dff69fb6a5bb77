"""A batch's life through the REST API, shared by the trace tests."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.helpers import token

REPORT = b"%PDF-1.4\n% livecore test report\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def brand(user: str = "brand1") -> dict[str, str]:
    return {"Authorization": f"Bearer {token('host', user, 'r1')}"}


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {token('admin', 'ops', '*')}"}


def register(base: str, batch: str = "tea-2026-001", **extra: Any) -> httpx.Response:
    body = {
        "id": batch, "product": "勐海春茶", "brand": "本味溯源", "origin": "云南 勐海",
        "place": {"name": "勐海县 布朗山 3号地块", "lat": 21.95, "lng": 100.45}, "room": "r1",
        **extra,
    }  # fmt: skip
    return httpx.post(f"{base}/api/batches", json=body, headers=brand())


def life(
    base: str, batch: str = "tea-2026-001", start: float | None = None
) -> list[dict[str, Any]]:
    """Register a batch and append its whole life; returns the records."""
    now = time.time()
    t0 = start if start is not None else now - 20 * 86400
    assert register(base, batch, at=t0).status_code == 201
    up = httpx.post(
        f"{base}/api/batches/{batch}/reports", content=REPORT,
        headers={**brand(), "Content-Type": "application/pdf"},
    )  # fmt: skip
    assert up.status_code == 201, up.text
    sha = up.json()["sha256"]
    farm = {"name": "勐海县 布朗山 3号地块", "lat": 21.95, "lng": 100.45}
    plant = {"name": "勐海 初制所", "lat": 21.96, "lng": 100.44}
    steps = [
        {"type": "planted", "at": t0 + 60, "place": farm, "actor": "岩温 (茶农)",
         "data": {"crop": "大叶种茶", "field": "3号地块"}},
        {"type": "fertilised", "at": t0 + 3600, "place": farm, "actor": "岩温 (茶农)",
         "data": {"fertiliser": "腐熟羊粪", "amount_kg": 120.5, "organic": True}},
        {"type": "harvested", "at": t0 + 10 * 86400, "place": farm, "actor": "岩温 (茶农)",
         "data": {"quantity_kg": 85}},
        {"type": "processed", "at": t0 + 11 * 86400, "place": plant, "actor": "初制所 李师傅",
         "data": {"workshop_temp_c": 24.5, "workshop_humidity_pct": 55.2,
                  "steps": "杀青 揉捻 晒干"}},
        {"type": "tested", "at": t0 + 12 * 86400, "place": {"name": "昆明 检测中心"},
         "actor": "云南省农产品检测中心", "data": {"report": sha, "lab": "云南省农产品检测中心",
                                          "result": "pass", "items": "农残 62 项"}},
        {"type": "shipped", "at": now - 3 * 86400, "place": plant, "actor": "顺丰冷运",
         "data": {"carrier": "顺丰冷运", "vehicle": "云A·12345", "devices": ["truck-logger"]}},
    ]  # fmt: skip
    for step in steps:
        answer = httpx.post(f"{base}/api/batches/{batch}/events", json=step, headers=brand())
        assert answer.status_code == 201, answer.text
    chain = httpx.get(f"{base}/api/batches/{batch}/chain").json()
    records: list[dict[str, Any]] = chain["records"]
    return records


def device_token(base: str, batch: str, device: str = "truck-logger") -> str:
    answer = httpx.post(
        f"{base}/api/batches/{batch}/device-token", json={"device": device}, headers=brand()
    )
    assert answer.status_code == 201, answer.text
    value: str = answer.json()["token"]
    return value


def post_readings(
    base: str, batch: str, tok: str, readings: list[dict[str, Any]]
) -> httpx.Response:
    return httpx.post(
        f"{base}/api/batches/{batch}/readings", json={"readings": readings},
        headers={"Authorization": f"Bearer {tok}"},
    )  # fmt: skip
