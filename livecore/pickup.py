"""Pickup codes (自提/核销): what a buyer shows at the compound's pickup point (pure).

A code belongs to one member of one formed group: ``HMAC-SHA256(node secret,
"livecore-pickup:" room "|" group buy "|" user)``, its first 8 bytes as an
unsigned big-endian integer modulo 10^10, written as 10 digits. Deriving it
(instead of drawing one at random) makes asking again harmless: the same order
always gets the same code, on every node, and the store only has to remember
which code belongs to which order. Without the node secret a code cannot be
guessed from the order; the store redeems each code once.
"""

from __future__ import annotations

import hashlib
import hmac

from livecore.fields import invalid

DIGITS = 10


def code_for(secret: bytes, room: str, gid: str, user: str) -> str:
    """The pickup code of ``user``'s order in group buy ``gid`` of ``room``."""
    mac = hmac.new(secret, f"livecore-pickup:{room}|{gid}|{user}".encode(), hashlib.sha256)
    return str(int.from_bytes(mac.digest()[:8], "big") % 10**DIGITS).zfill(DIGITS)


def normalise(value: object) -> str:
    """A typed code without its spaces and dashes (``1234 5678-90``), or ``invalid_field``."""
    if not isinstance(value, str) or len(value) > 40:
        raise invalid("code", f"required, {DIGITS} digits")
    digits = "".join(ch for ch in value if ch not in " -")
    if len(digits) != DIGITS or not digits.isascii() or not digits.isdigit():
        raise invalid("code", f"must be {DIGITS} digits")
    return digits


def shown(code: str) -> str:
    """A code grouped for reading aloud at the counter: ``1234 5678 90``."""
    return f"{code[:4]} {code[4:8]} {code[8:]}"
