"""Running grid variants in processes of their own on this machine: ``--parallel K`` and MPI jobs.

The parent side (used by :class:`spinrl.launch.grid.ExperimentGrid`):

- :func:`run_in_parallel` keeps up to K variants running, each with its output in ``<run dir>/output.log``
  and a share of the cores (:func:`thread_budget`); a failed variant does not stop the others, and
  Ctrl-C stops them all (:func:`stop_children`), leaving every run resumable.
- single-process variants are forked from a zygote (:mod:`spinrl.launch.zygote`), a helper process that
  imported torch and the algorithm once, so a variant starts at once instead of paying seconds of imports;
- :func:`launch_variant` starts one variant as a new process (under ``mpiexec`` for several ranks), and
  :func:`run_with_mpi` runs one under ``mpiexec`` in the foreground.

Nothing outlives the grid: SIGTERM or SIGHUP to the grid stops its children as Ctrl-C does, and every
process it starts (the zygote, each variant, each ``mpiexec``) ends itself when its parent disappears,
even by SIGKILL (:func:`spinrl.launch.child.end_with_parent`). A stopped grid is finished by the same command with ``--resume``.

The child side, what a variant's process does when it starts and how it ends with the grid, is
:mod:`spinrl.launch.child`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spinrl.launch.child import (
    CAN_SET_PARENT_DEATH_SIGNAL,
    CHILD,
    PARENT_PID_ENV,
    STOP_GRACE_SECONDS,
    child_env,
    set_parent_death_signal,
)
from spinrl.launch.spec import spec_module
from spinrl.record.names import LOG_FILE, SPEC_FILE

if TYPE_CHECKING:
    from spinrl.launch.plan import PlannedRun
    from spinrl.launch.zygote import Zygote

# Signals that stop a grid the way Ctrl-C does (SIGINT already raises KeyboardInterrupt).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


# ----- no process outlives the grid -------------------------------------------------------------------------


def _before_exec(parent_death_signal: bool) -> Callable[[], None]:
    """What a child runs before ``exec``: SIGINT back to its default (see :func:`spinrl.launch.child.restore_sigint`), and the
    parent-death signal where ``parent_death_signal`` (for ``mpiexec``, which is not spinrl's code)."""

    def prepare() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if parent_death_signal:
            set_parent_death_signal()

    return prepare


def _raise_exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _on_stop_signals(handler: Any) -> dict[int, Any]:
    """Install ``handler`` for SIGTERM and SIGHUP (main thread only); return the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}


# ----- the parent side: starting and stopping variants ------------------------------------------------------
def thread_budget(parallel: int, num_cpu: int = 1) -> int:
    """Threads per process so that ``parallel`` runs of ``num_cpu`` ranks share this machine's cores."""
    from spinrl.common.mpi import available_cores

    return max(1, available_cores() // (parallel * max(1, num_cpu)))


def prepare_run_dir(spec: dict[str, Any], output_dir: str, how: str) -> str:
    """Write the run spec to ``<run dir>/variant.json`` and a header line to ``output.log``; return the
    spec's path."""
    os.makedirs(output_dir, exist_ok=True)
    spec_path = os.path.join(output_dir, SPEC_FILE)
    with open(spec_path, "w") as f:
        json.dump(spec, f, indent=2)
    with open(os.path.join(output_dir, LOG_FILE), "a") as log:
        log.write(f"===== {_dt.datetime.now().isoformat(timespec='seconds')} {how}\n")
    return spec_path


def launch_variant(spec: dict[str, Any], output_dir: str, num_cpu: int, mpi_args: str, threads: int):
    """Start one variant as ``python -m spinrl.launch.local <run dir>/variant.json`` (under mpiexec
    with ``num_cpu > 1``), its output appended to ``<run dir>/output.log``.

    The child gets its own session, so a Ctrl-C in the terminal reaches only the grid, which then stops
    every child the same way (:func:`stop_children`); and it ends itself if this process disappears
    (a single-process child on its own, ``mpiexec`` by a parent-death signal set before it starts).
    Returns the process and the open log file.
    """
    cmd = [*CHILD, os.path.join(output_dir, SPEC_FILE)]
    env = child_env(threads)
    preexec = None  # a single process restores SIGINT itself (main)
    if num_cpu > 1:
        from spinrl.common.mpi import mpiexec_command

        prefix, mpi_env = mpiexec_command(num_cpu, mpi_args)
        env = {**mpi_env, **env}  # MPI's settings, with this grid's thread budget
        cmd = prefix + cmd
        preexec = _before_exec(parent_death_signal=CAN_SET_PARENT_DEATH_SIGNAL)
    else:
        env[PARENT_PID_ENV] = str(os.getpid())
    prepare_run_dir(spec, output_dir, " ".join(cmd))
    log = open(os.path.join(output_dir, LOG_FILE), "a")
    proc = subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
        preexec_fn=preexec,
    )
    return proc, log


def run_with_mpi(spec: dict[str, Any], num_cpu: int, mpi_args: str = "") -> int:
    """Run a spec as ``num_cpu`` MPI ranks in the foreground (output to this terminal); return the exit code."""
    from spinrl.common.mpi import mpiexec_command

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
        spec_path = f.name
    try:
        cmd, env = mpiexec_command(num_cpu, mpi_args)
        # mpiexec (and through it every rank) ends if this process is killed, even by SIGKILL.
        preexec = _before_exec(parent_death_signal=CAN_SET_PARENT_DEATH_SIGNAL)
        return subprocess.call([*cmd, *CHILD, spec_path], env=env, preexec_fn=preexec)
    finally:
        os.unlink(spec_path)


def stop_children(procs: list[subprocess.Popen], grace: float = STOP_GRACE_SECONDS) -> None:
    """Send SIGINT to every child's process group, give them ``grace`` seconds, then kill what is left.

    SIGINT lets a run end cleanly (the logger closes its files, status.json keeps the epoch reached);
    the kill is for runs that hang.
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


def _start_zygote(runs: list[PlannedRun]) -> Zygote | None:
    """A zygote for single-process variants of an importable algorithm; None means plain processes."""
    from spinrl.launch.zygote import zygote_for

    module = spec_module(runs[0].spec())
    if runs[0].num_cpu > 1 or module.startswith("file:") or os.environ.get("SPINRL_NO_ZYGOTE") == "1":
        return None
    try:
        return zygote_for(module)
    except (RuntimeError, OSError) as e:
        print(f"(starting each variant as a new process: {e})", flush=True)
        return None


def run_in_parallel(runs: list[PlannedRun], parallel: int) -> list[tuple[PlannedRun, str]]:
    """Run the variants ``parallel`` at a time on this machine; return the failed ones and why.

    Ctrl-C, SIGTERM and SIGHUP stop every running variant (each keeps its last checkpoint) and start no
    other; the grid then exits (130 for Ctrl-C, 128 + the signal otherwise).
    """
    from spinrl.record.lock import LaunchClaim, RunInUseError

    threads = thread_budget(parallel, runs[0].num_cpu)
    print(f"Running {len(runs)} variant(s), {parallel} at a time, {threads} thread(s) each.", flush=True)
    previous_handlers = _on_stop_signals(_raise_exit)
    zygote = None
    pending = list(runs)
    running: dict[Any, tuple[PlannedRun, float]] = {}
    failures: list[tuple[PlannedRun, str]] = []
    claims: dict[str, LaunchClaim] = {}  # run folder -> this grid's claim, while its variant runs
    done = 0
    try:
        zygote = _start_zygote(runs)
        # Set by the zygote when a child ends, so the next variant starts at once; else poll.
        child_ended = zygote.changed if zygote is not None else threading.Event()
        while pending or running:
            while pending and len(running) < parallel:
                r = pending.pop(0)
                try:  # before anything is written there: a second grid launching the same run writes nothing
                    claims[r.output_dir] = LaunchClaim([r.output_dir])
                except RunInUseError as e:
                    done += 1
                    failures.append((r, str(e)))
                    print(f"FAILED {r.label}: {e} [{done}/{len(runs)}]", flush=True)
                    continue
                if zygote is not None:
                    spec_path = prepare_run_dir(r.spec(), r.output_dir, "forked by the grid's zygote process")
                    proc = zygote.fork(spec_path, r.log_path, threads)
                else:
                    proc, log = launch_variant(r.spec(), r.output_dir, r.num_cpu, r.mpi_args, threads)
                    log.close()  # the child holds its own copy
                running[proc] = (r, time.monotonic())
                print(f"start  {r.label} (pid {proc.pid}, log {r.log_path})", flush=True)
            child_ended.clear()
            ended = [p for p in running if p.poll() is not None]
            for proc in ended:
                r, started = running.pop(proc)
                claims.pop(r.output_dir).release()
                done += 1
                took = f"{time.monotonic() - started:.0f} s"
                if proc.returncode == 0:
                    print(f"done   {r.label} in {took} [{done}/{len(runs)}]", flush=True)
                else:
                    failures.append((r, f"exit code {proc.returncode} after {took}"))
                    print(f"FAILED {r.label} (exit code {proc.returncode}) [{done}/{len(runs)}]", flush=True)
            if not ended:  # else start the next variants at once
                child_ended.wait(timeout=0.05)
    except (KeyboardInterrupt, SystemExit):
        # A second signal must not cut the clean-up short: ignore them until every child is stopped.
        _on_stop_signals(signal.SIG_IGN)
        print(f"\nStopping {len(running)} running variant(s)...", file=sys.stderr, flush=True)
        stop_children(list(running))
        print("Stopped. Run the same command with --resume to finish the grid.", file=sys.stderr, flush=True)
        raise
    finally:
        if zygote is not None:
            zygote.close()
        for claim in claims.values():
            claim.release()
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
    report_failures(failures)
    return failures


def report_failures(failures: list[tuple[PlannedRun, str]]) -> None:
    """Name each failed variant, why it failed, its log file and the last lines of that log."""
    if not failures:
        return
    print(f"\n{len(failures)} variant(s) failed:", flush=True)
    for r, why in failures:
        if "another grid" in why:  # never launched here: its log is the other grid's
            print(f"  {r.label}: {why}", flush=True)
            continue
        print(f"  {r.label}: {why}\n    log: {r.log_path}", flush=True)
        for line in _log_tail(r.log_path):
            print(f"      | {line}", flush=True)


def _log_tail(path: str, lines: int = 3) -> list[str]:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]
