"""Running statistics that rescale what the agent sees: observations, rewards and value targets.

Most published MuJoCo results of PPO (RL Zoo, CleanRL, Tianshou) rest on these: network inputs of mean 0
and unit variance whatever the units of the simulator, rewards divided by the spread of the discounted
return so the critic's targets stay near 1, or the critic fitting targets of mean 0 and unit variance.
Spinning Up uses none of them, and neither does spinrl unless asked (``obs_norm``, ``reward_norm``,
``value_norm``).

How the statistics move, the same in every class here:

- They are **frozen while an epoch collects**: every step of one batch is scaled alike, so the inputs
  the policy acted on are the inputs the update trains on, and the log-probabilities match.
- What the epoch saw is counted on the side (``observe``) and merged in at one point (``update``),
  after the collection, **over all env copies and MPI ranks** at once: every rank ends with the same
  numbers, and the pooled mean and variance are exact (Chan, Golub and LeVeque's pairwise update).
- Their whole state, pending counts included, is a ``state_dict`` of tensors, saved in checkpoints,
  so a resumed run scales exactly as an uninterrupted one, and a loaded policy sees what it was
  trained on (frozen: loading never changes them).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from spinrl.common.errors import UserError
from spinrl.common.mpi import mpi_sum
from spinrl.envs.spaces import is_image_space

_EPS = 1e-8


class RunningMeanStd:
    """The per-entry mean and (population) variance of every sample merged in so far.

    ``observe(batch)`` counts a batch of samples (shape ``(N, *shape)``) without changing the
    statistics; ``update()`` merges everything counted since the last call, summed over MPI ranks.
    Samples are counted as differences from the current mean, which keeps the sums small and the
    variance accurate even when the mean is large.
    """

    def __init__(self, shape: tuple[int, ...] = ()):
        self.shape = tuple(shape)
        self.mean = np.zeros(self.shape, dtype=np.float64)
        self.var = np.ones(self.shape, dtype=np.float64)
        self.count = 0.0
        self._reset_pending()

    def _reset_pending(self) -> None:
        self.pending_n = 0.0
        self.pending_sum = np.zeros(self.shape, dtype=np.float64)  # of (x - mean)
        self.pending_sumsq = np.zeros(self.shape, dtype=np.float64)  # of (x - mean)^2

    def observe(self, batch: np.ndarray) -> None:
        """Count ``batch`` (samples along the first axis) for the next :meth:`update`."""
        d = np.asarray(batch, dtype=np.float64).reshape(-1, *self.shape) - self.mean
        self.pending_n += d.shape[0]
        self.pending_sum += d.sum(axis=0)
        self.pending_sumsq += np.square(d).sum(axis=0)

    def update(self) -> None:
        """Merge what every rank counted since the last update into the statistics (a collective call:
        every MPI rank must make it at the same point)."""
        totals = mpi_sum(
            np.concatenate([[self.pending_n], self.pending_sum.ravel(), self.pending_sumsq.ravel()])
        )
        n, size = float(totals[0]), self.pending_sum.size
        self._reset_pending()
        if n == 0:
            return
        s, ss = totals[1 : 1 + size].reshape(self.shape), totals[1 + size :].reshape(self.shape)
        batch_shift = s / n  # the batch mean minus the current mean
        batch_m2 = np.maximum(ss - s * s / n, 0.0)  # the batch's sum of squared deviations from its mean
        total = self.count + n
        # Pooled variance of two groups: each group's own spread plus the spread between their means.
        m2 = self.var * self.count + batch_m2 + np.square(batch_shift) * self.count * n / total
        self.mean = self.mean + batch_shift * n / total
        self.var = m2 / total
        self.count = total

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.var + _EPS)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            "mean": torch.as_tensor(self.mean),
            "var": torch.as_tensor(self.var),
            "count": torch.tensor(self.count, dtype=torch.float64),
            "pending_n": torch.tensor(self.pending_n, dtype=torch.float64),
            "pending_sum": torch.as_tensor(self.pending_sum),
            "pending_sumsq": torch.as_tensor(self.pending_sumsq),
        }

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        for key in ("mean", "var", "pending_sum", "pending_sumsq"):
            value = np.asarray(state[key], dtype=np.float64)
            if value.shape != self.shape:
                raise ValueError(f"{key} has shape {value.shape}, this run's statistics have {self.shape}")
            setattr(self, key, value.copy())
        self.count = float(state["count"])
        self.pending_n = float(state["pending_n"])


class ObservationNormalizer:
    """``clip((obs - mean) / std, -clip, clip)`` with running statistics of the raw observations.

    Called on every observation the agent sees (``__call__``); raw observations from training steps are
    counted with :meth:`observe` and merged in by :meth:`update`. The clip bounds outliers, in standard
    deviations (10 by default, as in SB3's VecNormalize).
    """

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0):
        self.stats = RunningMeanStd(shape)
        self.clip = float(clip)
        self._refresh()

    def _refresh(self) -> None:
        # The statistics change only in update() and load_state_dict(): keep float32 copies for the
        # hot path rather than converting per step.
        self._mean32 = self.stats.mean.astype(np.float32)
        self._inv_std32 = (1.0 / self.stats.std).astype(np.float32)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """The normalised observations, float32 (the statistics are not changed)."""
        out = (np.asarray(obs, dtype=np.float32) - self._mean32) * self._inv_std32
        return np.clip(out, -self.clip, self.clip, out=out)

    def normalize_tensor(self, obs: torch.Tensor) -> torch.Tensor:
        """The same for a tensor (a replay batch), on the tensor's device."""
        mean = torch.as_tensor(self._mean32, device=obs.device)
        inv_std = torch.as_tensor(self._inv_std32, device=obs.device)
        return ((obs.float() - mean) * inv_std).clamp(-self.clip, self.clip)

    def observe(self, obs: np.ndarray) -> None:
        self.stats.observe(obs)

    def update(self) -> None:
        self.stats.update()
        self._refresh()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.stats.state_dict(), clip=torch.tensor(self.clip, dtype=torch.float64))

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.stats.load_state_dict(state)
        self.clip = float(state.get("clip", self.clip))
        self._refresh()

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> ObservationNormalizer:
        """A normaliser restored from a checkpoint's entry (how a loaded policy gets its inputs)."""
        norm = cls(tuple(np.asarray(state["mean"]).shape))
        norm.load_state_dict(state)
        return norm


class RewardScaler:
    """Rewards divided by the running standard deviation of the discounted return, then clipped.

    Each env copy keeps its discounted return so far, ``R <- gamma * R + r`` (back to 0 when its episode
    ends); the spread of those returns sets the scale. Dividing, never shifting, keeps the sign of every
    reward, so "alive" bonuses stay bonuses. This only changes what the learner sees: the logged
    ``EpRet`` stays the environment's own return. (Engstrom et al. 2020, "Implementation Matters in Deep
    Policy Gradients", call it reward scaling and find PPO's MuJoCo results depend on it.)
    """

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0):
        self.stats = RunningMeanStd(())
        self.gamma, self.clip = float(gamma), float(clip)
        self.returns = np.zeros(num_envs, dtype=np.float64)
        self._scale = 1.0

    def __call__(self, rew: np.ndarray, terminated: np.ndarray, truncated: np.ndarray) -> np.ndarray:
        """Scale one step's rewards (one per copy) and count the copies' discounted returns."""
        self.returns = self.returns * self.gamma + rew
        self.stats.observe(self.returns)
        self.returns[terminated | truncated] = 0.0  # those copies' episodes ended
        return np.clip(np.asarray(rew, dtype=np.float32) / np.float32(self._scale), -self.clip, self.clip)

    def reset(self) -> None:
        """The env copies start new episodes (a fresh process, a resumed run)."""
        self.returns[:] = 0.0

    def update(self) -> None:
        self.stats.update()
        self._scale = float(self.stats.std)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.stats.state_dict()

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.stats.load_state_dict(state)
        self._scale = float(self.stats.std)


class ValueNormalizer:
    """The critic fits value targets of mean 0 and unit variance; its outputs are mapped back.

    The running statistics follow the targets (the rewards-to-go) of every batch. The critic's output
    ``v`` means ``mean + std * v`` in the env's units: that value is what GAE and the bootstraps use and
    what ``VVals`` logs, while the critic's loss (``LossV``) is in the normalised units. Without it the
    critic chases targets whose scale grows as the policy improves (returns in the thousands in MuJoCo).
    """

    def __init__(self):
        self.stats = RunningMeanStd(())

    def update(self, targets: torch.Tensor) -> None:
        self.stats.observe(targets.detach().cpu().numpy())
        self.stats.update()

    def normalize(self, targets: torch.Tensor) -> torch.Tensor:
        return (targets - float(self.stats.mean)) / float(self.stats.std)

    def denormalize(self, values: np.ndarray) -> np.ndarray:
        return (values * float(self.stats.std) + float(self.stats.mean)).astype(np.float32)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.stats.state_dict()

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.stats.load_state_dict(state)


class Normalizers:
    """The normalisers an on-policy run asked for, each None when off, behind one small interface.

    With all three off, every method hands its input back unchanged (the very same array), so a run
    without them computes exactly what it computed before they existed.
    """

    def __init__(
        self,
        obs: ObservationNormalizer | None = None,
        reward: RewardScaler | None = None,
        value: ValueNormalizer | None = None,
    ):
        self.obs_normalizer, self.reward_scaler, self.value_normalizer = obs, reward, value

    def observation(self, obs: np.ndarray, count: bool = True) -> np.ndarray:
        """What the networks see of ``obs``; ``count`` it towards the statistics (training steps)."""
        if self.obs_normalizer is None:
            return obs
        if count:
            self.obs_normalizer.observe(obs)
        return self.obs_normalizer(obs)

    def observe(self, obs: np.ndarray) -> None:
        """Count raw observations towards the statistics without normalising them (off-policy loops,
        which store raw observations and normalise what they sample)."""
        if self.obs_normalizer is not None:
            self.obs_normalizer.observe(obs)

    def batch(self, data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A replay batch with ``obs`` and ``obs2`` normalised by the current statistics."""
        if self.obs_normalizer is None:
            return data
        norm = self.obs_normalizer.normalize_tensor
        return dict(data, obs=norm(data["obs"]), obs2=norm(data["obs2"]))

    def reward(self, rew: np.ndarray, terminated: np.ndarray, truncated: np.ndarray) -> np.ndarray:
        """The rewards the learner sees (scaled with reward_norm); the logged EpRet keeps the real ones."""
        return rew if self.reward_scaler is None else self.reward_scaler(rew, terminated, truncated)

    def critic_value(self, v: np.ndarray) -> np.ndarray:
        """The critic's output in the env's units."""
        return v if self.value_normalizer is None else self.value_normalizer.denormalize(v)

    def value_targets(self, ret: torch.Tensor) -> torch.Tensor:
        """The targets the critic fits, after counting this batch's (the batch itself without value_norm)."""
        if self.value_normalizer is None:
            return ret
        self.value_normalizer.update(ret)
        return self.value_normalizer.normalize(ret)

    def reset(self) -> None:
        if self.reward_scaler is not None:
            self.reward_scaler.reset()

    def update(self) -> None:
        """Merge what the epoch's steps counted (collective under MPI: every rank calls it)."""
        if self.obs_normalizer is not None:
            self.obs_normalizer.update()
        if self.reward_scaler is not None:
            self.reward_scaler.update()

    def checkpoint_entries(self) -> dict[str, object]:
        """The normalisers in use, by the names their checkpoint entries take."""
        entries = {
            "obs_normalizer": self.obs_normalizer,
            "reward_scaler": self.reward_scaler,
            "value_normalizer": self.value_normalizer,
        }
        return {name: norm for name, norm in entries.items() if norm is not None}


def make_normalizers(
    observation_space,
    num_envs: int,
    gamma: float,
    obs_norm: bool = False,
    obs_clip: float = 10.0,
    reward_norm: bool = False,
    reward_clip: float = 10.0,
    value_norm: bool = False,
) -> Normalizers:
    """The :class:`Normalizers` of an on-policy run; observation normalisation of images is refused."""
    obs = None
    if obs_norm:
        obs = observation_normalizer(observation_space, obs_clip)
    reward = RewardScaler(num_envs, gamma, reward_clip) if reward_norm else None
    return Normalizers(obs, reward, ValueNormalizer() if value_norm else None)


def offpolicy_normalizers(observation_space, obs_norm: bool = False, obs_clip: float = 10.0) -> Normalizers:
    """The :class:`Normalizers` of an off-policy run: observations only (rewards and targets raw)."""
    return Normalizers(observation_normalizer(observation_space, obs_clip) if obs_norm else None)


def observation_normalizer(observation_space, clip: float) -> ObservationNormalizer:
    """An :class:`ObservationNormalizer` for a space of vector observations (images are refused)."""
    if is_image_space(observation_space) or observation_space.dtype == np.uint8:
        raise UserError(
            "obs_norm=True is for vector observations; image frames are already scaled by the "
            "encoder (1/255): leave obs_norm False"
        )
    return ObservationNormalizer(tuple(observation_space.shape), clip)
