"""The sandbox's modules import one way: no circle (TYPE_CHECKING imports count too), and only the package
entry points and keys.py (which builds a Sandbox) import the facade."""

from __future__ import annotations

import ast
from pathlib import Path

import django_papay.sandbox

from .import_cycles import find_cycle

PACKAGE = "django_papay.sandbox"
ROOT = Path(django_papay.sandbox.__file__).parent
FACADE = "facade"
MAY_IMPORT_THE_FACADE = {"__init__", "__main__", "keys", FACADE}


def module_names() -> dict[str, Path]:
    """Every module of the package, by dotted name relative to it (``handlers.contracts``)."""
    names = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def imported(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package modules that module ``name`` imports, anywhere in its source."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package and name != "__init__" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                prefix = ".".join([*base, *(node.module.split(".") if node.module else [])])
            else:
                prefix = node.module or ""
                if not (prefix == PACKAGE or prefix.startswith(PACKAGE + ".")):
                    continue
                prefix = prefix[len(PACKAGE) + 1 :]
            targets = [prefix, *(f"{prefix}.{alias.name}".lstrip(".") for alias in node.names)]
        else:
            continue
        for target in targets:
            target = target[len(PACKAGE) + 1 :] if target.startswith(PACKAGE + ".") else target
            if target in modules and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imported(name, path, set(modules)) for name, path in modules.items()}


def test_the_graph_sees_the_layers() -> None:
    graph = import_graph()
    assert {"state", "routes", "httpd", "handlers.contracts"} <= graph.keys()
    assert "state" in graph["handlers.contracts"] and "handlers.contracts" in graph["routes"]


def test_sandbox_modules_import_each_other_without_a_circle() -> None:
    assert find_cycle(import_graph()) == []


def test_a_circle_would_be_found() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_only_the_entry_points_and_keys_import_the_facade() -> None:
    importers = {name for name, targets in import_graph().items() if FACADE in targets}
    assert importers <= MAY_IMPORT_THE_FACADE, importers - MAY_IMPORT_THE_FACADE


def test_the_state_imports_no_layer_above_it() -> None:
    graph = import_graph()
    above = {"faults", "handlers", "routes", "httpd", "user", "delivery", "outgoing", FACADE}
    reachable, todo = set(), ["state"]
    while todo:
        for target in graph[todo.pop()] - reachable:
            reachable.add(target)
            todo.append(target)
    assert not reachable & {name for name in graph if name.split(".")[0] in above}
