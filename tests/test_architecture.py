"""The layout's rules, read from the source: no import cycle anywhere, and services that never reach up.

DESIGN.md: dependencies point one way, handlers -> services -> models; a
service never imports Telegram, a handler or a renderer. Imports are read
with `ast` from every module of the project (function-level imports too:
a cycle hidden in a function is still a cycle to its reader).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "handlers", "models", "migrations", "bench", "tests")
SERVICES = "bot.services"
FORBIDDEN_IN_SERVICES = ("telegram", "handlers", "bot.render")

KNOWN_CYCLES = [
    ["bot.render.incidents", "bot.services.escalation", "bot.services.incident_copies", "bot.services.incidents"],
]
"""Cycles that are older than this test (issue 15 opens them); the list only shrinks: a cycle not listed fails."""

KNOWN_REACHING_UP = {
    "bot.services.escalation",
    "bot.services.incident_copies",
    "bot.services.incidents",
}
"""Services that still render their outbox texts (issue 15 moves it up a layer); the set only shrinks."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports (a `from package import module` counts as the module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            submodules = {f"{base}.{alias.name}" for alias in node.names} & known
            found.update(submodules)
            if len(submodules) < len(node.names):  # names defined in `base` itself
                found.add(base)
    return {target for target in found if target in known and target != name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, set(known)) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def test_no_module_imports_itself_round_a_circle() -> None:
    found = cycles(graph())
    new = [cycle for cycle in found if cycle not in KNOWN_CYCLES]
    assert new == [], "import cycles:\n" + "\n".join(" <-> ".join(cycle) for cycle in new)
    opened = [cycle for cycle in KNOWN_CYCLES if cycle not in found]
    assert opened == [], f"no longer a cycle, take it off KNOWN_CYCLES: {opened}"


def test_services_import_no_telegram_no_handler_and_no_renderer() -> None:
    known = modules()
    bad = []
    for name, path in known.items():
        if name != SERVICES and not name.startswith(SERVICES + "."):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            )
            if any(t == f or t.startswith(f + ".") for t in targets for f in FORBIDDEN_IN_SERVICES):
                bad.append(name)
    new = sorted(set(bad) - KNOWN_REACHING_UP)
    assert new == [], f"services importing telegram, handlers or render: {new}"
    fixed = sorted(KNOWN_REACHING_UP - set(bad))
    assert fixed == [], f"no longer reaching up, take them off KNOWN_REACHING_UP: {fixed}"


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_graph_sees_imports_of_every_kind() -> None:
    edges = graph()
    assert "bot.services.checkin" in edges["handlers.checkin"]  # from bot.services.checkin import ...
    assert "handlers.incidents" in edges["handlers.checkin"]  # from handlers import incidents
    assert "handlers" not in edges["handlers.checkin"], "a submodule import is not an import of its package"
    assert "bot.services.audit" in edges["bot.services.checkin"]  # from bot.services import audit, tally
