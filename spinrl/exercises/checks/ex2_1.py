"""Checker for exercise 2.1: the TD3 target.

Uses tiny hand-made target networks whose outputs we choose and whose critics record the actions they are
asked about. First without noise (to check clipped double-Q, discounting and the terminal mask exactly),
then with noise (to check the smoothing: clipped, shared by both critics, kept inside the action bounds).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import torch
from torch import nn

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

OBS_DIM, ACT_DIM = 3, 2


class FixedActor(nn.Module):
    """μ_targ(s') = a preset action per row; the parameter makes the output part of a graph, like a real net."""

    def __init__(self, actions: torch.Tensor) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0))
        self.actions = actions

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.scale * self.actions


class RecordingCritic(nn.Module):
    """Q(s, a) = w * (Σ s + Σ a) + offset; remembers the last actions it saw."""

    def __init__(self, offset: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(1.0))
        self.offset = offset
        self.seen: torch.Tensor | None = None

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        self.seen = act.detach().clone()
        return self.w * (obs.sum(-1) + act.sum(-1)) + self.offset


def _diagnose(
    y: torch.Tensor,
    rew: torch.Tensor,
    q1: torch.Tensor,
    q2: torch.Tensor,
    term: torch.Tensor,
    trunc: torch.Tensor,
    gamma: float,
) -> str:
    def target(q: torch.Tensor, done: torch.Tensor, g: float = gamma) -> torch.Tensor:
        return rew + g * (1 - done) * q

    q_min = torch.min(q1, q2)
    if close(y, target(q1, term)) or close(y, target(q2, term)):
        return "you used one critic: clipped double-Q takes min(Q1_targ, Q2_targ) to fight overestimation."
    if close(y, target((q1 + q2) / 2, term)):
        return "you averaged the two critics: TD3 takes their minimum."
    if close(y, target(torch.max(q1, q2), term)):
        return (
            "you took the maximum of the two critics: TD3 takes the minimum (max makes overestimation worse)."
        )
    if close(y, target(q_min, torch.clamp(term + trunc, max=1))):
        return (
            "you cut the bootstrap on truncated transitions too: a time limit is not a terminal state, the "
            "next state still has a value. Mask with (1 - terminated) only."
        )
    if close(y, target(q_min, torch.zeros_like(term))):
        return "terminal states are bootstrapped: multiply the next value by (1 - terminated)."
    if close(y, target(q_min, 1 - term)):
        return "the terminal mask is inverted: the next value counts when terminated == 0, i.e. (1 - terminated)."
    if close(y, target(q_min, term, 1.0)):
        return "the discount γ is missing in front of the next-state value."
    expected = target(q_min, term)
    return f"got {fmt(y, 6)}, expected r + γ(1 - terminated) min(Q1, Q2) = {fmt(expected, 6)}."


def _check_exact(fn: Callable[..., torch.Tensor], report: Report) -> None:
    batch = 6
    gen = torch.Generator().manual_seed(0)
    obs2 = torch.randn(batch, OBS_DIM, generator=gen)
    mu = torch.rand(batch, ACT_DIM, generator=gen) - 0.5
    rew = torch.randn(batch, generator=gen)
    term = torch.tensor([0.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    trunc = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    sign = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
    actor, q1, q2 = FixedActor(mu), RecordingCritic(sign), RecordingCritic(-sign)
    gamma = 0.9

    y = as_tensor(call(fn, rew, obs2, term, trunc, actor, q1, q2, gamma, 0.0, 0.5, 1.0), "the target")
    expect_shape(y, (batch,), "the target", "One target per transition; check the critics' (batch,) outputs.")
    if q1.seen is None or q2.seen is None:
        raise CheckFailed(
            "call both target critics on the same a' and take min(Q1_targ, Q2_targ) (clipped double-Q)."
        )
    if not (close(q1.seen, mu) and close(q2.seen, mu)):
        raise CheckFailed("with target_noise = 0 the critics should be asked about exactly μ_targ(s').")
    with torch.no_grad():
        base = obs2.sum(-1) + mu.sum(-1)
        q1_val, q2_val = base + sign, base - sign
    expected = rew + gamma * (1 - term) * torch.min(q1_val, q2_val)
    if not close(y, expected):
        raise CheckFailed(_diagnose(y.detach(), rew, q1_val, q2_val, term, trunc, gamma))
    report("without noise: min of the two critics, discount, terminal mask (truncations still bootstrap)")

    if y.requires_grad:
        raise CheckFailed(
            "the target carries a gradient: compute it inside `with torch.no_grad():`. The critic regresses "
            "towards a fixed target; gradients must not reach the target networks."
        )
    report("no gradient flows through the target")


def _check_smoothing(fn: Callable[..., torch.Tensor], report: Report) -> None:
    torch.manual_seed(0)
    batch = 4000
    obs2 = torch.zeros(batch, OBS_DIM)
    zeros = torch.zeros(batch)
    actor, q1, q2 = FixedActor(torch.zeros(batch, ACT_DIM)), RecordingCritic(zeros), RecordingCritic(zeros)
    call(fn, zeros, obs2, zeros, zeros, actor, q1, q2, 0.99, 0.3, 0.5, 1.0)
    assert q1.seen is not None and q2.seen is not None
    if not close(q1.seen, q2.seen):
        raise CheckFailed(
            "the two critics saw different actions: draw the noise once; both judge the same a'."
        )
    noise = q1.seen
    if noise.abs().max() < 1e-6:
        raise CheckFailed("no noise reached the critics: add ε ~ N(0, target_noise) to μ_targ(s').")
    if noise.abs().max() > 0.5 + 1e-5:
        raise CheckFailed(f"the noise reached {noise.abs().max():.3f} > noise_clip = 0.5: clip ε to [-c, c].")
    std = noise.std().item()
    # Expected: the std of N(0, 0.3) clipped to ±0.5, about 0.27.
    if not 0.22 < std < 0.31:
        raise CheckFailed(
            f"the noise has std {std:.3f}; ε should be N(0, target_noise = 0.3) before clipping."
        )
    report("target policy smoothing: clipped Gaussian noise, one draw shared by both critics")

    actor = FixedActor(torch.full((batch, ACT_DIM), 0.9))
    call(fn, zeros, obs2, zeros, zeros, actor, q1, q2, 0.99, 0.3, 0.5, 1.0)
    assert q1.seen is not None
    if q1.seen.max() > 1.0 + 1e-5:
        raise CheckFailed(
            f"the smoothed action reached {q1.seen.max():.3f} > act_limit = 1: clamp μ_targ(s') + ε to "
            "[-act_limit, act_limit]; the critics never saw actions outside the bounds."
        )
    report("smoothed actions stay inside the action bounds")


def check(module: ModuleType, report: Report) -> None:
    fn = get_function(module, "td3_target")
    _check_exact(fn, report)
    _check_smoothing(fn, report)
