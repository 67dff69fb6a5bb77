"""A ``livecore serve`` node inside the lab's node namespace (behind the 1:1 NAT).

The node binds its private address (``plan.NODE_PRIVATE``) for HTTP and ICE;
phones reach it at the public one (``plan.NODE_PUBLIC``), which the NAT
forwards on every port. With no ``--redis`` among ``args`` it starts its own
embedded Valkey, inside the namespace too (a URL given must be reachable
from there, e.g. a Valkey :meth:`Lab.spawn` started in the node namespace).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from livecore.valkey.embedded import find_binary
from loadtests.netlab.lab import Host, Lab
from loadtests.netlab.system import stop

NODE_PORT = 8080
VALKEY_PORT = 6390


@dataclass
class LabNode:
    """A running node of the lab."""

    lab: Lab
    port: int
    proc: asyncio.subprocess.Process
    log: str

    @property
    def url(self) -> str:
        """The node as phones see it: its public address."""
        return f"http://{self.lab.node.public}:{self.port}"

    @property
    def local_url(self) -> str:
        """The node from inside its own namespace."""
        return f"http://127.0.0.1:{self.port}"

    async def health(self) -> dict[str, Any]:
        answer = await self.lab.http(self.lab.node, "GET", f"{self.local_url}/healthz")
        body: dict[str, Any] = answer.json()
        return body

    def stderr(self) -> str:
        return (self.lab.workdir / f"{self.log}.err").read_text(errors="replace")

    async def stop(self) -> int | None:
        await stop(self.proc)
        return self.proc.returncode


async def start_node(
    lab: Lab,
    data_dir: Path,
    *,
    secret: str,
    args: Sequence[str] = (),
    port: int = NODE_PORT,
    log: str = "node",
    timeout_s: float = 40.0,
) -> LabNode:
    """Start a node in ``lab.node``'s namespace (ICE on the private address plus
    ``args``); return once its ``/healthz`` answers 200, or raise with its stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVECORE_")}
    env["LIVECORE_SECRET"] = secret
    argv = [sys.executable, "-m", "signalling", "serve", "--host", "0.0.0.0", "--port", str(port),
            "--data-dir", str(data_dir), "--ice-address", lab.node.address,
            "--log-level", "warning", *args]  # fmt: skip
    proc = await lab.spawn(lab.node, argv, log=log, env=env)
    node = LabNode(lab, port, proc, log)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if proc.returncode is not None:
            raise RuntimeError(f"node exited {proc.returncode}: {node.stderr()[-2000:]}")
        try:
            answer = await lab.http(lab.node, "GET", f"{node.local_url}/healthz", timeout=1.0)
            if answer.status_code == 200:
                return node
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.1)
    await node.stop()
    raise RuntimeError(f"node not healthy within {timeout_s} s: {node.stderr()[-2000:]}")


async def start_valkey(
    lab: Lab, host: Host, data_dir: Path, *, port: int = VALKEY_PORT, timeout_s: float = 15.0
) -> str:
    """The bundled Valkey in ``host``'s namespace on ``port`` (no persistence), for
    nodes given ``--redis URL``; returns the URL as seen from inside that namespace
    (other namespaces use ``host.address``). Stopped with the lab."""
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    argv = [find_binary(), "--port", str(port), "--bind", "0.0.0.0", "--protected-mode", "no",
            "--save", "", "--appendonly", "no", "--dir", str(data_dir)]  # fmt: skip
    proc = await lab.spawn(host, argv, log=f"valkey-{host.role}")

    def ping() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
        return False

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await lab.call(host, ping):
        if proc.returncode is not None or loop.time() > deadline:
            raise RuntimeError(f"valkey in {host.role} did not answer within {timeout_s} s")
        await asyncio.sleep(0.05)
    return f"redis://127.0.0.1:{port}/0"
