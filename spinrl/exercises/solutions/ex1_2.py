"""Exercise 1.2, reference solution: PPO's actor-critic networks (docs: exercises/1.2)."""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Normal


def mlp(
    sizes: list[int], activation: type[nn.Module], output_activation: type[nn.Module] = nn.Identity
) -> nn.Module:
    """Linear layers of the given sizes; ``activation`` between them, ``output_activation`` after the last."""
    layers: list[nn.Module] = []
    for j in range(len(sizes) - 1):
        act = activation if j < len(sizes) - 2 else output_activation
        layers += [nn.Linear(sizes[j], sizes[j + 1]), act()]
    return nn.Sequential(*layers)


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
        self.logits_net = mlp([obs_dim, *hidden_sizes, act_dim], activation)

    def _distribution(self, obs: torch.Tensor) -> Distribution:
        return Categorical(logits=self.logits_net(obs))

    def _log_prob_from_distribution(self, pi: Distribution, act: torch.Tensor) -> torch.Tensor:
        return pi.log_prob(act)


class MLPGaussianActor(Actor):
    def __init__(
        self, obs_dim: int, act_dim: int, hidden_sizes: list[int], activation: type[nn.Module]
    ) -> None:
        super().__init__()
        # State-independent: one learnable log sigma per action dimension, shared by every observation.
        self.log_std = nn.Parameter(torch.full((act_dim,), -0.5))
        self.mu_net = mlp([obs_dim, *hidden_sizes, act_dim], activation)

    def _distribution(self, obs: torch.Tensor) -> Distribution:
        return Normal(self.mu_net(obs), torch.exp(self.log_std))

    def _log_prob_from_distribution(self, pi: Distribution, act: torch.Tensor) -> torch.Tensor:
        # Independent dimensions: the joint log-density is the sum of the per-dimension ones.
        return pi.log_prob(act).sum(dim=-1)


class MLPCritic(nn.Module):
    def __init__(self, obs_dim: int, hidden_sizes: list[int], activation: type[nn.Module]) -> None:
        super().__init__()
        self.v_net = mlp([obs_dim, *hidden_sizes, 1], activation)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        # (batch, 1) -> (batch,): a (batch, 1) value minus (batch,) returns would broadcast to (batch, batch).
        return self.v_net(obs).squeeze(-1)
