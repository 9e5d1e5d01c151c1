"""spinrl.algos.arguments: what several algorithms share is explained once, and every reader of an
algorithm's docstring (help(), ``spinrl ALGO --help``, the API reference) still sees every argument once."""

from __future__ import annotations

import importlib
import inspect
import pydoc
import re
from pathlib import Path

import pytest

from spinrl.algos import arguments
from spinrl.algos.arguments import ALL_ALGORITHMS, OFF_POLICY, ON_POLICY, with_shared_argument_docs
from spinrl.cli import algorithm_help, parse_docstring_args

ALGORITHMS = ("vpg", "trpo", "ppo", "ddpg", "td3", "sac", "dqn")
PACKAGE = Path(arguments.__file__).resolve().parents[1]
TABLES = {"ALL_ALGORITHMS": ALL_ALGORITHMS, "ON_POLICY": ON_POLICY, "OFF_POLICY": OFF_POLICY}


def algorithm(name: str):
    return getattr(importlib.import_module(f"spinrl.algos.{name}"), name)


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("name", ALGORITHMS)
def test_every_argument_is_explained_exactly_once(name):
    fn = algorithm(name)
    params = list(inspect.signature(fn).parameters)
    doc = inspect.getdoc(fn)
    # In the docstring: one entry per argument, in the order of the signature.
    entries = re.findall(r"^    (\w+)(?: \(.*?\))?:", doc.split("\nArgs:\n")[1].split("\n\n")[0], re.M)
    assert entries == params
    # What the command line reads from it, and what its help prints.
    descriptions = parse_docstring_args(fn)
    assert list(descriptions) == params and all(descriptions.values())
    help_text = algorithm_help(name, fn)
    for param in params:
        if param in ("env_fn", "logger_kwargs"):  # --env ENV_ID; logger_kwargs is not a flag
            continue
        assert len(re.findall(rf"^  --{param}\b", help_text, re.M)) == 1, param
    # help(): pydoc renders the same docstring.
    rendered = pydoc.render_doc(fn, renderer=pydoc.plaintext)
    assert "Discount factor" in rendered and "env_kwargs:" in rendered


@pytest.mark.parametrize(("table_name", "arg"), [(t, a) for t, table in TABLES.items() for a in table])
def test_a_shared_text_stands_once_in_the_source_tree(table_name, arg):
    """No algorithm file (nor any other module) repeats a shared paragraph: it lives in arguments.py."""
    text = flat(TABLES[table_name][arg])
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "arguments.py" and path.parent.name == "algos":
            continue
        assert text not in flat(path.read_text()), f"{path}: repeats the shared text of {arg}"
    own_source = flat((PACKAGE / "algos" / "arguments.py").read_text())
    assert own_source.count(text) == 1


def test_every_shared_text_serves_several_algorithms():
    served: dict[str, set[str]] = {}
    for name in ALGORITHMS:
        for arg in algorithm(name).__shared_arguments__:
            served.setdefault(arg, set()).add(name)
    for table_name, table in TABLES.items():
        for arg in table:
            assert len(served.get(arg, ())) >= 2, (
                f"{table_name}[{arg!r}] serves {served.get(arg)}: make it own"
            )


def test_a_shared_text_names_no_default_that_differs_between_its_algorithms():
    users: dict[str, dict[str, object]] = {}
    for name in ALGORITHMS:
        fn = algorithm(name)
        for arg in fn.__shared_arguments__:
            users.setdefault(arg, {})[name] = inspect.signature(fn).parameters[arg].default
    for arg, defaults in users.items():
        if len({repr(d) for d in defaults.values()}) > 1:
            text = ON_POLICY.get(arg, "") + OFF_POLICY.get(arg, "")
            assert "default" not in text, f"{arg}: defaults differ ({defaults}) but its shared text names one"


def test_the_measured_compile_figures_left_the_docstrings():
    doc = inspect.getdoc(algorithm("sac"))
    assert "torch.compile" in doc
    assert not re.search(r"H200|2-core|\d+(\.\d+)?x faster|\d+ s\b", doc)


def test_an_argument_explained_nowhere_fails_at_import():
    def algo(env_fn, mystery_knob=3):
        """An algorithm.

        Args:
            env_fn: The environment.
        """

    with pytest.raises(TypeError, match="mystery_knob"):
        with_shared_argument_docs(ON_POLICY)(algo)


def test_an_entry_for_an_argument_the_signature_lacks_fails_at_import():
    def algo(env_fn):
        """An algorithm.

        Args:
            env_fn: The environment.
            gone: An argument that was removed.
        """

    with pytest.raises(TypeError, match="gone"):
        with_shared_argument_docs(ON_POLICY)(algo)


def test_an_own_entry_wins_and_the_rest_follow_the_signature():
    def algo(env_fn, seed=0, gamma=0.5, clip=1.0):
        """An algorithm.

        Args:
            clip: Own.
            gamma: Own discount, unlike the others'.

        Returns:
            Nothing.
        """

    with_shared_argument_docs(ON_POLICY)(algo)
    doc = algo.__doc__
    names = re.findall(r"^    (\w+):", doc, re.M)
    assert names == ["env_fn", "seed", "gamma", "clip"]
    assert "gamma: Own discount" in doc and doc.endswith("Returns:\n    Nothing.")
    assert algo.__shared_arguments__ == ("env_fn", "seed")
