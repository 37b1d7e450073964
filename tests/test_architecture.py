"""The layout's rules, read from the source: no import cycle anywhere, and layers that import only downwards.

DESIGN.md: dependencies point one way, handlers -> services -> models; a
service never imports Telegram, a handler or a renderer. Flows (`flows/`,
beside `handlers/`) are where a service's change meets its messages: they
call services and the render and queue what the services say should be
told, so a service never imports a flow either, a flow imports neither
Telegram nor a handler, and texts (`bot/render`) import neither a flow nor
a handler. Imports are read with `ast` from every module of the project
(function-level and TYPE_CHECKING imports too: a cycle hidden in a function
is still a cycle to its reader).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "flows", "handlers", "models", "migrations", "bench", "tests")
FORBIDDEN = {
    "bot.services": ("telegram", "handlers", "flows", "bot.render"),
    "flows": ("telegram", "handlers"),
    "bot.render": ("flows", "handlers"),
}
"""What each layer may never import (a package and everything below it)."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports (a `from package import module` counts as the module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for base, names in _imports(path.read_text(encoding="utf-8"), package):
        submodules = {f"{base}.{alias}" for alias in names} & known
        found.update(submodules)
        if len(submodules) < len(names) or not names:  # names defined in `base` itself, or `import base`
            found.add(base)
    return {target for target in found if target in known and target != name}


def _imports(source: str, package: str) -> list[tuple[str, list[str]]]:
    """(module, names taken from it) for every import statement, relative ones made absolute."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((base, [alias.name for alias in node.names]))
    return found


def forbidden_imports(source: str, package: str, forbidden: tuple[str, ...]) -> set[str]:
    """The names a module imports that fall under `forbidden` (`from bot import render` counts as `bot.render`)."""
    named = {name for base, names in _imports(source, package) for name in [base, *(f"{base}.{n}" for n in names)]}
    return {name for name in named for f in forbidden if name == f or name.startswith(f + ".")}


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
    assert found == [], "import cycles:\n" + "\n".join(" <-> ".join(cycle) for cycle in found)


def test_each_layer_imports_only_downwards() -> None:
    bad = []
    for name, path in modules().items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for layer, forbidden in FORBIDDEN.items():
            if name == layer or name.startswith(layer + "."):
                source = path.read_text(encoding="utf-8")
                bad += [f"{name} imports {target}" for target in sorted(forbidden_imports(source, package, forbidden))]
    assert bad == [], "imports against the layers:\n" + "\n".join(bad)


def test_flows_are_named_after_their_capability() -> None:
    """One module per capability with the same name across layers: a flow has its service and its texts."""
    known = modules()
    flows = [name.removeprefix("flows.") for name in known if name.startswith("flows.")]
    assert flows, "flows/ holds the capabilities whose services say what to tell"
    for capability in flows:
        assert f"bot.services.{capability}" in known and f"bot.render.{capability}" in known, capability


def test_the_layer_rule_sees_every_way_of_importing() -> None:
    forbidden = FORBIDDEN["bot.services"]
    assert forbidden_imports("from bot import render", "bot.services", forbidden) == {"bot.render"}
    assert forbidden_imports("from bot.render.incidents import alert_text", "bot.services", forbidden) == {
        "bot.render.incidents",
        "bot.render.incidents.alert_text",
    }
    assert forbidden_imports("import telegram.ext", "bot.services", forbidden) == {"telegram.ext"}
    assert forbidden_imports("from ..render import Msg", "bot.services", forbidden) == {"bot.render", "bot.render.Msg"}
    assert forbidden_imports("from flows import incidents", "bot.services", forbidden) == {"flows", "flows.incidents"}
    assert forbidden_imports("from bot.services import outbox", "bot.services", forbidden) == set()
    assert forbidden_imports("from bot.renderer import x", "bot.services", forbidden) == set()


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_graph_sees_imports_of_every_kind() -> None:
    edges = graph()
    assert "bot.services.checkin" in edges["handlers.checkin"]  # from bot.services.checkin import ...
    assert "handlers.incidents" in edges["handlers.checkin"]  # from handlers import incidents
    assert "handlers" not in edges["handlers.checkin"], "a submodule import is not an import of its package"
    assert "bot.services.audit" in edges["bot.services.checkin.writing"]  # from bot.services import audit, tally
