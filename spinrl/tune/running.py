"""Running a search: trials one after another until the study has ``--n_trials`` finished ones, each
trial the runs of its seeds (:mod:`spinrl.tune.trial`); with ``--parallel K``, K search processes on this
machine share the study.

Trials are counted in the storage (:mod:`spinrl.tune.storage`), whoever ran them. A search stops when
:data:`MAX_FAILURES_IN_A_ROW` trials in a row failed: every trial is then failing for the same reason.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

from spinrl.common.errors import UserError
from spinrl.record.names import worker_log_file
from spinrl.tune.space import suggest
from spinrl.tune.storage import fail_orphaned_trials, finished_trials, open_study

MAX_FAILURES_IN_A_ROW = 3
# Set in the environment of the extra search processes of --parallel K (they start no more).
WORKER_ENV = "SPINRL_TUNE_WORKER"


def load_algorithm(target: str) -> Any:
    """The algorithm function that ``"module:function"`` names."""
    import importlib

    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def default_value(fn: Any, name: str) -> Any:
    """The default of ``fn``'s argument ``name``."""
    import inspect

    return inspect.signature(fn).parameters[name].default


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
    fn = load_algorithm(s["target"])
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

    from spinrl.common.seeding import trial_seeds
    from spinrl.record.lock import this_process
    from spinrl.tune.trial import StopTrial, TrialFailed, plan_trial_runs

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

    last_epoch = int(flat.get("epochs", default_value(fn, "epochs"))) - 1

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
