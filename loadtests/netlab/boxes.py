"""The boxes between the phones and the node: their nftables rules and tc caps."""

from __future__ import annotations

import enum

from loadtests.netlab import plan
from loadtests.netlab.system import run


class Router(enum.Enum):
    """What stands between a phone and the internet."""

    #: A home router: masquerade; from outside only replies to what went out.
    HOME = "home"
    #: A corporate firewall on top: every UDP datagram dropped but those to the TURN port.
    UDP_ONLY_TURN = "udp-only-turn"
    #: A stricter corporate firewall: no UDP out at all, TCP only (TURN over TCP or TLS).
    NO_UDP = "no-udp"


def one_to_one_nat(private: str, public: str) -> str:
    """nftables: ``public`` forwarded to ``private`` on every port, and back (a cloud VM)."""
    return f"""table ip lab {{
  chain dnat_in {{ type nat hook prerouting priority dstnat;
    ip daddr {public} dnat to {private}; }}
  chain snat_out {{ type nat hook postrouting priority srcnat;
    ip saddr {private} snat to {public}; }}
}}"""


def home_router(kind: Router) -> str:
    """nftables of a phone's router: masquerade, inbound only for replies; for
    ``UDP_ONLY_TURN`` every outbound UDP datagram is dropped but those to TURN, for
    ``NO_UDP`` every one (TCP still goes out)."""
    udp_rules = ""
    if kind is Router.UDP_ONLY_TURN:
        udp_rules = f"iifname lan ip daddr {plan.TURN_PUBLIC} udp dport {plan.TURN_PORT} accept; "
    if kind in (Router.UDP_ONLY_TURN, Router.NO_UDP):
        udp_rules += "iifname lan meta l4proto udp drop; "
    return f"""table ip lab {{
  chain snat_out {{ type nat hook postrouting priority srcnat; oifname wan masquerade; }}
  chain screen {{ type filter hook forward priority filter; policy accept;
    {udp_rules}iifname wan ct state established,related accept; iifname wan drop; }}
}}"""


async def shape(ns: str, device: str, rate_kbit: int) -> None:
    """A ``tc tbf`` cap on ``device``'s egress: its rate, a 20 ms burst, 200 ms of queue."""
    burst = max(1600, rate_kbit * 1000 // 8 // 50)
    tbf = ["tbf", "rate", f"{rate_kbit}kbit", "burst", str(burst), "latency", "200ms"]
    await run("ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", device, "root", *tbf)


async def nft(ns: str, ruleset: str) -> None:
    await run("ip", "netns", "exec", ns, "nft", "-f", "-", stdin=ruleset)
