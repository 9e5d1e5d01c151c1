"""Exercise 1.2: the actor-critic networks of PPO.

Write the pieces PPO needs for a stochastic policy and a value function (docs: intro/key-concepts,
"Stochastic policies", and algorithms/ppo):

- ``mlp``: a fully connected network.
- ``MLPCategoricalActor``: logits from an MLP; a ``Categorical`` distribution over discrete actions.
- ``MLPGaussianActor``: means from an MLP and ONE learnable vector ``log_std`` that does not depend on the
  observation (an ``nn.Parameter`` of shape (act_dim,), initialised to -0.5); a diagonal ``Normal``.
- ``MLPCritic``: the value V(s), one number per observation, shape (batch,).

An actor's ``forward(obs, act)`` returns the distribution and the log-probability of ``act`` under it,
shape (batch,). For the Gaussian that log-probability sums over action dimensions.

Fill in every TODO, then check your file with

    spinrl exercise 1.2 --file <this file>
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Normal


def mlp(
    sizes: list[int], activation: type[nn.Module], output_activation: type[nn.Module] = nn.Identity
) -> nn.Module:
    """Linear layers of the given sizes; ``activation`` between them, ``output_activation`` after the last."""
    # TODO: build and return an nn.Sequential.
    raise NotImplementedError("TODO: mlp")


class Actor(nn.Module):
    """Shared logic: given the two hooks below, ``forward`` returns (distribution, log-prob of act)."""

    def _distribution(self, obs: torch.Tensor) -> Distribution:
        raise NotImplementedError

    def _log_prob_from_distribution(self, pi: Distribution, act: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self, obs: torch.Tensor, act: torch.Tensor | None = None
    ) -> tuple[Distribution, torch.Tensor | None]:
        pi = self._distribution(obs)
        logp_a = None if act is None else self._log_prob_from_distribution(pi, act)
        return pi, logp_a


class MLPCategoricalActor(Actor):
    def __init__(
        self, obs_dim: int, act_dim: int, hidden_sizes: list[int], activation: type[nn.Module]
    ) -> None:
        super().__init__()
        # TODO: self.logits_net = an MLP from obs_dim through hidden_sizes to act_dim logits.
        raise NotImplementedError("TODO: MLPCategoricalActor.__init__")

    def _distribution(self, obs: torch.Tensor) -> Distribution:
        # TODO: a Categorical distribution built from the logits.
        raise NotImplementedError("TODO: MLPCategoricalActor._distribution")

    def _log_prob_from_distribution(self, pi: Distribution, act: torch.Tensor) -> torch.Tensor:
        # TODO: log pi(act | obs), shape (batch,).
        raise NotImplementedError("TODO: MLPCategoricalActor._log_prob_from_distribution")


class MLPGaussianActor(Actor):
    def __init__(
        self, obs_dim: int, act_dim: int, hidden_sizes: list[int], activation: type[nn.Module]
    ) -> None:
        super().__init__()
        # TODO: self.log_std = a learnable parameter of shape (act_dim,), every entry -0.5;
        #       self.mu_net = an MLP from obs_dim through hidden_sizes to act_dim means.
        raise NotImplementedError("TODO: MLPGaussianActor.__init__")

    def _distribution(self, obs: torch.Tensor) -> Distribution:
        # TODO: a Normal distribution with mean mu_net(obs) and standard deviation exp(log_std).
        raise NotImplementedError("TODO: MLPGaussianActor._distribution")

    def _log_prob_from_distribution(self, pi: Distribution, act: torch.Tensor) -> torch.Tensor:
        # TODO: log pi(act | obs), shape (batch,): the dimensions of a diagonal Gaussian are independent.
        raise NotImplementedError("TODO: MLPGaussianActor._log_prob_from_distribution")


class MLPCritic(nn.Module):
    def __init__(self, obs_dim: int, hidden_sizes: list[int], activation: type[nn.Module]) -> None:
        super().__init__()
        # TODO: self.v_net = an MLP from obs_dim through hidden_sizes to 1 output.
        raise NotImplementedError("TODO: MLPCritic.__init__")

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        # TODO: V(obs) of shape (batch,). Mind the trailing dimension of size 1.
        raise NotImplementedError("TODO: MLPCritic.forward")


# These imports are used once the TODOs are filled in; naming them here keeps linters quiet until then.
__all__ = ["Categorical", "Normal", "mlp", "MLPCategoricalActor", "MLPGaussianActor", "MLPCritic"]
