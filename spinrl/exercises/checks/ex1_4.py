"""Checker for exercise 1.4: the policy-gradient loss.

Checks the four things that make -mean(logp * adv) right: a scalar, the sign, the mean (not the sum), and
no gradient flowing into the advantages. The gradient with respect to logp must be -adv / N.
"""

from __future__ import annotations

from types import ModuleType

import torch

from spinrl.exercises.checking import (
    CheckFailed,
    Report,
    as_tensor,
    call,
    close,
    expect_shape,
    fmt,
    get_function,
)

N = 8


def check(module: ModuleType, report: Report) -> None:
    fn = get_function(module, "pg_loss")
    gen = torch.Generator().manual_seed(0)
    logp = (-torch.rand(N, generator=gen) * 2).requires_grad_(True)
    # adv comes out of a critic here, so it carries a graph, as it would in a careless implementation.
    critic_weight = torch.tensor(1.5, requires_grad=True)
    adv = critic_weight * torch.randn(N, generator=gen)

    loss = as_tensor(call(fn, logp, adv), "the loss")
    expect_shape(loss, (), "the loss", "Reduce to a scalar: the optimiser needs one number to differentiate.")
    expected = -(logp * adv).mean()
    if not close(loss, expected):
        if close(loss, -expected):
            hint = "the sign is flipped: optimisers minimise, so the loss is MINUS mean(logp * adv)."
        elif close(loss, N * expected):
            hint = "you summed over the batch: take the mean, or the step size grows with the batch size."
        elif close(loss, -N * expected):
            hint = "you summed over the batch and flipped the sign: the loss is -mean(logp * adv)."
        elif close(loss, -logp.mean() * adv.mean()):
            hint = "you multiplied the means: average the products logp_t * adv_t instead."
        else:
            hint = f"got {fmt(loss)}, expected -mean(logp * adv) = {fmt(expected)}."
        raise CheckFailed(hint)
    report("a scalar equal to -mean(logp * adv)")

    if not loss.requires_grad:
        raise CheckFailed("the loss carries no gradient: did you detach logp? Only the advantages are data.")
    loss.backward()
    if critic_weight.grad is not None and critic_weight.grad.abs().item() > 0:
        raise CheckFailed(
            "gradient flows from the policy loss into the advantages (and so into the critic): use adv.detach(). "
            "The advantage weighs each log-prob; the policy step must not change how it was computed."
        )
    if logp.grad is None or not close(logp.grad, -adv.detach() / N):
        raise CheckFailed("d loss / d logp should be -adv / N.")
    report("gradient reaches logp only, and equals -adv / N")
