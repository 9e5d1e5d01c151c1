"""Exercise 1.1, reference solution: the diagonal Gaussian log-likelihood (docs: exercises/1.1)."""

from __future__ import annotations

import math

import torch


def gaussian_likelihood(x: torch.Tensor, mu: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """Log-likelihood of each action in a batch: x, mu of shape (batch, k), log_std (k,) or (batch, k)."""
    k = x.shape[-1]
    # ((x - mu) / sigma)^2 with sigma = exp(log_std); dividing by exp is multiplying by exp(-log_std).
    squared_z = ((x - mu) * torch.exp(-log_std)) ** 2
    # log_std broadcasts to (batch, k) before the sum, so a shared (k,) vector counts once per action.
    log_det = 2 * (log_std + torch.zeros_like(x)).sum(dim=-1)
    return -0.5 * (squared_z.sum(dim=-1) + log_det + k * math.log(2 * math.pi))
