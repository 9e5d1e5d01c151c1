"""One trial of ``spinrl tune``: its seeds as ordinary runs in child processes, watched epoch by epoch.

A trial's runs are planned like a grid's (``STUDY_DIR/STUDY_t007/STUDY_t007_s0``, ...) and started the
way ``--parallel`` starts grid variants (:mod:`spinrl.launch.local`: forked from a zygote, or under
``mpiexec`` with ``--cpu``), so ``spinrl ls``, ``plot``, ``compare`` and ``test_policy`` read them as any
other run. The runs know nothing of the search: this module reads each one's progress.txt as its rows
appear, which works for a run in any process, MPI ranks included, and tells Optuna the mean return over
the seeds of every epoch that all seeds have finished. When the pruner says the trial is behind, the
runs are stopped as Ctrl-C stops a grid (each keeps its files, marked interrupted).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spinrl.common.seeding import trial_seeds as trial_seeds  # its old home: kept importable from here
from spinrl.launch.local import launch_variant, prepare_run_dir, stop_children, thread_budget
from spinrl.launch.plan import PlannedRun
from spinrl.record.folder import setup_logger_kwargs
from spinrl.record.names import PROGRESS_FILE
from spinrl.results.runs import final_value, performance_column, read_progress

# How often the runs' progress.txt files are read while a trial trains.
POLL_SECONDS = 0.1


class TrialFailed(Exception):
    """A run of the trial ended with an error: the trial is recorded as failed and the search goes on."""


class StopTrial(Exception):
    """The pruner stopped the trial after ``epoch``."""

    def __init__(self, epoch: int, value: float):
        super().__init__(f"behind the other trials after epoch {epoch} (mean return {value:.4g})")
        self.epoch, self.value = epoch, value


def plan_trial_runs(
    fn: Any, kwargs: dict[str, Any], name: str, study_dir: str, seeds: list[int], num_cpu: int, mpi_args: str
) -> list[PlannedRun]:
    """One ordinary run per seed: ``study_dir/name/name_s<seed>`` with ``kwargs`` (nested, as a grid's)."""
    runs = []
    for seed in seeds:
        logger_kwargs = setup_logger_kwargs(name, seed, study_dir)
        logger_kwargs.update(kwargs.get("logger_kwargs", {}))  # --track, say
        run_kwargs = dict(kwargs, seed=seed, logger_kwargs=logger_kwargs)
        runs.append(PlannedRun(name, fn, run_kwargs, logger_kwargs["output_dir"], num_cpu, mpi_args))
    return runs


@dataclass
class TrialResult:
    """What the trial's runs reached: the objective and where it came from."""

    value: float
    column: str
    per_seed: list[float] = field(default_factory=list)


class TrialRunner:
    """Starts a trial's runs, reports each finished epoch to a callback, and stops them when asked.

    ``report(epoch, value) -> bool`` gets the mean over seeds of the performance column (the test
    return for the off-policy family, else the training return) at each epoch every seed has logged; it
    returns True to stop the trial there (pruning). One runner serves every trial of a search process.

    Single-process runs are forked from a zygote (:mod:`spinrl.launch.zygote`) that imports torch and
    the algorithm once for the whole search. It is started with the runner, so its imports overlap the
    setting up of the study's storage; ``module`` is the algorithm's module.
    """

    def __init__(self, module: str, parallel_trials: int = 1, use_zygote: bool = True):
        self.parallel_trials = parallel_trials
        self._zygote: Any = None
        if use_zygote and not module.startswith("file:") and os.environ.get("SPINRL_NO_ZYGOTE") != "1":
            from spinrl.launch.zygote import PRELOAD, Zygote

            try:
                self._zygote = Zygote([*PRELOAD, module])
            except OSError:
                self._zygote = None

    def close(self, wait: bool = True) -> None:
        if self._zygote is not None:
            self._zygote.close(wait=wait)
            self._zygote = None

    def _start(self, r: PlannedRun, threads: int) -> Any:
        if r.num_cpu == 1 and self._zygote is not None:
            spec_path = prepare_run_dir(r.spec(), r.output_dir, "started by spinrl tune's zygote process")
            try:
                return self._zygote.fork(spec_path, r.log_path, threads)
            except RuntimeError as e:  # the zygote could not start: each run a new process from now on
                print(f"(starting each run as a new process: {e})", flush=True)
                self.close(wait=False)
        proc, log = launch_variant(r.spec(), r.output_dir, r.num_cpu, r.mpi_args, threads)
        log.close()
        return proc

    def run(self, runs: list[PlannedRun], last_epochs: int, report: Any) -> TrialResult:
        """Run the seeds at once, each with its share of the cores; return the objective.

        Raises :class:`StopTrial` when ``report`` asks to stop, :class:`TrialFailed` when a run fails.
        Any other interruption (Ctrl-C, SIGTERM) stops the runs before it goes on up.
        """
        threads = thread_budget(self.parallel_trials * len(runs), runs[0].num_cpu)
        procs: list[Any] = []
        try:
            for r in runs:
                procs.append(self._start(r, threads))
            reported = 0
            while True:
                ended = all(p.poll() is not None for p in procs)
                progress = [_progress(r.output_dir) for r in runs]
                column = _common_column(progress)
                logged = min((len(p.get(column, ())) for p in progress), default=0) if column else 0
                for epoch in range(reported, logged):
                    value = float(np.mean([p[column][epoch] for p in progress]))
                    reported = epoch + 1
                    if np.isfinite(value) and report(epoch, value):
                        raise StopTrial(epoch, value)
                if ended:
                    break
                time.sleep(POLL_SECONDS)
        except BaseException:
            stop_children([p for p in procs if p.poll() is None])
            raise
        failed = [(r, p.poll()) for r, p in zip(runs, procs) if p.poll() != 0]
        if failed:
            r, code = failed[0]
            raise TrialFailed(
                f"{r.label} failed (exit code {code}){_last_line(r.log_path)}; its log: {r.log_path}"
            )
        if column is None:
            raise TrialFailed(f"the runs logged no return (no finished episode?); see {runs[0].output_dir}")
        per_seed = [final_value(p, column, last_epochs) for p in progress]
        return TrialResult(float(np.mean(per_seed)), column, per_seed)


def _last_line(log_path: str) -> str:
    """``: <the log's last line>`` (usually the run's one-line error), or nothing."""
    try:
        lines = [line for line in Path(log_path).read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return f": {lines[-1].strip()[:200]}" if lines else ""


def _progress(run_dir: str) -> dict[str, np.ndarray]:
    path = Path(run_dir, PROGRESS_FILE)
    try:
        return read_progress(path) if path.exists() else {}
    except OSError:
        return {}


def _common_column(progress: list[dict[str, np.ndarray]]) -> str | None:
    """The performance column (test return, else training return) the runs share, once all have one."""
    columns = {performance_column(p) for p in progress}
    return columns.pop() if len(columns) == 1 else None
