"""The package's layout holds: no import cycles, and no import from a lower layer up.

Every ``import`` statement of every module of ``helpers/`` is read from the source (module
level and inside functions alike), so a cycle hidden in a function-local import is found too.
The layers, bottom to top, are the ones ``helpers/__init__.py`` and the README describe.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "helpers"

# Top-level parts of helpers/ by layer: a part may import its own layer and the ones below.
LAYERS: dict[str, int] = {
    "validate": 0,
    "eval_mode": 0,
    "images": 0,
    "threads": 0,
    "settings": 0,
    "timing": 0,
    "results": 0,
    "models": 1,
    "data": 1,
    "train": 2,
    "inspection": 3,
    "measurement": 3,
    "plots": 3,
    "cam": 3,
    "transfer": 3,
    "check": 4,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The helpers modules ``path`` imports: ``from a import b`` counts as a.b when that is a
    module (a submodule import), else as a."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
    return {name for name in found if name in known}


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    known = set(modules)
    return {name: imported_modules(path, known) - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a list of names (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def part(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_every_part_has_a_layer():
    parts = {part(m) for m in all_modules()} - {""}
    assert parts == set(LAYERS), f"add {parts - set(LAYERS)} to LAYERS (and the README's map)"


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_import_runs_from_a_lower_layer_up():
    upward = [
        f"{source} imports {target}"
        for source, targets in import_graph().items()
        for target in targets
        if part(source) and part(target) and LAYERS[part(target)] > LAYERS[part(source)]
    ]
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("above", ["measurement", "inspection", "plots"])
def test_the_trainer_depends_on_nothing_above_it(above):
    reached = [
        f"{source} imports {target}"
        for source, targets in import_graph().items()
        for target in targets
        if part(source) == "train" and part(target) == above
    ]
    assert not reached, "\n".join(reached)


def test_every_package_declares_its_public_names():
    for init in PACKAGE.rglob("__init__.py"):
        assert "__all__" in init.read_text(), f"{init.relative_to(PACKAGE.parent)} lacks __all__"
