"""A lab of network namespaces: a node behind 1:1 NAT, phones behind home routers.

```
 [phone]──veth──[router: masquerade]──────────┐
 [phone]──veth──[router: UDP only to TURN]────┼──[inet: bridge]──[nat: 1:1]──[node]
 [phone]──veth(tbf)──[router: masquerade]─────┤
                                  [turn]──────┘
```
``Lab.open(workdir, phones=[...], turn=True)`` builds it (root, ``ip netns``,
nftables, ``tc``) and always tears it down: processes started with
:meth:`Lab.spawn` (SIGTERM to their process group, then SIGKILL), every
process left in a lab namespace (by PID, ``ip netns pids``), the namespaces
(their veths and the bridge go with them). Names carry the pid and a
counter (``plan.namespace``), so parallel workers never collide, and a lab
removes the leftovers of a process that died before tearing down.

Traffic never leaves the namespaces: the host namespace gets no veth and no
route; the node and each phone reach only the lab's bridge. The test process
reaches into a namespace with :meth:`Lab.call` / :meth:`Lab.http` (a thread
that enters the namespace, ``setns(2)``), and Chromium runs inside a phone's
namespace through :meth:`Lab.chromium`, a wrapper script for Playwright's
``executable_path``.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import itertools
import os
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from loadtests.netlab import plan
from loadtests.netlab.boxes import Router, home_router, nft, one_to_one_nat, shape
from loadtests.netlab.system import (
    check_machine,
    in_namespace,
    remove_namespace,
    remove_namespace_now,
    run,
    stop,
    sweep_leftovers,
)

T = TypeVar("T")
_labs = itertools.count(1)


@dataclass(frozen=True, slots=True)
class PhoneSpec:
    """A phone of the lab: its name (1-11 of a-z 0-9), its router, a bandwidth cap."""

    name: str
    router: Router = Router.HOME
    #: ``tc tbf`` rate on the phone's link, both ways (None: no cap).
    rate_kbit: int | None = None


@dataclass(slots=True)
class Host:
    """One machine of the lab: its namespace, its address, how the internet sees it."""

    role: str
    ns: str
    address: str
    public: str
    device: str = "eth0"
    gateway: str | None = None
    prefix: int = plan.PREFIX_LEN
    moves: int = 0


@dataclass(eq=False)
class Lab:
    """A built lab (see the module doc). Made by :meth:`open` only."""

    workdir: Path
    node: Host
    nat: Host
    internet: str
    turn: Host | None = None
    phones: dict[str, Host] = field(default_factory=dict)
    routers: dict[str, Host] = field(default_factory=dict)
    namespaces: list[str] = field(default_factory=list)
    processes: list[asyncio.subprocess.Process] = field(default_factory=list)

    # -- building -------------------------------------------------------------------------

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        workdir: Path,
        phones: Sequence[PhoneSpec] = (PhoneSpec("home"),),
        *,
        turn: bool = False,
        build_timeout_s: float = 60.0,
    ) -> AsyncIterator[Lab]:
        """Build the lab in fresh namespaces; tear everything down on exit, whatever happens."""
        await check_machine()
        await sweep_leftovers()
        if len(phones) > plan.MAX_PHONES or len({p.name for p in phones}) != len(phones):
            raise ValueError(f"at most {plan.MAX_PHONES} phones, each with its own name")
        number = next(_labs)
        pid = os.getpid()

        def name(role: str) -> str:
            return plan.namespace(pid, number, role)

        await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
        lab = cls(
            workdir=workdir,
            node=Host("node", name("node"), plan.NODE_PRIVATE, plan.NODE_PUBLIC,
                      gateway=plan.NODE_GATEWAY),
            nat=Host("nat", name("nat"), plan.NODE_GATEWAY, plan.NODE_PUBLIC, device="lan"),
            internet=name("inet"),
        )  # fmt: skip
        _open_labs.add(lab)
        try:
            async with asyncio.timeout(build_timeout_s):
                await lab._build(phones, turn, name)
            yield lab
        finally:
            await lab.close()
            _open_labs.discard(lab)

    async def _build(
        self, phones: Sequence[PhoneSpec], turn: bool, name: Callable[[str], str]
    ) -> None:
        await self._namespace(self.internet)
        await run("ip", "-n", self.internet, "link", "add", "br0", "type", "bridge")
        await run("ip", "-n", self.internet, "link", "set", "br0", "up")
        # The node behind a 1:1 NAT (a cloud VM): every port of the public address.
        await self._namespace(self.nat.ns, forward=True)
        await self._namespace(self.node.ns)
        await self._wan(self.nat.ns, "nat", "wan", self.nat.public)
        await self._lan(self.nat.ns, self.node, self.nat.address)
        await nft(self.nat.ns, one_to_one_nat(self.node.address, self.node.public))
        if turn:
            self.turn = Host("turn", name("turn"), plan.TURN_PUBLIC, plan.TURN_PUBLIC,
                             prefix=24)  # fmt: skip
            await self._namespace(self.turn.ns)
            await self._wan(self.turn.ns, "turn", "eth0", self.turn.address)
        for index, spec in enumerate(phones):
            if not spec.name.isalnum() or not spec.name.islower() or len(spec.name) > 11:
                raise ValueError(f"phone name {spec.name!r}: 1-11 of a-z 0-9")
            net = plan.phone_net(index)
            router = Host(f"r{spec.name}", name(f"r{spec.name}"), net.router_lan,
                          net.router_public, device="lan")  # fmt: skip
            phone = Host(spec.name, name(spec.name), net.phone, net.router_public,
                         gateway=net.router_lan)  # fmt: skip
            await self._namespace(router.ns, forward=True)
            await self._namespace(phone.ns)
            await self._wan(router.ns, router.role, "wan", router.public)
            await self._lan(router.ns, phone, router.address)
            await nft(router.ns, home_router(spec.router))
            if spec.rate_kbit is not None:
                await shape(router.ns, "lan", spec.rate_kbit)
                await shape(phone.ns, phone.device, spec.rate_kbit)
            self.routers[spec.name] = router
            self.phones[spec.name] = phone

    async def _namespace(self, ns: str, *, forward: bool = False) -> None:
        await run("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        await run("ip", "-n", ns, "link", "set", "lo", "up")
        settings = ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]
        settings.append(f"net.ipv4.ip_forward={int(forward)}")
        await run("ip", "netns", "exec", ns, "sysctl", "-q", "-w", *settings)

    async def _wan(self, ns: str, role: str, device: str, address: str) -> None:
        """A veth from ``ns`` (``device``) to the internet's bridge, with ``address``/24."""
        port = f"p-{role}"[:15]
        await run("ip", "-n", self.internet, "link", "add", port, "type", "veth",
                  "peer", "name", device, "netns", ns)  # fmt: skip
        await run("ip", "-n", self.internet, "link", "set", port, "master", "br0", "up")
        await run("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", device)
        await run("ip", "-n", ns, "link", "set", device, "up")

    async def _lan(self, router_ns: str, host: Host, gateway: str) -> None:
        """A veth from a router (``lan``) to ``host`` (``eth0``), the host's default route."""
        await run("ip", "-n", router_ns, "link", "add", "lan", "type", "veth",
                  "peer", "name", host.device, "netns", host.ns)  # fmt: skip
        await run("ip", "-n", router_ns, "addr", "add", f"{gateway}/{plan.PREFIX_LEN}",
                  "dev", "lan")  # fmt: skip
        await run("ip", "-n", router_ns, "link", "set", "lan", "up")
        await self._address(host, host.address)

    async def _address(self, host: Host, address: str) -> None:
        await run("ip", "-n", host.ns, "addr", "add", f"{address}/{host.prefix}",
                  "dev", host.device)  # fmt: skip
        await run("ip", "-n", host.ns, "link", "set", host.device, "up")
        if host.gateway is not None:
            await run("ip", "-n", host.ns, "route", "replace", "default", "via", host.gateway)
        host.address = address

    # -- using it -------------------------------------------------------------------------

    async def spawn(
        self,
        host: Host,
        argv: Sequence[str],
        *,
        log: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> asyncio.subprocess.Process:
        """Start ``argv`` inside ``host``'s namespace (own process group), stdout and
        stderr to ``<workdir>/<log>.out|.err``; stopped by PID at teardown."""
        out = (self.workdir / f"{log}.out").open("wb")
        err = (self.workdir / f"{log}.err").open("wb")
        with out, err:
            proc = await asyncio.create_subprocess_exec(
                "ip", "netns", "exec", host.ns, *argv,
                stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=err,
                env=env, cwd=cwd, start_new_session=True,
            )  # fmt: skip
        self.processes.append(proc)
        return proc

    async def call(self, host: Host, fn: Callable[[], T]) -> T:
        """``fn()`` in a fresh thread that entered ``host``'s network namespace: sockets
        it opens live there (the thread ends with the call, so nothing else does)."""
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="netns") as pool:
            return await asyncio.wrap_future(pool.submit(in_namespace, host.ns, fn))

    async def http(self, host: Host, method: str, url: str, **kw: Any) -> httpx.Response:
        """One HTTP request made from inside ``host``'s namespace."""
        kw.setdefault("timeout", 5.0)
        return await self.call(host, lambda: httpx.request(method, url, **kw))

    def chromium(self, host: Host, binary: str = "/usr/bin/chromium") -> Path:
        """A wrapper script that runs ``binary`` inside ``host``'s namespace, for
        Playwright's ``executable_path`` (it talks to the browser over pipes)."""
        path = self.workdir / f"chromium-{host.role}.sh"
        path.write_text(f'#!/bin/sh\nexec ip netns exec {host.ns} {binary} "$@"\n')
        path.chmod(0o755)
        return path

    async def set_link(self, host: Host, *, up: bool) -> None:
        """An outage (``up=False``) or its end: the host's own interface goes down/up."""
        await run("ip", "-n", host.ns, "link", "set", host.device, "up" if up else "down")
        if up and host.gateway is not None:
            await run("ip", "-n", host.ns, "route", "replace", "default", "via", host.gateway)

    async def switch_address(self, host: Host) -> str:
        """A network switch (Wi-Fi → 4G): the host gets a new address on its LAN, the
        old one is gone (its connections' packets no longer arrive). Returns the new one."""
        if host.role not in self.phones:
            raise ValueError("only a phone switches networks")
        host.moves += 1
        new = plan.phone_net(list(self.phones).index(host.role)).other_address(host.moves)
        await run("ip", "-n", host.ns, "addr", "flush", "dev", host.device)
        await self._address(host, new)
        return new

    # -- tearing down ---------------------------------------------------------------------

    async def close(self) -> None:
        """Stop every process (ours by PID, then whatever is left in the namespaces),
        delete the namespaces. Safe to call twice; never raises for what is gone."""
        for proc in self.processes:
            await stop(proc)
        self.processes.clear()
        for ns in reversed(self.namespaces):
            await remove_namespace(ns)
        self.namespaces.clear()

    def close_now(self) -> None:
        """:meth:`close` without an event loop (blocking): for when the loop that built
        the lab was aborted (a test's timeout, an interpreter exiting)."""
        for proc in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        self.processes.clear()
        for ns in reversed(self.namespaces):
            remove_namespace_now(ns)
        self.namespaces.clear()


#: Labs being built or used in this process, for :func:`close_all_now`.
_open_labs: set[Lab] = set()


def close_all_now() -> int:
    """Tear down, blocking, every lab of this process that was not closed (a test
    aborted mid-way); returns how many. Registered with ``atexit`` too."""
    count = 0
    while _open_labs:
        _open_labs.pop().close_now()
        count += 1
    return count


atexit.register(close_all_now)
