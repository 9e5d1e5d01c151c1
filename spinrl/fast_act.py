"""Acting with an MLP actor-critic in NumPy: the same math, without PyTorch's per-call overhead.

Collecting experience runs the policy on one observation (or a few) at a time. Through a 64x64
network that is ~20 small operations, and PyTorch spends a few microseconds of dispatch on each, far
more than the arithmetic. NumPy does the same arithmetic with a fraction of the overhead, so for
:class:`spinrl.nets.MLPActorCritic` on the CPU the collection loop acts through this mirror.
It is rebuilt from the torch weights at the start of every epoch (the policy only changes in the
update), and draws its noise from torch's RNG, so seeding and resuming work exactly as before.
Any other actor-critic, or a GPU, falls back to ``ac.step``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from spinrl.nets import LOG_2PI, MLPActorCritic, MLPCategoricalActor, MLPGaussianActor

_NUMPY_ACTIVATIONS: dict[type[nn.Module], Callable[[np.ndarray], np.ndarray]] = {
    nn.Tanh: np.tanh,
    nn.ReLU: lambda x: np.maximum(x, 0.0),
    nn.Identity: lambda x: x,
    nn.Sigmoid: lambda x: 1.0 / (1.0 + np.exp(-x)),
}


def _numpy_mlp(seq: nn.Sequential) -> Callable[[np.ndarray], np.ndarray] | None:
    """A NumPy function computing the same as ``seq`` (Linear/activation pairs), or None."""
    layers = []
    for module in seq:
        if isinstance(module, nn.Linear):
            layers.append(
                (
                    "linear",
                    module.weight.detach().cpu().numpy().T.copy(),
                    module.bias.detach().cpu().numpy().copy(),
                )
            )
        elif type(module) in _NUMPY_ACTIVATIONS:
            layers.append(("act", _NUMPY_ACTIVATIONS[type(module)], None))
        else:
            return None

    def forward(x: np.ndarray) -> np.ndarray:
        for kind, a, b in layers:
            x = x @ a + b if kind == "linear" else a(x)
        return x

    return forward


def numpy_policy(ac: nn.Module, device: torch.device) -> Callable | None:
    """``step(obs) -> (action, value, logp)`` in NumPy for an MLPActorCritic on the CPU, else None."""
    if device.type != "cpu" or type(ac) is not MLPActorCritic:
        return None
    v_net = _numpy_mlp(ac.v.v_net)
    if isinstance(ac.pi, MLPCategoricalActor):
        logits_net = _numpy_mlp(ac.pi.logits_net)
        if logits_net is None or v_net is None:
            return None

        def step(obs: np.ndarray):
            logits = logits_net(obs)
            logits = logits - logits.max(-1, keepdims=True)
            logp_all = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
            # Inverse-CDF sampling with torch's RNG, exactly as MLPCategoricalActor.sample.
            u = torch.rand(obs.shape[0], 1).numpy()
            a = np.minimum((np.exp(logp_all).cumsum(-1) < u).sum(-1), logp_all.shape[-1] - 1)
            return a, v_net(obs)[:, 0], logp_all[np.arange(obs.shape[0]), a]

        return step
    if isinstance(ac.pi, MLPGaussianActor):
        mu_net = _numpy_mlp(ac.pi.mu_net)
        if mu_net is None or v_net is None:
            return None
        log_std = ac.pi.log_std.detach().cpu().numpy().copy()
        std = np.exp(log_std)

        def step(obs: np.ndarray):
            mu = mu_net(obs)
            z = torch.randn(mu.shape).numpy()  # as MLPGaussianActor.sample: a = mu + std * z
            logp = -0.5 * (z**2 + 2 * log_std + LOG_2PI).sum(-1)
            return mu + std * z, v_net(obs)[:, 0], logp

        return step
    return None
