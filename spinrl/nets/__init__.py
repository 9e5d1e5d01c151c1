"""The networks: actor-critics for the policy-gradient family (:mod:`.actor_critic`), Q-networks and the
off-policy actor-critics (:mod:`.q_nets`), image encoders (:mod:`.encoders`), users' own actor-critics
(:mod:`.custom`) and the NumPy fast path for acting (:mod:`.fast_act`). How network outputs become env
actions is :mod:`spinrl.envs.actions`.

``from spinrl.nets import MLPActorCritic`` (and the other names of :mod:`.actor_critic`) keeps working:
they are looked up there on first use.
"""

from __future__ import annotations

import importlib

_FROM_ACTOR_CRITIC = (
    "LOG_2PI", "MLPActorCritic", "MLPCategoricalActor", "MLPGaussianActor", "MLPCritic", "activation_names",
    "check_hidden_sizes", "count_vars", "mlp", "orthogonal_init", "resolve_activation",
    "shared_encoder_features", "with_encoder",
)  # fmt: skip
__all__ = list(_FROM_ACTOR_CRITIC)


def __getattr__(name: str):
    if name in _FROM_ACTOR_CRITIC:
        return getattr(importlib.import_module("spinrl.nets.actor_critic"), name)
    raise AttributeError(f"module 'spinrl.nets' has no attribute {name!r}")
