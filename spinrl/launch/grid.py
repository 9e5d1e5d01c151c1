"""ExperimentGrid: run an algorithm over every combination of hyperparameter values.

The Spinning Up API::

    eg = ExperimentGrid(name="ppo-bench")
    eg.add("env_name", ["CartPole-v1"], "", True)
    eg.add("seed", [0, 10, 20])
    eg.add("ac_kwargs:hidden_sizes", [(32,), (64, 64)], "hid")
    eg.run(ppo, num_cpu=1, data_dir="data", datestamp=False)

Keys with ``:`` name nested arguments (``ac_kwargs:hidden_sizes`` sets ``ac_kwargs["hidden_sizes"]``).
Run names follow Spinning Up's rules (``spinup/utils/run_utils.py``): the grid name, then for every key
with several values (or added with ``in_name=True``) its shorthand and value, joined by ``_``; the seed
never joins the name, it names the per-seed folder instead. The grid above writes
``data/ppo-bench_cartpole-v1_hid32/ppo-bench_cartpole-v1_hid32_s0`` and five more runs.

Three ways to launch the variants:

- one after another in this process (``parallel=1``, the default, as in Spinning Up);
- up to ``parallel`` at once on this machine, each in its own process with its own log file and a
  share of the cores (``parallel=K``; :mod:`spinrl.launch.local`);
- as Ray tasks on a Ray cluster (``backend="ray"``; :mod:`spinrl.launch.ray`), writing to a
  ``data_dir`` all nodes share.

This module plans the runs (names, folders, a ``preset``'s values); :mod:`spinrl.launch.plan` checks each
one and makes the resume decision; the launcher modules start them.

With ``resume=True`` among the hyperparameters, finished variants are skipped and the others continue
from their last checkpoint, so a grid stopped by Ctrl-C, a crash or a lost node is finished by running
the same command again with ``--resume``. A larger ``epochs`` extends finished variants too. Before
anything is launched, every variant is checked: its hyperparameters and environment options (for
spinrl's algorithms), a run directory another process is writing to, an existing run without
``resume``, or a resume with settings other than the run's config.json (see
:func:`spinrl.record.config.check_same_run`) refuses the whole grid in one line.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from spinrl.common.errors import UserError
from spinrl.launch.local import run_in_parallel, run_with_mpi
from spinrl.launch.plan import PlannedRun, algorithm_kwargs, check_variant, skip_on_resume
from spinrl.launch.spec import make_spec
from spinrl.presets import resolve_preset
from spinrl.record.console import live_terminal
from spinrl.record.folder import setup_logger_kwargs

VALID_NAME_CHARS = set(string.ascii_letters + string.digits + "_-")
BACKENDS = ("local", "ray")


def valid_str(v: Any) -> str:
    """A value as a string that is safe inside a file name: ``(64, 64)`` -> ``64-64``."""
    if hasattr(v, "__name__"):
        return valid_str(v.__name__)
    if isinstance(v, tuple | list):
        return "-".join(valid_str(x) for x in v)
    text = str(v).lower()
    return "".join(c if c in VALID_NAME_CHARS else "-" for c in text)


def _default_shorthand(key: str) -> str:
    """Spinning Up's default shorthand: the first three letters of each ``:``-separated part, keeping
    only letters and digits (``ac_kwargs:hidden_sizes`` -> ``ac-hid``, ``steps_per_epoch`` -> ``ste``)."""
    alnum = set(string.ascii_letters + string.digits)
    return "-".join("".join(c for c in part[:3] if c in alnum) for part in key.split(":"))


def _all_bools(vals: list[Any]) -> bool:
    return all(isinstance(v, bool) for v in vals)


class ExperimentGrid:
    """A grid of hyperparameter values; :meth:`run` launches one run per combination."""

    def __init__(self, name: str = ""):
        self.keys: list[str] = []
        self.vals: list[list[Any]] = []
        self.shs: list[str] = []
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
            shorthand: a short name for the key in run names (default: the first three letters of each
                ``:``-separated part, e.g. ``ac-hid``; ``""`` puts the bare value in the name).
            in_name: put this key in run names even when it has a single value.
        """
        if not isinstance(vals, list):
            vals = [vals]
        if not vals:
            raise UserError(f"hyperparameter {key!r} needs at least one value")
        if key in self.keys:
            raise UserError(f"hyperparameter {key!r} was given twice")
        if shorthand and not set(shorthand) <= VALID_NAME_CHARS:
            raise UserError(f"shorthand {shorthand!r} may only use letters, digits, '_' and '-'")
        self.keys.append(key)
        self.vals.append(vals)
        self.shs.append(_default_shorthand(key) if shorthand is None else shorthand)
        self.in_names.append(in_name)

    def variant_name(self, variant: dict[str, Any]) -> str:
        """The run name: the grid name plus every key with several values (or ``in_name``).

        A key whose values are all booleans appears as its bare shorthand, and only where it is True
        (``ppo_norm`` rather than ``ppo_normtrue``). The seed never appears: runs that differ only in
        their seed share a name and sit side by side in one experiment folder.
        """
        name = self._name
        for key, vals, sh, inn in zip(self.keys, self.vals, self.shs, self.in_names):
            if key == "seed" or not (len(vals) > 1 or inn):
                continue
            value = _get_nested(variant, key)
            if _all_bools(vals):
                name += f"_{valid_str(sh)}" if value else ""
            else:
                name += f"_{valid_str(sh)}{valid_str(value)}"
        return name.lstrip("_")

    def variants(self) -> list[dict[str, Any]]:
        """Every combination of values, as nested keyword-argument dictionaries.

        The first key added varies slowest, as in Spinning Up.
        """
        return [_unflatten(dict(zip(self.keys, combo))) for combo in itertools.product(*self.vals)]

    def print(self) -> None:
        """Show the grid before launching: each key with its shorthand and values, then every variant."""
        variants = self.variants()
        # Colours only on a terminal that the launcher vouches for (see spinrl.record.console.live_terminal).
        plain = not live_terminal()
        console = Console(
            highlight=False, width=max(100, Console().width), force_terminal=False if plain else None
        )
        num_seeds = len(self.vals[self.keys.index("seed")]) if "seed" in self.keys else 1
        console.print(
            f"[bold green]ExperimentGrid {escape(repr(self._name))}[/]: {len(variants)} variant(s), "
            f"{len(variants) // num_seeds} not counting seeds"
        )
        for key, vals, sh in zip(self.keys, self.vals, self.shs):
            line = f"  [cyan]{escape(key)}[/] " + escape(f"[{sh}]: " + ", ".join(_show(v) for v in vals))
            console.print(line, soft_wrap=True)
        varying = [k for k, v in zip(self.keys, self.vals) if len(v) > 1 and k != "seed"]
        table = Table(box=None, pad_edge=False)
        table.add_column("#", justify="right")
        table.add_column("run")
        for key in varying:
            table.add_column(key)
        table.add_column("seed", justify="right")
        for i, variant in enumerate(variants, 1):
            cells = [_show(_get_nested(variant, k)) for k in varying]
            table.add_row(
                str(i), escape(self.variant_name(variant)), *map(escape, cells), str(variant.get("seed", 0))
            )
        console.print(table)

    def run(
        self,
        thunk: Callable | str,
        num_cpu: int = 1,
        data_dir: str | None = None,
        datestamp: bool = False,
        mpi_args: str = "",
        parallel: int = 1,
        backend: str = "local",
        address: str | None = None,
        preset: str | None = None,
        track: bool = False,
    ) -> list[str]:
        """Run ``thunk`` (an algorithm function) once per variant.

        Args:
            thunk: the algorithm, e.g. ``spinrl.algos.ppo.ppo``; or, as in Spinning Up, the name of a
                grid key whose values are algorithm functions.
            num_cpu: MPI ranks per run.
            data_dir: where runs are written (default ``./data`` or ``$SPINRL_DATA_DIR``).
            datestamp: prefix run folders with the date and time.
            mpi_args: extra arguments for ``mpiexec``.
            parallel: how many variants run at once. With more than one, each variant runs in its own
                process, with stdout and stderr in ``<run dir>/output.log`` and
                ``max(1, cores // (parallel * num_cpu))`` threads, so the runs share the cores instead
                of fighting over them. Single-process variants are forked from a zygote process that
                has imported torch and the algorithm once, so a variant starts at once; with
                ``num_cpu > 1`` each variant is a new ``mpiexec``. A failed variant does not stop the
                others; failures are reported at the end. With the Ray backend it caps the tasks in flight (default: as
                many as the cluster's CPUs allow).
            backend: ``"local"`` (this machine) or ``"ray"`` (one Ray task per variant, asking for
                ``num_cpu`` CPUs, and a GPU when the variant's ``device`` starts with ``cuda``).
            address: the Ray cluster to join (``HOST:PORT``); default: a Ray instance on this machine.
            preset: tuned settings shipped with spinrl (:mod:`spinrl.presets`), e.g. ``"tuned"``: each
                variant gets its environment's entry for every hyperparameter the grid does not set,
                and config.json records the preset's name. A variant whose environment has no entry
                keeps the defaults; a line says so.
            track: send every run to Weights & Biases (``logger_kwargs["track"]``, see :mod:`spinrl.record.tracking`).

        Returns the output directories of the runs (skipped finished ones included).
        """
        if backend not in BACKENDS:
            raise UserError(f"--backend {backend!r} is not valid: use one of {', '.join(BACKENDS)}")
        if not isinstance(parallel, int) or isinstance(parallel, bool) or parallel < 1:
            raise UserError(f"--parallel {parallel!r} is not valid: give a whole number of runs, 1 or more")
        if address is not None and backend != "ray":
            raise UserError(f"--address {address} only applies to --backend ray")
        if preset is not None and not isinstance(preset, str):
            raise UserError(f"--preset {preset!r} is not valid: give a preset's name, e.g. tuned")
        if track:
            from spinrl.record.tracking import check_ready  # wandb is an optional extra

            check_ready()
        self.print()

        said: set[str] = set()  # each preset line once, not once per seed
        runs = [
            self._plan_run(variant, thunk, num_cpu, data_dir, datestamp, mpi_args, preset, said, track)
            for variant in self.variants()
        ]
        out_dirs = [r.output_dir for r in runs]
        if len(set(out_dirs)) < len(out_dirs):
            twice = next(d for d in out_dirs if out_dirs.count(d) > 1)
            raise UserError(
                f"two variants would both write to {twice}: give the keys whose values look alike "
                "(e.g. 0.1 and '0.1') distinct values or shorthands"
            )
        # Every variant's values are checked before the first one starts: a bad value in the last
        # variant must not cost the time of training all the others first.
        checked_envs: set[str] = set()
        for r in runs:
            check_variant(r, checked_envs, name_it=len(runs) > 1)
        todo = [r for r in runs if not skip_on_resume(r)]
        if not todo:
            print("Every variant has finished already; nothing to run.", flush=True)
            return out_dirs

        if backend == "ray":
            from spinrl.launch.ray import run_on_ray  # Ray is an optional extra

            failures = run_on_ray(todo, address, parallel)
        elif parallel > 1:
            failures = run_in_parallel(todo, parallel)
        else:
            # Spinning Up's way: one after another, in this process; an error stops the grid.
            for r in todo:
                call_experiment(
                    r.exp_name,
                    r.thunk,
                    num_cpu=num_cpu,
                    data_dir=data_dir,
                    datestamp=datestamp,
                    mpi_args=mpi_args,
                    **r.kwargs,
                )
            failures = []
        if failures:
            raise UserError(f"{len(failures)} of {len(todo)} variant(s) failed; their logs are listed above")
        return out_dirs

    def _plan_run(
        self,
        variant: dict[str, Any],
        thunk: Callable | str,
        num_cpu: int,
        data_dir: str | None,
        datestamp: bool,
        mpi_args: str,
        preset: str | None = None,
        said: set[str] | None = None,
        track: bool = False,
    ) -> PlannedRun:
        exp_name = self.variant_name(variant)  # Spinning Up names a variant before taking the thunk out
        variant = dict(variant)
        if isinstance(thunk, str):
            if thunk not in variant or not callable(variant[thunk]):
                raise UserError(f"thunk {thunk!r} must name a grid key whose values are algorithm functions")
            fn = variant.pop(thunk)
        else:
            fn = thunk
        seed = variant.pop("seed", 0)
        logger_kwargs = setup_logger_kwargs(exp_name, seed, data_dir, datestamp)
        if preset is not None and self._add_preset(variant, fn, preset, set() if said is None else said):
            logger_kwargs["preset"] = preset  # the logger records it in config.json
        if track:
            logger_kwargs["track"] = True
        kwargs = algorithm_kwargs(fn, dict(variant, seed=seed, logger_kwargs=logger_kwargs))
        return PlannedRun(exp_name, fn, kwargs, logger_kwargs["output_dir"], num_cpu, mpi_args)

    def _add_preset(self, variant: dict[str, Any], fn: Callable, preset: str, said: set[str]) -> bool:
        """Fill ``variant`` with its environment's entry of ``preset`` where the grid sets no value, and
        say what was taken (each line once). Returns whether the preset has an entry for the environment.

        This is the one place where a preset becomes hyperparameters: everything after it (the run
        spec, config.json, the resume check) sees ordinary arguments.
        """
        env = variant.get("env_fn", variant.get("env_name"))
        env_id = env if isinstance(env, str) else getattr(env, "env_name", None)
        settings, line = resolve_preset(fn, preset, env_id, self.keys)
        if line not in said:
            print(line, flush=True)
            said.add(line)
        for key, value in (settings or {}).items():
            *tables, name = key.split(":")
            d = variant
            for t in tables:  # copied, so that no dictionary a caller gave (or another variant) changes
                d[t] = dict(d.get(t) or {})
                d = d[t]
            d[name] = value
        return settings is not None


def _show(v: Any) -> str:
    return getattr(v, "__name__", None) or repr(v)


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
            if not isinstance(d, dict):
                raise UserError(f"hyperparameter {key!r} nests inside {p!r}, which already has a plain value")
        d[parts[-1]] = val
    return out


# ----- one experiment, as in Spinning Up -----------------------------------------------------------------
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
    ``python -m spinrl.launch.local``; the arguments travel as a JSON run spec (:mod:`spinrl.launch.spec`),
    so they must be literals, Gymnasium ids, or importable classes and functions.
    Returns the run's output directory.
    """
    logger_kwargs = kwargs.pop("logger_kwargs", None) or setup_logger_kwargs(
        exp_name, seed, data_dir, datestamp
    )
    kwargs = algorithm_kwargs(thunk, dict(kwargs, seed=seed, logger_kwargs=logger_kwargs))
    if num_cpu <= 1:
        thunk(**kwargs)
        return logger_kwargs["output_dir"]
    rc = run_with_mpi(make_spec(thunk, kwargs), num_cpu, mpi_args)
    if rc != 0:
        raise UserError(
            f"run {exp_name!r} with {num_cpu} MPI ranks failed (exit code {rc}); see the messages above"
        )
    return logger_kwargs["output_dir"]
