"""Checker for exercise 1.3: discounted cumulative sums, GAE-λ advantages and bootstrapped returns.

Values are compared with a direct double-sum implementation of the definitions; a wrong answer is
compared with the usual mistakes (summing forwards, γ instead of γλ, bootstrapping the wrong paths).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from spinrl.exercises.checking import CheckFailed, Report, call, close, expect_shape, fmt, get_function


def ref_discount_cumsum(x: np.ndarray, discount: float) -> np.ndarray:
    """The definition, term by term: y[t] = Σ_{t' >= t} discount^(t'-t) x[t']."""
    n = len(x)
    return np.array([sum(discount ** (k - t) * x[k] for k in range(t, n)) for t in range(n)])


def ref_finish_path(
    rews: np.ndarray, vals: np.ndarray, v_last: float, gamma: float, lam: float
) -> tuple[np.ndarray, np.ndarray]:
    """(adv, ret) for a given bootstrap value v_last (the caller decides whether it is 0 or V(s_{T+1}))."""
    vals_ext = np.append(vals, v_last)
    deltas = rews + gamma * vals_ext[1:] - vals_ext[:-1]
    adv = ref_discount_cumsum(deltas, gamma * lam)
    ret = ref_discount_cumsum(np.append(rews, v_last), gamma)[:-1]
    return adv, ret


def _check_discount_cumsum(fn: Callable[..., Any], report: Report) -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    x_before = x.copy()
    y = np.asarray(call(fn, x, 0.5), dtype=np.float64)
    if not np.array_equal(x, x_before):
        raise CheckFailed("discount_cumsum modified its input in place: work on a new array.")
    expect_shape(y, (4,), "discount_cumsum([1, 2, 3, 4], 0.5)")
    expected = ref_discount_cumsum(x, 0.5)  # [3.25, 4.5, 5.0, 4.0]
    if close(y, expected):
        report("discount_cumsum: values on a small example")
        return
    forward = np.array([sum(0.5 ** (t - k) * x[k] for k in range(t + 1)) for t in range(4)])
    hint = f"discount_cumsum([1, 2, 3, 4], 0.5) gave {fmt(y)}, expected [3.25, 4.5, 5.0, 4.0]."
    if close(y, forward):
        hint += (
            " You summed the past: a reward-to-go sums what comes AFTER t, so loop backwards from the end."
        )
    elif close(y, ref_discount_cumsum(x, 1.0)):
        hint += (
            " The discount is missing: each step further into the future is multiplied by one more factor."
        )
    elif close(y, 0.5 * expected):
        hint += " The first term x[t] is not discounted: y[t] = x[t] + discount * y[t+1]."
    raise CheckFailed(hint)


def _diagnose_path(
    adv: np.ndarray,
    ret: np.ndarray,
    rews: np.ndarray,
    vals: np.ndarray,
    last_val: float,
    terminated: bool,
    gamma: float,
    lam: float,
) -> str:
    right_v = 0.0 if terminated else last_val
    wrong_v = last_val if terminated else 0.0
    good_adv, good_ret = ref_finish_path(rews, vals, right_v, gamma, lam)
    bad_adv, bad_ret = ref_finish_path(rews, vals, wrong_v, gamma, lam)
    what = "terminated" if terminated else "truncated"
    if close(adv, bad_adv) or close(ret, bad_ret):
        if terminated:
            return (
                f"on a {what} path you bootstrapped with last_val = {last_val}: a terminal state has no future, "
                "so v_{T+1} = 0 whatever the critic says there."
            )
        return (
            f"on a {what} path you bootstrapped with 0: the episode was cut by a time limit and would have gone "
            "on, so v_{T+1} = last_val = V(s_{T+1}). Treating a timeout as a terminal state teaches the critic that "
            "the world ends at the time limit."
        )
    if not close(ret, good_ret):
        lam_ret = ref_finish_path(rews, vals, right_v, gamma * lam, 1.0)[1]
        if close(ret, lam_ret):
            return "the value targets ret are discounted by γλ: rewards-to-go use γ alone; λ belongs to GAE."
        return f"ret (the value targets) gave {fmt(ret)}, expected {fmt(good_ret)}."
    if close(adv, ref_finish_path(rews, vals, right_v, gamma, 1.0)[0]):
        return "adv is discounted by γ alone: GAE sums the TD residuals with weights (γλ)^l."
    if close(adv, ref_discount_cumsum(rews + gamma * np.append(vals, right_v)[1:] - vals, lam)):
        return "adv is discounted by λ alone: GAE sums the TD residuals with weights (γλ)^l."
    if close(adv, good_ret - vals):
        return (
            "adv = ret - V is GAE with λ = 1 only: compute δ_t = r_t + γV(s_{t+1}) - V(s_t) and sum with γλ."
        )
    if close(adv, -good_adv):
        return "adv has the wrong sign: δ_t = r_t + γ V(s_{t+1}) - V(s_t)."
    return f"adv (the advantages) gave {fmt(adv)}, expected {fmt(good_adv)}."


def check(module: ModuleType, report: Report) -> None:
    _check_discount_cumsum(get_function(module, "discount_cumsum"), report)
    finish_path = get_function(module, "finish_path")
    rng = np.random.default_rng(0)
    rews = rng.normal(size=6)
    vals = rng.normal(size=6)
    gamma, lam = 0.9, 0.8
    for terminated, last_val in ((False, 2.5), (True, 3.0)):
        out = call(finish_path, rews.copy(), vals.copy(), last_val, terminated, gamma, lam)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise CheckFailed("finish_path should return a tuple (adv, ret).")
        adv, ret = (np.asarray(a, dtype=np.float64) for a in out)
        expect_shape(adv, (6,), "adv")
        expect_shape(ret, (6,), "ret")
        good_adv, good_ret = ref_finish_path(rews, vals, 0.0 if terminated else last_val, gamma, lam)
        if not (close(adv, good_adv) and close(ret, good_ret)):
            raise CheckFailed(_diagnose_path(adv, ret, rews, vals, last_val, terminated, gamma, lam))
        kind = (
            "terminated path: no bootstrap" if terminated else "truncated path: bootstrapped with V(s_{T+1})"
        )
        report(f"finish_path, {kind}: advantages and value targets")
