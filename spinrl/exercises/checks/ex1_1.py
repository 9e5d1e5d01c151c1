"""Checker for exercise 1.1: the diagonal Gaussian log-likelihood.

The reference is ``Normal(mu, exp(log_std)).log_prob(x).sum(-1)``. When the answer is wrong we compare it
with the results of the common mistakes (a missing term, sigma used where log sigma belongs, ...) and name
the one it matches.
"""

from __future__ import annotations

import math
from types import ModuleType

import torch
from torch.distributions import Normal

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

BATCH, K = 6, 3


def reference(x: torch.Tensor, mu: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    return Normal(mu, torch.exp(log_std)).log_prob(x).sum(dim=-1)


def _diagnose(user: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, log_std: torch.Tensor) -> str:
    """Name the mistake that reproduces the reader's numbers, or describe the difference."""
    k = x.shape[-1]
    ref = reference(x, mu, log_std)
    log_std_b = log_std + torch.zeros_like(x)
    const = 0.5 * k * math.log(2 * math.pi)
    diff = user - ref
    if close(diff, torch.full_like(diff, const), atol=1e-4):
        return "your log-likelihood is off by a constant +k/2 log(2π): did you include the -k/2 log(2π) term?"
    if close(diff, torch.full_like(diff, 0.5 * math.log(2 * math.pi)), atol=1e-4):
        return (
            "off by a constant +1/2 log(2π): the normalising term is -k/2 log(2π), once per action dimension."
        )
    if close(diff, log_std_b.sum(-1), atol=1e-4):
        return "off by +Σ log σ_i: did you forget the -Σ_i log σ_i term (from 1/σ in the Gaussian density)?"
    if close(diff, -log_std_b.sum(-1), atol=1e-4) or close(diff, 0.5 * log_std_b.sum(-1), atol=1e-4):
        return "the log σ term has the wrong factor: the formula has -1/2 * 2 Σ_i log σ_i = -Σ_i log σ_i."
    z_sq = ((x - mu) / torch.exp(log_std)) ** 2
    if close(diff, 0.5 * z_sq.sum(-1), atol=1e-4):
        return "the quadratic term is missing: add -1/2 Σ_i ((x_i - μ_i) / σ_i)^2."
    if close(diff, -0.5 * z_sq.sum(-1), atol=1e-4):
        return "the quadratic term is counted twice or lacks the 1/2: it is -1/2 Σ_i ((x_i - μ_i) / σ_i)^2."
    for wrong_sigma, name in ((log_std, "log_std"), (torch.exp(2 * log_std), "exp(2 log_std)")):
        wrong_z = ((x - mu) / wrong_sigma) ** 2
        if close(user, ref + 0.5 * z_sq.sum(-1) - 0.5 * wrong_z.sum(-1), atol=1e-4):
            return f"you divided (x - μ) by {name}: σ = exp(log_std), and the square goes over (x - μ)/σ."
    wrong_z = ((x - mu) / torch.exp(log_std)).abs()
    if close(user, ref + 0.5 * z_sq.sum(-1) - 0.5 * wrong_z.sum(-1), atol=1e-4):
        return "square the standardised distance: ((x - μ)/σ)^2, not |x - μ|/σ."
    if close(user, -ref):
        return "your result has the wrong sign: a log-likelihood of a density this wide is negative."
    return (
        f"got {fmt(user)}, expected {fmt(ref)}. Check each of the three terms: -1/2 Σ((x-μ)/σ)^2, "
        "-Σ log σ, -k/2 log(2π)."
    )


def check(module: ModuleType, report: Report) -> None:
    fn = get_function(module, "gaussian_likelihood")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, K, generator=gen)
    mu = torch.randn(BATCH, K, generator=gen)

    # Step 1: unit variances isolate the quadratic term and the constant.
    log_std = torch.zeros(K)
    out = as_tensor(call(fn, x, mu, log_std), "the result")
    expect_shape(out, (BATCH,), "the result", "Return one log-likelihood per action: sum over dim=-1.")
    if not close(out, reference(x, mu, log_std), atol=1e-4):
        raise CheckFailed("with σ = 1: " + _diagnose(out, x, mu, log_std))
    report("σ = 1: shape and values match")

    # Step 2: a shared log_std vector of shape (k,), as in a PPO Gaussian actor.
    log_std = torch.tensor([-0.5, 0.3, 1.2])
    out = as_tensor(call(fn, x, mu, log_std), "the result")
    expect_shape(out, (BATCH,), "the result")
    if not close(out, reference(x, mu, log_std), atol=1e-4):
        raise CheckFailed("with a shared log_std of shape (k,): " + _diagnose(out, x, mu, log_std))
    report("shared log_std of shape (k,): values match")

    # Step 3: one log_std per sample, as when a network outputs it (SAC).
    log_std = 0.5 * torch.randn(BATCH, K, generator=gen)
    out = as_tensor(call(fn, x, mu, log_std), "the result")
    if not close(out, reference(x, mu, log_std), atol=1e-4):
        raise CheckFailed("with log_std of shape (batch, k): " + _diagnose(out, x, mu, log_std))
    report("per-sample log_std of shape (batch, k): values match")

    # Step 4: the policy gradient needs d log pi / d mu and d log pi / d log_std.
    mu_g = mu.clone().requires_grad_(True)
    log_std_g = torch.tensor([-0.5, 0.3, 1.2], requires_grad=True)
    out = call(fn, x, mu_g, log_std_g)
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        raise CheckFailed(
            "your result carries no gradient: use torch operations only (no numpy, .item() or .detach()), "
            "otherwise the policy gradient cannot reach μ and log σ."
        )
    out.sum().backward()
    mu_ref = mu.clone().requires_grad_(True)
    log_std_ref = torch.tensor([-0.5, 0.3, 1.2], requires_grad=True)
    reference(x, mu_ref, log_std_ref).sum().backward()
    if mu_g.grad is None or log_std_g.grad is None:
        raise CheckFailed("no gradient reached μ or log_std: did you detach one of them?")
    if not (close(mu_g.grad, mu_ref.grad, atol=1e-4) and close(log_std_g.grad, log_std_ref.grad, atol=1e-4)):
        raise CheckFailed("the values match but the gradients do not: avoid .detach() or in-place tricks.")
    report("gradients with respect to μ and log_std match")
