"""The import graph of the project's modules: no cycle, no import up the layers.

Every module is parsed with ``ast``; every ``import`` counts, wherever it
stands (inside functions, under ``if TYPE_CHECKING:``). Layers, bottom up:
livecore <- media <- signalling; clients/ and loadtests/ talk to servers over
the network and may use only the few server modules listed below. The CLI
(``signalling.cli``) is the composition root: it sits at the top of the top
layer, so it needs no exception, and nothing imports it.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import ROOT

PACKAGES = ("livecore", "media", "signalling", "clients", "loadtests")
LAYER = {"livecore": 0, "media": 1, "signalling": 2}
COMPOSITION_ROOT = "signalling.cli"
#: What the load testers and clients may import from the server's packages:
#: tokens and the embedded Valkey to start a local cluster, key names to read
#: back a group buy's counters, aiortc peers set up like the server's (and two
#: of the seam modules that reach aiortc's privates: ICE sockets for the lean
#: load-test viewer, the sender's keyframe hook for the media run's publisher),
#: the audience trace format and recorder the server shares with the replay, the
#: injectable clock for the trace recorder, the batch store to measure
#: Valkey bytes per traceability batch, and the pure highlight detector (the
#: highlight benchmark scores it offline on generated sessions), the store client
#: and the local Valkey Cluster (load tests run on either kind of store).
CLIENT_ALLOWED = {
    "clients": frozenset(),
    "loadtests": frozenset(
        {
            "livecore.tokens",
            "livecore.clock",
            "livecore.audience.trace",
            "livecore.audience.recorder",
            "livecore.audience.export",
            "livecore.highlights",
            "livecore.valkey.embedded",
            "livecore.valkey.cluster",
            "livecore.store.client",
            "livecore.store.index",
            "livecore.store.keys",
            "livecore.store.trace",
            "media.peers",
            "media.passthrough",
            "media.aiortc_seams.ice",
            "media.aiortc_seams.sender",
        }
    ),
}


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "static" in path.parts or "vendor" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[str]:
    """Project modules that ``name`` imports (a ``from a import b`` of a module b is a.b)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".")
                if path.name != "__init__.py":
                    package.pop()
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, base] if base else package)
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


@functools.cache
def graph() -> dict[str, set[str]]:
    """Each project module's project imports (parsed once, when a test first asks: not
    at collection, which every test process does)."""
    return {name: set(_imports(name, path)) for name, path in MODULES.items()}


def _cycles() -> list[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph()[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for v in sorted(graph()):
        if v not in index:
            visit(v)
    return found


def test_graph_sees_the_project() -> None:
    """The parser finds the packages and their imports (a guard against a vacuous pass)."""
    assert {"livecore.wire", "signalling.hub.hub", "media.relay"} <= set(MODULES)
    assert "signalling.hub.routes" in graph()["signalling.hub.hub"]


def test_no_import_cycle() -> None:
    """No cycle among the project's modules, TYPE_CHECKING and lazy imports included."""
    cycles = [sorted(c) for c in _cycles()]
    assert cycles == []


def test_no_import_up_the_layers() -> None:
    """livecore imports no media/signalling, media no signalling; none imports loadtests."""
    upward = []
    for name, targets in graph().items():
        top = name.split(".")[0]
        if top not in LAYER:
            continue
        for target in targets:
            other = target.split(".")[0]
            if LAYER.get(other, -1) > LAYER[top] or other in CLIENT_ALLOWED:
                upward.append(f"{name} -> {target}")
    assert upward == []


#: The one in-process benchmark: what the recorder costs per stream and how fast
#: clips are cut, measured on the media modules themselves (no server involved).
IN_PROCESS_BENCHMARKS = {
    # the fault suite reads the room's history back to check nothing acked was lost
    "loadtests.faults.storekill": frozenset({"livecore.store.bus"}),
    "loadtests.recording": frozenset(
        {
            "media.recordtap",
            "media.metrics",
            "media.clipper",
            "media.sessions",
            "media.recorder",
            "media.transcode",
            "media.composite",
        }
    ),
}


def test_clients_and_loadtests_use_only_their_allowlist() -> None:
    """clients/ and loadtests/ talk over the network; only the listed server modules."""
    extra = []
    for name, targets in graph().items():
        top = name.split(".")[0]
        if top not in CLIENT_ALLOWED:
            continue
        allowed = CLIENT_ALLOWED[top] | IN_PROCESS_BENCHMARKS.get(name, frozenset())
        for target in targets:
            if target.split(".")[0] in LAYER and target not in allowed:
                extra.append(f"{name} -> {target}")
    assert extra == []


def test_nothing_imports_the_hub() -> None:
    """Handlers get a Context: only the app composes the Hub."""
    importers = sorted(n for n, targets in graph().items() if "signalling.hub.hub" in targets)
    assert importers == ["signalling.app"]


def test_nothing_imports_the_command_line() -> None:
    """The CLI composes the server: it sits above everything, nothing imports it."""
    importers = sorted(
        n
        for n, targets in graph().items()
        if not n.startswith(COMPOSITION_ROOT)
        and any(t == COMPOSITION_ROOT or t.startswith(f"{COMPOSITION_ROOT}.") for t in targets)
    )
    assert importers == ["signalling.__main__"]


#: signalling/'s folders, bottom up: what every part shares, the long-running
#: services and the hub (neither imports the other), the HTTP routes, the app
#: that composes them, the server that runs it, the command line above all.
SIGNALLING_FOLDERS = {
    "node": 0,
    "services": 1,
    "hub": 1,
    "routes": 2,
    "app": 3,
    "server": 4,
    "cli": 5,
    "__main__": 6,
}


def _folder(name: str) -> str:
    return name.split(".")[1]


def test_signalling_folders_import_only_down() -> None:
    """Inside signalling/, imports point down SIGNALLING_FOLDERS (node at the bottom)."""
    names = [n for n in MODULES if n.startswith("signalling.")]
    assert {_folder(n) for n in names} == set(SIGNALLING_FOLDERS)
    upward = []
    for name in names:
        for target in graph()[name]:
            if not target.startswith("signalling.") or _folder(target) == _folder(name):
                continue
            if SIGNALLING_FOLDERS[_folder(target)] >= SIGNALLING_FOLDERS[_folder(name)]:
                upward.append(f"{name} -> {target}")
    assert upward == []
