"""The lab's address plan, names and refusal to meet the host's network (no lab built)."""

from __future__ import annotations

import json

import pytest

from loadtests.netlab import LabUnavailable, boxes, plan, system


def test_phones_get_their_own_documentation_subnets() -> None:
    """Each phone's /28 and its router's public address; nothing outside the two ranges."""
    first, second = plan.phone_net(0), plan.phone_net(1)
    assert (first.router_public, first.router_lan, first.phone) == (
        "203.0.113.21",
        "198.51.100.17",
        "198.51.100.18",
    )
    assert second.phone == "198.51.100.34"
    assert first.other_address(1) == "198.51.100.19"
    everything = [plan.NODE_PRIVATE, plan.NODE_PUBLIC, plan.TURN_PUBLIC, plan.NODE_GATEWAY]
    for index in range(plan.MAX_PHONES):
        net = plan.phone_net(index)
        everything += [net.router_public, net.router_lan, net.phone, net.other_address(12)]
    assert plan.overlaps(everything) == everything  # all inside the lab's ranges
    with pytest.raises(ValueError):
        plan.phone_net(plan.MAX_PHONES)
    with pytest.raises(ValueError):
        first.other_address(13)


def test_overlaps_names_the_host_prefixes_that_clash() -> None:
    """The default route is no clash; 192.0.2.0/24 (this kind of machine) neither; a
    host address or route in either documentation range is."""
    host = ["default", "0.0.0.0/0", "192.0.2.2/24", "127.0.0.1/8", "10.0.0.0/8", "fd00::/64"]
    assert plan.overlaps(host) == []
    assert plan.overlaps([*host, "203.0.113.7/32", "198.51.0.0/16"]) == [
        "203.0.113.7/32",
        "198.51.0.0/16",
    ]


def test_names_carry_the_maker() -> None:
    """Namespace names carry the pid and lab number, so leftovers can be found."""
    name = plan.namespace(4242, 3, "home")
    assert name == "lcnl4242x3-home" and plan.owner(name) == 4242
    assert plan.owner("someone-else") is None
    with pytest.raises(ValueError):
        plan.namespace(1, 1, "Bad Name")


async def test_the_lab_refuses_a_host_in_its_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host route into 203.0.113.0/24 stops the lab before it builds anything."""
    answers = {
        "addr": [{"addr_info": [{"local": "192.0.2.2", "prefixlen": 24}]}],
        "route": [{"dst": "default"}, {"dst": "203.0.113.0/25"}],
    }

    async def fake_run(*argv: str, stdin: str | None = None, check: bool = True) -> str:
        return json.dumps(answers[argv[3]])

    monkeypatch.setattr(system, "run", fake_run)
    monkeypatch.setattr(system, "unavailable", lambda: None)
    with pytest.raises(LabUnavailable, match=r"203\.0\.113\.0/25"):
        await system.check_machine()


def test_nat_rules_name_both_sides() -> None:
    """The 1:1 NAT forwards every port of the public address; the firewall lets UDP
    through only to the TURN port."""
    rules = boxes.one_to_one_nat(plan.NODE_PRIVATE, plan.NODE_PUBLIC)
    assert "ip daddr 203.0.113.10 dnat to 198.51.100.10" in rules
    assert "ip saddr 198.51.100.10 snat to 203.0.113.10" in rules
    firewall = boxes.home_router(boxes.Router.UDP_ONLY_TURN)
    assert f"udp dport {plan.TURN_PORT} accept" in firewall and "l4proto udp drop" in firewall
    assert "udp" not in boxes.home_router(boxes.Router.HOME)
