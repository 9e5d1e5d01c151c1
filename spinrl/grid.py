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
  share of the cores (``parallel=K``);
- as Ray tasks on a Ray cluster (``backend="ray"``), writing to a ``data_dir`` all nodes share.

With ``resume=True`` among the hyperparameters, finished variants are skipped and the others continue
from their last checkpoint, so a grid stopped by Ctrl-C, a crash or a lost node is finished by running
the same command again with ``--resume``.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import importlib.util
import inspect
import itertools
import json
import os
import queue
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from spinrl.errors import UserError
from spinrl.logx import setup_logger_kwargs

VALID_NAME_CHARS = set(string.ascii_letters + string.digits + "_-")
BACKENDS = ("local", "ray")

# Seconds a stopped child gets to write its status and exit after SIGINT before it is killed.
STOP_GRACE_SECONDS = 10.0
RAY_CANCEL_GRACE_SECONDS = 3.0


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
        console = Console(highlight=False, width=max(100, Console().width))
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
                of fighting over them. Single-process variants are forked from a :class:`Zygote` that
                has imported torch and the algorithm once, so a variant starts at once; with
                ``num_cpu > 1`` each variant is a new ``mpiexec``. A failed variant does not stop the
                others; failures are reported at the end. With the Ray backend it caps the tasks in flight (default: as
                many as the cluster's CPUs allow).
            backend: ``"local"`` (this machine) or ``"ray"`` (one Ray task per variant, asking for
                ``num_cpu`` CPUs, and a GPU when the variant's ``device`` starts with ``cuda``).
            address: the Ray cluster to join (``HOST:PORT``); default: a Ray instance on this machine.

        Returns the output directories of the runs (skipped finished ones included).
        """
        if backend not in BACKENDS:
            raise UserError(f"--backend {backend!r} is not valid: use one of {', '.join(BACKENDS)}")
        if not isinstance(parallel, int) or isinstance(parallel, bool) or parallel < 1:
            raise UserError(f"--parallel {parallel!r} is not valid: give a whole number of runs, 1 or more")
        if address is not None and backend != "ray":
            raise UserError(f"--address {address} only applies to --backend ray")
        self.print()

        runs = [
            self._plan_run(variant, thunk, num_cpu, data_dir, datestamp, mpi_args)
            for variant in self.variants()
        ]
        out_dirs = [r.output_dir for r in runs]
        if len(set(out_dirs)) < len(out_dirs):
            twice = next(d for d in out_dirs if out_dirs.count(d) > 1)
            raise UserError(
                f"two variants would both write to {twice}: give the keys whose values look alike "
                "(e.g. 0.1 and '0.1') distinct values or shorthands"
            )
        todo = [r for r in runs if not _skip_on_resume(r)]
        if not todo:
            print("Every variant has finished already; nothing to run.", flush=True)
            return out_dirs

        if backend == "ray":
            failures = _run_on_ray(todo, address, parallel)
        elif parallel > 1:
            failures = _run_in_parallel(todo, parallel)
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
        kwargs = _algorithm_kwargs(fn, dict(variant, seed=seed, logger_kwargs=logger_kwargs))
        return PlannedRun(exp_name, fn, kwargs, logger_kwargs["output_dir"], num_cpu, mpi_args)


@dataclass
class PlannedRun:
    """One variant, ready to launch: the algorithm, its full keyword arguments and where it writes."""

    exp_name: str
    thunk: Callable
    kwargs: dict[str, Any]
    output_dir: str
    num_cpu: int = 1
    mpi_args: str = ""

    @property
    def label(self) -> str:
        return f"{self.exp_name} seed {self.kwargs.get('seed', 0)}"

    @property
    def log_path(self) -> str:
        return os.path.join(self.output_dir, "output.log")

    def spec(self) -> dict[str, Any]:
        """What a child process needs to run this variant, as JSON-safe data."""
        return {"thunk": encode_callable(self.thunk), "kwargs": encode_value(self.kwargs)}


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


def _algorithm_kwargs(thunk: Callable, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Check the keyword arguments against ``thunk`` and apply Spinning Up's ``env_name`` convenience."""
    params = inspect.signature(thunk).parameters
    name = getattr(thunk, "__name__", repr(thunk))
    if "seed" not in params:
        raise UserError(f"{name} takes no 'seed' argument")
    # Spinning Up grids say env_name; our algorithms take env_fn, which may be a Gymnasium id.
    if "env_name" in kwargs and "env_name" not in params and "env_fn" in params:
        kwargs["env_fn"] = kwargs.pop("env_name")
    return kwargs


# ----- resuming ------------------------------------------------------------------------------------------
def read_status(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run's status.json, or None when there is none (or it cannot be read)."""
    try:
        return json.loads(Path(run_dir, "status.json").read_text())
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, but belongs to someone else
        return True
    return True


def is_running_here(status: dict[str, Any]) -> bool:
    """A "running" status written on this machine by a process that still exists."""
    if status.get("status") != "running" or status.get("hostname") != socket.gethostname():
        return False
    return isinstance(status.get("pid"), int) and status["pid"] != os.getpid() and pid_alive(status["pid"])


def _skip_on_resume(r: PlannedRun) -> bool:
    """Decide before launching: skip finished variants when resuming; refuse to overwrite without resume."""
    resume = bool(r.kwargs.get("resume", False))
    progress = Path(r.output_dir, "progress.txt")
    if not resume:
        if progress.exists() and progress.stat().st_size > 0:
            raise UserError(
                f"{r.output_dir} already holds a run; continue the grid with --resume (resume=True) "
                "or pick a new --exp_name"
            )
        return False
    status = read_status(r.output_dir) or {}
    if status.get("status") == "finished":
        print(f"skip {r.label}: finished already ({r.output_dir})", flush=True)
        return True
    if is_running_here(status):
        print(f"skip {r.label}: still running (pid {status['pid']})", flush=True)
        return True
    if status.get("status") == "running" and status.get("hostname") != socket.gethostname():
        # We cannot see processes on other machines; a grid is resumed after its runs died.
        print(f"resume {r.label}: last seen running on {status.get('hostname')}", flush=True)
    return False


# ----- one variant in a child process ----------------------------------------------------------------------
def thread_budget(parallel: int, num_cpu: int = 1) -> int:
    """Threads per process so that ``parallel`` runs of ``num_cpu`` ranks share this machine's cores."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // (parallel * max(1, num_cpu)))


def child_env(threads: int) -> dict[str, str]:
    """The environment of a variant's process: its thread budget, and plain-text output for its log."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # The log is a file, but mpiexec gives its ranks a pseudo-terminal: ask for plain text, no live bars.
    env.update(TERM="dumb", NO_COLOR="1")
    # The thread budget: BLAS libraries read these at start-up, torch reads SPINRL_NUM_THREADS.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "SPINRL_NUM_THREADS"):
        env[var] = str(threads)
    return env


def prepare_run_dir(spec: dict[str, Any], output_dir: str, how: str) -> str:
    """Write ``<run dir>/variant.json`` and a header line in ``output.log``; return the spec's path."""
    os.makedirs(output_dir, exist_ok=True)
    spec_path = os.path.join(output_dir, "variant.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f, indent=2)
    with open(os.path.join(output_dir, "output.log"), "a") as log:
        log.write(f"===== {_dt.datetime.now().isoformat(timespec='seconds')} {how}\n")
    return spec_path


def launch_variant(spec: dict[str, Any], output_dir: str, num_cpu: int, mpi_args: str, threads: int):
    """Start one variant as ``python -m spinrl.run_entrypoint <run dir>/variant.json`` (under mpiexec
    with ``num_cpu > 1``), its output appended to ``<run dir>/output.log``.

    The child gets its own session, so a Ctrl-C in the terminal reaches only the grid, which then stops
    every child the same way (:func:`stop_children`). Returns the process and the open log file.
    """
    cmd = [sys.executable, "-m", "spinrl.run_entrypoint", os.path.join(output_dir, "variant.json")]
    env = child_env(threads)
    if num_cpu > 1:
        from spinrl.mpi import mpiexec_command

        prefix, mpi_env = mpiexec_command(num_cpu, mpi_args)
        env = {**mpi_env, **env}  # MPI's settings, with this grid's thread budget
        cmd = prefix + cmd
    prepare_run_dir(spec, output_dir, " ".join(cmd))
    log = open(os.path.join(output_dir, "output.log"), "a")
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
    )
    return proc, log


class Zygote:
    """A helper process that imports torch and the algorithm once, then forks one child per variant.

    Starting Python and importing torch takes seconds, often longer than a short run itself; a child
    forked from a process that has done it starts at once. The zygote runs no torch code, so forking
    it is safe (the same idea as multiprocessing's forkserver, without re-importing the user's script).
    Its protocol, one line each way: the grid sends ``{"spec": ..., "log": ...}``; the zygote answers
    ``ready``, ``started PID`` and, when a child ends, ``exit PID CODE``.
    """

    def __init__(self, modules: list[str], threads: int):
        cmd = [sys.executable, "-m", "spinrl.run_entrypoint", "--zygote", *modules]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            env=child_env(threads),
            start_new_session=True,
        )
        self.exit_codes: dict[int, int] = {}
        self._replies: queue.Queue = queue.Queue()
        threading.Thread(target=self._read_replies, daemon=True).start()
        try:
            reply = self._replies.get(timeout=120)
        except queue.Empty:
            reply = None
        if reply != "ready":
            self.close()
            raise RuntimeError("the zygote process could not import " + ", ".join(modules))

    def _read_replies(self) -> None:
        for line in self.proc.stdout:
            words = line.split()
            if words[:1] == ["exit"]:
                self.exit_codes[int(words[1])] = int(words[2])
            elif words[:1] == ["started"]:
                self._replies.put(int(words[1]))
            elif words == ["ready"]:
                self._replies.put("ready")
        self._replies.put(None)  # the zygote is gone

    def fork(self, spec_path: str, log_path: str) -> ForkedChild:
        self.proc.stdin.write(json.dumps({"spec": spec_path, "log": log_path}) + "\n")
        self.proc.stdin.flush()
        try:
            pid = self._replies.get(timeout=60)
        except queue.Empty:
            pid = None
        if not isinstance(pid, int):
            raise RuntimeError("the zygote process died")
        return ForkedChild(pid, self)

    def close(self) -> None:
        """Let the zygote exit once its children have (it reaps and reports them first)."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class ForkedChild:
    """A variant forked by the :class:`Zygote`, with the parts of ``subprocess.Popen`` the grid uses."""

    def __init__(self, pid: int, zygote: Zygote):
        self.pid = pid
        self.zygote = zygote

    @property
    def returncode(self) -> int | None:
        return self.poll()

    def poll(self) -> int | None:
        if self.pid in self.zygote.exit_codes:
            return self.zygote.exit_codes[self.pid]
        if self.zygote.proc.poll() is not None and not pid_alive(self.pid):
            return -1  # the zygote died and cannot tell us; the child is gone too
        return None

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"variant pid {self.pid}", timeout)
            time.sleep(0.05)
        return self.poll()


def stop_children(procs: list[subprocess.Popen], grace: float = STOP_GRACE_SECONDS) -> None:
    """Send SIGINT to every child's process group, give them ``grace`` seconds, then kill what is left.

    SIGINT lets a run mark itself interrupted and exit; the kill is for runs that hang.
    """
    for proc in procs:
        _signal_group(proc, signal.SIGINT)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _log_tail(path: str, lines: int = 3) -> list[str]:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


def _report_failures(failures: list[tuple[PlannedRun, str]]) -> None:
    if not failures:
        return
    print(f"\n{len(failures)} variant(s) failed:", flush=True)
    for r, why in failures:
        print(f"  {r.label}: {why}\n    log: {r.log_path}", flush=True)
        for line in _log_tail(r.log_path):
            print(f"      | {line}", flush=True)


def _run_in_parallel(runs: list[PlannedRun], parallel: int) -> list[tuple[PlannedRun, str]]:
    """Run the variants ``parallel`` at a time on this machine; return the failed ones and why."""
    threads = thread_budget(parallel, runs[0].num_cpu)
    print(f"Running {len(runs)} variant(s), {parallel} at a time, {threads} thread(s) each.", flush=True)
    zygote = _start_zygote(runs, threads)
    pending = list(runs)
    running: dict[Any, tuple[PlannedRun, float]] = {}
    failures: list[tuple[PlannedRun, str]] = []
    done = 0
    try:
        while pending or running:
            while pending and len(running) < parallel:
                r = pending.pop(0)
                if zygote is not None:
                    spec_path = prepare_run_dir(r.spec(), r.output_dir, "forked by the grid's zygote process")
                    proc = zygote.fork(spec_path, r.log_path)
                else:
                    proc, log = launch_variant(r.spec(), r.output_dir, r.num_cpu, r.mpi_args, threads)
                    log.close()  # the child holds its own copy
                running[proc] = (r, time.monotonic())
                print(f"start  {r.label} (pid {proc.pid}, log {r.log_path})", flush=True)
            for proc in [p for p in running if p.poll() is not None]:
                r, started = running.pop(proc)
                done += 1
                took = f"{time.monotonic() - started:.0f} s"
                if proc.returncode == 0:
                    print(f"done   {r.label} in {took} [{done}/{len(runs)}]", flush=True)
                else:
                    failures.append((r, f"exit code {proc.returncode} after {took}"))
                    print(f"FAILED {r.label} (exit code {proc.returncode}) [{done}/{len(runs)}]", flush=True)
            time.sleep(0.05)
    except KeyboardInterrupt:
        print(f"\nStopping {len(running)} running variant(s)...", file=sys.stderr, flush=True)
        stop_children(list(running))
        print("Stopped. Run the same command with --resume to finish the grid.", file=sys.stderr, flush=True)
        raise
    finally:
        if zygote is not None:
            zygote.close()
    _report_failures(failures)
    return failures


def _start_zygote(runs: list[PlannedRun], threads: int) -> Zygote | None:
    """A zygote for single-process variants of an importable algorithm; None means plain processes."""
    module = runs[0].spec()["thunk"]["__callable__"].rsplit(":", 1)[0]
    if runs[0].num_cpu > 1 or module.startswith("file:") or os.environ.get("SPINRL_NO_ZYGOTE") == "1":
        return None
    try:
        # What a run imports on its first step (torch.optim pulls in torch._dynamo), so children need not.
        preload = ["torch", "torch._dynamo", "torch.utils.tensorboard", "tensorboard.summary", "gymnasium"]
        return Zygote([*preload, "spinrl.logx", module], threads)
    except (RuntimeError, OSError) as e:
        print(f"(starting each variant as a new process: {e})", flush=True)
        return None


# ----- Ray ---------------------------------------------------------------------------------------------
def run_variant_blocking(
    spec: dict[str, Any], output_dir: str, num_cpu: int, mpi_args: str, threads: int
) -> int:
    """Run one variant in a child process and wait for it (the body of a Ray task); return its exit code.

    If the task is cancelled, the child is stopped the same way as by Ctrl-C on a local grid.
    """
    proc, log = launch_variant(spec, output_dir, num_cpu, mpi_args, threads)
    try:
        # Poll rather than block in wait(): Ray delivers a cancel as an exception between bytecodes.
        while proc.poll() is None:
            time.sleep(0.2)
        return proc.returncode
    finally:
        if proc.poll() is None:
            stop_children([proc])
        log.close()


def _gpus_for(r: PlannedRun) -> int:
    return 1 if str(r.kwargs.get("device", "")).startswith("cuda") else 0


def _run_on_ray(runs: list[PlannedRun], address: str | None, parallel: int) -> list[tuple[PlannedRun, str]]:
    """Run each variant as a Ray task; return the failed ones and why.

    Uses the Ray instance this process is already connected to, else joins ``address``, else starts
    one on this machine (shut down again at the end). Every node must see ``data_dir`` at the same path.
    """
    try:
        import ray
    except ImportError:
        raise UserError("--backend ray needs Ray: pip install 'spinrl[ray]'") from None

    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = address or "this machine"
            raise UserError(f"could not start or join Ray at {where}: {str(e).splitlines()[0]}") from None
    remote_fn = ray.remote(run_variant_blocking)
    max_in_flight = parallel if parallel > 1 else len(runs)
    print(
        f"Running {len(runs)} variant(s) on Ray ({ray.cluster_resources().get('CPU', 0):.0f} CPUs).",
        flush=True,
    )
    pending = list(runs)
    in_flight: dict[Any, PlannedRun] = {}
    failures: list[tuple[PlannedRun, str]] = []
    try:
        while pending or in_flight:
            while pending and len(in_flight) < max_in_flight:
                r = pending.pop(0)
                task = remote_fn.options(num_cpus=r.num_cpu, num_gpus=_gpus_for(r), max_retries=0)
                # One thread per requested CPU: Ray packs tasks onto cores by their num_cpus.
                ref = task.remote(r.spec(), r.output_dir, r.num_cpu, r.mpi_args, 1)
                in_flight[ref] = r
                print(f"submit {r.label} (log {r.log_path})", flush=True)
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
            for ref in ready:
                r = in_flight.pop(ref)
                try:
                    rc = ray.get(ref)
                except Exception as e:  # the worker or node died: Ray's errors have many types
                    failures.append((r, f"Ray task failed: {type(e).__name__}"))
                    print(f"FAILED {r.label} ({type(e).__name__})", flush=True)
                    continue
                if rc == 0:
                    print(f"done   {r.label}", flush=True)
                else:
                    failures.append((r, f"exit code {rc}"))
                    print(f"FAILED {r.label} (exit code {rc})", flush=True)
    except KeyboardInterrupt:
        print(f"\nCancelling {len(in_flight)} Ray task(s)...", file=sys.stderr, flush=True)
        for ref in in_flight:
            ray.cancel(ref)
        # A task blocked in a system call may not see the cancel; then its worker is killed, and Ray
        # kills the worker's child processes with it. Either way the run is left resumable.
        _, stuck = ray.wait(list(in_flight), num_returns=len(in_flight), timeout=RAY_CANCEL_GRACE_SECONDS)
        for ref in stuck:
            ray.cancel(ref, force=True)
        print("Stopped. Run the same command with --resume to finish the grid.", file=sys.stderr, flush=True)
        raise
    finally:
        if started_here:
            ray.shutdown()
    _report_failures(failures)
    return failures


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
    ``python -m spinrl.run_entrypoint``; the arguments travel as JSON, so they must be literals,
    Gymnasium ids, or importable classes and functions.
    Returns the run's output directory.
    """
    logger_kwargs = kwargs.pop("logger_kwargs", None) or setup_logger_kwargs(
        exp_name, seed, data_dir, datestamp
    )
    kwargs = _algorithm_kwargs(thunk, dict(kwargs, seed=seed, logger_kwargs=logger_kwargs))
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
        raise UserError(
            f"run {exp_name!r} with {num_cpu} MPI ranks failed (exit code {rc}); see the messages above"
        )
    return logger_kwargs["output_dir"]


# ----- passing arguments between processes as JSON (no pickle: nothing executes on load) ------------
def encode_callable(obj: Callable) -> dict[str, str]:
    """``module:qualname`` for an importable class or function.

    Functions defined in the script being run (module ``__main__``) are named by the script's path;
    the child imports that file under another name, so its ``if __name__ == "__main__":`` block does
    not launch the grid again.
    """
    module, qualname = obj.__module__, obj.__qualname__
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if "<" in qualname or (module == "__main__" and not main_file):
        raise UserError(
            f"{obj!r} cannot be sent to another process: use a Gymnasium id string or a function "
            "defined at the top level of a module or script"
        )
    if module == "__main__":
        module = "file:" + os.path.abspath(main_file)
    return {"__callable__": f"{module}:{qualname}"}


def _import_module(module: str) -> Any:
    if not module.startswith("file:"):
        return importlib.import_module(module)
    path = module[len("file:") :]
    name = "spinrl_user_script_" + valid_str(Path(path).stem)
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise UserError(f"cannot import {path}: it is not a Python file")
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


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
        module, qualname = v["__callable__"].rsplit(":", 1)
        obj: Any = _import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return obj
    if isinstance(v, dict):
        return {k: decode_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [decode_value(x) for x in v]
    return v
