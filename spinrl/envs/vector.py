"""Environment copies stepped together: vector envs, the steps and seeds of each copy, and the
bookkeeping of the episodes running in them.

The traps this module handles once for every algorithm:

- ``terminated`` (a true end: no future reward) and ``truncated`` (a time limit: the future was cut
  off) are different; vector envs here use Gymnasium's *same-step* autoreset, so the real last
  observation of a finished episode is in ``info["final_obs"]`` and can be bootstrapped from
  (:func:`real_next_obs`).
- Every environment copy gets its own seed, derived from the run's seed, the MPI rank and the epoch
  the process starts at, so runs are reproducible and a resumed run is seeded afresh
  (:func:`spinrl.common.seeding.env_seeds`, which every seed derivation shares; importable from here too).
- ``steps_per_epoch`` counts the steps of all copies on all ranks together (:func:`steps_per_copy`).

Each copy is made and prepared as :mod:`spinrl.envs.make` makes one env.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from spinrl.common.errors import UserError
from spinrl.common.mpi import proc_id
from spinrl.common.seeding import env_seeds as env_seeds  # kept importable from here
from spinrl.envs.make import EnvFn, prepare_env, resolve_env_fn


def make_vector_env(
    env_fn: EnvFn | str, num_envs: int = 1, max_ep_len: int | None = None, asynchronous: bool = False
) -> gym.vector.VectorEnv:
    """``num_envs`` copies stepped together, with same-step autoreset (see the module docstring).

    Synchronous by default: for cheap environments on few cores, stepping in one process beats the
    inter-process traffic of ``AsyncVectorEnv``.
    """
    env_fn = resolve_env_fn(env_fn)
    fns = [lambda: prepare_env(env_fn(), max_ep_len) for _ in range(num_envs)]
    if num_envs == 1 and not asynchronous:
        return SingleCopyVectorEnv(fns[0])
    cls = gym.vector.AsyncVectorEnv if asynchronous else gym.vector.SyncVectorEnv
    return cls(fns, autoreset_mode=AutoresetMode.SAME_STEP)


class SingleCopyVectorEnv(gym.vector.SyncVectorEnv):
    """One env copy behind the vector API, with a shorter :meth:`step` than ``SyncVectorEnv``'s.

    ``SyncVectorEnv.step`` is written for many copies: it iterates over the batched action, merges
    an info dict per copy, stacks and deep-copies the observations and copies three arrays. With a
    single copy most of that is bookkeeping around one ``env.step``. This class calls the env
    directly and returns the same things: same-step autoreset (an episode that ends is reset in the
    same call; its real last observation and info go to ``info["final_obs"]`` and
    ``info["final_info"]``, flagged by ``info["_final_obs"]``), and arrays of the same shapes and
    dtypes, new ones on every call. On CartPole-v1 that removes most of what ``SyncVectorEnv`` adds to
    the bare env's step (benchmarks/results/code-measurements.md).
    Everything else (reset, spaces, ``call``, ``render``, ``close``) is ``SyncVectorEnv``'s.
    """

    def __init__(self, env_fn: EnvFn):
        super().__init__([env_fn], autoreset_mode=AutoresetMode.SAME_STEP)
        space = self.single_observation_space
        # The lean path needs a Box to batch into; other spaces take SyncVectorEnv's general one.
        self._lean = isinstance(space, spaces.Box)
        if self._lean:
            self._batch_shape, self._obs_dtype = (1, *space.shape), space.dtype

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Step the one copy with ``actions[0]``; the results are batches of one."""
        if not self._lean:
            return super().step(actions)
        env = self.envs[0]
        obs, rew, terminated, truncated, env_info = env.step(actions[0])
        info = {}
        if terminated or truncated:
            info = self._add_info(info, {"final_obs": obs, "final_info": env_info}, 0)
            obs, env_info = env.reset()
        if env_info:
            info = self._add_info(info, env_info, 0)
        batch = np.empty(self._batch_shape, dtype=self._obs_dtype)
        batch[0] = obs
        return (
            batch,
            np.array([rew], dtype=np.float64),
            np.array([terminated], dtype=np.bool_),
            np.array([truncated], dtype=np.bool_),
            info,
        )


def steps_per_copy(steps_per_epoch: int, num_envs: int, num_ranks: int = 1) -> int:
    """How many steps each env copy takes per epoch: ``steps_per_epoch`` is the total over all
    ``num_envs`` copies on all ``num_ranks`` MPI ranks, so each copy gets its share, rounded down.

    Fewer steps than copies is refused. When the total does not divide evenly, the epoch is a little
    shorter than asked; rank 0 says so in one line rather than letting it pass unnoticed.
    """
    copies = num_envs * num_ranks
    per_copy = steps_per_epoch // copies
    if per_copy < 1:
        raise UserError(
            f"steps_per_epoch={steps_per_epoch} is too small for {num_envs} env copies x {num_ranks} rank(s): "
            f"give at least {copies}, one step per copy"
        )
    if per_copy * copies != steps_per_epoch and proc_id() == 0:
        print(
            f"note: steps_per_epoch={steps_per_epoch} is not a multiple of {num_envs} env copies x "
            f"{num_ranks} rank(s): each epoch takes {per_copy * copies} steps",
            flush=True,
        )
    return per_copy


def real_next_obs(next_obs: np.ndarray, ended: np.ndarray, info: dict) -> np.ndarray:
    """The observation each copy really reached in this step.

    ``next_obs`` is what the vector env returned; where an episode ended (terminated or truncated) it
    has already reset that copy, so ``next_obs`` holds the new episode's first observation and the real
    last one is in ``info["final_obs"]``. Bootstrapping a truncated episode needs the real one.
    """
    if not ended.any():
        return next_obs
    real = next_obs.copy()
    for i in np.flatnonzero(ended & info["_final_obs"]):
        real[i] = info["final_obs"][i]
    return real


class EpisodeReturns:
    """The return and length of the episode running in each env copy; finished ones go to the logger.

    After every ``envs.step``, :meth:`add` adds the rewards and, for each copy whose episode ended,
    stores ``EpRet`` and ``EpLen`` in the logger and starts counting that copy from zero (or, in two
    calls, :meth:`count` and :meth:`log_ended`). Episodes are
    not tied to epochs: one object, made when the env copies are reset, follows them across epoch
    ends and checkpoints.

    An episode's length is the difference of two step counts, the one now and the one at which the
    episode started, taken only when it ends: one addition of Python integers per step instead of a
    NumPy addition on an array of lengths, which on a small env is a measurable part of the loop.
    """

    def __init__(self, num_envs: int):
        self.ret = np.zeros(num_envs)
        self.steps = 0  # steps taken by every copy since this object was made
        self.start = np.zeros(num_envs, dtype=np.int64)  # the step count when each running episode began

    @property
    def len(self) -> np.ndarray:
        """The length so far of each copy's running episode."""
        return self.steps - self.start

    def add(self, rew: np.ndarray, ended: np.ndarray, logger) -> None:
        """:meth:`count` one step's rewards, then :meth:`log_ended` the episodes that ``ended`` in it."""
        self.ret += rew
        self.steps += 1
        # The common case, no episode ended, costs one count (faster than ``ended.any()`` on a small array).
        if np.count_nonzero(ended):
            self.log_ended(ended, logger)

    def count(self, rew: np.ndarray) -> None:
        """Add one step's rewards (one per copy) to the running episodes."""
        self.ret += rew
        self.steps += 1

    def log_ended(self, ended: np.ndarray, logger) -> None:
        """Store ``EpRet`` and ``EpLen`` of the copies whose episode ``ended`` in the step counted last, and
        start counting those copies from zero. A loop that knows no episode ended (the on-policy loops
        check for ends of paths, which include every end of an episode) may skip the call."""
        for i in np.flatnonzero(ended):
            logger.store(EpRet=self.ret[i], EpLen=self.steps - self.start[i])
            self.ret[i], self.start[i] = 0.0, self.steps

    def restart(self) -> None:
        """Forget the running episodes (after the env copies were reset)."""
        self.ret[:], self.start[:] = 0.0, self.steps


def obs_dim_of(space: spaces.Space) -> int:
    return int(np.prod(space.shape))
