"""``spinrl tune``: hyperparameter search with Optuna. The command and its settings are in :mod:`.study`,
the study in its storage in :mod:`.storage`, running the trials in :mod:`.running`, the search spaces in
:mod:`.space`, one trial's runs in :mod:`.trial`, the summary of a study (``spinrl tune --show``) in
:mod:`.show`.

``from spinrl.tune import search`` (the Python entry point) keeps working, as do the other names the
search had when it was one module: they are looked up in :mod:`.study`, :mod:`.running` and
:mod:`.storage` on first use, so importing the package does not import Optuna.
"""

from __future__ import annotations

import importlib

__all__ = ["main", "search"]
_LOOKED_UP_IN = ("spinrl.tune.study", "spinrl.tune.running", "spinrl.tune.storage")


def __getattr__(name: str):
    if not name.startswith("_"):
        for module in map(importlib.import_module, _LOOKED_UP_IN):
            if hasattr(module, name):
                return getattr(module, name)
    raise AttributeError(f"module 'spinrl.tune' has no attribute {name!r}")
