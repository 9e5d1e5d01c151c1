"""``spinrl tune``: hyperparameter search with Optuna. The search itself and its command line are in
:mod:`.study`, the search spaces in :mod:`.space`, one trial's runs in :mod:`.trial`, the summary of a
study (``spinrl tune --show``) in :mod:`.show`.

``from spinrl.tune import search`` (the Python entry point) keeps working: it is looked up in
:mod:`.study` on first use, so importing the package does not import Optuna.
"""

from __future__ import annotations

import importlib

__all__ = ["main", "search"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module("spinrl.tune.study"), name)
    raise AttributeError(f"module 'spinrl.tune' has no attribute {name!r}")
