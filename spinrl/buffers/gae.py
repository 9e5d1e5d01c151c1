"""The on-policy experience buffer: one epoch of steps, with GAE-Lambda advantages.

``GAEBuffer`` stores one epoch of on-policy experience from ``num_envs`` environment copies and
computes GAE-Lambda advantages (Schulman et al. 2016, "High-Dimensional Continuous Control Using
Generalized Advantage Estimation", eq. 16) and rewards-to-go, the targets of the value function.
"""

from __future__ import annotations

import numpy as np
import torch

from spinrl.common.checks import check_fits_in_memory
from spinrl.common.mpi import mpi_statistics_scalar


def discount_cumsum(x: np.ndarray, discount: float) -> np.ndarray:
    """Discounted cumulative sums: ``[x0 + d x1 + d^2 x2, x1 + d x2, x2]`` for ``[x0, x1, x2]``.

    The recursion ``running = x[t] + d * running``, from the end, in float64. It runs on Python floats,
    which are float64 too, so every sum is the one NumPy scalars would give, bit for bit, without the cost
    of a NumPy scalar per operation (benchmarks/results/code-measurements.md).
    """
    discount = float(discount)
    sums = []
    running = 0.0
    for value in reversed(np.asarray(x, dtype=np.float64).tolist()):
        running = value + discount * running
        sums.append(running)
    sums.reverse()
    return np.array(sums, dtype=np.float64)


class GAEBuffer:
    """One epoch of trajectories from ``num_envs`` env copies, for VPG, TRPO and PPO.

    Call :meth:`store` once per step with a batch over env copies, :meth:`finish_path` when an
    episode of copy ``i`` ends or the epoch cuts it off, and :meth:`get` once at the end.

    A buffer larger than the memory available is refused in one line before anything is allocated.
    Observations keep the shape and dtype they are given: vectors as float32, image frames as uint8
    (a quarter of the memory; the network scales them).
    """

    def __init__(
        self,
        obs_dim: int | tuple[int, ...],
        act_shape: tuple[int, ...],
        steps_per_env: int,
        num_envs: int = 1,
        gamma: float = 0.99,
        lam: float = 0.95,
        act_dtype: np.dtype = np.float32,
        obs_dtype: np.dtype = np.float32,
    ):
        obs_shape = (obs_dim,) if isinstance(obs_dim, int | np.integer) else tuple(obs_dim)
        check_fits_in_memory(
            self.nbytes_for(obs_shape, act_shape, steps_per_env * num_envs, act_dtype, obs_dtype),
            f"the experience buffer for {steps_per_env} steps x {num_envs} env copies",
            "--steps_per_epoch",
        )
        self.obs_buf = np.zeros((steps_per_env, num_envs, *obs_shape), dtype=obs_dtype)
        self.act_buf = np.zeros((steps_per_env, num_envs, *act_shape), dtype=act_dtype)
        self.rew_buf = np.zeros((steps_per_env, num_envs), dtype=np.float32)
        self.val_buf = np.zeros((steps_per_env, num_envs), dtype=np.float32)
        self.logp_buf = np.zeros((steps_per_env, num_envs), dtype=np.float32)
        self.adv_buf = np.zeros((steps_per_env, num_envs), dtype=np.float32)
        self.ret_buf = np.zeros((steps_per_env, num_envs), dtype=np.float32)
        self.gamma, self.lam = gamma, lam
        self.ptr, self.max_size = 0, steps_per_env
        self.path_start = np.zeros(num_envs, dtype=np.int64)

    @staticmethod
    def nbytes_for(
        obs_dim: int | tuple[int, ...],
        act_shape: tuple[int, ...],
        steps: int,
        act_dtype: np.dtype = np.float32,
        obs_dtype: np.dtype = np.float32,
    ) -> int:
        """Bytes the arrays of a buffer holding ``steps`` steps take: observations (of shape
        ``obs_dim``, a length or a shape), actions, and five float32 numbers per step (reward, value,
        log-probability, advantage, return)."""
        act_bytes = int(np.prod(act_shape)) * np.dtype(act_dtype).itemsize
        obs_bytes = int(np.prod(obs_dim)) * np.dtype(obs_dtype).itemsize
        return steps * (obs_bytes + act_bytes + 5 * 4)

    def store(
        self, obs: np.ndarray, act: np.ndarray, rew: np.ndarray, val: np.ndarray, logp: np.ndarray
    ) -> None:
        """Append one time step for every env copy."""
        assert self.ptr < self.max_size, "buffer full: call get() at the end of each epoch"
        t = self.ptr
        self.obs_buf[t] = obs
        self.act_buf[t] = act
        self.rew_buf[t] = rew
        self.val_buf[t] = val
        self.logp_buf[t] = logp
        self.ptr += 1

    def finish_path(self, env_index: int = 0, last_val: float = 0.0) -> None:
        """Close the current trajectory of env copy ``env_index``.

        ``last_val`` is 0 when the episode truly terminated, and V(s_T) of the last observation when
        it was cut off (time limit or end of epoch): the value estimates the rewards it would have
        gone on to collect. That bootstrap is what keeps truncation from looking like a terminal.
        """
        path = slice(self.path_start[env_index], self.ptr)
        rews = np.append(self.rew_buf[path, env_index], last_val)
        vals = np.append(self.val_buf[path, env_index], last_val)

        # The next two lines implement GAE-Lambda advantage calculation (GAE paper, eq. 11 and 16).
        deltas = rews[:-1] + self.gamma * vals[1:] - vals[:-1]
        self.adv_buf[path, env_index] = discount_cumsum(deltas, self.gamma * self.lam)

        # Rewards-to-go, the targets for the value function.
        self.ret_buf[path, env_index] = discount_cumsum(rews, self.gamma)[:-1]
        self.path_start[env_index] = self.ptr

    def get(self, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """All data of the epoch as flat tensors, with advantages normalised to mean 0, std 1.

        The mean and std are computed over all MPI ranks, so every rank scales the same way.
        """
        assert self.ptr == self.max_size, "get() needs a full buffer"
        assert np.all(self.path_start == self.ptr), "finish_path() every env copy before get()"
        self.ptr = 0
        self.path_start[:] = 0
        adv_mean, adv_std = mpi_statistics_scalar(self.adv_buf)
        adv = (self.adv_buf - adv_mean) / (adv_std + 1e-8)
        data = dict(
            obs=self.obs_buf.reshape(-1, *self.obs_buf.shape[2:]),
            act=self.act_buf.reshape(-1, *self.act_buf.shape[2:]),
            ret=self.ret_buf.reshape(-1),
            adv=adv.reshape(-1),
            logp=self.logp_buf.reshape(-1),
        )
        return {k: torch.as_tensor(v, device=device) for k, v in data.items()}
