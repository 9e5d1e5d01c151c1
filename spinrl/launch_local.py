"""Running grid variants in processes of their own on this machine: ``--parallel K`` and MPI jobs.

The parent side (used by :class:`spinrl.grid.ExperimentGrid`):

- :func:`run_in_parallel` keeps up to K variants running, each with its output in ``<run dir>/output.log``
  and a share of the cores (:func:`thread_budget`); a failed variant does not stop the others, and
  Ctrl-C stops them all (:func:`stop_children`), leaving every run resumable.
- single-process variants are forked from a zygote (:mod:`spinrl.launch_zygote`), a helper process that
  imported torch and the algorithm once, so a variant starts at once instead of paying seconds of imports;
- :func:`launch_variant` starts one variant as a new process (under ``mpiexec`` for several ranks), and
  :func:`run_with_mpi` runs one under ``mpiexec`` in the foreground.

Nothing outlives the grid: SIGTERM or SIGHUP to the grid stops its children as Ctrl-C does, and every
process it starts (the zygote, each variant, each ``mpiexec``) ends itself when its parent disappears,
even by SIGKILL (:func:`end_with_parent`). A stopped grid is finished by the same command with ``--resume``.

The child side is this module run as a program::

    python -m spinrl.launch_local RUN_DIR/variant.json      # run one variant from its run spec
    python -m spinrl.launch_local --zygote MODULE ...       # the zygote: import, then fork on request
                                                            # (spinrl.launch_zygote.serve_forks)
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

from spinrl.errors import UserError
from spinrl.run_spec import load_spec, spec_module
from spinrl.rundir import LOG_FILE, SPEC_FILE

if TYPE_CHECKING:
    from spinrl.grid import PlannedRun
    from spinrl.launch_zygote import Zygote

# Seconds a stopped child gets to write its status and exit after SIGINT before it is killed.
STOP_GRACE_SECONDS = 10.0
CHILD = [sys.executable, "-m", "spinrl.launch_local"]
# Tells a child started by the grid which process it must not outlive.
PARENT_PID_ENV = "SPINRL_PARENT_PID"
# Signals that stop a grid the way Ctrl-C does (SIGINT already raises KeyboardInterrupt).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# A variant's thread budget: BLAS libraries read these at start-up, torch reads SPINRL_NUM_THREADS.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "SPINRL_NUM_THREADS")


# ----- no process outlives the grid -------------------------------------------------------------------------
def _load_prctl():
    """libc's prctl on Linux, looked up once (so a forked child need not load anything), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()


def _set_parent_death_signal() -> bool:
    """Ask the kernel to send this process SIGTERM when its parent dies; False where it cannot."""
    return _prctl is not None and _prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) == 0


def end_with_parent(parent_pid: int) -> None:
    """Make this process end (SIGTERM) when its parent ``parent_pid`` is gone, however the parent died.

    Linux does it with ``prctl(PR_SET_PDEATHSIG)``; elsewhere a thread checks twice a second whether the
    process has been handed to another parent. A parent that died before we got here is caught at once.
    """
    if not _set_parent_death_signal():

        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(0.5)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=watch, daemon=True, name="end-with-parent").start()
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)


def _end_with_parent_env() -> None:
    """In a child the grid started: :func:`end_with_parent` for the pid the grid left in the environment."""
    parent = os.environ.pop(PARENT_PID_ENV, "")
    if parent.isdigit():
        end_with_parent(int(parent))


def _restore_sigint() -> None:
    """Let SIGINT raise KeyboardInterrupt again in a process that inherited it ignored.

    A shell starts a background job (``cmd &``, nohup, many batch schedulers) with SIGINT ignored, and
    the children of that job inherit it: they would then ignore the SIGINT with which
    :func:`stop_children` asks them to stop cleanly, and be killed after the grace period instead.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _before_exec(parent_death_signal: bool) -> Callable[[], None]:
    """What a child runs before ``exec``: SIGINT back to its default (see :func:`_restore_sigint`), and the
    parent-death signal where ``parent_death_signal`` (for ``mpiexec``, which is not spinrl's code)."""

    def prepare() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if parent_death_signal:
            _set_parent_death_signal()

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
    from spinrl.mpi import available_cores

    return max(1, available_cores() // (parallel * max(1, num_cpu)))


def child_env(threads: int) -> dict[str, str]:
    """The environment of a variant's process: its thread budget, and plain-text output for its log."""
    from spinrl.mpi import PLAIN_OUTPUT_ENV

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # The log is a file, but mpiexec gives its ranks a pseudo-terminal: ask for plain text, no live bars.
    env.update(TERM="dumb", NO_COLOR="1")
    env[PLAIN_OUTPUT_ENV] = "1"
    for var in THREAD_VARIABLES:
        env[var] = str(threads)
    return env


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
    """Start one variant as ``python -m spinrl.launch_local <run dir>/variant.json`` (under mpiexec
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
        from spinrl.mpi import mpiexec_command

        prefix, mpi_env = mpiexec_command(num_cpu, mpi_args)
        env = {**mpi_env, **env}  # MPI's settings, with this grid's thread budget
        cmd = prefix + cmd
        preexec = _before_exec(parent_death_signal=_prctl is not None)
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
    from spinrl.mpi import mpiexec_command

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
        spec_path = f.name
    try:
        cmd, env = mpiexec_command(num_cpu, mpi_args)
        # mpiexec (and through it every rank) ends if this process is killed, even by SIGKILL.
        preexec = _before_exec(parent_death_signal=_prctl is not None)
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
    from spinrl.launch_zygote import zygote_for

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
    from spinrl.run_lock import LaunchClaim, RunInUseError

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


# ----- the child side: python -m spinrl.launch_local ---------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Run one variant from its spec file, or with ``--zygote MODULE ...`` serve forks."""
    argv = sys.argv[1:] if argv is None else argv
    _end_with_parent_env()  # started by a grid: never outlive it
    _restore_sigint()  # the zygote's forks too: stop_children's SIGINT must reach the run
    if argv[:1] == ["--zygote"]:
        from spinrl.launch_zygote import serve_forks

        serve_forks(argv[1:])  # never returns
    if len(argv) != 1:
        raise UserError("usage: python -m spinrl.launch_local SPEC.json")
    thunk, kwargs = load_spec(argv[0])
    # The launcher gave this process a thread budget so that parallel runs share the cores.
    from spinrl.device import set_thread_budget

    set_thread_budget()
    thunk(**kwargs)
    return 0


if __name__ == "__main__":
    from spinrl.errors import run_main_guarded

    sys.exit(run_main_guarded(main))
