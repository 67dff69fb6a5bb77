"""Debian's nginx in front of test nodes, with the configuration docs/operations.md ships
(``clients/deploy/nginx.conf``), on a loopback port, everything under the test's tmp dir.

A missing nginx skips the test on a developer machine and FAILS it under ``CI=true``
(``make system`` installs it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import ROOT, free_port, missing

CONFIG = ROOT / "clients" / "deploy" / "nginx.conf"


def nginx_path() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                      else None)  # fmt: skip
    if found is None:
        missing("nginx is not installed (make system installs Debian's nginx)")
    assert found is not None
    return found


def render(prefix: Path, listen: str, nodes: list[str]) -> str:
    """The shipped configuration with its four placeholders filled in."""
    servers = "\n        ".join(f"server {address};" for address in nodes)
    values = {"__PREFIX__": str(prefix), "__CACHE__": str(prefix / "cache"),
              "__LISTEN__": listen, "__NODES__": servers}  # fmt: skip
    lines = CONFIG.read_text().splitlines()
    body = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    for name, value in values.items():
        assert name in body, name
        body = body.replace(name, value)
    body = body.replace("worker_processes auto;", "worker_processes 1;")  # a shared machine
    if os.geteuid() == 0:  # as root, workers would drop to nobody: the tmp dir is private
        body = "user root;\n" + body
    return body


@dataclass
class Nginx:
    """nginx in the foreground, proxying ``nodes`` (``host:port``) on a free loopback port."""

    prefix: Path
    nodes: list[str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> Nginx:
        binary = nginx_path()
        self.prefix.mkdir(parents=True, exist_ok=True)
        conf = self.prefix / "nginx.conf"
        conf.write_text(render(self.prefix, f"127.0.0.1:{self.port}", self.nodes))
        command = [binary, "-p", str(self.prefix), "-c", str(conf), "-g", "daemon off;"]
        check = subprocess.run([*command, "-t"], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.prefix / "error.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not listen in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def access_log(self) -> str:
        return (self.prefix / "access.log").read_text()
