"""Migration path for ``spinup.utils.mpi_tools``: the MPI helpers live in :mod:`spinrl.common.mpi`.

``mpi_fork``, ``msg`` and ``broadcast`` keep Spinning Up's signatures here. Its ``allreduce`` and
``mpi_op`` take mpi4py's operations and are not offered: call mpi4py directly for those.
"""

from __future__ import annotations

import numpy as np

from spinrl.common import mpi
from spinrl.common.mpi import mpi_avg, mpi_statistics_scalar, mpi_sum, num_procs, proc_id

__all__ = [
    "broadcast",
    "mpi_avg",
    "mpi_fork",
    "mpi_statistics_scalar",
    "mpi_sum",
    "msg",
    "num_procs",
    "proc_id",
]


def mpi_fork(n: int, bind_to_core: bool = False) -> None:
    """Run this script again as ``n`` MPI ranks and exit with their status (nothing when ``n`` is 1 or
    this already is a rank); ``bind_to_core`` pins each rank to one core."""
    mpi.mpi_fork(n, "--bind-to core" if bind_to_core else "")


def msg(m: object, string: str = "") -> None:
    """Print ``m`` prefixed by this rank's number (and ``string``)."""
    print(f"Message from {proc_id()}: {string} \t {m}")


def broadcast(x: np.ndarray, root: int = 0) -> None:
    """Overwrite the array ``x`` on every rank with its contents on ``root``."""
    x[...] = mpi.broadcast_object(x, root=root)
