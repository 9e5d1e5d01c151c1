"""Exercise 1.4: the policy-gradient loss.

We never compute the policy gradient by hand. We write a scalar L(θ) whose gradient, on the data just
collected, is the sample estimate of the policy gradient, and let autograd differentiate it
(docs: intro/policy-optimization, "A loss whose gradient is the policy gradient"):

    ĝ = 1/N Σ_t ∇θ log πθ(a_t | s_t) Â_t        so        L(θ) = -1/N Σ_t log πθ(a_t | s_t) Â_t

- the minus sign: optimisers minimise, and we want to climb the gradient;
- the mean: the step size should not grow with the batch size;
- Â_t is data. It may come out of a critic network that still carries a graph; the policy loss must not
  push gradients into it.

Fill in the TODO, then check your file with

    spinrl exercise 1.4 --file <this file>
"""

from __future__ import annotations

import torch


def pg_loss(logp: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
    """The scalar whose gradient is minus the policy-gradient estimate.

    Args:
        logp: log πθ(a_t | s_t) for each step of the batch, shape (N,), differentiable in θ.
        adv: advantage estimates Â_t, shape (N,).

    Returns:
        a scalar tensor (shape ()).
    """
    # TODO: one line.
    raise NotImplementedError("TODO: pg_loss")
