"""Migration path for ``spinup.utils.mpi_pytorch``: the MPI helpers for torch live in :mod:`spinrl.common.mpi`."""

from spinrl.common.mpi import mpi_avg_grads, setup_pytorch_for_mpi, sync_params

__all__ = ["mpi_avg_grads", "setup_pytorch_for_mpi", "sync_params"]
