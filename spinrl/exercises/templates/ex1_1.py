"""Exercise 1.1: the log-likelihood of an action under a diagonal Gaussian policy.

A diagonal Gaussian policy with mean mu and standard deviations sigma = exp(log_std) gives a k-dimensional
action x the log-likelihood (docs: intro/key-concepts, "Diagonal Gaussian policies")

    log pi(x) = -1/2 * ( sum_i ((x_i - mu_i) / sigma_i)^2  +  2 * sum_i log sigma_i  +  k * log(2 pi) )

Fill in the TODO below, then check it with

    spinrl exercise 1.1 --file <this file>

Use torch operations only (no numpy, no .item()), so gradients flow back to mu and log_std.
Do not use torch.distributions here: the checker uses it as the reference.
"""

from __future__ import annotations

import torch


def gaussian_likelihood(x: torch.Tensor, mu: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """Log-likelihood of each action in a batch.

    Args:
        x: actions, shape (batch, k).
        mu: means, shape (batch, k).
        log_std: log standard deviations, shape (k,) (shared by the whole batch) or (batch, k).

    Returns:
        shape (batch,): one log-likelihood per action.
    """
    # TODO: implement the formula in the module docstring.
    raise NotImplementedError("TODO: gaussian_likelihood")
