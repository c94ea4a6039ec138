"""The package layout holds: imports walked with ``ast`` (deferred imports included).

* no import cycle among ``hwnas`` modules;
* ``hwnas.cli`` is imported only from ``hwnas/cli/`` (the command line is the edge, not a library);
* no ``argparse`` in ``hwnas`` outside ``hwnas/cli/`` (flags become objects at the edge);
* the device side (``device_agent``, ``latency_db``) and ``hw_space`` never import ``hwnas``;
* no module over 500 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("hwnas", "device_agent", "latency_db", "hw_space")


def modules(package: str) -> dict[str, Path]:
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


KNOWN = {m for pkg in PACKAGES for m in modules(pkg)}


def imports(name: str, path: Path) -> set[str]:
    """Every module ``path`` imports, absolute, at any depth of the file."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            subs = {f"{base}.{a.name}" for a in node.names}
            found.update(subs)
            if not subs <= KNOWN:  # ``from pkg import module`` runs pkg/__init__ but imports no name of it
                found.add(base)
    return found


ALL = {m: p for pkg in PACKAGES for m, p in modules(pkg).items()}
GRAPH = {m: {i for i in imports(m, p) if i in ALL and i != m} for m, p in ALL.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_among_hwnas_modules() -> None:
    hw = {m: {i for i in deps if i.startswith("hwnas")} for m, deps in GRAPH.items() if m.startswith("hwnas")}
    assert cycles(hw) == []


@pytest.mark.parametrize("package", ["device_agent", "latency_db", "hw_space"])
def test_device_side_and_hw_space_never_import_hwnas(package: str) -> None:
    offenders = {m: sorted(i for i in imports(m, p) if i == "hwnas" or i.startswith("hwnas."))
                 for m, p in modules(package).items()}  # fmt: skip
    assert {m: v for m, v in offenders.items() if v} == {}


def test_cli_is_the_edge() -> None:
    outside = {m: p for m, p in modules("hwnas").items() if not (m == "hwnas.cli" or m.startswith("hwnas.cli."))}
    cli_users = sorted(m for m, p in outside.items() if any(i == "hwnas.cli" or i.startswith("hwnas.cli.") for i in imports(m, p)))
    argparse_users = sorted(m for m, p in outside.items() if "argparse" in imports(m, p))
    assert cli_users == [] and argparse_users == []


def test_no_module_over_500_lines() -> None:
    long = {m: n for m, p in ALL.items() if (n := len(p.read_text().splitlines())) > 500}
    assert long == {}
