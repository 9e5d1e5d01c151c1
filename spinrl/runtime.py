"""Run-time helpers every algorithm uses: seeding, device choice, threads, sanity checks."""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from spinrl.errors import UserError


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (environments are seeded through ``reset(seed=...)``)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``'auto'`` picks CUDA when present, else the CPU; asking for CUDA without one is an error."""
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
    """Use a fixed number of torch threads: ``num_threads``, else ``$SPINRL_NUM_THREADS``, else ``default``.

    The networks here are small: an update is a chain of small kernels, where handing work between
    threads costs more than it saves, and OpenMP threads that spin-wait for a busy core slow a run
    down many times over (measured here: 8 ms vs 118 ms per full-batch PPO step on a loaded 2-core
    machine). Parallel grid launchers set ``$SPINRL_NUM_THREADS`` per run.
    """
    torch.set_num_threads(num_threads or int(os.environ.get("SPINRL_NUM_THREADS", "0") or 0) or default)


class TrainingDiverged(UserError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def check_finite(epoch: int, **losses: float) -> None:
    """Stop training with a clear message when a loss is NaN or infinite."""
    for name, value in losses.items():
        if not np.isfinite(value):
            raise TrainingDiverged(
                f"{name} became {value} in epoch {epoch}: training stopped; the last good checkpoint is "
                "kept (try a smaller learning rate)"
            )


# Valid ranges for hyperparameters shared by several algorithms: name -> (test, description).
_RULES: dict[str, tuple[Any, str]] = {
    "gamma": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "lam": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "polyak": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "clip_ratio": (lambda v: v > 0, "> 0"),
    "target_kl": (lambda v: v > 0, "> 0"),
    "delta": (lambda v: v > 0, "> 0"),
    "damping_coeff": (lambda v: v >= 0, ">= 0"),
    "backtrack_coeff": (lambda v: 0 < v < 1, "in (0, 1)"),
    "pi_lr": (lambda v: v > 0, "> 0"),
    "vf_lr": (lambda v: v > 0, "> 0"),
    "q_lr": (lambda v: v > 0, "> 0"),
    "lr": (lambda v: v > 0, "> 0"),
    "act_noise": (lambda v: v >= 0, ">= 0"),
    "target_noise": (lambda v: v >= 0, ">= 0"),
    "noise_clip": (lambda v: v >= 0, ">= 0"),
    "epsilon_start": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "epsilon_end": (lambda v: 0 <= v <= 1, "in [0, 1]"),
}
_POSITIVE_INTS = {
    "epochs",
    "steps_per_epoch",
    "train_pi_iters",
    "train_v_iters",
    "max_ep_len",
    "cg_iters",
    "backtrack_iters",
    "num_envs",
    "save_freq",
    "batch_size",
    "replay_size",
    "update_every",
    "policy_delay",
    "num_test_episodes",
    "epsilon_decay_steps",
}
_NON_NEGATIVE_INTS = {"start_steps", "update_after", "seed"}


def check_hyperparameters(values: Mapping[str, Any]) -> None:
    """Refuse out-of-range hyperparameters with one line naming the value and the valid range."""
    for name, v in values.items():
        if name in _POSITIVE_INTS or name in _NON_NEGATIVE_INTS:
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise UserError(f"{name}={v!r} is not valid: it must be an integer")
            lowest = 1 if name in _POSITIVE_INTS else 0
            if v < lowest:
                raise UserError(f"{name}={v} is not valid: it must be >= {lowest}")
        elif name in _RULES:
            test, valid = _RULES[name]
            if isinstance(v, bool) or not isinstance(v, int | float | np.number):
                raise UserError(f"{name}={v!r} is not valid: it must be a number {valid}")
            if not np.isfinite(v) or not test(v):
                raise UserError(f"{name}={v} is not valid: it must be {valid}")
