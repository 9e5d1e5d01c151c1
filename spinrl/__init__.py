"""spinrl: Spinning Up in deep RL, rebuilt for today.

``from spinrl import ppo`` (or vpg, trpo, ddpg, td3, sac, dqn) gives the algorithm function.
Algorithms are imported on first use, so ``import spinrl`` stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_ALGORITHMS = ("vpg", "trpo", "ppo", "ddpg", "td3", "sac", "dqn")
__all__ = list(_ALGORITHMS)


def __getattr__(name: str):
    if name in _ALGORITHMS:
        return getattr(importlib.import_module(f"spinrl.algos.{name}"), name)
    raise AttributeError(f"module 'spinrl' has no attribute {name!r}")
