"""What the lab runs on: commands, processes, namespaces, the machine's checks.

Every command is bounded in time (``COMMAND_TIMEOUT_S``); a process is stopped
by its process group and a namespace is emptied by PID (``ip netns pids``)
before it is deleted. :func:`in_namespace` runs a function in a thread that
entered a namespace (``setns(2)``), so sockets it opens live there.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from typing import TypeVar

from loadtests.netlab import plan

T = TypeVar("T")
COMMAND_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
CLONE_NEWNET = 0x40000000


class LabUnavailable(RuntimeError):
    """This machine cannot build the lab (not root, no ``ip netns``, a range clash)."""


async def run(*argv: str, stdin: str | None = None, check: bool = True) -> str:
    """Run a command (bounded in time); its stdout. Raises with its stderr if it fails."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(COMMAND_TIMEOUT_S):
            out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"{' '.join(argv)}: no answer within {COMMAND_TIMEOUT_S} s") from None
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {proc.returncode}: {err.decode().strip()}")
    return out.decode()


async def stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM to ``proc``'s process group, SIGKILL after ``STOP_TIMEOUT_S``."""
    if proc.returncode is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await proc.wait()
            return
        except TimeoutError:
            continue


async def remove_namespace(ns: str) -> None:
    """Kill every process inside ``ns`` (by PID), then delete it."""
    for _ in range(3):
        pids = [int(p) for p in (await run("ip", "netns", "pids", ns, check=False)).split()]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                while (await run("ip", "netns", "pids", ns, check=False)).split():  # noqa: ASYNC110 - no event for a process leaving a namespace
                    await asyncio.sleep(0.05)
    await run("ip", "netns", "del", ns, check=False)


async def sweep_leftovers() -> None:
    """Delete lab namespaces whose maker (the pid in their name) is gone."""
    listed = await run("ip", "-j", "netns", "list", check=False)
    for entry in json.loads(listed or "[]"):
        owner = plan.owner(str(entry.get("name", "")))
        if owner is not None and owner != os.getpid() and not _alive(owner):
            await remove_namespace(entry["name"])


def unavailable() -> str | None:
    """Why this machine cannot build a lab, or None (checked without running anything)."""
    if os.geteuid() != 0:
        return "the network lab needs root (ip netns, nftables, tc)"
    for tool in ("ip", "nft", "tc"):
        if shutil.which(tool) is None:
            return f"the network lab needs `{tool}` (Debian: iproute2, nftables)"
    return None


async def check_machine() -> None:
    """Refuse to build where the lab cannot run or its ranges meet the host's network."""
    why = unavailable()
    if why is not None:
        raise LabUnavailable(why)
    host: list[str] = []
    for entry in json.loads(await run("ip", "-j", "-4", "addr", "show")):
        for info in entry.get("addr_info", []):
            host.append(f"{info['local']}/{info['prefixlen']}")
    for entry in json.loads(await run("ip", "-j", "-4", "route", "show", "table", "all")):
        host.append(str(entry.get("dst", "")))
    clashes = plan.overlaps(host)
    if clashes:
        raise LabUnavailable(
            f"the lab's ranges {plan.PUBLIC} and {plan.PRIVATE} meet this machine's "
            f"network ({', '.join(sorted(set(clashes)))}): refusing to build"
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def in_namespace(ns: str, fn: Callable[[], T]) -> T:
    """Enter ``ns``'s network namespace in this thread, call ``fn``, and go back."""
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {ns}")
        try:
            return fn()
        finally:
            if libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(target)


def remove_namespace_now(ns: str) -> None:
    """:func:`remove_namespace`, blocking."""
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT_S, check=False).stdout.split()  # fmt: skip
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=COMMAND_TIMEOUT_S,
                   check=False)  # fmt: skip
