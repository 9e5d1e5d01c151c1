"""spinrl: Spinning Up in deep RL, rebuilt for today.

``from spinrl import ppo`` (or vpg, trpo, ddpg, td3, sac, dqn) gives the algorithm function.
Spinning Up's names work too, so a script moves over by renaming ``spinup`` to ``spinrl``:
``from spinrl import ppo_pytorch`` is the same function as ``ppo``, and ``EpochLogger`` and ``Logger``
come from :mod:`spinrl.record.logger`. There are no ``*_tf1`` versions.
Everything is imported on first use, so ``import spinrl`` stays fast.
"""

from __future__ import annotations

import importlib

from spinrl import moved

moved.install()  # earlier versions' module paths (spinrl.logx, spinrl.rundir, ...) keep working

__version__ = "0.1.0"

_ALGORITHMS = ("vpg", "trpo", "ppo", "ddpg", "td3", "sac", "dqn")
_LOGGERS = ("EpochLogger", "Logger")
__all__ = [*_ALGORITHMS, *(f"{name}_pytorch" for name in _ALGORITHMS), *_LOGGERS]


def __getattr__(name: str):
    algo = name.removesuffix("_pytorch")
    if algo in _ALGORITHMS:
        return getattr(importlib.import_module(f"spinrl.algos.{algo}"), algo)
    if name in _LOGGERS:
        return getattr(importlib.import_module("spinrl.record.logger"), name)
    if name.endswith("_tf1") and name.removesuffix("_tf1") in _ALGORITHMS:
        raise AttributeError(
            f"spinrl has no TensorFlow versions: use {name.removesuffix('_tf1')} (the PyTorch one) instead of {name}"
        )
    raise AttributeError(f"module 'spinrl' has no attribute {name!r}")
