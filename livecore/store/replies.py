"""Decoding Redis replies (the default client returns bytes)."""

from __future__ import annotations


def as_str(value: object) -> str:
    """A Redis reply (bytes with the default client) as a str."""
    return value.decode() if isinstance(value, bytes) else str(value)
