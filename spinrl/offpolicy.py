"""The parts DDPG, TD3, SAC and DQN share: the interaction loop, test episodes, Polyak averaging.

The interaction loop (:func:`collect_and_update`) is the middle of every off-policy pseudocode
(Spinning Up's DDPG, TD3 and SAC pages): act, step the env, store the transition, and every
``update_every`` steps do as many gradient updates. The traps it handles once for all four:

- Bootstrapping stops only at a true end: ``terminated`` is stored as ``done``; a time-limit
  ``truncated`` transition is stored with ``done = 0`` and its *real* next observation
  (``info["final_obs"]``: the vector env has already reset that copy), so the target still adds
  gamma * Q(s', a'). (Spinning Up used ``d = False if ep_len == max_ep_len``, which misses the env's
  own time limits.)
- Every env copy is reset at each epoch start with seeds from ``env_seeds(seed, rank, epoch)``.
  Spinning Up carries episodes across epochs; resetting is what lets ``--resume`` continue exactly as
  an uninterrupted run (the cut is stored like a truncation: bootstrapped, never terminal).
- Random actions until ``start_steps`` transitions are in the buffer: after a resume without the
  saved buffer, the refilled buffer starts with random actions again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from spinrl.envs import check_spaces, make_vector_env
from spinrl.errors import UserError
from spinrl.logx import EpochLogger
from spinrl.mpi import num_procs
from spinrl.replay import ReplayBuffer
from spinrl.runtime import check_finite, resolve_device, seed_everything, set_thread_budget


def start_run(
    config: dict, action_spaces: tuple[type, ...]
) -> tuple[EpochLogger, torch.device, gym.vector.VectorEnv, gym.vector.VectorEnv]:
    """Everything before the networks, from the algorithm's arguments (``config``): the logger
    (config.json saved), the seeds, the device and threads, the training env copies and a separate
    test env with one copy per test episode (run at once; seeded apart from the training envs).

    Off-policy runs use one process (updates are not averaged across MPI ranks). On the CPU they use
    one torch thread: the networks are small and an update is a chain of small kernels, where thread
    hand-offs cost more than they save (``$SPINRL_NUM_THREADS`` overrides).
    """
    algo = config["algo"]
    if num_procs() > 1:
        raise UserError(f"{algo} runs in one process: use --num_envs for more env copies, not --cpu")
    logger = EpochLogger(**(config["logger_kwargs"] or {}), resume=config["resume"])
    logger.save_config(config)
    seed_everything(config["seed"])
    device = resolve_device(config["device"])
    if device.type == "cpu":
        set_thread_budget()
    envs = make_vector_env(config["env_fn"], config["num_envs"], config["max_ep_len"])
    check_spaces(envs, algo, action_spaces=action_spaces)
    test_env = make_vector_env(config["env_fn"], config["num_test_episodes"], config["max_ep_len"])
    return logger, device, envs, test_env


def seeds_for_test_episodes(seed: int, epoch: int, num_episodes: int) -> list[int]:
    """Reset seeds for the test episodes of an epoch, independent of the training envs' seeds."""
    ss = np.random.SeedSequence([seed, epoch, 0x7E57])
    return [int(s) for s in ss.generate_state(num_episodes, dtype=np.uint32)]


def run_test_episodes(
    test_env: gym.vector.VectorEnv, ac: torch.nn.Module, logger: EpochLogger, seeds: list[int], device
) -> None:
    """One episode per test-env copy with the deterministic policy; log TestEpRet and TestEpLen."""
    obs, _ = test_env.reset(seed=seeds)
    n = test_env.num_envs
    ep_ret, ep_len = np.zeros(n), np.zeros(n, dtype=np.int64)
    running = np.ones(n, dtype=bool)
    while running.any():
        a = ac.act(torch.as_tensor(obs, device=device), deterministic=True).cpu().numpy()
        obs, rew, terminated, truncated, _ = test_env.step(a)
        ep_ret += rew * running  # copies whose episode is over keep stepping; their rewards don't count
        ep_len += running
        running &= ~(terminated | truncated)
    logger.store(TestEpRet=ep_ret, TestEpLen=ep_len)


def polyak_update(targ_params: list[torch.Tensor], params: list[torch.Tensor], polyak: float) -> None:
    """theta_targ <- polyak * theta_targ + (1 - polyak) * theta, in place, for all tensors at once.

    ``lerp(targ, theta, w) = targ + w * (theta - targ)`` with ``w = 1 - polyak`` is that formula.
    """
    with torch.no_grad():
        torch._foreach_lerp_(targ_params, params, 1.0 - polyak)


@contextmanager
def frozen(params: list[torch.Tensor]) -> Iterator[None]:
    """Freeze ``params`` inside the block, so no effort goes into gradients nobody will use.

    The policy step of DDPG, TD3 and SAC backpropagates through Q(s, pi(s)) but must only change pi.
    """
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class UpdateStats:
    """Per-update diagnostics kept as detached tensors, moved to the logger once per epoch.

    Calling ``.item()`` on every update would stall a GPU and cost microseconds on a CPU.
    """

    def __init__(self):
        self.values: dict[str, list[torch.Tensor]] = {}

    def add(self, **tensors: torch.Tensor | float) -> None:
        for k, v in tensors.items():
            self.values.setdefault(k, []).append(v.detach() if torch.is_tensor(v) else torch.tensor(v))

    def flush(self, logger: EpochLogger, epoch: int) -> None:
        """Store everything in the logger; stop with a clear message if a loss became NaN or inf."""
        means = {}
        for k, vs in self.values.items():
            arr = torch.stack(vs).float().cpu().numpy()
            if k == "QVals" and arr.ndim == 3:  # (updates, K, B): one column per Q-function
                names = ["QVals"] if arr.shape[1] == 1 else [f"Q{i + 1}Vals" for i in range(arr.shape[1])]
                for i, name in enumerate(names):
                    logger.store(**{name: arr[:, i]})
            else:
                logger.store(**{k: arr})
            means[k] = float(arr.mean())
        self.values.clear()
        check_finite(epoch, **{k: v for k, v in means.items() if k.startswith("Loss")})


class BufferCheckpoint:
    """The replay buffer's entry in a checkpoint: its filled part with ``save_buffer``, else a marker.

    Resuming from a checkpoint without the buffer starts an empty one, and says so.
    """

    def __init__(self, buf: ReplayBuffer, save: bool, logger: EpochLogger, start_steps: int):
        self.buf, self.save, self.logger, self.start_steps = buf, save, logger, start_steps

    def state_dict(self) -> dict:
        return self.buf.state_dict() if self.save else {"saved": False}

    def load_state_dict(self, state: dict) -> None:
        if "obs" in state:
            self.buf.load_state_dict(state)
            return
        self.logger.log_message(
            "resume: the replay buffer was not saved (use --save_buffer for an exact resume); it is "
            f"refilled from scratch, with random actions for the first {self.start_steps} steps"
        )


def random_actions(act_space: spaces.Space, num_envs: int) -> np.ndarray:
    """Uniform random actions: normalised to [-1, 1] for Box, indices for Discrete.

    NumPy's global generator (not the space's own) is used, so checkpoints capture its state.
    """
    if isinstance(act_space, spaces.Box):
        return np.random.uniform(-1.0, 1.0, (num_envs, *act_space.shape)).astype(np.float32)
    return np.random.randint(int(act_space.n), size=num_envs)


def env_actions(act_space: spaces.Space) -> Callable[[np.ndarray], np.ndarray]:
    """Stored actions -> what the env takes: the env's bounds for Box, ``start + index`` for Discrete."""
    if isinstance(act_space, spaces.Box):
        low, high = act_space.low.astype(np.float64), act_space.high.astype(np.float64)
        return lambda a: (low + (a + 1.0) * (0.5 * (high - low))).astype(act_space.dtype)
    return lambda a: a + int(act_space.start)


def collect_and_update(
    envs: gym.vector.VectorEnv,
    buf: ReplayBuffer,
    logger: EpochLogger,
    get_action: Callable[[np.ndarray], np.ndarray],
    update: Callable[[int], None],
    steps_per_env: int,
    reset_seeds: list[int],
    t: int,
    start_steps: int,
    update_after: int,
    update_every: int,
) -> int:
    """One epoch of interaction: ``steps_per_env`` steps of every copy, updates along the way.

    ``get_action(obs)`` returns stored-form actions (normalised or indices) for a batch of
    observations; ``update(j)`` does one gradient update, ``j`` counting within the current round.
    ``t`` is the number of env steps taken before this epoch; the new total is returned.
    """
    num_envs, act_space = envs.num_envs, envs.single_action_space
    to_env = env_actions(act_space)
    obs, _ = envs.reset(seed=reset_seeds)
    ep_ret, ep_len = np.zeros(num_envs), np.zeros(num_envs, dtype=np.int64)

    for step in range(steps_per_env):
        # Until start_steps transitions are stored, act uniformly at random (better exploration).
        # Afterwards, use the learned policy (with its exploration noise).
        if buf.steps_stored < start_steps:
            a = random_actions(act_space, num_envs)
        else:
            a = get_action(obs)

        # Step the env.
        next_obs, rew, terminated, truncated, info = envs.step(to_env(a))
        ep_ret += rew
        ep_len += 1

        # Where an episode ended, the vector env has already reset that copy: its real s' is
        # final_obs. Only terminated transitions are stored as done (no bootstrapping).
        ended = terminated | truncated
        real_next_obs = next_obs
        if ended.any():
            real_next_obs = next_obs.copy()
            for i in np.flatnonzero(ended):
                real_next_obs[i] = info["final_obs"][i]
        stream_ends = ended | (step == steps_per_env - 1)  # the envs are reset at the next epoch
        buf.store(obs, a, rew, real_next_obs, terminated, stream_ends)

        # Super critical, easy to overlook step: make sure to update most recent observation!
        obs = next_obs

        for i in np.flatnonzero(ended):
            logger.store(EpRet=ep_ret[i], EpLen=ep_len[i])
            ep_ret[i], ep_len[i] = 0.0, 0

        # Update handling: every update_every env steps, update_every gradient updates (one per
        # env step, as in Spinning Up), once update_after transitions are stored.
        rounds = (t + num_envs) // update_every - t // update_every
        t += num_envs
        if buf.steps_stored >= update_after:
            for j in range(rounds * update_every):
                update(j)
    return t


def log_interaction_columns(logger: EpochLogger, epoch: int, t: int) -> None:
    """The columns every off-policy algorithm logs first: returns and lengths, training and test."""
    logger.log_tabular("Epoch", epoch)
    logger.log_tabular("EpRet", with_min_and_max=True)
    logger.log_tabular("TestEpRet", with_min_and_max=True)
    logger.log_tabular("EpLen", average_only=True)
    logger.log_tabular("TestEpLen", average_only=True)
    logger.log_tabular("TotalEnvInteracts", t)


def finish_epoch(
    logger: EpochLogger, checkpointer, epoch: int, epochs: int, save_freq: int, elapsed: float, t: int
) -> None:
    """Log the time, write the epoch's row, then save a checkpoint (so a resume repeats no row)."""
    logger.log_tabular("Time", elapsed)
    logger.dump_tabular()
    if (epoch + 1) % save_freq == 0 or epoch == epochs - 1:
        checkpointer.save(epoch + 1, elapsed=elapsed, t=t)
    logger.set_status("running", epoch + 1, epochs)
