"""Collecting one epoch of on-policy experience, shared by VPG, TRPO and PPO.

This is step 3 of the policy-gradient pseudocode ("collect a set of trajectories by running the
current policy in the environment") with the traps handled once:

- A *terminated* episode has no future: its last value is 0.
- A *truncated* episode (time limit, ``max_ep_len``) and a trajectory cut by the end of the epoch
  still had a future: bootstrap from V of the real last observation (``info["final_obs"]`` for a
  truncation, the current observation for an epoch cut).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from spinrl.buffers import GAEBuffer
from spinrl.errors import UserError
from spinrl.fast_act import numpy_policy
from spinrl.logx import EpochLogger
from spinrl.mpi import num_procs


def steps_per_env_for(steps_per_epoch: int, num_envs: int) -> int:
    """Steps each env copy takes per epoch, so that all ranks and copies together take steps_per_epoch."""
    per_env = steps_per_epoch // (num_procs() * num_envs)
    if per_env < 1:
        raise UserError(
            f"steps_per_epoch={steps_per_epoch} is too small for {num_procs()} rank(s) x {num_envs} env(s)"
        )
    return per_env


class TrajectoryCollector:
    """Runs the policy in the vector env and fills a :class:`GAEBuffer`, one epoch per :meth:`collect`.

    Episodes carry over from one epoch to the next (the buffer's paths are cut and bootstrapped at
    the epoch's end, the episode itself goes on), so an episode is never shorter than the
    environment makes it, however many env copies or MPI ranks share an epoch. The envs restart
    only when :meth:`collect` is given reset seeds.
    """

    def __init__(
        self,
        envs: gym.vector.VectorEnv,
        ac: torch.nn.Module,
        buf: GAEBuffer,
        logger: EpochLogger,
        device: torch.device,
    ):
        self.envs, self.ac, self.buf, self.logger, self.device = envs, ac, buf, logger, device
        self.obs: np.ndarray | None = None
        self.ep_ret = np.zeros(envs.num_envs)
        self.ep_len = np.zeros(envs.num_envs, dtype=np.int64)

    def collect(self, steps_per_env: int, reset_seeds: list[int] | None = None) -> None:
        """Take ``steps_per_env`` steps in every env copy; restart all episodes first if seeds are given.

        Finished episodes are logged as ``EpRet``/``EpLen``, value estimates as ``VVals``.
        """
        envs, ac, buf, logger, device = self.envs, self.ac, self.buf, self.logger, self.device
        act_space = envs.single_action_space
        clip = isinstance(act_space, spaces.Box)
        if reset_seeds is not None or self.obs is None:
            self.obs, _ = envs.reset(seed=reset_seeds)
            self.ep_ret[:], self.ep_len[:] = 0.0, 0
        obs, ep_ret, ep_len = self.obs, self.ep_ret, self.ep_len

        fast_step = numpy_policy(ac, device)  # the same policy in NumPy, when it can be (see fast_act.py)

        for t in range(steps_per_env):
            if fast_step is not None:
                a, v, logp = fast_step(obs)
            else:
                a, v, logp = ac.step(torch.as_tensor(obs, device=device))
                a, v, logp = a.cpu().numpy(), v.cpu().numpy(), logp.cpu().numpy()
            # The policy's Gaussian is unbounded; the env sees the action clipped to its bounds,
            # while the buffer keeps the sampled action, whose log-probability the update needs.
            env_action = np.clip(a, act_space.low, act_space.high) if clip else a
            next_obs, rew, terminated, truncated, info = envs.step(env_action)
            ep_ret += rew
            ep_len += 1

            buf.store(obs, a, rew, v, logp)
            logger.store(VVals=v)

            # Update obs (critical!)
            obs = next_obs

            done = terminated | truncated
            epoch_ended = t == steps_per_env - 1
            if not (done.any() or epoch_ended):
                continue
            # Observations to bootstrap from: the real final observation of a truncated episode (the
            # vector env has already reset that copy), or the current one where the epoch cuts a path.
            bootstrap_obs = obs.copy()
            if truncated.any():
                for i in np.flatnonzero(truncated & info["_final_obs"]):
                    bootstrap_obs[i] = info["final_obs"][i]
            with torch.inference_mode():
                last_vals = ac.v(torch.as_tensor(bootstrap_obs, device=device)).cpu().numpy()
            for i in range(envs.num_envs):
                if not (done[i] or epoch_ended):
                    continue
                # Terminated means no future reward; a time limit or the epoch's end only cut it off.
                buf.finish_path(i, 0.0 if terminated[i] else float(last_vals[i]))
                if done[i]:
                    logger.store(EpRet=ep_ret[i], EpLen=ep_len[i])
                    ep_ret[i], ep_len[i] = 0.0, 0
        self.obs = obs


def restart_seeds(seed: int, epoch: int, start_epoch: int, save_freq: int, num_envs: int) -> list[int] | None:
    """Reset seeds when the envs must restart at ``epoch``, else None (episodes carry over).

    They restart at the first epoch of a run and after every checkpoint: a run resumed from a
    checkpoint then starts exactly where the uninterrupted run restarted, so both continue alike.
    """
    from spinrl.envs import env_seeds
    from spinrl.mpi import proc_id

    if epoch == start_epoch or epoch % save_freq == 0:
        return env_seeds(seed, proc_id(), epoch, num_envs)
    return None
