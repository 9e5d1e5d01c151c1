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
:data:`GRACE_SECONDS`. A failed trial never counts as a result.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from spinrl.common.errors import UserError
from spinrl.record.names import STUDY_FILE, worker_log_file
from spinrl.tune.space import BUILT_IN_SPACES, built_in_space, require_optuna, split_space, suggest

SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "hyperband", "none")
# A trial's process writes a heartbeat this often; a trial silent for GRACE_SECONDS is stale (failed).
HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120
# This many failed trials in a row stop a search: every trial is failing for the same reason.
MAX_FAILURES_IN_A_ROW = 3

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
# Set in the environment of the extra search processes of --parallel K (they start no more).
WORKER_ENV = "SPINRL_TUNE_WORKER"


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
    fn = _load_algorithm(algos[algo])
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
    epochs = fixed.get("epochs", _default(fn, "epochs"))
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


def _load_algorithm(target: str) -> Any:
    import importlib

    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def _default(fn: Any, name: str) -> Any:
    import inspect

    return inspect.signature(fn).parameters[name].default


def recorded_settings(s: dict[str, Any]) -> dict[str, Any]:
    """What a study records of its command line, so every process that joins it runs the same search."""
    from spinrl.launch.spec import encode_value

    return {
        "algo": s["algo"],
        "fixed": encode_value(s["fixed"]),
        "space": {k: str(d) for k, d in s["space"].items()},
        "trial_seeds": s["trial_seeds"],
        "last_epochs": s["last_epochs"],
        "seed": s["fixed"].get("seed", 0),
        "num_cpu": s["num_cpu"],
    }


# ----- the study --------------------------------------------------------------------------------------
def storage_url(s: dict[str, Any]) -> str:
    return s["storage"] or f"sqlite:///{os.path.join(s['study_dir'], STUDY_FILE)}"


def open_study(s: dict[str, Any]) -> Any:
    """Create the study (refusing one that exists, unless ``--resume``) or load it with ``--resume``."""
    import warnings

    optuna = require_optuna()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # trials are reported here, in one line each
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    url = storage_url(s)
    if url.startswith("sqlite:///"):
        Path(s["study_dir"]).mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(
        url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS
    )
    names = {st.study_name for st in optuna.get_all_study_summaries(storage)}
    settings = recorded_settings(s)
    if s["name"] in names:
        if not s["resume"]:
            raise UserError(
                f"study {s['name']!r} exists already ({url}): add --resume to continue it or join it, "
                "or give another --exp_name"
            )
        study = optuna.load_study(
            study_name=s["name"], storage=storage, sampler=_sampler(s), pruner=_pruner(s)
        )
        _check_same_search(study, settings)
        return study
    try:
        study = optuna.create_study(
            study_name=s["name"],
            storage=storage,
            direction="maximize",
            sampler=_sampler(s),
            pruner=_pruner(s),
        )
    except optuna.exceptions.DuplicatedStudyError:
        raise UserError(
            f"study {s['name']!r} was just created by another process: join it with --resume"
        ) from None
    study.set_user_attr("settings", settings)
    study.set_user_attr("study_dir", s["study_dir"])
    return study


def _check_same_search(study: Any, settings: dict[str, Any]) -> None:
    recorded = study.user_attrs.get("settings")
    if recorded is None:
        return
    recorded = json.loads(json.dumps(recorded))
    given = json.loads(json.dumps(settings))
    changed = [k for k in given if recorded.get(k) != given[k]]
    if changed:
        diffs = "; ".join(f"{k}: {recorded.get(k)} in the study, {given[k]} now" for k in changed)
        raise UserError(f"--resume with other settings than study {study.study_name!r}: {diffs}")


def _sampler(s: dict[str, Any]) -> Any:
    import optuna

    if s["sampler"] == "random":
        return optuna.samplers.RandomSampler(seed=s["sampler_seed"])
    return optuna.samplers.TPESampler(n_startup_trials=s["startup_trials"], seed=s["sampler_seed"])


def _pruner(s: dict[str, Any]) -> Any:
    import optuna

    if s["pruner"] == "none":
        return optuna.pruners.NopPruner()
    if s["pruner"] == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, s["warmup_epochs"]))
    return optuna.pruners.MedianPruner(
        n_startup_trials=s["startup_trials"], n_warmup_steps=s["warmup_epochs"]
    )


def finished_trials(study: Any) -> int:
    """Trials that count towards ``--n_trials``: completed or pruned (failed ones never do)."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def fail_orphaned_trials(study: Any) -> list[int]:
    """Record as failed the running trials whose search process, on this machine, is gone.

    A process killed outright (SIGKILL, a lost terminal) cannot mark its trial; its record names the
    process, so a later process here sees at once that it is dead. (Elsewhere, Optuna's heartbeat
    does the same after :data:`GRACE_SECONDS`.)
    """
    from optuna.trial import TrialState

    from spinrl.record.lock import process_alive

    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.user_attrs.get("process") or {}
        if owner.get("hostname") != socket.gethostname() or not isinstance(owner.get("pid"), int):
            continue
        if not process_alive(owner["pid"], owner.get("pid_start")):
            study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
            failed.append(t.number)
    return failed


# ----- running the search -----------------------------------------------------------------------------
def run_search(s: dict[str, Any]) -> int:
    """Run trials until the study has ``--n_trials`` finished ones; with ``--parallel K``, K processes."""
    from spinrl.tune.trial import TrialRunner

    runner = TrialRunner(s["target"].split(":")[0], s["parallel"], use_zygote=s["num_cpu"] == 1)
    workers: list[subprocess.Popen] = []
    try:
        study = open_study(s)
        orphans = fail_orphaned_trials(study)
        if orphans:
            print(
                f"trial(s) {', '.join(map(str, orphans))} of a killed search recorded as failed", flush=True
            )
        if s["parallel"] > 1 and not os.environ.get(WORKER_ENV):
            workers = _start_workers(s)
        _search(study, s, runner)
    except (KeyboardInterrupt, SystemExit):
        _stop_workers(workers)
        print(
            "\nStopped; the running trial is recorded as failed. Continue with the same command and --resume.",
            file=sys.stderr,
            flush=True,
        )
        raise
    finally:
        runner.close(wait=False)
    for w in workers:
        w.wait()
    print(
        f"Study {s['name']}: {finished_trials(study)} finished trial(s). See them with: "
        f"spinrl tune --show {s['study_dir']}" + (f" --storage {s['storage']}" if s["storage"] else ""),
        flush=True,
    )
    return 0


def _search(study: Any, s: dict[str, Any], runner: Any) -> None:
    from optuna.trial import TrialState

    from spinrl.record.lock import this_process
    from spinrl.tune.trial import TrialFailed

    previous = _exit_on_stop_signals()  # SIGTERM/SIGHUP stop the trial as Ctrl-C does
    fn = _load_algorithm(s["target"])
    me = this_process()
    failures = 0
    try:
        while finished_trials(study) < s["n_trials"]:
            # One trial per call: the count above includes the trials of every other process.
            study.optimize(lambda t: objective(t, s, fn, runner), n_trials=1, catch=(TrialFailed,))
            mine = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("process") == me]
            last = mine[-1]  # the trial this process has just run
            failures = failures + 1 if last.state == TrialState.FAIL else 0
            if failures >= MAX_FAILURES_IN_A_ROW:
                raise UserError(
                    f"{failures} trials failed in a row; the last one: {last.user_attrs.get('error', '?')}"
                )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def objective(trial: Any, s: dict[str, Any], fn: Any, runner: Any) -> float:
    """One trial: its settings, its seeds' runs, the mean return they reach."""
    import optuna

    from spinrl.record.lock import this_process
    from spinrl.tune.trial import StopTrial, TrialFailed, plan_trial_runs, trial_seeds

    trial.set_user_attr("process", this_process())
    values = {k: suggest(trial, k, d) for k, d in s["space"].items()}
    flat = dict(s["fixed"], **values)
    base_seed = flat.pop("seed", 0)
    kwargs = nested(flat)
    if s["track"]:
        kwargs["logger_kwargs"] = {"track": True}
    name = f"{s['name']}_t{trial.number:03d}"
    runs = plan_trial_runs(
        fn,
        kwargs,
        name,
        s["study_dir"],
        trial_seeds(base_seed, s["trial_seeds"]),
        s["num_cpu"],
        s["mpi_args"],
    )
    trial.set_user_attr("runs", [r.output_dir for r in runs])
    shown = ", ".join(f"{k}={_show(v)}" for k, v in values.items())
    print(f"trial {trial.number}: {shown}", flush=True)

    last_epoch = int(flat.get("epochs", _default(fn, "epochs"))) - 1

    def report(epoch: int, value: float) -> bool:
        trial.report(value, epoch)
        # After the last epoch the runs are done: the trial is a result, whatever the pruner would say.
        return epoch < last_epoch and trial.should_prune()

    try:
        result = runner.run(runs, s["last_epochs"], report)
    except StopTrial as e:
        print(f"trial {trial.number} pruned: {e}", flush=True)
        raise optuna.TrialPruned(str(e)) from None
    except TrialFailed as e:
        trial.set_user_attr("error", str(e))
        print(f"trial {trial.number} FAILED: {e}", flush=True)
        raise
    except (KeyboardInterrupt, SystemExit):
        raise KeyboardInterrupt from None  # Optuna records the trial as failed, then it goes on up
    trial.set_user_attr("column", result.column)
    trial.set_user_attr("per_seed", result.per_seed)
    print(
        f"trial {trial.number}: {result.value:.4g} ({result.column}, mean of {len(runs)} seed(s))", flush=True
    )
    return result.value


def nested(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"ac_kwargs:hidden_sizes": [8]}`` -> ``{"ac_kwargs": {"hidden_sizes": [8]}}``, as the grid reads keys."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, last = key.split(":")
        d = out
        for p in parents:
            d = d.setdefault(p, {})
        d[last] = value
    return out


def _exit_on_stop_signals() -> dict[int, Any]:
    """SIGTERM and SIGHUP end the search as Ctrl-C does (main thread only); return the old handlers."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    return {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}


def _show(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else repr(v)


# ----- --parallel K: more search processes on this machine ----------------------------------------------
def _start_workers(s: dict[str, Any]) -> list[subprocess.Popen]:
    """K - 1 more search processes on the same study (this one is the K-th), each logging to a file."""
    from spinrl.launch.child import PARENT_PID_ENV

    argv = [a for a in s["argv"] if a != "--resume"]
    workers = []
    for i in range(1, s["parallel"]):
        log = open(os.path.join(s["study_dir"], worker_log_file(i)), "a")
        env = dict(os.environ, **{WORKER_ENV: "1", PARENT_PID_ENV: str(os.getpid()), "PYTHONUNBUFFERED": "1"})
        cmd = [sys.executable, "-m", "spinrl.tune.study", *argv, "--resume"]
        workers.append(
            subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        )
        log.close()
        print(f"search process {i + 1} of {s['parallel']}: pid {workers[-1].pid}, log {log.name}", flush=True)
    return workers


def _stop_workers(workers: list[subprocess.Popen]) -> None:
    from spinrl.launch.local import stop_children

    stop_children(workers)


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
