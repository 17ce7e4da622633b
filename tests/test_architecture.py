"""The package's layers: imports point down only, and never in a circle.

Also: another layer's subpackage is imported through its ``__init__``; a module over 400
lines says why at its top; every lint ignore says why.

Layers, low to high (docs/architecture.md draws them):

0. ``_clock``, ``_events``, ``_version``: shared by everything;
1. ``_client``: requests, transport, retries, models, errors, the lane meter protocol;
2. ``_lanes``: the pool, its backends, batches and reports;
3. ``_redis``, ``_monitor``: the shared backend and the account watch;
4. the public faces (``searchcans_async``, ``.events``, ``.monitor``, ``.redis``) and
   ``testing`` (the emulator);
5. ``_cli`` and ``_mcp``: the commands.

Every import counts, type hints (under ``TYPE_CHECKING``) and imports inside functions
too, with no exception: ``SearchCans.lanes()``, which builds a pool, is defined in the
lanes layer (``_lanes/client.py``) on top of the client layer's ``Client``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import searchcans_async

PACKAGE = Path(searchcans_async.__file__).parent
LAYERS = {
    "_clock": 0,
    "_events": 0,
    "_version": 0,
    "_client": 1,
    "_lanes": 2,
    "_redis": 3,
    "_monitor": 3,
    "__init__": 4,
    "events": 4,
    "monitor": 4,
    "redis": 4,
    "testing": 4,
    "_cli": 5,
    "_mcp": 5,
    "__main__": 5,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else "__init__"]


def imports(path: Path, modules: set[str]) -> set[str]:
    """The package modules ``path`` imports: at import time, in type hints, in functions."""
    me = module_name(path)
    package = me.split(".") if path.name == "__init__.py" else me.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in modules else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in modules and name != me}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: imports(path, set(paths)) for name, path in paths.items()}


def test_every_module_has_a_layer() -> None:
    """A new top-level module or package must be placed in a layer first."""
    assert all(layer(name) >= 0 for name in import_graph())


def test_imports_point_down_only() -> None:
    """No module imports one of a higher layer, not even for a type hint."""
    graph = import_graph()
    upward = sorted(
        f"{source} -> {target}"
        for source, targets in graph.items()
        for target in targets
        if layer(target) > layer(source)
    )
    assert upward == []


def test_the_import_graph_has_no_circle() -> None:
    """Modules can be read top-down: no chain of imports leads back to where it started."""
    graph = import_graph()
    done: set[str] = set()
    path: list[str] = []

    def walk(name: str) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        path.append(name)
        for target in sorted(graph[name]):
            circle = walk(target)
            if circle is not None:
                return circle
        path.pop()
        done.add(name)
        return None

    circles = [circle for name in sorted(graph) if (circle := walk(name)) is not None]
    assert circles == []


def test_the_checks_can_fail() -> None:
    """The graph reader sees relative, type-hint and function-level imports."""
    graph = import_graph()
    assert "searchcans_async._client.meter" in graph["searchcans_async._client.client"]
    assert "searchcans_async._lanes.batch" in graph["searchcans_async._lanes.pool"]
    assert "searchcans_async._lanes.backend" in graph["searchcans_async._lanes.lane"]  # a hint
    assert "searchcans_async._monitor.prometheus" in graph["searchcans_async.monitor"]  # in a def
    assert layer("searchcans_async._cli.run") > layer("searchcans_async._lanes.pool")


LONG_MODULE = 400  # lines


def long_modules_without_a_reason() -> list[str]:
    """Modules over LONG_MODULE lines whose docstring does not say why they are one module."""
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") <= LONG_MODULE:
            continue
        paragraphs = (ast.get_docstring(ast.parse(text)) or "").split("\n\n")
        if len(paragraphs) < 2 or not paragraphs[1].startswith("Why one module:"):
            missing.append(f"{path.relative_to(PACKAGE)} ({text.count(chr(10))} lines)")
    return missing


def test_a_long_module_says_why_at_its_top() -> None:
    """A module over 400 lines gives a one-line reason right below its summary line."""
    assert long_modules_without_a_reason() == []
    # ... and the check sees the long modules: at least the pool is one.
    assert (PACKAGE / "_lanes" / "pool.py").read_text().count("\n") > LONG_MODULE


def test_the_core_has_no_unexplained_lint_ignore() -> None:
    """Every `noqa` and `type: ignore` in the package names its code and says why."""
    unexplained = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for marker in ("# noqa", "# type: ignore"):
                if marker not in line:
                    continue
                after = line.split(marker, 1)[1]
                # "# noqa: CODE  # why" / "# type: ignore[code]  # why"
                if not (after[:1] in (":", "[") and "  # " in after):
                    unexplained.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert unexplained == []


# The one exception: the Prometheus side needs an optional extra, so it is imported from
# its module where it is used, never through ``_monitor/__init__``.
OPTIONAL_MODULES = {"searchcans_async._monitor.prometheus"}


def reaches_into(source: str, me: str) -> list[str]:
    """Imports in ``source`` (module ``me``) of another subpackage's modules, not its face.

    Every import counts here, type hints and function-level ones too: a subpackage's
    ``__init__`` names what the layers above may use.
    """
    package = me.split(".")[:-1]
    mine = me.split(".")[1] if me.count(".") >= 2 else None  # pkg.sub.module
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom) or node.module is None:
            continue
        base = package[: len(package) - node.level + 1] if node.level else []
        target = ".".join([*base, node.module]).split(".")
        if len(target) < 3 or target[0] != "searchcans_async":
            continue
        other_layer = target[1].startswith("_") and target[1] != mine
        if other_layer and ".".join(target[:3]) not in OPTIONAL_MODULES:
            found.append(f"{me}:{node.lineno}: from {'.'.join(target)} import ...")
    return found


def test_other_layers_are_imported_through_their_package() -> None:
    """`from .._client import X`, never `from .._client.errors import X`, across layers."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = module_name(path)
        if path.name == "__init__.py":
            me += ".__init__"
        found += reaches_into(path.read_text(encoding="utf-8"), me)
    assert found == []
    # ... and the check sees a reach into another layer's module, and allows its own.
    planted = "from .._client.errors import SearchCansError\nfrom .ledger import check_cost\n"
    assert reaches_into(planted, "searchcans_async._lanes.pool") == [
        "searchcans_async._lanes.pool:1: from searchcans_async._client.errors import ..."
    ]
