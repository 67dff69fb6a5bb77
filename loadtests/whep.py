"""WHEP and WHIP over HTTP for load runs: POST an offer (retrying 503s), DELETE a session."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx

from media.peers import PeerConfig

LOOPBACK_CONFIG = PeerConfig(ice_servers=(), host_addresses=("127.0.0.1",))
"""Every peer of a load run: no ICE servers, host candidates on 127.0.0.1 only."""

RETRY_AFTER_MAX_S = 5.0
RETRY_503_FOR_S = 20.0
"""How long one offer is retried while the server answers 503 (at capacity)."""


class WhepRefused(Exception):
    """The server did not answer a WHEP offer with 201 (status and body in the message)."""


async def whep_post(
    client: httpx.AsyncClient, url: str, token: str, offer_sdp: str, deadline: float
) -> tuple[str, str]:
    """POST an offer to ``url``; returns (answer SDP, absolute session URL).

    A 503 is retried after its ``Retry-After`` (at most ``RETRY_AFTER_MAX_S``)
    for at most ``RETRY_503_FOR_S`` and never past ``deadline`` (``time.monotonic()``).
    """
    deadline = min(deadline, time.monotonic() + RETRY_503_FOR_S)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/sdp"}
    while True:
        answer = await client.post(url, content=offer_sdp.encode(), headers=headers)
        if answer.status_code == 201:
            location = answer.headers.get("location")
            if not location:
                raise WhepRefused("201 without a Location header")
            return answer.text, str(answer.url.join(location))
        retry = answer.headers.get("retry-after")
        if answer.status_code == 503 and retry is not None:
            with contextlib.suppress(ValueError):
                wait = min(RETRY_AFTER_MAX_S, max(0.1, float(retry)))
                if time.monotonic() + wait < deadline:
                    await asyncio.sleep(wait)
                    continue
        raise WhepRefused(f"{answer.status_code} {answer.text[:200]}")


async def whep_delete(client: httpx.AsyncClient, session_url: str | None) -> None:
    if session_url:
        with contextlib.suppress(httpx.HTTPError):
            await client.delete(session_url, timeout=5)
