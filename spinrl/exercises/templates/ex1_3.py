"""Exercise 1.3: rewards-to-go and GAE-λ advantages for one path, with bootstrapping.

When a path of steps t = 0..T ends, an on-policy buffer turns its rewards r_0..r_T and values
V(s_0)..V(s_T) into (docs: intro/policy-optimization and algorithms/ppo):

- value targets, the discounted rewards-to-go  R_t = r_t + γ r_{t+1} + ... + γ^{T-t} r_T + γ^{T+1-t} v_{T+1}
- advantages, GAE-λ:  A_t = Σ_l (γλ)^l δ_{t+l},   with TD residuals  δ_t = r_t + γ V(s_{t+1}) - V(s_t)

where v_{T+1}, the value of s_{T+1}, the observation reached by the last step, depends on why the path
stopped:
- terminated (a terminal state: the pole fell, the robot crashed): nothing follows, v_{T+1} = 0;
- truncated (a time limit) or cut by the end of an epoch: the episode would have gone on,
  v_{T+1} = V(s_{T+1}), the critic's estimate at the observation where it stopped. Passed in as ``last_val``.

Fill in the TODOs, then check your file with

    spinrl exercise 1.3 --file <this file>
"""

from __future__ import annotations

import numpy as np


def discount_cumsum(x: np.ndarray, discount: float) -> np.ndarray:
    """y[t] = x[t] + discount * x[t+1] + discount^2 * x[t+2] + ...  (same shape as x; x is not modified)."""
    # TODO: one backwards pass is enough.
    raise NotImplementedError("TODO: discount_cumsum")


def finish_path(
    rews: np.ndarray,
    vals: np.ndarray,
    last_val: float,
    terminated: bool,
    gamma: float = 0.99,
    lam: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and value targets for one path.

    Args:
        rews: rewards r_0..r_T, shape (T+1,).
        vals: values V(s_0)..V(s_T), shape (T+1,).
        last_val: the critic's V(s_{T+1}) at the observation where the path stopped.
        terminated: True if the path ended in a terminal state, False if truncated or cut.

    Returns:
        (adv, ret), each of shape (T+1,): GAE-λ advantages and discounted rewards-to-go.
    """
    # TODO: choose the bootstrap value v_{T+1}, then compute the TD residuals, adv and ret with discount_cumsum.
    raise NotImplementedError("TODO: finish_path")
