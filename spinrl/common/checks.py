"""Checks that stop a run early with one clear line: hyperparameters out of range, a diverged loss."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from spinrl.common.errors import UserError


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
    "target_kl": (lambda v: v > 0, "> 0, or None for no early stop"),
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
    "obs_clip": (lambda v: v > 0, "> 0"),
    "reward_clip": (lambda v: v > 0, "> 0"),
    "max_grad_norm": (lambda v: v > 0, "> 0, or None for no clipping"),
    "adam_eps": (lambda v: v > 0, "> 0"),
    "ent_coef": (lambda v: v >= 0, ">= 0"),
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
    "steps_per_update",
    "policy_delay",
    "num_test_episodes",
    "epsilon_decay_steps",
    "minibatch_size",
    "anneal_lr_steps",
}
_NON_NEGATIVE_INTS = {"start_steps", "update_after", "seed"}
_BOOLEANS = {"compile", "obs_norm", "reward_norm", "value_norm", "anneal_lr"}
# None has a meaning for these: max_ep_len, the algorithm's default rule (spinrl.envs.default_max_ep_len);
# target_kl, no early stop; minibatch_size, whole-batch steps; max_grad_norm, no clipping; anneal_lr_steps,
# the run's length.
_MAY_BE_NONE = {"max_ep_len", "target_kl", "minibatch_size", "max_grad_norm", "anneal_lr_steps"}


# Seeds are offset per MPI rank and fed to NumPy (which takes 32 bits): keep them well inside that.
MAX_SEED = 2**31 - 1


def check_hyperparameters(values: Mapping[str, Any]) -> None:
    """Refuse out-of-range hyperparameters with one line naming the value and the valid range."""
    for name, v in values.items():
        if name in _MAY_BE_NONE and v is None:
            continue
        if name in _POSITIVE_INTS or name in _NON_NEGATIVE_INTS:
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                example = f", e.g. {int(v)}" if isinstance(v, float) and v.is_integer() else ""
                raise UserError(f"{name}={v!r} is not valid: it must be a whole number{example}")
            lowest = 1 if name in _POSITIVE_INTS else 0
            if v < lowest:
                raise UserError(f"{name}={v} is not valid: it must be >= {lowest}")
            if name == "seed" and v > MAX_SEED:
                raise UserError(f"seed={v} is not valid: it must be between 0 and {MAX_SEED}")
        elif name in _BOOLEANS:
            if not isinstance(v, bool):
                raise UserError(f"{name}={v!r} is not valid: it must be True or False")
        elif name in _RULES:
            test, valid = _RULES[name]
            if isinstance(v, bool) or not isinstance(v, int | float | np.number):
                raise UserError(f"{name}={v!r} is not valid: it must be a number {valid}")
            if not np.isfinite(v) or not test(v):
                raise UserError(f"{name}={v} is not valid: it must be {valid}")


def available_memory() -> int:
    """Bytes of memory this process could still get (Linux: MemAvailable), else the machine's total."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_fits_in_memory(nbytes: int, what: str, fix: str) -> None:
    """Refuse, before allocating, a buffer larger than the memory available (instead of a MemoryError
    or the kernel's OOM killer). ``fix`` names the settings that make it smaller."""
    free = available_memory()
    if nbytes > free:
        raise UserError(
            f"{what} would need {nbytes / 1e9:.1f} GB, but only {free / 1e9:.1f} GB of memory is available; "
            f"lower {fix}"
        )
