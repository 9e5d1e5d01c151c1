"""Environments: making and checking them (:mod:`.make`), copies stepped together with their seeds and
episodes (:mod:`.vector`), the Atari preprocessing (:mod:`.atari`), what kind of observation a space
holds (:mod:`.spaces`) and the mapping of network outputs to actions (:mod:`.actions`).

``from spinrl.envs import make_env`` (and the other names of :mod:`.make` and :mod:`.vector`) keeps
working: they are looked up there on first use.
"""

from __future__ import annotations

import importlib

_FROM = {
    "spinrl.envs.make": (
        "make_env_fn", "import_env_module", "check_user_env", "resolve_env_fn", "default_max_ep_len",
        "env_name_of", "check_spaces", "RefuseNonFinite", "prepare_env", "make_env", "CHECKED_ENVS_VAR",
        "EnvFn",
    ),
    "spinrl.envs.vector": (
        "make_vector_env", "SingleCopyVectorEnv", "steps_per_copy", "env_seeds", "real_next_obs",
        "EpisodeReturns", "obs_dim_of",
    ),
}  # fmt: skip
_HOME = {name: module for module, names in _FROM.items() for name in names}
__all__ = list(_HOME)


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'spinrl.envs' has no attribute {name!r}")
