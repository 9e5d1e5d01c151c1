"""Running grid variants as Ray tasks (``--backend ray``), on this machine or on a Ray cluster.

Each variant becomes one task that asks Ray for ``num_cpu`` CPUs (and a GPU when its ``device`` is
``cuda...``). The task starts the variant in a child process, exactly as ``--parallel`` does on one
machine (:func:`spinrl.launch.local.launch_variant`), and waits for it. Every node must see the grid's
``data_dir`` at the same path. Ray is an optional extra: ``pip install 'spinrl[ray]'``.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from spinrl.common.errors import UserError
from spinrl.launch.local import launch_variant, report_failures, stop_children

if TYPE_CHECKING:
    from spinrl.launch.plan import PlannedRun

# Seconds cancelled tasks get to stop their child before Ray kills their worker.
RAY_CANCEL_GRACE_SECONDS = 3.0


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


def run_on_ray(runs: list[PlannedRun], address: str | None, parallel: int) -> list[tuple[PlannedRun, str]]:
    """Run each variant as a Ray task; return the failed ones and why.

    Uses the Ray instance this process is already connected to, else joins ``address``, else starts
    one on this machine (shut down again at the end). ``parallel`` above 1 caps the tasks in flight;
    otherwise Ray runs as many at once as the cluster's CPUs allow.
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
    report_failures(failures)
    return failures
