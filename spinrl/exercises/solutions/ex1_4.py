"""Exercise 1.4, reference solution: the policy-gradient loss (docs: exercises/1.4)."""

from __future__ import annotations

import torch


def pg_loss(logp: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
    """-mean(logp * adv) with adv treated as data: its gradient is minus the policy-gradient estimate."""
    return -(logp * adv.detach()).mean()
