"""The replay buffer shared by DDPG, TD3, SAC and DQN.

A preallocated first-in-first-out store of transitions ``(s, a, r, s', terminated)`` from
``num_envs`` environment copies, sampled uniformly at random on the training device.

**Each observation is stored once.** Within an episode, the ``s'`` of one transition is the ``s`` of
the next. So every env copy writes a *stream* of observations down its own column, and the
transition at row ``i`` finds its next observation at row ``i + 1``. Where a stream breaks (the
episode terminated or was truncated), the real last observation gets a row of its own, which holds no
transition and is never sampled::

    row:    0    1    2    3    4    5
    obs:    s0   s1   s2   s3*  s0'  s1'       (s3* = info["final_obs"] of the episode that ended)
    valid:  T    T    T    F    T    (F)      (row 5 is waiting for its transition's action)

Streams run on across epochs: the env copies are reset only when a process starts. A saved buffer
(:meth:`ReplayBuffer.state_dict`) closes the streams still open, as if each had just ended, because the
resumed run restarts its env copies; the live buffer is left as it is.

Memory for ``replay_size`` rows of float32 observations (Humanoid-v5: obs_dim 348, act_dim 17)::

    obs   1e6 x 348 x 4 B = 1392 MB   (storing s and s' separately would need 2784 MB)
    act   1e6 x  17 x 4 B =   68 MB
    rew, terminated, valid   1e6 x (4 + 1 + 1) B = 6 MB
    total                                         ~ 1.47 GB  (< 2 GB)

The price: each episode end spends one row on its final observation, so the buffer holds slightly
fewer than ``replay_size`` transitions (one fewer per episode in it; 0.1% for 1000-step episodes).
Observations stay float32: float16 would halve the memory again but round MuJoCo velocities.

**Images.** Observations keep their shape and dtype: image frames are stored as uint8, a quarter of
float32, and :meth:`ReplayBuffer.sample_batch` returns them as uint8 ``(N, C, H, W)`` (the network
scales them). Stacked frames (Atari's four) are better served by
:class:`spinrl.buffers.frames.FrameStackReplayBuffer`, which keeps each frame once;
:func:`spinrl.buffers.frames.make_replay_buffer` picks the right buffer for an env.

The arrays are torch tensors on the chosen device (sampling never leaves it). A checkpoint can hold
the filled part (:meth:`ReplayBuffer.state_dict`), as plain tensors that
``torch.load(weights_only=True)`` reads.
"""

from __future__ import annotations

import numpy as np
import torch

from spinrl.common.checks import check_fits_in_memory
from spinrl.common.errors import UserError


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


class ReplayBuffer:
    """A FIFO experience replay buffer of ``size`` observation rows, shared by ``num_envs`` copies.

    Args:
        obs_dim: length of the (flattened) observation vector, or the shape of an observation.
        act_shape: shape of one action: ``(act_dim,)`` for Box, ``()`` for Discrete.
        size: total number of observation rows (split evenly between the env copies).
        num_envs: number of env copies whose transitions arrive together in :meth:`store`.
        act_dtype: torch dtype of stored actions (float32 for Box, int64 for Discrete).
        device: where the arrays live and where :meth:`sample_batch` returns its tensors.
        obs_dtype: torch dtype of stored observations (float32 for vectors, uint8 for images).
    """

    def __init__(
        self,
        obs_dim: int | tuple[int, ...],
        act_shape: tuple[int, ...],
        size: int,
        num_envs: int = 1,
        act_dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
        obs_dtype: torch.dtype = torch.float32,
    ):
        rows = int(size) // num_envs
        if rows < 3:
            raise UserError(
                f"replay_size={size} is too small for {num_envs} env copies: give at least 3 each"
            )
        self.rows, self.num_envs, self.device = rows, num_envs, torch.device(device)
        self.obs_shape = (obs_dim,) if isinstance(obs_dim, int | np.integer) else tuple(obs_dim)
        if self.device.type == "cpu":
            obs_bytes = int(np.prod(self.obs_shape)) * _itemsize(obs_dtype)
            row_bytes = obs_bytes + int(np.prod(act_shape)) * _itemsize(act_dtype) + 4 + 1 + 1
            check_fits_in_memory(rows * num_envs * row_bytes, f"replay_size={size}", "--replay_size")
        # Row-major (row, env copy): each column is one copy's observation stream.
        self.obs_buf = torch.zeros((rows, num_envs, *self.obs_shape), dtype=obs_dtype, device=self.device)
        self.act_buf = torch.zeros((rows, num_envs, *act_shape), dtype=act_dtype, device=self.device)
        self.rew_buf = torch.zeros((rows, num_envs), dtype=torch.float32, device=self.device)
        self.term_buf = torch.zeros((rows, num_envs), dtype=torch.bool, device=self.device)
        self.valid = torch.zeros((rows, num_envs), dtype=torch.bool, device=self.device)
        self.ptr = np.zeros(num_envs, dtype=np.int64)  # next row to write, per copy (kept on the CPU)
        self.rows_used = 0  # rows ever written (at most ``rows``): bounds sampling and saving
        self.steps_stored = 0  # transitions stored since the buffer was created (counts past ``size``)
        self._envs = np.arange(num_envs)
        # On the CPU, store() writes through NumPy views of the same memory: a few microseconds
        # instead of a torch indexing call per array on every environment step.
        self._np = (
            {id(b): b.numpy() for b in (self.obs_buf, self.act_buf, self.rew_buf, self.term_buf, self.valid)}
            if self.device.type == "cpu"
            else None
        )

    def _write(self, buf: torch.Tensor, rows: np.ndarray, values) -> None:
        if self._np is not None:
            self._np[id(buf)][rows, self._envs] = values
        else:
            values = torch.as_tensor(np.asarray(values), device=self.device).to(buf.dtype)
            buf[
                torch.as_tensor(rows, device=self.device), torch.as_tensor(self._envs, device=self.device)
            ] = values

    def store(
        self,
        obs: np.ndarray,
        act: np.ndarray,
        rew: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        stream_ends: np.ndarray,
    ) -> None:
        """Store one transition per env copy (arrays with a leading ``num_envs`` axis).

        ``next_obs`` must be the observation really reached: ``info["final_obs"]`` where an episode
        ended (see :func:`spinrl.envs.real_next_obs`). ``terminated`` marks true ends (no
        bootstrapping); ``stream_ends`` marks each copy whose next stored observation will not be
        ``next_obs`` (its episode terminated or was truncated), so that ``next_obs`` keeps a row of its
        own.
        """
        rows, next_rows = self.ptr, (self.ptr + 1) % self.rows
        self._write(self.obs_buf, rows, obs)
        self._write(self.act_buf, rows, act)
        self._write(self.rew_buf, rows, rew)
        self._write(self.term_buf, rows, terminated)
        self._write(self.valid, rows, True)
        # The next observation goes where the copy's next transition would start. If the stream goes
        # on, the next store() writes the same values there again; if it ends, the row is skipped
        # and keeps s' (any old transition there is overwritten, hence no longer valid). Rows are
        # thus written in order, so an old transition is gone before its s' row is reused.
        self._write(self.obs_buf, next_rows, next_obs)
        self._write(self.valid, next_rows, False)
        self.rows_used = max(self.rows_used, min(self.rows, int(rows.max()) + 2))
        self.ptr = (rows + 1 + np.asarray(stream_ends, dtype=np.int64)) % self.rows
        self.steps_stored += self.num_envs

    def sample_batch(self, batch_size: int = 32) -> dict[str, torch.Tensor]:
        """``batch_size`` transitions drawn uniformly from those stored, as tensors on the device.

        Keys: ``obs``, ``act``, ``rew``, ``obs2`` (next observation) and ``done`` (1.0 only where the
        episode *terminated*: a truncated transition still bootstraps from ``obs2``).
        """
        if self.steps_stored == 0:
            raise RuntimeError("sample_batch() on an empty replay buffer")
        # Flat index = row * num_envs + copy; the next observation of the same copy is num_envs on.
        high, total = self.rows_used * self.num_envs, self.rows * self.num_envs
        valid = self.valid.view(-1)
        idx = torch.randint(0, high, (batch_size,), device=self.device)
        # Rejection sampling keeps the draw uniform over valid rows; under 1% of rows are invalid
        # once the buffer holds a few episodes, so the loop rarely runs.
        bad = ~valid[idx]
        while bool(bad.any()):
            idx = torch.where(bad, torch.randint(0, high, (batch_size,), device=self.device), idx)
            bad = ~valid[idx]
        next_idx = (idx + self.num_envs) % total
        obs, obs2 = self._observation_pairs(idx, next_idx)
        return dict(
            obs=obs,
            obs2=obs2,
            act=self.act_buf.view(total, *self.act_buf.shape[2:]).index_select(0, idx),
            rew=self.rew_buf.view(-1).index_select(0, idx),
            done=self.term_buf.view(-1).index_select(0, idx).float(),
        )

    def _observation_pairs(
        self, idx: torch.Tensor, next_idx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The observations at flat indices ``idx`` (row * num_envs + copy) and ``next_idx``."""
        rows = self.obs_buf.view(-1, *self.obs_shape)
        return rows.index_select(0, idx), rows.index_select(0, next_idx)

    def __len__(self) -> int:
        """Number of transitions that can be sampled."""
        return int(self.valid.sum())

    def nbytes(self) -> int:
        """Memory held by the preallocated arrays."""
        bufs = (self.obs_buf, self.act_buf, self.rew_buf, self.term_buf, self.valid)
        return sum(b.numel() * b.element_size() for b in bufs)

    def open_streams(self) -> np.ndarray:
        """Which copies' streams are open: their last transition's ``s'`` waits at row ``ptr`` to be
        the ``s`` of their next one. That is so exactly when the row before ``ptr`` holds a
        transition; after a stream's end it holds the final observation instead."""
        last = torch.as_tensor((self.ptr - 1) % self.rows, device=self.device)
        return self.valid[last, torch.as_tensor(self._envs, device=self.device)].cpu().numpy()

    # ----- checkpoints: only the filled rows, as tensors (safe for weights_only loading) ----------
    def state_dict(self) -> dict:
        """The filled rows and counters, with every open stream closed.

        A resumed run restarts its env copies, so the first observation a copy stores after loading
        begins a new stream. The pointer saved for a copy whose stream is open therefore skips the row
        holding its last ``s'``, exactly as :meth:`store` does at an episode's end, and that ``s'``
        stays where its transition finds it. The live buffer is not changed: saving a checkpoint
        never alters what the running agent experiences.
        """
        n = self.rows_used
        return dict(
            obs=self.obs_buf[:n].cpu(),
            act=self.act_buf[:n].cpu(),
            rew=self.rew_buf[:n].cpu(),
            term=self.term_buf[:n].cpu(),
            valid=self.valid[:n].cpu(),
            ptr=torch.as_tensor((self.ptr + self.open_streams()) % self.rows),
            rows_used=n,
            steps_stored=self.steps_stored,
        )

    def load_state_dict(self, state: dict) -> None:
        n = int(state["rows_used"])
        if n > self.rows or state["obs"].shape[1:] != self.obs_buf.shape[1:]:
            raise ValueError(
                f"saved replay buffer of shape {tuple(state['obs'].shape)} does not fit {tuple(self.obs_buf.shape)}"
            )
        self.obs_buf[:n] = state["obs"].to(self.device)
        self.act_buf[:n] = state["act"].to(self.device)
        self.rew_buf[:n] = state["rew"].to(self.device)
        self.term_buf[:n] = state["term"].to(self.device)
        self.valid.zero_()
        self.valid[:n] = state["valid"].to(self.device)
        self.ptr = state["ptr"].numpy().astype(np.int64)
        self.rows_used, self.steps_stored = n, int(state["steps_stored"])
