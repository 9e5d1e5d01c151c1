"""Where the networks run, and how many CPU threads torch may use."""

from __future__ import annotations

import os

import torch

from spinrl.common.errors import UserError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``'auto'`` means CUDA when a GPU is visible, else the CPU; ``'cuda'`` without a GPU is an error."""
    if isinstance(device, torch.device):
        return device
    device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(
                f"--device {device} was asked for, but no CUDA GPU is available; use --device cpu or auto"
            )
        return torch.device(device)
    if device in ("cpu", "mps"):
        return torch.device(device)
    raise UserError(f"--device {device!r} is not valid: use auto, cpu or cuda")


def set_thread_budget(num_threads: int | None = None, default: int = 1) -> None:
    """Fix torch's CPU threads: ``num_threads``, else ``$SPINRL_NUM_THREADS``, else ``default``.

    spinrl's networks are small, so an update is a chain of tiny kernels; splitting each over threads
    costs more in hand-offs than it gains, and OpenMP workers that spin while waiting for a busy core
    can slow a run many times over on a loaded machine (benchmarks/results/code-measurements.md). Launchers
    that run several processes at once set ``$SPINRL_NUM_THREADS``.
    """
    torch.set_num_threads(num_threads or int(os.environ.get("SPINRL_NUM_THREADS", "0") or 0) or default)
