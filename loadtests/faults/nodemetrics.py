"""A node's /metrics read as numbers: the state structures and the counters."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class NodeMetrics:
    #: ``livecore_state_entries{structure}``: entries of each per-room/user/key structure.
    state: dict[str, int]
    #: Connections closed as slow consumers (4008) since the node started.
    slow_consumers: int

    @classmethod
    async def read(cls, base_url: str) -> NodeMetrics:
        async with httpx.AsyncClient(timeout=5) as client:
            text = (await client.get(f"{base_url}/metrics")).text
        state: dict[str, int] = {}
        slow = 0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "livecore_state_entries":
                    state[sample.labels["structure"]] = int(sample.value)
                elif sample.name == "livecore_ws_slow_consumers_total":
                    slow = int(sample.value)
        return cls(state, slow)

    @classmethod
    async def read_all(cls, base_urls: list[str]) -> NodeMetrics:
        """Every process's figures summed (the workers of ``serve --workers``)."""
        state: dict[str, int] = {}
        slow = 0
        for url in base_urls:
            one = await cls.read(url)
            for key, value in one.state.items():
                state[key] = state.get(key, 0) + value
            slow += one.slow_consumers
        return cls(state, slow)
