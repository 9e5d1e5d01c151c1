"""Random numbers: every seed a run derives from its one ``seed``, seeding the generators, and capturing or
restoring their states.

Every derivation of a seed lives here, so that a reader finds in one place which episode starts from which
seed, and two parts of spinrl cannot drift apart:

- :func:`rank_seed`: the seed of each MPI rank of an on-policy run;
- :func:`env_seeds`: the reset seeds of the training env copies (per rank, and per epoch a process starts at);
- :func:`seeds_for_test_episodes`: the reset seeds of an epoch's test episodes (the off-policy family);
- :func:`episode_seeds`: the seeds of the episodes ``spinrl test_policy`` (``run_policy``) plays;
- :func:`trial_seeds`: the run seeds of each trial of ``spinrl tune``.

Python's ``random``, NumPy's global generator and torch (CPU and, when present, CUDA) are the generators an
algorithm draws from; :func:`seed_everything` seeds them. Environments draw from their own generators,
seeded through ``reset(seed=...)``. The captured states are plain values and tensors, so a checkpoint that
holds them can be read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

# Rank r of an on-policy run seeds itself with seed + RANK_SEED_STRIDE * r, as Spinning Up's do, so that
# the ranks collect different experience.
RANK_SEED_STRIDE = 10000
# Mixed into the test episodes' seed sequence ("test" in hex digits), so that they never share a seed
# sequence with the training env copies, whose entropy is (seed, rank, epoch).
TEST_EPISODES_TAG = 0x7E57
# spinrl tune's trial seeds are base, base + 10, ..., spaced as Spinning Up's examples space runs.
TRIAL_SEED_STRIDE = 10


def rank_seed(seed: int, rank: int) -> int:
    """The seed MPI rank ``rank`` of a run seeded with ``seed`` uses for its generators and env copies."""
    return seed + RANK_SEED_STRIDE * rank


def env_seeds(seed: int, rank: int, epoch: int, num_envs: int) -> list[int]:
    """Distinct, reproducible reset seeds for each env copy, MPI rank and epoch.

    The env copies are reset with these seeds once per process: at the first epoch of a new run, and
    at the resumed epoch after ``--resume`` (only the episodes running at the kill are lost). Epoch
    ends and checkpoints never reset them, so episodes run across epochs.
    """
    ss = np.random.SeedSequence([seed, rank, epoch])
    return [int(s) for s in ss.generate_state(num_envs, dtype=np.uint32)]


def seeds_for_test_episodes(seed: int, epoch: int, num_episodes: int) -> list[int]:
    """Reset seeds for one epoch's test episodes, drawn apart from the training envs' seeds."""
    ss = np.random.SeedSequence([seed, epoch, TEST_EPISODES_TAG])
    return [int(s) for s in ss.generate_state(num_episodes, dtype=np.uint32)]


def episode_seeds(first_seed: int, num_episodes: int) -> list[int]:
    """The reset seeds of ``num_episodes`` episodes played one after another from ``first_seed``: episode
    ``i`` starts from ``first_seed + i`` (``run_policy``'s episodes; benchmarks evaluate SB3 the same way)."""
    return [int(first_seed) + i for i in range(num_episodes)]


def trial_seeds(base_seed: int, count: int) -> list[int]:
    """The seeds of every trial: ``base, base + 10, ...`` as Spinning Up's examples space them."""
    return [int(base_seed) + TRIAL_SEED_STRIDE * i for i in range(count)]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch from one integer (NumPy takes it modulo 2**32)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The state of every generator, as tensors and plain values (safe for ``weights_only`` loading)."""
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": {
            "name": name,
            "keys": torch.as_tensor(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Put every generator back into a state captured by :func:`rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(
        (n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
