"""``spinrl tune``: hyperparameter search on Optuna, every trial a few ordinary spinrl runs.

::

    spinrl tune ppo --env CartPole-v1 --epochs 20 --pi_lr "loguniform(1e-5, 1e-2)" \\
        --clip_ratio "uniform(0.1, 0.3)" --n_trials 50 --trial_seeds 3 --exp_name cp-search
    spinrl tune --show data/cp-search

Flags are the grid's (:mod:`spinrl.cli`); a distribution as a value searches that hyperparameter
(:mod:`spinrl.tune.space`), a plain value fixes it, and with no distribution at all the algorithm's
built-in space is searched. The study lives in ``DATA_DIR/EXP_NAME/``: ``study.db`` (Optuna's SQLite
storage, unless ``--storage URL`` names another) and one folder per trial holding its seeds' runs
(:mod:`spinrl.tune.trial`).

The objective of a trial is the mean over its seeds of the performance column (``AverageTestEpRet``
for DDPG, TD3, SAC and DQN, ``AverageEpRet`` for the others) averaged over the last ``--last_epochs``
epochs. TPE proposes settings and the median pruner stops a trial whose mean return at some epoch is
below the median of the earlier trials at that epoch.

Trials are counted in the storage, so that a search is shared and continued safely: ``--n_trials N``
means N trials finished (completed or pruned) in the study, whoever ran them. A killed process leaves
its trial "running" in the storage; the next process on the same machine sees that the process is gone
and records the trial as failed, and processes elsewhere do so once its heartbeat has stopped for
:data:`spinrl.tune.storage.GRACE_SECONDS`. A failed trial never counts as a result.

This module reads the command line (or :func:`search`'s arguments) into the search's settings; the study
in its storage is :mod:`spinrl.tune.storage`, running the trials :mod:`spinrl.tune.running`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from spinrl.common.errors import UserError
from spinrl.tune.running import default_value, load_algorithm, run_search
from spinrl.tune.space import BUILT_IN_SPACES, built_in_space, require_optuna, split_space
from spinrl.tune.storage import open_study

SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "hyperband", "none")
# The flags of the search itself, with their defaults; everything else goes to the algorithm.
TUNE_FLAGS: dict[str, tuple[Any, str]] = {
    "n_trials": (20, "trials to finish (completed or pruned) in the study, counting those of every process"),
    "trial_seeds": (1, "seeds per trial, run at once; the objective is their mean"),
    "last_epochs": (3, "the objective averages each seed's return over this many last epochs"),
    "sampler": ("tpe", f"how settings are proposed: {', '.join(SAMPLERS)}"),
    "sampler_seed": (None, "seed of the sampler, for a search that proposes the same settings again"),
    "pruner": ("median", f"how trials are stopped early: {', '.join(PRUNERS)}"),
    "startup_trials": (5, "trials finished before TPE models the space and the median pruner prunes"),
    "warmup_epochs": (None, "epochs a trial runs before it may be pruned (default: a third of --epochs)"),
    "storage": (
        None,
        "an Optuna storage URL shared by several machines (default: sqlite in the study folder)",
    ),
    "parallel": (1, "trials at once on this machine, each in a search process of its own"),
    "resume": (False, "continue the study (or join one another process runs) instead of starting it"),
    "exp_name": (None, "the study's name and folder (default tune_ALGO)"),
    "data_dir": (None, "where the study folder goes (default ./data or $SPINRL_DATA_DIR)"),
    "cpu": (1, "MPI ranks per run (vpg, trpo, ppo)"),
    "num_cpu": (None, "same as --cpu"),
    "mpi_args": ("", "extra arguments for mpiexec"),
    "oversubscribe": (False, "allow --cpu above the number of cores"),
    "track": (False, "send every run to Weights & Biases (see spinrl.record.tracking)"),
}
_BOOLEAN = {"resume", "oversubscribe", "track"}


def tune_help(algo: str | None = None) -> str:
    """``spinrl tune --help`` (with ALGO: that algorithm's built-in space too)."""
    lines = [
        "usage: spinrl tune ALGO --env ENV_ID [--KEY DISTRIBUTION | --KEY VALUE ...] [search flags]",
        "       spinrl tune --show STUDY [--storage URL] [--save_preset NAME [--preset_file FILE]]",
        "",
        "Search hyperparameters with Optuna; each trial runs --trial_seeds ordinary runs.",
        "distributions: uniform(LOW, HIGH), loguniform(LOW, HIGH), int(LOW, HIGH), logint(LOW, HIGH),",
        "               choice(A, B, ...); several plain values after a flag are a choice too",
        "",
        "search flags:",
    ]
    for flag, (default, desc) in TUNE_FLAGS.items():
        lines.append(f"  --{flag} (default: {default!r}): {desc}")
    if algo in BUILT_IN_SPACES:
        lines += ["", f"searched when no distribution is given (spinrl {algo} --help explains each):"]
        lines += [f"  --{k} {v!r}" for k, v in BUILT_IN_SPACES[algo].items()]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """``spinrl tune``: run or join a search, or ``--show`` one."""
    if not argv or argv[0] in ("-h", "--help"):
        print(tune_help())
        return 0
    if "-h" in argv or "--help" in argv:
        from spinrl.cli import algorithm_name

        print(tune_help(algorithm_name(argv[0])))
        return 0
    if argv[0] == "--show":
        from spinrl.tune.show import main as show_main

        return show_main(argv)
    settings = parse_command_line(argv)
    require_optuna()  # before anything starts
    return run_search(settings)


# ----- the command line -------------------------------------------------------------------------------
def parse_command_line(argv: list[str]) -> dict[str, Any]:
    """Read ``ALGO --flags ...`` into the search's settings; refuse bad input in one line."""
    from spinrl.cli import algorithm_name, parse_grid

    args, _ = parse_grid(argv[1:])
    return make_settings(algorithm_name(argv[0]), args, argv)


def make_settings(algo: str, args: dict[str, list[Any]], argv: list[str] | None = None) -> dict[str, Any]:
    """The search's settings from grid-style arguments (``{"pi_lr": ["loguniform(1e-5, 1e-2)"], ...}``)."""
    from spinrl.cli import available_algorithms, check_keys

    algos = available_algorithms()
    if algo not in algos:
        raise UserError(f"spinrl tune {algo}: unknown algorithm; valid: {', '.join(algos)}")
    args = dict(args)
    flags = {}
    for flag, (default, _) in TUNE_FLAGS.items():
        vals = args.pop(flag, None)
        if vals is None:
            flags[flag] = default
        elif len(vals) != 1:
            raise UserError(f"--{flag} takes one value, got {len(vals)}: {vals}")
        else:
            flags[flag] = bool(vals[0]) if flag in _BOOLEAN else vals[0]
    for flag in ("n_trials", "trial_seeds", "last_epochs", "parallel", "startup_trials"):
        _check_count(flag, flags[flag], minimum=0 if flag == "n_trials" else 1)
    if flags["track"]:
        from spinrl.record.tracking import check_ready  # wandb is an optional extra

        check_ready()
    if flags["sampler"] not in SAMPLERS:
        raise UserError(f"--sampler {flags['sampler']!r} is not valid: use one of {', '.join(SAMPLERS)}")
    if flags["pruner"] not in PRUNERS:
        raise UserError(f"--pruner {flags['pruner']!r} is not valid: use one of {', '.join(PRUNERS)}")
    if "seed" in args and len(args["seed"]) > 1:
        raise UserError(
            "--seed takes one value in a search (the first seed); ask for more with --trial_seeds K"
        )
    fn = load_algorithm(algos[algo])
    check_keys(algo, fn, args)
    space, fixed = split_space(args)
    if not space:
        space = {k: d for k, d in built_in_space(algo).items() if k.split(":")[0] not in fixed}
    if not space:
        raise UserError(
            f'spinrl tune {algo}: nothing to search; give a distribution, e.g. --gamma "uniform(0.9, 0.999)"'
        )
    if "env_fn" not in fixed:
        raise UserError(f"spinrl tune {algo} needs an environment: add --env ENV_ID (e.g. --env CartPole-v1)")
    if isinstance(fixed["env_fn"], str):  # an unknown id is refused here, not by every trial
        from spinrl.envs.make import make_env_fn

        make_env_fn(fixed["env_fn"])
    if flags["parallel"] > 1 and argv is None:
        raise UserError(
            "parallel > 1 is for the command line; from Python, start several searches with resume=True"
        )
    from spinrl.cli import OFF_POLICY, whole_numbers_as_int
    from spinrl.common.mpi import resolve_num_cpu
    from spinrl.record.folder import check_exp_name, default_data_dir

    wrapped = {k: [v] for k, v in fixed.items()}
    whole_numbers_as_int(fn, wrapped)
    fixed = {k: v[0] for k, v in wrapped.items()}
    num_cpu = resolve_num_cpu(flags["num_cpu"] or flags["cpu"], flags["mpi_args"], flags["oversubscribe"])
    if num_cpu > 1 and algo in OFF_POLICY:
        raise UserError(f"{algo} runs in one process; --cpu {num_cpu} is only for vpg, trpo and ppo")
    name = check_exp_name(flags["exp_name"] or f"tune_{algo}")
    study_dir = os.path.abspath(os.path.join(flags["data_dir"] or default_data_dir(), name))
    epochs = fixed.get("epochs", default_value(fn, "epochs"))
    warmup = flags["warmup_epochs"] if flags["warmup_epochs"] is not None else int(epochs) // 3
    return dict(
        flags,
        algo=algo,
        target=algos[algo],
        name=name,
        study_dir=study_dir,
        space=space,
        fixed=fixed,
        num_cpu=num_cpu,
        warmup_epochs=int(warmup),
        argv=list(argv or []),
    )


def search(algo: str, env_fn: Any, space: dict[str, Any] | None = None, **settings: Any) -> Any:
    """Run a search from Python, where the environment may be a function of yours (a custom env).

    ``space`` maps hyperparameters (grid keys, ``ac_kwargs:hidden_sizes``) to a distribution string
    (``"loguniform(1e-5, 1e-2)"``) or a list of values to choose from; ``settings`` holds the fixed
    hyperparameters and the search flags of the command line (``n_trials=50, trial_seeds=3, epochs=20,
    exp_name="mine"``). ``env_fn`` must be importable by the runs' processes: a Gymnasium id, or a
    function defined at the top level of a module or script. Returns the Optuna study::

        from spinrl.tune.study import search
        study = search("ppo", make_my_env, {"pi_lr": "loguniform(1e-4, 1e-2)"}, epochs=20, n_trials=30)
        print(study.best_params)
    """
    args: dict[str, list[Any]] = {"env_fn": [env_fn]}
    for key, value in (space or {}).items():
        args[key] = list(value) if isinstance(value, list | tuple) else [value]
    for key, value in settings.items():
        if key in args:
            raise UserError(f"{key} is given both in the space and as a fixed setting")
        args[key] = [value]
    s = make_settings(algo, args)
    run_search(s)
    return open_study(dict(s, resume=True))


def _check_count(flag: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"--{flag} {value!r} is not valid: give a whole number, {minimum} or more")


def _worker_main() -> None:
    """``python -m spinrl.tune.study ...``: a --parallel worker, which ends with the process that started it."""
    from spinrl.common.errors import run_main_guarded
    from spinrl.launch.child import PARENT_PID_ENV, end_with_parent

    parent = os.environ.pop(PARENT_PID_ENV, "")
    if parent.isdigit():
        end_with_parent(int(parent))
    sys.exit(run_main_guarded(main, sys.argv[1:]))


if __name__ == "__main__":
    _worker_main()
