"""Environments: making and checking them (:mod:`.make`), vector envs and seeds per copy, the Atari
preprocessing (:mod:`.atari`) and what kind of observation a space holds (:mod:`.spaces`).

``from spinrl.envs import make_env`` (and the other names of :mod:`.make`) keeps working: they are looked
up there on first use.
"""

from __future__ import annotations

import importlib

_FROM_MAKE = (
    "make_env_fn",
    "import_env_module",
    "check_user_env",
    "resolve_env_fn",
    "default_max_ep_len",
    "env_name_of",
    "check_spaces",
    "RefuseNonFinite",
    "make_env",
    "make_vector_env",
    "SingleCopyVectorEnv",
    "steps_per_copy",
    "env_seeds",
    "real_next_obs",
    "EpisodeReturns",
    "obs_dim_of",
    "CHECKED_ENVS_VAR",
    "EnvFn",
)
__all__ = list(_FROM_MAKE)


def __getattr__(name: str):
    if name in _FROM_MAKE:
        return getattr(importlib.import_module("spinrl.envs.make"), name)
    raise AttributeError(f"module 'spinrl.envs' has no attribute {name!r}")
