"""ExperimentGrid: run an algorithm over every combination of hyperparameter values.

The Spinning Up API::

    eg = ExperimentGrid(name="ppo-bench")
    eg.add("env_fn", ["CartPole-v1"], "", True)
    eg.add("seed", [0, 10, 20])
    eg.add("ac_kwargs:hidden_sizes", [(32,), (64, 64)], "hid")
    eg.run(ppo, num_cpu=1, data_dir="data", datestamp=False)

Keys with ``:`` name nested arguments (``ac_kwargs:hidden_sizes`` sets ``ac_kwargs["hidden_sizes"]``).
Run names follow Spinning Up's rules: ``<name>_<shorthand><value>..._s<seed>``.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import json
import os
import re
import string
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from spinrl.errors import UserError
from spinrl.logx import setup_logger_kwargs

VALID_NAME_CHARS = set(string.ascii_letters + string.digits + "_-")


def valid_str(v: Any) -> str:
    """A value as a string that is safe inside a file name: ``(64, 64)`` -> ``64-64``."""
    if hasattr(v, "__name__"):
        return valid_str(v.__name__)
    if isinstance(v, tuple | list):
        return "-".join(valid_str(x) for x in v)
    text = str(v).lower()
    return "".join(c if c in VALID_NAME_CHARS else "-" for c in text)


def _default_shorthand(key: str) -> str:
    """Spinning Up's default shorthand: the first three letters of each ``:``/``_`` separated word."""
    return "-".join(part[:3] for part in re.split(r"[:_]", key) if part)


class ExperimentGrid:
    """A grid of hyperparameter values; :meth:`run` launches one run per combination."""

    def __init__(self, name: str = ""):
        self.keys: list[str] = []
        self.vals: list[list[Any]] = []
        self.shs: list[str | None] = []
        self.in_names: list[bool] = []
        self.name(name)

    def name(self, _name: str) -> None:
        if not isinstance(_name, str):
            raise UserError(f"experiment name {_name!r} must be a string")
        self._name = _name

    def add(self, key: str, vals: Any, shorthand: str | None = None, in_name: bool = False) -> None:
        """Add a hyperparameter with one or more values.

        Args:
            key: the argument name (``a:b`` for nested dictionaries).
            vals: a value or a list of values, one run per value.
            shorthand: a short name for the key in run names (default: first letters of its words).
            in_name: put this key in run names even when it has a single value.
        """
        if not isinstance(vals, list):
            vals = [vals]
        if key in self.keys:
            raise UserError(f"hyperparameter {key!r} was given twice")
        if shorthand is not None and shorthand and not set(shorthand) <= VALID_NAME_CHARS:
            raise UserError(f"shorthand {shorthand!r} may only use letters, digits, '_' and '-'")
        self.keys.append(key)
        self.vals.append(vals)
        self.shs.append(shorthand)
        self.in_names.append(in_name)

    def variant_name(self, variant: dict[str, Any]) -> str:
        """The run name: the grid name plus every key with several values (or ``in_name``)."""
        parts = [self._name]
        for key, vals, sh, inn in zip(self.keys, self.vals, self.shs, self.in_names):
            if key == "seed":
                continue  # the seed goes in the per-seed folder name
            if len(vals) > 1 or inn:
                short = _default_shorthand(key) if sh is None else sh
                val = valid_str(_get_nested(variant, key))
                parts.append(short + val if short else val)
        return "_".join(p for p in parts if p)

    def variants(self) -> list[dict[str, Any]]:
        """Every combination of values, as nested keyword-argument dictionaries."""
        out = []
        for combo in itertools.product(*self.vals):
            flat = dict(zip(self.keys, combo))
            out.append(_unflatten(flat))
        return out

    def print(self) -> None:
        """Show the grid before launching: each key, its shorthand and its values."""
        console = Console(stderr=False)
        table = Table(title=f"ExperimentGrid {self._name!r}: {len(self.variants())} variant(s)")
        table.add_column("key")
        table.add_column("shorthand")
        table.add_column("values")
        for key, vals, sh in zip(self.keys, self.vals, self.shs):
            short = _default_shorthand(key) if sh is None else sh
            table.add_row(key, short, ", ".join(repr(v) for v in vals))
        console.print(table)

    def run(
        self,
        thunk: Callable,
        num_cpu: int = 1,
        data_dir: str | None = None,
        datestamp: bool = False,
        mpi_args: str = "",
    ) -> list[str]:
        """Run ``thunk`` (an algorithm function) once per variant, one after another.

        Returns the output directories of the runs.
        """
        self.print()
        out_dirs = []
        for variant in self.variants():
            exp_name = self.variant_name(variant)
            out_dirs.append(
                call_experiment(exp_name, thunk, num_cpu=num_cpu, data_dir=data_dir, datestamp=datestamp,
                                mpi_args=mpi_args, **variant)
            )
        return out_dirs


def _get_nested(d: dict, key: str) -> Any:
    for part in key.split(":"):
        d = d[part]
    return d


def _unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, val in flat.items():
        parts = key.split(":")
        d = out
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        d[parts[-1]] = val
    return out


def call_experiment(
    exp_name: str,
    thunk: Callable,
    seed: int = 0,
    num_cpu: int = 1,
    data_dir: str | None = None,
    datestamp: bool = False,
    mpi_args: str = "",
    **kwargs: Any,
) -> str:
    """Run one experiment: ``thunk(seed=seed, logger_kwargs=..., **kwargs)``.

    With ``num_cpu == 1`` it runs in this process. With more, it launches ``num_cpu`` MPI ranks of
    ``python -m spinrl.run_entrypoint``; the arguments travel as JSON, so they must be literals,
    Gymnasium ids, or importable classes and functions.
    Returns the run's output directory.
    """
    logger_kwargs = setup_logger_kwargs(exp_name, seed, data_dir, datestamp)
    kwargs = dict(kwargs, seed=seed, logger_kwargs=logger_kwargs)
    if "seed" not in inspect.signature(thunk).parameters:
        raise UserError(f"{thunk.__name__} takes no 'seed' argument")
    if num_cpu <= 1:
        thunk(**kwargs)
        return logger_kwargs["output_dir"]
    from spinrl.mpi import mpiexec_command

    payload = {"thunk": encode_callable(thunk), "kwargs": encode_value(kwargs)}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(payload, f)
        spec_path = f.name
    try:
        cmd, env = mpiexec_command(num_cpu, mpi_args)
        cmd += [sys.executable, "-m", "spinrl.run_entrypoint", spec_path]
        rc = subprocess.call(cmd, env=env)
    finally:
        os.unlink(spec_path)
    if rc != 0:
        raise UserError(f"run {exp_name!r} with {num_cpu} MPI ranks failed (exit code {rc}); see the messages above")
    return logger_kwargs["output_dir"]


# ----- passing arguments between processes as JSON (no pickle: nothing executes on load) ------------
def encode_callable(obj: Callable) -> dict[str, str]:
    module, qualname = obj.__module__, obj.__qualname__
    if "<" in qualname or module == "__main__" and not hasattr(sys.modules["__main__"], "__file__"):
        raise UserError(
            f"{obj!r} cannot be sent to another process: use a Gymnasium id string or a module-level function"
        )
    return {"__callable__": f"{module}:{qualname}"}


def encode_value(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: encode_value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [encode_value(x) for x in v]
    if callable(v) and hasattr(v, "env_name"):
        return v.env_name
    if inspect.isclass(v) or inspect.isfunction(v):
        return encode_callable(v)
    return v


def decode_value(v: Any) -> Any:
    if isinstance(v, dict) and set(v) == {"__callable__"}:
        module, qualname = v["__callable__"].split(":")
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return obj
    if isinstance(v, dict):
        return {k: decode_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [decode_value(x) for x in v]
    return v
