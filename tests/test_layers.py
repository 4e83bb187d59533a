"""The package's modules import one way, down the ranks CONTRIBUTING.md's Layout draws, and without a circle.

Imports are read from the source with ``ast``, wherever they are: at the top, inside a function (a lazy
import reaches up just as far), under ``if TYPE_CHECKING:``. A module may import its own rank or any rank
below; an import that points up fails, naming both modules. An import under ``TYPE_CHECKING`` counts for the
ranks (naming an upper layer's type is still reaching up) but not for circles (nothing runs at import).
``sandbox/`` is a WeChat Pay of its own (``tests/test_sandbox_layout.py`` holds its inside): it imports only
the protocol's vocabulary and crypto, and nothing else in the package imports it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from pathlib import Path

import django_papay

from .import_cycles import find_cycle as import_cycle

PACKAGE = "django_papay"
ROOT = Path(django_papay.__file__).parent

# Lowest first. A module's rank is its top-level module's or package's (services.billing: "services").
RANKS: Sequence[tuple[str, frozenset[str]]] = (
    # WeChat Pay's words, the typed errors, the signals, the one time format, stored messages: import nothing
    # of the package but each other.
    (
        "vocabulary",
        frozenset({"__init__", "wechatpay", "exceptions", "loopback", "display", "signals", "stored_messages"}),
    ),
    ("crypto", frozenset({"crypto"})),
    # The PAPAY settings table, its rules and keys, and the system checks on it.
    ("conf", frozenset({"conf", "conf_rules", "conf_keys", "checks"})),
    ("protocol", frozenset({"client", "notifications"})),  # the APIv3 client, the notification protocol
    ("models", frozenset({"models"})),
    ("services", frozenset({"services"})),
    # What a worker runs and dispatch enqueues: one row per task, by the services.
    ("tasks", frozenset({"tasks"})),
    ("dispatch", frozenset({"dispatch"})),  # enqueue it (PAPAY["TASKS"]) or run it here
    # What Django calls: the admin, the views and their URLs, the commands, the template filters, the AppConfig.
    # The pytest plugin for sites' tests is an edge too: pytest calls it.
    ("edges", frozenset({"admin", "views", "app_api", "urls", "management", "templatetags", "apps", "testing"})),
)
SANDBOX = "sandbox"
SANDBOX_MAY_IMPORT = frozenset({"wechatpay", "crypto", "loopback"})
# The one module of the package that may import the sandbox: the pytest plugin that starts it for a site's
# tests. Nothing imports the plugin (pytest loads it by name), so the sandbox stays out of the package's runtime.
MAY_IMPORT_SANDBOX = frozenset({"testing"})


def module_names(root: Path) -> dict[str, Path]:
    """Every module under ``root`` by dotted name relative to it; a package by its folder (``services``), the
    root package as ``__init__``. Migrations are left out: Django writes them, and they import only models."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if "migrations" in parts or "__pycache__" in parts:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts) or "__init__"] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterable[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement, and whether it sits under ``if TYPE_CHECKING:``."""
    todo: list[tuple[ast.AST, bool]] = [(tree, False)]
    while todo:
        node, type_only = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, type_only
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend((child, True) for child in node.body)
            todo.extend((child, type_only) for child in node.orelse)
            continue
        todo.extend((child, type_only) for child in ast.iter_child_nodes(node))


def imported(name: str, path: Path, modules: Iterable[str], package: str) -> dict[str, bool]:
    """The package's modules that module ``name`` imports: target → True when only under TYPE_CHECKING.

    ``from .x import y`` imports ``x.y`` when that is a module, else ``x``; a module importing the package it
    sits in (its ``__init__``, which Python runs first anyway) is not counted.
    """
    modules = set(modules)
    here = [] if name == "__init__" else name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: dict[str, bool] = {}

    def add(target: str, type_only: bool) -> None:
        target = target or "__init__"
        while target not in modules and "." in target:
            target = target.rsplit(".", 1)[0]
        if target not in modules or target == name or (name + ".").startswith(target + "."):
            return
        found[target] = found.get(target, True) and type_only

    def inside(dotted: str) -> str | None:
        if dotted == package:
            return ""
        return dotted[len(package) + 1 :] if dotted.startswith(package + ".") else None

    for node, type_only in _import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = inside(alias.name)
                if target is not None:
                    add(target, type_only)
            continue
        if node.level:
            base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
        else:
            module = inside(node.module or "")
            if module is None:
                continue
        for alias in node.names:
            full = f"{module}.{alias.name}".lstrip(".")
            add(full if full in modules else module, type_only)
    return found


def import_graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, dict[str, bool]]:
    modules = module_names(root)
    return {name: imported(name, path, modules, package) for name, path in modules.items()}


def rank_of(module: str, ranks: Sequence[tuple[str, frozenset[str]]] = RANKS) -> int | None:
    top = module.split(".")[0]
    for number, (_, members) in enumerate(ranks):
        if top in members:
            return number
    return None


def upward_imports(graph: dict[str, dict[str, bool]], ranks: Sequence[tuple[str, frozenset[str]]] = RANKS) -> list[str]:
    """Every import that points up a rank, or into or out of the sandbox, as a sentence naming both modules."""
    found = []
    for name in sorted(graph):
        for target in sorted(graph[name]):
            in_sandbox, to_sandbox = name.split(".")[0] == SANDBOX, target.split(".")[0] == SANDBOX
            if in_sandbox or to_sandbox:
                if in_sandbox and not to_sandbox and target not in SANDBOX_MAY_IMPORT:
                    found.append(f"{name} imports {target}: the sandbox imports only {sorted(SANDBOX_MAY_IMPORT)}")
                elif to_sandbox and not in_sandbox and name not in MAY_IMPORT_SANDBOX:
                    found.append(f"{name} imports {target}: the package never imports its sandbox")
                continue
            mine, theirs = rank_of(name, ranks), rank_of(target, ranks)
            if mine is not None and theirs is not None and theirs > mine:
                found.append(f"{name} ({ranks[mine][0]}) imports {target} ({ranks[theirs][0]}), a rank above it")
    return found


def find_cycle(graph: dict[str, dict[str, bool]]) -> list[str]:
    """One import circle (imports that run, not TYPE_CHECKING ones) as a list of modules, or []."""
    return import_cycle(
        {
            name: {target for target, type_only in targets.items() if not type_only and target in graph}
            for name, targets in graph.items()
        }
    )


# --- the package ------------------------------------------------------------------------------


def test_the_graph_sees_the_layers() -> None:
    graph = import_graph()
    assert {"dispatch", "tasks", "services.billing", "admin.queueing", "management.commands.papay_sync"} <= set(graph)
    assert "tasks" in graph["dispatch"] and "dispatch" in graph["admin.queueing"]
    assert "services.state" in graph["services.billing"] and "crypto" in graph["client"]


def test_every_module_has_a_rank() -> None:
    unranked = [name for name in import_graph() if name.split(".")[0] != SANDBOX and rank_of(name) is None]
    assert not unranked, f"give these a rank in RANKS (and a line in CONTRIBUTING.md's Layout): {unranked}"


def test_no_import_points_up_a_rank() -> None:
    assert upward_imports(import_graph()) == []


def test_the_services_never_import_the_tasks() -> None:
    """The decision "enqueue or run here" is dispatch's: a service that enqueued would reach up to an edge."""
    graph = import_graph()
    assert [name for name, targets in graph.items() if name.split(".")[0] == "services" and "tasks" in targets] == []


def test_nothing_imports_the_pytest_plugin() -> None:
    """It may import the sandbox only because pytest alone loads it: an import of it would bring the sandbox in."""
    graph = import_graph()
    assert [name for name, targets in graph.items() if set(targets) & MAY_IMPORT_SANDBOX] == []


def test_the_package_imports_itself_without_a_circle() -> None:
    assert find_cycle(import_graph()) == []


# --- the checker finds what it is for -----------------------------------------------------------

FAKE_RANKS = (("low", frozenset({"models", "services"})), ("high", frozenset({"tasks", "admin"})))


def _fake_package(root: Path, files: dict[str, str]) -> Path:
    for relative, source in files.items():
        path = root / "fake" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return root / "fake"


def test_a_planted_lazy_upward_import_is_found(tmp_path: Path) -> None:
    root = _fake_package(
        tmp_path,
        {
            "__init__.py": "",
            "tasks.py": "from .services import billing\n",
            "services/__init__.py": "from .billing import run\n",
            "services/billing.py": "def run():\n    from ..tasks import send  # the planted import\n    send()\n",
        },
    )
    graph = import_graph(root, "fake")
    assert graph["services.billing"] == {"tasks": False}
    assert upward_imports(graph, FAKE_RANKS) == ["services.billing (low) imports tasks (high), a rank above it"]


def test_a_planted_absolute_upward_import_is_found(tmp_path: Path) -> None:
    root = _fake_package(
        tmp_path, {"__init__.py": "", "admin.py": "", "models.py": "import fake.admin\nfrom fake import admin\n"}
    )
    assert upward_imports(import_graph(root, "fake"), FAKE_RANKS) == [
        "models (low) imports admin (high), a rank above it"
    ]


def test_a_planted_circle_is_found(tmp_path: Path) -> None:
    root = _fake_package(
        tmp_path,
        {
            "__init__.py": "",
            "services/__init__.py": "",
            "services/notify.py": "from . import fast\n",
            "services/fast.py": "def apply():\n    from .notify import handle\n",
        },
    )
    graph = import_graph(root, "fake")
    assert upward_imports(graph, FAKE_RANKS) == []  # one rank: only the circle is wrong
    assert find_cycle(graph) == ["services.fast", "services.notify", "services.fast"]


def test_a_type_checking_import_is_no_circle_but_still_ranked(tmp_path: Path) -> None:
    root = _fake_package(
        tmp_path,
        {
            "__init__.py": "",
            "services.py": "from . import models\n",
            "models.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import services, tasks\n",
            "tasks.py": "",
        },
    )
    graph = import_graph(root, "fake")
    assert find_cycle(graph) == []
    assert upward_imports(graph, FAKE_RANKS) == ["models (low) imports tasks (high), a rank above it"]


def test_the_sandbox_is_held_apart(tmp_path: Path) -> None:
    root = _fake_package(
        tmp_path,
        {
            "__init__.py": "",
            "crypto.py": "",
            "models.py": "from .sandbox import state\n",
            "sandbox/__init__.py": "",
            "sandbox/state.py": "from .. import crypto, models\n",
        },
    )
    assert upward_imports(import_graph(root, "fake"), FAKE_RANKS) == [
        "models imports sandbox.state: the package never imports its sandbox",
        "sandbox.state imports models: the sandbox imports only ['crypto', 'loopback', 'wechatpay']",
    ]
