"""Announced addresses: the public address a node's ICE candidates name (1:1 NAT).

A cloud VM binds a private address; its provider's 1:1 NAT forwards a public
address to it. Host candidates name what the node binds, which a phone on
the internet cannot reach, so ICE fails. As mediasoup's ``announcedAddress``
and Janus' ``nat_1_1_mapping`` do, the node binds the private address and
its SDP names the public one: ``--announce-address PRIVATE=PUBLIC``.

Only what the peer reads changes (the answer's ``a=candidate`` connection
addresses, the ``c=`` line and ``a=rtcp`` address, RFC 8839 §5.1 and RFC
8866 §5.7): aioice keeps its sockets on the bound address, the NAT rewrites
packets both ways, and a peer's connectivity checks arrive from its own
public address, learnt as a peer-reflexive candidate (RFC 8445 §7.3.1.3).
:func:`announce_sdp` is pure; :func:`not_local` asks the kernel (no loop).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterable, Mapping

Announce = Mapping[str, str]
"""Bound address → announced address, both IP literals in their compressed form."""


def normal(address: str) -> str:
    """``address`` in its compressed form (``2001:DB8:0::1`` → ``2001:db8::1``), or as is."""
    try:
        return ipaddress.ip_address(address.strip("[]")).compressed
    except ValueError:
        return address


def announce_map(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The lookup table of ``(bound, announced)`` pairs, with addresses normalised."""
    return {normal(bound): normal(public) for bound, public in pairs}


def announce_sdp(sdp: str, announce: Announce) -> str:
    """``sdp`` with every bound address of ``announce`` replaced by its announced one.

    Rewritten: the connection address of ``a=candidate`` lines (field 5, RFC
    8839 §5.1), ``c=IN IP4|IP6`` lines and the address of ``a=rtcp:PORT IN
    IP4 ADDR``; the address family follows the announced address. Every other
    line, and every address not in ``announce``, is kept byte for byte. An
    empty ``announce`` returns ``sdp`` unchanged.
    """
    if not announce:
        return sdp
    newline = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.split(newline)
    return newline.join(_announce_line(line, announce) for line in lines)


def _family(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _announce_line(line: str, announce: Announce) -> str:
    if line.startswith("a=candidate:"):
        fields = line.split(" ")
        if len(fields) > 5 and normal(fields[4]) in announce:
            fields[4] = announce[normal(fields[4])]
            return " ".join(fields)
        return line
    if line.startswith("c=IN "):
        fields = line.split(" ")
        if len(fields) == 3 and normal(fields[2]) in announce:
            public = announce[normal(fields[2])]
            return f"c=IN {_family(public)} {public}"
        return line
    if line.startswith("a=rtcp:"):
        fields = line.split(" ")
        if len(fields) == 4 and fields[1] == "IN" and normal(fields[3]) in announce:
            public = announce[normal(fields[3])]
            return f"{fields[0]} IN {_family(public)} {public}"
    return line


def not_local(addresses: Iterable[str]) -> list[str]:
    """The addresses no interface of this machine (this network namespace) has.

    A UDP socket is bound to each (port 0, closed at once); ``EADDRNOTAVAIL``
    means the address is not local. Other errors propagate.
    """
    missing = []
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((address, 0))
            except OSError as exc:
                if exc.errno != errno.EADDRNOTAVAIL:
                    raise
                missing.append(address)
    return missing
