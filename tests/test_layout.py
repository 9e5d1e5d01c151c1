"""The floor plan of the package: which spinrl modules may import which, checked on the source with ``ast``.

The layers, lowest first. A module imports from its own layer and the layers below it, never from above:

    0  common, moved                 errors, checks, device, MPI, seeding; the table of earlier module paths
    1  envs                          making, seeding and checking environments; Atari; spaces and actions
    2  nets, buffers                 the networks; the GAE, replay and frame buffers
    3  record                        logger, run folder, lock, checkpoints, saved policies, tracking
    4  training                      the on-policy collector, off-policy helpers, compiled update, normalisers
    5  algos                         the seven algorithm files
    6  launch, results, tune, cli,   what starts runs and reads them; presets (settings the command line
       demo, presets, exercises,     resolves), the exercises, Spinning Up's import paths (utils) and the
       utils, spinrl/__init__.py     package's own lazy names

A package's ``__init__`` sits in its package's layer. The rules, each a function of an import graph, each
shown to catch a violation on a made-up graph:

- no import cycles (strongly connected groups of modules); an import under ``if TYPE_CHECKING:`` never runs
  and is left out of this rule, an import inside a function is not;
- no upward import; an algorithm file's ``if __name__ == "__main__":`` block, which runs the file as a
  script through the command line, is the program's entry and is left out of this rule;
- the networks and buffers reach nothing of the logger or training, not even through other modules;
- building blocks (layers 0 to 4) import no algorithm, no launcher and not the command line;
- the commands that read runs (``spinrl plot``, ``ls``, ``compare``) need neither the launchers nor the
  command-line dispatcher, not even through the modules they import;
- the package imports its own modules by their current names (the earlier ones in ``spinrl.moved`` are
  for users' code);
- ``spinrl.run`` and ``spinrl.run_entrypoint`` are gone (now ``spinrl.cli`` and ``spinrl.launch.local``).

And tests/ is laid out like the package (tests/README.md): each folder of tests is named after a spinrl
package.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable
from pathlib import Path

import pytest

import spinrl
from spinrl.moved import MOVED_MODULES, current_name

PACKAGE = Path(__file__).resolve().parents[1] / "spinrl"
TESTS = Path(__file__).resolve().parent

LAYERS: tuple[tuple[str, ...], ...] = (
    ("spinrl.common", "spinrl.moved"),
    ("spinrl.envs",),
    ("spinrl.nets", "spinrl.buffers"),
    ("spinrl.record",),
    ("spinrl.training",),
    ("spinrl.algos",),
    (
        "spinrl.launch",
        "spinrl.results",
        "spinrl.tune",
        "spinrl.cli",
        "spinrl.demo",
        "spinrl.presets",
        "spinrl.exercises",
        "spinrl.utils",
        "spinrl",  # the package's own __init__ (its lazy names are the algorithms and the logger)
    ),
)
BUILDING_BLOCKS = tuple(p for layer in LAYERS[: LAYERS.index(("spinrl.algos",))] for p in layer)
ALGORITHMS_LAUNCHERS_AND_CLI = ("spinrl.algos", "spinrl.launch", "spinrl.cli")
NETS_AND_BUFFERS, LOGGER_AND_TRAINING = (
    ("spinrl.nets", "spinrl.buffers"),
    ("spinrl.record", "spinrl.training"),
)
COMMANDS = ("spinrl.results.plot", "spinrl.results.ls", "spinrl.results.compare")
LAUNCHERS_AND_CLI = ("spinrl.launch", "spinrl.cli")
GONE = ("spinrl.run", "spinrl.run_entrypoint")

# Which imports a rule reads: every one; those that can run (not under TYPE_CHECKING); those of the
# module itself (not in its `if __name__ == "__main__":` block).
EVERY_IMPORT: frozenset[str] = frozenset()
IMPORTS_THAT_RUN = frozenset({"type_checking"})
IMPORTS_OF_THE_MODULE = frozenset({"main_block"})


# ----- reading the imports --------------------------------------------------------------------------------
def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _guarded_blocks(tree: ast.AST) -> dict[str, set[int]]:
    """The ids of the nodes under ``if TYPE_CHECKING:`` and under ``if __name__ == "__main__":``."""
    inside: dict[str, set[int]] = {"type_checking": set(), "main_block": set()}
    for node in ast.walk(tree):
        if not isinstance(node, ast.If):
            continue
        test = ast.unparse(node.test).replace("'", '"')
        if "TYPE_CHECKING" in test:
            kind = "type_checking"
        elif test in ('__name__ == "__main__"', '"__main__" == __name__'):
            kind = "main_block"
        else:
            continue
        for statement in node.body:  # the `else:` branch is what runs, so it is read
            inside[kind].update(id(n) for n in ast.walk(statement))
    return inside


def imports_in(source: str, module: str = "", is_package: bool = False, skip: frozenset[str] = EVERY_IMPORT):
    """Every module an ``import`` statement anywhere in ``source`` names (inside functions, ``if``
    blocks and ``TYPE_CHECKING`` included, unless ``skip`` names "type_checking" or "main_block").
    ``from spinrl import cli`` counts as ``spinrl`` and ``spinrl.cli``; a relative import is resolved
    against ``module`` (a package's ``__init__`` when ``is_package``)."""
    tree = ast.parse(source)
    guarded = _guarded_blocks(tree)
    skipped = set().union(*(guarded[kind] for kind in skip))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: `from . import x` in a package's __init__ means the package itself
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def resolve(name: str, modules: Iterable[str]) -> str:
    """The spinrl module an imported name stands for ("" for anything outside spinrl): an earlier path
    through spinrl.moved, the package's lazy names (``from spinrl import ppo``), then the longest
    prefix that is a module (``spinrl.record.logger.EpochLogger`` is ``spinrl.record.logger``)."""
    name = current_name(name)
    top, _, attribute = name.partition(".")
    if top == "spinrl" and "." not in attribute:
        if attribute.removesuffix("_pytorch") in spinrl._ALGORITHMS:
            name = f"spinrl.algos.{attribute.removesuffix('_pytorch')}"
        elif attribute in spinrl._LOGGERS:
            name = "spinrl.record.logger"
    modules = set(modules)
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name


def graph_of(
    sources: dict[str, tuple[str, bool]], skip: frozenset[str] = EVERY_IMPORT
) -> dict[str, set[str]]:
    """Module name -> the modules of the package it imports, from {module: (source, is_package)}. An
    import of the module itself or of a package above it is left out: Python has run those already."""
    graph = {}
    for module, (source, is_package) in sources.items():
        named = {resolve(n, sources) for n in imports_in(source, module, is_package, skip)}
        graph[module] = {m for m in named if m and m != module and not module.startswith(m + ".")}
    return graph


@functools.cache
def spinrl_imports(skip: frozenset[str] = EVERY_IMPORT) -> dict[str, set[str]]:
    """Module name -> the spinrl modules it imports, for every module in the package."""
    sources = {
        name: (path.read_text(), path.name == "__init__.py") for name, path in package_modules().items()
    }
    return graph_of(sources, skip)


# ----- the rules, each a function of a graph ----------------------------------------------------------
def is_under(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """The modules ``start`` imports, directly or through other modules."""
    seen, todo = set(), [start]
    while todo:
        for m in graph.get(todo.pop(), ()):
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return seen


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of two or more modules (Tarjan's algorithm): each is an import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(cycles)


def layer_of(module: str, layers: tuple[tuple[str, ...], ...] = LAYERS) -> int | None:
    """The layer a module sits in: that of its longest matching entry (the package root matches only
    its own ``__init__``); None when no layer names it."""
    best, best_length = None, -1
    for level, entries in enumerate(layers):
        for entry in entries:
            matches = module == entry or ("." in entry and module.startswith(entry + "."))
            if matches and len(entry) > best_length:
                best, best_length = level, len(entry)
    return best


def upward_imports(graph: dict[str, set[str]], layers=LAYERS) -> dict[str, list[str]]:
    """Module -> the modules it imports from a layer above its own."""
    found = {}
    for module, imported in graph.items():
        level = layer_of(module, layers)
        above = sorted(m for m in imported if level is not None and (layer_of(m, layers) or 0) > level)
        if above:
            found[module] = above
    return found


def reaching(
    graph: dict[str, set[str]], sources: Iterable[str], forbidden: Iterable[str]
) -> dict[str, list[str]]:
    """Module under ``sources`` -> the modules under ``forbidden`` it reaches, directly or not."""
    sources, forbidden = tuple(sources), tuple(forbidden)
    found = {}
    for module in graph:
        if is_under(module, sources):
            bad = sorted(m for m in reachable(graph, module) if is_under(m, forbidden))
            if bad:
                found[module] = bad
    return found


def importing(
    graph: dict[str, set[str]], sources: Iterable[str], forbidden: Iterable[str]
) -> dict[str, list[str]]:
    """Module under ``sources`` -> the modules under ``forbidden`` it imports itself."""
    sources, forbidden = tuple(sources), tuple(forbidden)
    found = {}
    for module, imported in graph.items():
        bad = sorted(m for m in imported if is_under(m, forbidden))
        if is_under(module, sources) and bad:
            found[module] = bad
    return found


def earlier_names(sources: dict[str, tuple[str, bool]]) -> dict[str, list[str]]:
    """Module -> the earlier module paths (spinrl.moved's aliases) its imports name."""
    found = {}
    for module, (source, is_package) in sources.items():
        old = sorted(n for n in imports_in(source, module, is_package) if is_under(n, MOVED_MODULES))
        if old:
            found[module] = old
    return found


# ----- the rules on made-up graphs: each catches what it is for ---------------------------------------
def test_the_import_reader_sees_lazy_aliased_guarded_and_relative_imports():
    source = (
        "import os\n"
        "from typing import TYPE_CHECKING\n"
        "from spinrl import cli\n"
        "def f():\n"
        "    from spinrl.algos.ppo import ppo\n"
        "if TYPE_CHECKING:\n"
        "    from spinrl.training.onpolicy import TrajectoryCollector\n"
        "if __name__ == '__main__':\n"
        "    import spinrl.launch.grid as g\n"
        "from . import folder\n"
    )
    found = imports_in(source, "spinrl.record.logger")
    wanted = {"os", "spinrl.cli", "spinrl.algos.ppo", "spinrl.training.onpolicy", "spinrl.launch.grid"}
    assert wanted | {"spinrl.record.folder"} <= found
    assert "spinrl.training.onpolicy" not in imports_in(source, "spinrl.record.logger", skip=IMPORTS_THAT_RUN)
    assert "spinrl.launch.grid" not in imports_in(source, "spinrl.record.logger", skip=IMPORTS_OF_THE_MODULE)
    assert "spinrl.record.folder" in imports_in("from . import folder\n", "spinrl.record", is_package=True)
    modules = ["spinrl", "spinrl.algos.ppo", "spinrl.record.logger", "spinrl.record.folder"]
    assert resolve("spinrl.logx.EpochLogger", modules) == "spinrl.record.logger"  # an earlier path
    assert resolve("spinrl.ppo_pytorch", modules) == "spinrl.algos.ppo"  # a lazy name of the package
    assert resolve("spinrl.rundir", modules) == "spinrl.record.folder"
    assert resolve("numpy.random", modules) == ""
    assert reachable({"a": {"b"}, "b": {"c"}, "c": {"a"}}, "a") == {"a", "b", "c"}


def test_the_graph_leaves_out_a_module_itself_and_the_packages_above_it():
    sources = {
        "spinrl": ("from spinrl import moved\n", True),
        "spinrl.moved": ("", False),
        "spinrl.record": ("", True),
        "spinrl.record.logger": ("import spinrl\nfrom spinrl.record import logger, folder\n", False),
        "spinrl.record.folder": ("", False),
    }
    graph = graph_of(sources)
    assert graph["spinrl.record.logger"] == {"spinrl.record.folder"}
    assert graph["spinrl"] == {"spinrl.moved"}


def test_the_cycle_rule_finds_each_strongly_connected_group():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"f"}, "f": {"e"}, "g": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c"], ["e", "f"]]
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a", "c"}}) == []


def test_the_layer_rule_catches_an_upward_import_and_allows_the_rest():
    layers = (("p.low", "p.other"), ("p.high",), ("p.top", "p"))
    graph = {
        "p.low.a": {"p.low.b", "p.other"},  # the same layer
        "p.low.b": {"p.high.c"},  # upward
        "p.high.c": {"p.low.a", "p.high.d"},  # downward; its own package
        "p.high.d": {"p.top"},  # upward to the top
        "p": {"p.high.c"},  # the package's __init__ is in the top layer
    }
    assert upward_imports(graph, layers) == {"p.low.b": ["p.high.c"], "p.high.d": ["p.top"]}
    assert layer_of("p", layers) == 2 and layer_of("p.elsewhere", layers) is None


def test_the_nets_and_buffers_rule_catches_a_logger_reached_through_another_module():
    graph = {
        "spinrl.nets.q_nets": {"spinrl.envs.actions"},
        "spinrl.envs.actions": {"spinrl.training.offpolicy"},  # one step away, then the logger is two
        "spinrl.training.offpolicy": {"spinrl.record.logger"},
        "spinrl.buffers.gae": {"spinrl.common.mpi"},
    }
    assert reaching(graph, NETS_AND_BUFFERS, LOGGER_AND_TRAINING) == {
        "spinrl.nets.q_nets": ["spinrl.record.logger", "spinrl.training.offpolicy"]
    }


def test_the_building_block_rule_catches_an_algorithm_a_launcher_or_the_command_line():
    graph = {
        "spinrl.record.logger": {"spinrl.cli"},
        "spinrl.training.onpolicy": {"spinrl.algos.ppo"},
        "spinrl.common.mpi": {"spinrl.launch.local"},
        "spinrl.algos.ppo": {"spinrl.record.logger"},
        "spinrl.launch.grid": {"spinrl.cli"},  # not a building block
    }
    assert sorted(importing(graph, BUILDING_BLOCKS, ALGORITHMS_LAUNCHERS_AND_CLI)) == [
        "spinrl.common.mpi",
        "spinrl.record.logger",
        "spinrl.training.onpolicy",
    ]


def test_the_commands_rule_catches_a_launcher_reached_through_the_run_folder():
    graph = {"spinrl.results.ls": {"spinrl.record.folder"}, "spinrl.record.folder": {"spinrl.launch.grid"}}
    assert reaching(graph, COMMANDS, LAUNCHERS_AND_CLI) == {"spinrl.results.ls": ["spinrl.launch.grid"]}


def test_the_current_names_rule_catches_an_earlier_module_path():
    sources = {
        "spinrl.results.ls": ("from spinrl.rundir import find_runs\nimport spinrl.record.folder\n", False)
    }
    assert earlier_names(sources) == {"spinrl.results.ls": ["spinrl.rundir", "spinrl.rundir.find_runs"]}


# ----- the rules on spinrl -------------------------------------------------------------------------------
def test_every_module_has_a_layer_and_the_rules_name_modules_that_exist():
    modules = package_modules()
    assert [m for m in modules if layer_of(m) is None] == [], "place the new package in LAYERS"
    for m in (*COMMANDS, "spinrl.launch.grid", "spinrl.launch.local", "spinrl.launch.ray", "spinrl.cli"):
        assert m in modules, f"{m} is missing: update the layout rules"
    for m in (
        "spinrl.record.logger",
        "spinrl.record.folder",
        "spinrl.common.mpi",
        "spinrl.nets",
        "spinrl.envs",
    ):
        assert is_under(m, BUILDING_BLOCKS)


def listed(found: dict[str, list[str]]) -> str:
    return "".join(f"\n  {module} -> {', '.join(targets)}" for module, targets in sorted(found.items()))


def test_no_import_cycles():
    cycles = import_cycles(spinrl_imports(skip=IMPORTS_THAT_RUN))
    assert cycles == [], "import cycles:" + "".join(f"\n  {' <-> '.join(group)}" for group in cycles)


def test_no_module_imports_from_a_layer_above_its_own():
    found = upward_imports(spinrl_imports(skip=IMPORTS_OF_THE_MODULE))
    assert found == {}, "imports from a layer above (see LAYERS):" + listed(found)


def test_networks_and_buffers_reach_no_logger_and_no_training_code():
    found = reaching(spinrl_imports(), NETS_AND_BUFFERS, LOGGER_AND_TRAINING)
    assert found == {}, "networks or buffers reaching the logger or training code:" + listed(found)


def test_building_blocks_know_no_algorithm_no_launcher_and_no_command_line():
    found = importing(spinrl_imports(), BUILDING_BLOCKS, ALGORITHMS_LAUNCHERS_AND_CLI)
    assert found == {}, "building blocks importing an algorithm, a launcher or the CLI:" + listed(found)


@pytest.mark.parametrize("command", COMMANDS)
def test_commands_need_no_launcher_and_no_dispatcher(command):
    found = reaching(spinrl_imports(), [command], LAUNCHERS_AND_CLI)
    assert found == {}, "a command that reads runs reaching a launcher or the CLI:" + listed(found)


def test_the_package_imports_its_modules_by_their_current_names():
    sources = {
        name: (path.read_text(), path.name == "__init__.py") for name, path in package_modules().items()
    }
    found = earlier_names(sources)
    assert found == {}, "earlier module paths (use the current ones):" + listed(found)


def test_nothing_imports_the_removed_modules():
    assert not (PACKAGE / "run.py").exists() and not (PACKAGE / "run_entrypoint.py").exists()
    sources = {name: path.read_text() for name, path in package_modules().items()}
    offending = {m: sorted(i for i in imports_in(s, m) if is_under(i, GONE)) for m, s in sources.items()}
    assert {m: found for m, found in offending.items() if found} == {}


def test_the_tests_are_laid_out_like_the_package():
    """Each folder of tests/ that holds Python files is named after a spinrl package and is itself a
    package (an __init__.py), so that pytest imports its test files as ``buffers.test_gae`` and two
    folders may hold the same file name. A folder of data only (old_runs/) is a fixture."""
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    folders = [p for p in TESTS.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))]
    with_code = [f for f in folders if any(f.rglob("*.py"))]
    assert sorted(f.name for f in with_code if f.name not in packages) == []
    assert sorted(f.name for f in with_code if not (f / "__init__.py").exists()) == []
