"""Exercise 1.3, reference solution: rewards-to-go and GAE-λ with bootstrapping (docs: exercises/1.3)."""

from __future__ import annotations

import numpy as np


def discount_cumsum(x: np.ndarray, discount: float) -> np.ndarray:
    """y[t] = x[t] + discount * x[t+1] + discount^2 * x[t+2] + ...  (same shape as x; x is not modified)."""
    y = np.zeros(len(x), dtype=np.float64)
    running = 0.0
    for t in reversed(range(len(x))):
        running = x[t] + discount * running
        y[t] = running
    return y


def finish_path(
    rews: np.ndarray,
    vals: np.ndarray,
    last_val: float,
    terminated: bool,
    gamma: float = 0.99,
    lam: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """GAE-λ advantages and discounted rewards-to-go for one path of steps 0..T, each of shape (T+1,)."""
    # A terminal state has no future; a truncated or cut path would have gone on, so bootstrap with V(s_{T+1}).
    v_last = 0.0 if terminated else float(last_val)
    rews_ext = np.append(np.asarray(rews, dtype=np.float64), v_last)
    vals_ext = np.append(np.asarray(vals, dtype=np.float64), v_last)
    # TD residuals delta_t = r_t + gamma V(s_{t+1}) - V(s_t)  (GAE paper, Schulman et al. 2016, eq. 10).
    deltas = rews_ext[:-1] + gamma * vals_ext[1:] - vals_ext[:-1]
    adv = discount_cumsum(deltas, gamma * lam)
    # Value targets: rewards-to-go discounted by gamma alone; the last entry is the bootstrap itself.
    # This is a second discounted sum: the advantages above discount by gamma*lam, these by gamma.
    ret = discount_cumsum(rews_ext, gamma)[:-1]
    return adv, ret
