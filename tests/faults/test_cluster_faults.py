"""Faults of a Valkey Cluster under two nodes: a primary killed, a live slot moved."""

from __future__ import annotations

from pathlib import Path

from loadtests.faults import shardfail


async def test_failover_and_resharding_lose_nothing(tmp_path: Path) -> None:
    """In flight: 6 viewers per room in 3 rooms (one per shard) on two nodes, voting,
    joining and commenting. The primary of one room's shard is SIGKILLed and its
    replica takes over: refusals are store_unavailable and retried, every acknowledged
    action is there once, /healthz stays 200, the other shards' rooms are barely
    touched. Then a fourth
    room's slot moves to another primary while it is live: nothing lost or doubled."""
    result = await shardfail.run(tmp_path, viewers=6, comments=20)
    print(result)
    failover, reshard = result["failover"], result["reshard"]
    assert failover["lost"] == 0 and failover["duplicated"] == 0, result
    assert failover["silent"] == 0, result
    assert failover["viewers_in_flight"] == 18, result  # the primary died mid-traffic
    assert failover["refused_others"] <= 0.05 * failover["acked_others"], result
    assert failover["failover_s"] < 15, result
    assert failover["healthz_during_failover"] == [200, 200], result  # other shards serve
    assert reshard["lost"] == 0 and reshard["duplicated"] == 0, result
    assert reshard["keys_moved"] > 0 and reshard["owner_after"], result
    assert result["crashes"] == 0, result
