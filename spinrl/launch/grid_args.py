"""Spinning Up's grid syntax on the command line: ``--key v1 v2``, shorthands, and the checks of the keys
against an algorithm's arguments.

``spinrl ppo --env CartPole-v1 --seed 0 10 --hid[h] "[64,64]" "[32]"`` is read by :func:`parse_grid` into
values per key (``{"env_fn": ["CartPole-v1"], "seed": [0, 10], "ac_kwargs:hidden_sizes": [...]}``) and
the run-name shorthands the user chose; :func:`check_keys` refuses a key the algorithm does not take. The
command line (:mod:`spinrl.cli`) and ``spinrl tune`` (:mod:`spinrl.tune.study`) read their arguments here.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import re
from collections.abc import Callable
from typing import Any

from spinrl.common.errors import UserError

# Spinning Up's shorthands for the command line.
SUBSTITUTIONS = {
    "env": "env_fn",
    "env_name": "env_fn",
    "hid": "ac_kwargs:hidden_sizes",
    "act": "ac_kwargs:activation",
    "dt": "datestamp",
}

# Run-name shorthands of the keys that get one without --key[short] (other keys: Spinning Up's default,
# the first three letters of each ":" part). The environment's value alone names it.
DEFAULT_SHORTHANDS = {"env_fn": "", "ac_kwargs:hidden_sizes": "hid", "ac_kwargs:activation": "act"}

# Flags that configure how runs are launched rather than the algorithm itself (and --preset, which the
# grid turns into the algorithm's own arguments).
LAUNCH_FLAGS = {
    "exp_name": "name of the experiment (a plain name, not a path): runs go to "
    "DATA_DIR/EXP_NAME/EXP_NAME_s<seed> (default cmd_<algo>)",
    "data_dir": "where runs are written (default ./data or $SPINRL_DATA_DIR)",
    "datestamp": "prefix run folders with the date and time (flag, or --dt)",
    "cpu": "number of MPI ranks per run: an integer up to the number of cores, or 'auto' (one per core; "
    "default 1)",
    "num_cpu": "same as --cpu",
    "oversubscribe": "allow --cpu above the number of cores of this machine (flag)",
    "mpi_args": 'extra arguments passed to mpiexec, e.g. "--hostfile hosts.txt"',
    "parallel": "run up to K grid variants at once, each in its own process with a share of the cores "
    "(default 1: one after another); with --backend ray, the most Ray tasks in flight",
    "backend": "where the variants run: local (this machine, default) or ray (one Ray task each)",
    "address": "the Ray cluster to join, HOST:PORT (default: start Ray on this machine); needs --backend ray",
    "preset": "tuned settings per environment shipped with spinrl (e.g. --preset tuned; listed below): "
    "each run takes its environment's entry for every hyperparameter you do not give (default: none, "
    "Spinning Up's defaults)",
    "track": "send each run's config and epochs to Weights & Biases (flag; the track extra)",
}
BOOLEAN_FLAGS = {"datestamp", "resume", "save_buffer", "compile", "async_envs", "oversubscribe", "track"}


def parse_value(text: str) -> Any:
    """A command-line value: a Python literal when it is one, else the string itself. Never eval."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_grid_args(tokens: list[str]) -> dict[str, list[Any]]:
    """``--key v1 v2 --flag`` -> ``{"key": [v1, v2], "flag": [True]}`` (with shorthands substituted)."""
    return parse_grid(tokens)[0]


# A flag: --name, --name[short] (Spinning Up's run-name shorthand), either one optionally =value.
_FLAG = re.compile(r"--([A-Za-z_][\w:]*)(?:\[([^\[\]]*)\])?(?:=(.*))?", flags=re.S)


def parse_grid(tokens: list[str]) -> tuple[dict[str, list[Any]], dict[str, str]]:
    """Split the command line into values per key and the shorthands the user chose for run names.

    As in Spinning Up, ``--hid[h] "[32,32]" "[64,32]"`` gives the key ``ac_kwargs:hidden_sizes`` two
    values and the shorthand ``h``, so the runs are named ``..._h32-32`` and ``..._h64-32``. A shorthand
    follows its key through the substitutions (``--env``, ``--hid``, ``--act``, ``--dt``).
    """
    args: dict[str, list[Any]] = {}
    shorthands: dict[str, str] = {}
    written: dict[str, str] = {}  # key -> the flag name as typed (before substitution)
    key = None
    for tok in tokens:
        # A flag is --name (letters, digits, _ and :), maybe with [short] and =value; anything else is
        # a value, so that --mpi_args "--hostfile hosts.txt" passes its text through.
        flag = _FLAG.fullmatch(tok)
        if flag is None and re.match(r"--[A-Za-z_][\w:]*\[", tok):
            raise UserError(
                f"{tok!r} is not a valid flag: a shorthand goes in brackets at the end, e.g. --hid[h]"
            )
        if flag or tok == "--":
            name = flag.group(1) if flag else ""
            if not name:
                raise UserError("empty flag '--': flags look like --epochs 10")
            key = SUBSTITUTIONS.get(name, name)
            if key in args:
                raise UserError(f"--{name} was given twice; give all its values after one flag")
            args[key], written[key] = [], name
            if flag.group(2) is not None:
                shorthands[key] = flag.group(2)
            if flag.group(3) is not None:
                args[key].append(parse_value(flag.group(3)))
        elif key is None:
            raise UserError(f"value {tok!r} comes before any flag: write --KEY {tok}")
        else:
            args[key].append(parse_value(tok))
    for k, vals in args.items():
        if not vals:
            if k in BOOLEAN_FLAGS:
                args[k] = [True]
            else:
                raise UserError(f"--{k} needs a value")
    return _in_spinning_up_order(args, shorthands, written), shorthands


def _in_spinning_up_order(
    args: dict[str, list[Any]], shorthands: dict[str, str], written: dict[str, str]
) -> dict[str, list[Any]]:
    """The keys in the order Spinning Up's parser leaves them, which is the order they join run names.

    Its parser moves a key to the end when it strips a ``[short]`` from it, then again when it
    replaces a short flag (``--env``, ``--hid``, ``--act``, ``--cpu``, ``--dt``, in that order) by the
    full name; every other key keeps its place on the command line.
    """
    order = list(args)

    def to_end(key: str) -> None:
        order.remove(key)
        order.append(key)

    for key in [k for k in order if k in shorthands]:
        to_end(key)
    for short in ("env", "hid", "act", "cpu", "dt"):
        for key in [k for k in order if written[k] == short]:
            to_end(key)
    return {k: args[k] for k in order}


def single_value(args: dict[str, list[Any]], key: str, default: Any) -> Any:
    """Take ``key`` out of ``args``: its one value, or ``default`` when it was not given."""
    vals = args.pop(key, None)
    if vals is None:
        return default
    if len(vals) != 1:
        raise UserError(f"--{key} takes one value, got {len(vals)}: {vals}")
    return vals[0]


def check_keys(algo: str, fn: Callable, args: dict[str, list[Any]]) -> None:
    """Refuse unknown hyperparameters (suggesting the closest valid name) and values the command line
    cannot give (classes, which are set from Python; keyword dictionaries that are not dictionaries)."""
    params = [p for p in inspect.signature(fn).parameters if p != "logger_kwargs"]
    if "actor_critic" in args:
        raise UserError(
            f"--actor_critic cannot be set from the command line; pass a class from Python: "
            f"{algo}(env_fn, actor_critic=MyActorCritic), or change the built-in one with --hid and --act"
        )
    ac_default = inspect.signature(fn).parameters.get("actor_critic")
    if ac_default is not None and inspect.isclass(ac_default.default):
        ac_params = [p for p in inspect.signature(ac_default.default).parameters if not p.endswith("_space")]
        for key in args:
            if key.startswith("ac_kwargs:") and key.split(":", 1)[1] not in ac_params:
                name = key.split(":", 1)[1]
                close = difflib.get_close_matches(name, ac_params, n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                raise UserError(
                    f"unknown actor-critic argument {name!r} (--{key}); {hint}valid: {', '.join(ac_params)}"
                )
    for key, vals in args.items():
        if key.endswith("_kwargs") and ":" not in key:
            for v in vals:
                if not isinstance(v, dict):
                    raise UserError(
                        f"--{key} {v!r} is not valid: give a dictionary, e.g. \"{{'hidden_sizes': [64, 64]}}\""
                    )
    for key in args:
        top = key.split(":")[0]
        if top not in params:
            close = difflib.get_close_matches(top, params + list(LAUNCH_FLAGS), n=1)
            hint = f"; did you mean --{close[0]}?" if close else f"; valid: {', '.join(params)}"
            raise UserError(f"unknown hyperparameter --{top} for {algo}{hint}")


def whole_numbers_as_int(fn: Callable, args: dict[str, list[Any]]) -> None:
    """``--epochs 2.0`` or ``--replay_size 1e6`` mean whole numbers: give integer-valued floats as ints to
    the arguments whose default is an int. (From Python, a float there stays an error.)"""
    for name, p in inspect.signature(fn).parameters.items():
        if name in args and isinstance(p.default, int) and not isinstance(p.default, bool):
            args[name] = [int(v) if isinstance(v, float) and v.is_integer() else v for v in args[name]]
