"""Small pieces that DDPG, TD3, SAC and DQN call from their own loops.

Each algorithm file holds its whole interaction loop (act, step, store, update, end the epoch); this
module only keeps what all four need and what is easy to get subtly wrong, as plain functions and
classes that never call back into an algorithm:

- :func:`random_actions`: the uniform actions of the first ``start_steps`` env steps.
- :func:`update_rounds_due`: when to update, for any number of env copies.
- :func:`polyak_update` and :func:`frozen`: the target-network average and the frozen critic of the
  policy step.
- :func:`run_test_episodes`: the end-of-epoch evaluation of the deterministic policy.
- :class:`UpdateStats` and :class:`BufferCheckpoint`: per-update diagnostics, and the replay buffer's
  entry in a checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from spinrl.buffers.replay import ReplayBuffer
from spinrl.common.checks import check_finite
from spinrl.common.errors import UserError
from spinrl.common.mpi import num_procs
from spinrl.common.seeding import seeds_for_test_episodes as seeds_for_test_episodes  # kept importable here
from spinrl.record.logger import EpochLogger
from spinrl.training.normalize import Normalizers


def refuse_mpi(algo: str) -> None:
    """Off-policy algorithms train in one process: their updates are not averaged over MPI ranks."""
    if num_procs() > 1:
        raise UserError(f"{algo} runs in one process: use --num_envs for more env copies, not --cpu")


def random_actions(act_space: spaces.Space, num_envs: int) -> np.ndarray:
    """One uniformly random agent action per env copy: in [-1, 1] for Box, an index for Discrete.

    They come from NumPy's global generator rather than the space's own, because checkpoints save that
    generator's state and so a resumed run draws what the uninterrupted one would have drawn.
    """
    if isinstance(act_space, spaces.Box):
        return np.random.uniform(-1.0, 1.0, (num_envs, *act_space.shape)).astype(np.float32)
    return np.random.randint(int(act_space.n), size=num_envs)


def update_rounds_due(t: int, num_envs: int, update_every: int) -> int:
    """How many rounds of updates are due after the env step that brought the step count ``t`` (over
    all copies) up by ``num_envs``: the multiples of ``update_every`` passed in that step.

    Spinning Up updates when ``t % update_every == 0``, with one env copy stepping t by 1. Each step of
    ``num_envs`` copies moves t by ``num_envs``, which may jump over a multiple (or several, when
    ``num_envs > update_every``); counting the multiples passed keeps the ratio of gradient steps to
    env steps whatever ``num_envs`` is: after t steps, ``t // update_every`` rounds in all.
    """
    return t // update_every - (t - num_envs) // update_every


def polyak_update(targ_params: list[torch.Tensor], params: list[torch.Tensor], polyak: float) -> None:
    """Move every target tensor a small step towards its trained twin, in place:
    ``theta_targ <- polyak * theta_targ + (1 - polyak) * theta``.

    ``lerp(targ, theta, w)`` computes ``targ + w * (theta - targ)``, the same formula with
    ``w = 1 - polyak``, for the whole list in one call.
    """
    with torch.no_grad():
        torch._foreach_lerp_(targ_params, params, 1.0 - polyak)


@contextmanager
def frozen(params: list[torch.Tensor]) -> Iterator[None]:
    """Turn off gradients for ``params`` inside the ``with`` block, and back on afterwards.

    The policy step of DDPG, TD3 and SAC differentiates Q(s, pi(s)) with respect to the policy only;
    freezing the critic spares the backward pass the critic's weight gradients, which nobody uses.
    """
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def optimizer_steps(optimizer: torch.optim.Optimizer) -> int:
    """How many steps ``optimizer`` (Adam, or any optimiser whose state counts ``step``) has taken in the
    whole run: its own count, which a checkpoint saves and a resume restores. 0 before the first step."""
    counts = [s["step"] for s in optimizer.state.values() if "step" in s]
    return int(max(counts)) if counts else 0


def run_test_episodes(
    test_envs: gym.vector.VectorEnv,
    ac: torch.nn.Module,
    logger: EpochLogger,
    seeds: list[int],
    device: torch.device | str,
    normalizers: Normalizers | None = None,
    epsilon: float = 0.0,
) -> None:
    """Play one episode in each test-env copy with the deterministic policy (no exploration noise);
    store their returns and lengths as ``TestEpRet`` and ``TestEpLen``. With ``normalizers`` the policy
    sees observations normalised as in training (test steps do not count towards the statistics).

    With ``epsilon`` > 0 (Discrete actions only: DQN's Atari games), each action is replaced by a
    uniformly random one with that probability, drawn from a generator of the episodes' own seeds, so
    that the training's random numbers stay the same whatever the test episodes do.
    """
    obs, _ = test_envs.reset(seed=seeds)
    n = test_envs.num_envs
    ep_ret, ep_len = np.zeros(n), np.zeros(n, dtype=np.int64)
    running = np.ones(n, dtype=bool)
    space = test_envs.single_action_space
    rng = np.random.default_rng(seeds)
    while running.any():
        seen = obs if normalizers is None else normalizers.observation(obs, count=False)
        a = ac.act(torch.as_tensor(seen, device=device), deterministic=True).cpu().numpy()
        if epsilon > 0:
            explore = rng.random(n) < epsilon
            a = np.where(explore, int(space.start) + rng.integers(int(space.n), size=n), a)
        obs, rew, terminated, truncated, _ = test_envs.step(a)
        # A copy whose episode is over is reset and keeps stepping with the others; only rewards of the
        # first episode count.
        ep_ret += rew * running
        ep_len += running
        running &= ~(terminated | truncated)
    logger.store(TestEpRet=ep_ret, TestEpLen=ep_len)


class UpdateStats:
    """Diagnostics of every update (losses, Q-values, ...), kept on the device until the epoch ends.

    ``stats.add(LossQ=loss_q, Q1Vals=q[0])`` keeps each value under the name it is given, which is the
    name of its columns in progress.txt: what an algorithm file adds is what it logs. Reading a tensor's value with ``.item()`` after each update would make a GPU wait for the host,
    and costs a few microseconds on a CPU; :meth:`flush` moves everything to the logger in one go.
    """

    def __init__(self) -> None:
        self.values: dict[str, list[torch.Tensor]] = {}

    # Left out of a compiled update (spinrl.training.compiled_update): traced, each append would change the
    # lists' lengths, which the compiled code checks, and so compile the update anew on every call.
    @torch.compiler.disable
    def add(self, **tensors: torch.Tensor | float) -> None:
        # A copy, not a view: a CUDA graph replayed by the next compiled update overwrites its outputs.
        for k, v in tensors.items():
            self.values.setdefault(k, []).append(
                v.detach().clone() if torch.is_tensor(v) else torch.tensor(v)
            )

    def flush(self, logger: EpochLogger, epoch: int) -> None:
        """Store the epoch's values in the logger; stop the run in one line if a loss is NaN or inf."""
        means = {}
        for k, vs in self.values.items():
            arr = torch.stack(vs).float().cpu().numpy()
            logger.store(**{k: arr})
            means[k] = float(arr.mean())
        self.values.clear()
        check_finite(epoch, **{k: v for k, v in means.items() if k.startswith("Loss")})


class BufferCheckpoint:
    """What a checkpoint holds for the replay buffer: its filled part with ``save_buffer``, else only a
    marker saying it was left out.

    A run resumed from a checkpoint without the buffer starts with an empty one, says so, and does not
    update until the buffer again holds ``update_after`` transitions.
    """

    def __init__(self, buf: ReplayBuffer, save: bool, logger: EpochLogger, update_after: int) -> None:
        self.buf, self.save, self.logger, self.update_after = buf, save, logger, update_after

    def state_dict(self) -> dict:
        return self.buf.state_dict() if self.save else {"saved": False}

    def load_state_dict(self, state: dict) -> None:
        if "obs" in state:
            self.buf.load_state_dict(state)
            return
        self.logger.log_message(
            "resume: the replay buffer was not saved (use --save_buffer for an exact resume); it starts "
            f"empty, and updates wait until it holds update_after={self.update_after} transitions again"
        )
