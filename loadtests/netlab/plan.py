"""The lab's address plan and names: pure, no I/O (tested without a network).

Only the documentation ranges (RFC 5737) are used: 203.0.113.0/24 is "the
internet" (one bridge every public address sits on), 198.51.100.0/24 is cut
into /28s, one per private network (the node's, each phone's). Never
192.0.2.0/24: a machine here can have its real interface in it. Before
building, :func:`overlaps` compares the plan with the host's addresses and
routes, and the lab refuses to start on any overlap.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

PUBLIC = ipaddress.ip_network("203.0.113.0/24")
PRIVATE = ipaddress.ip_network("198.51.100.0/24")
LAB_RANGES = (PUBLIC, PRIVATE)

#: The node's public (announced) address, the 1:1 NAT in front of it, the TURN server's.
NODE_PUBLIC = "203.0.113.10"
TURN_PUBLIC = "203.0.113.5"
TURN_PORT = 3478
#: The node's private network: the NAT's inside address, the node's own.
NODE_GATEWAY = "198.51.100.1"
NODE_PRIVATE = "198.51.100.10"
PREFIX_LEN = 28
MAX_PHONES = 12
#: Namespace names: ``lcnl<pid>x<lab>-<role>``; the pid lets a later lab find leftovers.
NAME_PREFIX = "lcnl"
_NAME = re.compile(rf"^{NAME_PREFIX}(\d+)x(\d+)-")


@dataclass(frozen=True, slots=True)
class PhoneNet:
    """One phone's network: its router's public address, the LAN, the phone's address."""

    index: int
    router_public: str
    router_lan: str
    phone: str

    def other_address(self, step: int) -> str:
        """The ``step``-th new address for the phone on the same LAN (a network switch)."""
        base = ipaddress.ip_address(self.phone)
        if not 1 <= step <= 12:  # .3 to .14: the router is .1, the broadcast .15
            raise ValueError(f"step {step} out of the phone's /28")
        return str(base + step)


def phone_net(index: int) -> PhoneNet:
    """The addresses of phone number ``index`` (0-based): LAN 198.51.100.(16·(i+1))/28."""
    if not 0 <= index < MAX_PHONES:
        raise ValueError(f"at most {MAX_PHONES} phones in one lab")
    lan = PRIVATE.network_address + 16 * (index + 1)
    return PhoneNet(
        index=index,
        router_public=str(PUBLIC.network_address + 21 + index),
        router_lan=str(lan + 1),
        phone=str(lan + 2),
    )


def overlaps(host_prefixes: Iterable[str]) -> list[str]:
    """The host's addresses/routes (``a.b.c.d/n`` or ``a.b.c.d``) that overlap the lab's
    ranges. The default route (0.0.0.0/0) is not a clash: the lab's own on-link routes
    are more specific inside its namespaces, and the host namespace gets none."""
    clashes = []
    for text in host_prefixes:
        if text in ("default", "0.0.0.0/0"):
            continue
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        if net.version == 4 and any(net.overlaps(r) for r in LAB_RANGES):
            clashes.append(text)
    return clashes


def namespace(pid: int, lab: int, role: str) -> str:
    """The namespace name of ``role`` in lab number ``lab`` of process ``pid``."""
    if not re.fullmatch(r"[a-z0-9]{1,12}", role):
        raise ValueError(f"role {role!r}: 1-12 of a-z 0-9")
    return f"{NAME_PREFIX}{pid}x{lab}-{role}"


def owner(name: str) -> int | None:
    """The pid that made namespace ``name``, or None for a name not of this lab."""
    match = _NAME.match(name)
    return int(match.group(1)) if match else None
