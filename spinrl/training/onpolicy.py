"""Gathering one epoch of on-policy experience, the same for VPG, TRPO and PPO.

In the policy-gradient pseudocode this is the step "run the current policy in the environment and
keep the trajectories". Four traps are handled here, once:

- A *terminated* episode has no future, so its path closes with a last value of 0.
- A *truncated* episode (a time limit, ``max_ep_len``) and a path the epoch's end cuts off did have a
  future: they close with V of the observation really reached (:func:`spinrl.envs.real_next_obs`).
- Episodes are not tied to epochs: the env copies are reset once per process, and an episode that
  is still running when the epoch ends goes on in the next one.
- The buffer learns from :class:`spinrl.envs.atari.LearningSignals`: for Atari, clipped rewards, and a
  lost life closes the path with 0 as a terminal would, while the game and its logged EpRet go on.
"""

from __future__ import annotations

from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from spinrl.buffers.gae import GAEBuffer
from spinrl.common.mpi import num_procs
from spinrl.envs.atari import LearningSignals
from spinrl.envs.vector import real_next_obs
from spinrl.nets.fast_act import numpy_policy
from spinrl.record.logger import EpochLogger
from spinrl.training.normalize import Normalizers


class TrajectoryCollector:
    """Runs the policy in the vector env and fills a :class:`GAEBuffer`, one epoch per :meth:`collect`.

    The env copies start in :meth:`reset`; after that, episodes run across epoch ends: the buffer's
    path of each copy is closed (and bootstrapped) when the epoch ends, but the episode itself goes
    on. So no episode is ever shorter than the environment makes it, however many copies or ranks
    share an epoch, and nothing outside the environment (a checkpoint, say) ends one.
    """

    def __init__(
        self,
        envs: gym.vector.VectorEnv,
        ac: torch.nn.Module,
        buf: GAEBuffer,
        logger: EpochLogger,
        device: torch.device,
        normalizers: Normalizers | None = None,
    ):
        self.envs, self.ac, self.buf, self.logger, self.device = envs, ac, buf, logger, device
        # Observation, reward and value normalisation (spinrl.training.normalize); all off by default.
        self.norms = normalizers or Normalizers()
        self.learning_signals = LearningSignals(envs)
        self.obs: np.ndarray | None = None
        self.ep_ret = np.zeros(envs.num_envs)  # the return of each copy's running episode
        # Each copy's step count, and the count at which its running episode started: an episode's
        # length is their difference, taken when it ends (rather than counting every step: ~0.5 us
        # of a CartPole step's 32 with one env copy).
        self.steps = 0
        self.ep_start = np.zeros(envs.num_envs, dtype=np.int64)

    @property
    def ep_len(self) -> np.ndarray:
        """The length so far of each copy's running episode."""
        return self.steps - self.ep_start

    def reset(self, seeds: list[int] | None = None) -> None:
        """Start a new episode in every env copy, seeded with ``seeds`` (one per copy) when given."""
        self.obs, _ = self.envs.reset(seed=seeds)
        self.ep_ret[:], self.ep_start[:] = 0.0, self.steps
        self.norms.reset()

    def collect(self, steps_per_env: int, reset_seeds: list[int] | None = None) -> None:
        """Take ``steps_per_env`` steps in every env copy, going on with the running episodes.

        With ``reset_seeds`` (or before the first reset), :meth:`reset` the copies first. Finished
        episodes are logged as ``EpRet``/``EpLen``, the critic's estimates as ``VVals``.
        """
        if reset_seeds is not None or self.obs is None:
            self.reset(reset_seeds)
        envs, ac, buf, logger, device, norms = (
            self.envs,
            self.ac,
            self.buf,
            self.logger,
            self.device,
            self.norms,
        )
        ep_ret, ep_start = self.ep_ret, self.ep_start
        act_space = envs.single_action_space
        clip = isinstance(act_space, spaces.Box)
        # The policy picks an index 0..n-1; a Discrete(n, start=s) env takes s + index.
        start = 0 if clip else int(act_space.start)
        obs = self.obs

        # The same policy in NumPy, when it can be (see fast_act.py), told how often it will be called.
        fast_step = numpy_policy(ac, device, num_calls=steps_per_env)
        first_row = buf.ptr
        last_t = steps_per_env - 1

        for t in range(steps_per_env):
            # The networks see (and the buffer keeps) the observation as normalised, if obs_norm is on.
            obs_in = norms.observation(obs)
            if fast_step is not None:
                a, v, logp = fast_step(obs_in)
            else:
                a, v, logp = ac.step(torch.as_tensor(obs_in, device=device))
                a, v, logp = a.cpu().numpy(), v.cpu().numpy(), logp.cpu().numpy()
            v = norms.critic_value(v)  # in the env's units, also with value_norm
            # The Gaussian policy is unbounded: the env gets the action clipped to its bounds, the
            # buffer the sampled one, whose log-probability the update compares against.
            env_action = np.clip(a, act_space.low, act_space.high) if clip else a + start
            next_obs, rew, terminated, truncated, info = envs.step(env_action)
            ep_ret += rew

            # What the buffer learns from: the env's reward and terminal flag, except for Atari
            # (clipped rewards; a lost life is a terminal, though the game goes on).
            learn_rew, learn_term = self.learning_signals(rew, terminated, info)
            learn_rew = norms.reward(learn_rew, terminated, truncated)  # scaled, if reward_norm is on
            buf.store(obs_in, a, learn_rew, v, logp)

            epoch_ended = t == last_t
            # Did a path end? (count_nonzero answers as .any() does, in 0.2 us instead of 1.4.)
            if np.count_nonzero(learn_term) or np.count_nonzero(truncated) or epoch_ended:
                ended = terminated | truncated  # the episode (the whole game) ended
                # Close the paths that end here. A terminal closes with 0; a time limit or the
                # epoch's end closes with V of the observation really reached. Only a truncated
                # copy needs real_next_obs (the vector env has already reset it, so next_obs holds
                # the next episode's first observation); terminated ones do not use their value,
                # so when only terminals end here the critic is not run at all.
                last_vals = None
                if epoch_ended or np.count_nonzero(truncated):
                    with torch.inference_mode():
                        reached = norms.observation(real_next_obs(next_obs, truncated, info), count=False)
                        last_vals = ac.v(torch.as_tensor(reached, device=device)).cpu().numpy()
                    last_vals = norms.critic_value(last_vals)
                for i in range(envs.num_envs) if epoch_ended else np.flatnonzero(ended | learn_term):
                    buf.finish_path(i, 0.0 if learn_term[i] else float(last_vals[i]))
                    if ended[i]:
                        steps_now = self.steps + t + 1
                        logger.store(EpRet=ep_ret[i], EpLen=steps_now - ep_start[i])
                        ep_ret[i], ep_start[i] = 0.0, steps_now

            # The easy line to forget: the next step starts from the new observation.
            obs = next_obs
        self.obs = obs
        self.steps += steps_per_env
        norms.update()  # the epoch's observations and returns join the statistics, over all ranks
        # The critic's estimates, logged once per epoch from the buffer rather than as one small array
        # per step: the same numbers in the same order, without a list of thousands of arrays.
        logger.store(VVals=buf.val_buf[first_row : buf.ptr].copy())


def minibatch_steps(
    data: dict[str, torch.Tensor], passes: int, minibatch_size: int | None
) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
    """The data of each gradient step of an update, with the pass it belongs to: ``(pass, batch)``.

    ``minibatch_size`` None is Spinning Up's way: ``passes`` steps, each on the whole batch. Otherwise
    each pass shuffles the batch and steps once per minibatch, the usual PPO of SB3 and CleanRL: many
    small steps per batch of experience. ``minibatch_size`` counts over all MPI ranks, so each rank
    takes ``minibatch_size // ranks`` of its own samples and the averaged gradient is one of
    ``minibatch_size`` samples; the last minibatch of a pass may be smaller. The shuffles draw from
    torch's seeded (and checkpointed) generator, on the CPU whatever the device, so a run repeats.
    """
    n = len(data["ret"])
    if minibatch_size is None:
        for i in range(passes):
            yield i, data
        return
    per_rank = max(1, minibatch_size // num_procs())
    for i in range(passes):
        # One shuffled copy of the batch per pass; its minibatches are then slices (views, no copies).
        order = torch.randperm(n).to(data["ret"].device)
        shuffled = {key: value[order] for key, value in data.items()}
        for start in range(0, n, per_rank):
            yield i, {key: value[start : start + per_rank] for key, value in shuffled.items()}


def anneal_learning_rate(
    optimizer: torch.optim.Optimizer, initial_lr: float, epoch: int, epochs: int
) -> None:
    """Set the learning rate of ``epoch`` (0-based) on a line from ``initial_lr`` down to 0 at the end
    of the run. It depends on the epoch alone, so a resumed run gets the same rates."""
    for group in optimizer.param_groups:
        group["lr"] = initial_lr * (1.0 - epoch / epochs)
