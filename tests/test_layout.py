"""Which spinrl modules may import which: the layers of the package, checked on the source with ``ast``.

- The commands that read runs (``spinrl plot``, ``ls``, ``compare``) need neither the launchers nor the
  command-line dispatcher, not even through the modules they import.
- Building blocks (the logger, the run directory, networks, buffers, MPI helpers, ...) know nothing of
  any algorithm and nothing of the command line, not even in an import inside a function.
- ``spinrl.run`` and ``spinrl.run_entrypoint`` are gone (now ``spinrl.cli`` and ``spinrl.launch.local``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "spinrl"

COMMANDS = ("spinrl.results.plot", "spinrl.results.ls", "spinrl.results.compare")
LAUNCHERS_AND_CLI = ("spinrl.launch.grid", "spinrl.launch.local", "spinrl.launch.ray", "spinrl.cli")
# Modules that may use algorithms and the command line: the dispatcher, the launchers, the demo, the
# policy viewer, the search (which reads the grid's syntax), the package's lazy algorithm attributes;
# exercises and the algorithms themselves.
NOT_BUILDING_BLOCKS = {
    "spinrl.cli",
    "spinrl.launch.grid",
    "spinrl.demo",
    "spinrl.results.policy",
    "spinrl.tune",
    "spinrl.tune.study",
    "spinrl",
}
GONE = ("spinrl.run", "spinrl.run_entrypoint")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_in(source: str, module: str = "") -> set[str]:
    """Every module an ``import`` statement anywhere in ``source`` names (inside functions, ``if``
    blocks and ``TYPE_CHECKING`` included). ``from spinrl import cli`` counts as ``spinrl.cli``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing module's package
                package = module.split(".")[: len(module.split(".")) - node.level]
                base = ".".join(package + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def spinrl_imports() -> dict[str, set[str]]:
    """Module name -> the spinrl modules it imports, for every module in the package."""
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        graph[name] = {m for m in imports_in(path.read_text(), name) if m.split(".")[0] == "spinrl"}
    return graph


def is_under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """The spinrl modules ``start`` imports, directly or through other spinrl modules."""
    seen, todo = set(), [start]
    while todo:
        for m in graph.get(todo.pop(), ()):
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return seen


def building_blocks(graph: dict[str, set[str]]) -> list[str]:
    return [
        m
        for m in graph
        if m not in NOT_BUILDING_BLOCKS
        and not is_under(m, ("spinrl.algos", "spinrl.exercises"))
        and not m.startswith("spinrl.launch_")
    ]


def test_the_import_finder_sees_lazy_and_aliased_imports():
    source = (
        "import os\n"
        "from spinrl import cli\n"
        "def f():\n"
        "    from spinrl.algos.ppo import ppo\n"
        "if __name__ == '__main__':\n"
        "    import spinrl.launch.grid as g\n"
        "from . import folder\n"
    )
    found = imports_in(source, "spinrl.record.logger")
    assert {"os", "spinrl.cli", "spinrl.algos.ppo", "spinrl.launch.grid", "spinrl.record.folder"} <= found
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    assert reachable(graph, "a") == {"a", "b", "c"}


def test_the_rules_cover_the_modules_they_name():
    graph = spinrl_imports()
    blocks = building_blocks(graph)
    for m in (
        "spinrl.record.logger",
        "spinrl.record.folder",
        "spinrl.common.mpi",
        "spinrl.launch.spec",
        "spinrl.nets",
        "spinrl.envs",
    ):
        assert m in blocks
    for m in (*COMMANDS, *LAUNCHERS_AND_CLI):
        assert m in graph, f"{m} is missing: update the layout rules"


@pytest.mark.parametrize("command", COMMANDS)
def test_commands_need_no_launcher_and_no_dispatcher(command):
    graph = spinrl_imports()
    used = reachable(graph, command)
    assert sorted(m for m in used if is_under(m, LAUNCHERS_AND_CLI)) == []


def test_building_blocks_know_no_algorithm_and_no_command_line():
    graph = spinrl_imports()
    offending = {
        m: sorted(i for i in graph[m] if is_under(i, ("spinrl.algos", "spinrl.cli")))
        for m in building_blocks(graph)
    }
    assert {m: found for m, found in offending.items() if found} == {}


def test_nothing_imports_the_removed_modules():
    graph = spinrl_imports()
    assert not (PACKAGE / "run.py").exists() and not (PACKAGE / "run_entrypoint.py").exists()
    offending = {m: sorted(i for i in found if is_under(i, GONE)) for m, found in graph.items()}
    assert {m: found for m, found in offending.items() if found} == {}
