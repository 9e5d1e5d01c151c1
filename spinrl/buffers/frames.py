"""A replay buffer for stacked frames: each frame stored once, the stacks rebuilt when sampled.

An Atari observation is the last k = 4 frames, ``(4, 84, 84)`` uint8 (Gymnasium's
``FrameStackObservation``). Consecutive observations share k - 1 frames, so storing whole stacks keeps
every frame k times. :class:`FrameStackReplayBuffer` keeps the design of
:class:`spinrl.buffers.replay.ReplayBuffer` (one observation row per step, one stream per env copy, a
row of its own for an episode's final observation, streams closed in a saved buffer) but a row holds
only the observation's *newest* frame, plus its ``depth``: how many earlier frames of the same episode
the stack holds, at most k - 1. A sampled observation at row i of a copy is rebuilt from rows
i - k + 1 .. i of the same column; where the episode is younger than the stack, the missing frames are
padded exactly as ``FrameStackObservation`` pads them (its ``padding_type``): by default ("reset") the
episode's first frame repeated, or a constant frame ("zero", or one given)::

    row:    0    1    2    3*   4    5          (3* = the final frame of episode 1)
    frame:  f0   f1   f2   f3   g0   g1
    depth:  0    1    2    3    0    1
    stack of row 5 (k = 4): [g0, g0, g0, g1]    (reset padding: g0 repeated)

**The ring.** Writing row p overwrites a frame that the k - 1 rows after it (the oldest in the
ring) may still read as history, so each :meth:`~FrameStackReplayBuffer.store` marks those rows
as not sampleable; they are the next to be overwritten anyway. A copy's column must hold at least
k + 2 rows.

Memory per transition, Atari: 84 x 84 = 7056 bytes of frame, instead of 4 x 7056 for the stack
stored once, or 8 x 7056 for s and s' stored apart; the numbers for 1M transitions are in
benchmarks/results/atari-memory.md.

:func:`frame_stack_of` finds the ``FrameStackObservation`` inside the env copies; the buffer is used
only where the observations are exactly its stacks of 2-D frames. Other images (colour stacks,
observations transformed after stacking, asynchronous env copies) are stored whole, as uint8, by
:class:`~spinrl.buffers.replay.ReplayBuffer`.
"""

from __future__ import annotations

from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch

from spinrl.buffers.replay import ReplayBuffer
from spinrl.common.errors import UserError
from spinrl.envs.spaces import is_image_space


class FrameStack(NamedTuple):
    """How the env stacks its frames: ``size`` frames of ``frame_shape`` (H, W); the padding of a young
    episode is its first frame (``pad_frame`` None, Gymnasium's "reset") or the constant ``pad_frame``."""

    size: int
    frame_shape: tuple[int, int]
    pad_frame: np.ndarray | None


def frame_stack_of(envs: gym.vector.VectorEnv) -> FrameStack | None:
    """The frame stacking of the env copies' observations, read from their ``FrameStackObservation``.

    None unless the copies live in this process (a synchronous vector env), stack uint8 frames of 2
    dimensions, at least two of them, and hand out the stack as it is (the observation space is the
    wrapper's own).
    """
    copies = getattr(envs, "envs", None)
    if not copies:
        return None
    env, outer = copies[0], copies[0].observation_space
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.FrameStackObservation):
            frame_space = env.env.observation_space
            if (
                env.stack_size >= 2
                and len(frame_space.shape) == 2
                and np.dtype(frame_space.dtype) == np.uint8
                and outer.shape == env.observation_space.shape
                and np.dtype(outer.dtype) == np.uint8
            ):
                pad = None if env.padding_type == "reset" else np.asarray(env.padding_value, dtype=np.uint8)
                return FrameStack(int(env.stack_size), tuple(frame_space.shape), pad)
            return None
        env = env.env
    return None


class FrameStackReplayBuffer(ReplayBuffer):
    """A :class:`~spinrl.buffers.replay.ReplayBuffer` of stacked uint8 frames that stores each frame once.

    :meth:`store` takes whole stacks ``(num_envs, k, H, W)`` and :meth:`sample_batch` returns them,
    as uint8 ``(N, k, H, W)``; in between, only the newest frame of each is kept (module docstring).

    Args:
        stack: the env's frame stacking (:func:`frame_stack_of`).
        act_shape, size, num_envs, act_dtype, device: as for :class:`~spinrl.buffers.replay.ReplayBuffer`.
    """

    def __init__(
        self,
        stack: FrameStack,
        act_shape: tuple[int, ...],
        size: int,
        num_envs: int = 1,
        act_dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ):
        k = stack.size
        if int(size) // num_envs < k + 2:
            raise UserError(
                f"replay_size={size} is too small for {num_envs} env copies with {k} stacked frames: "
                f"give at least {(k + 2) * num_envs}"
            )
        super().__init__(stack.frame_shape, act_shape, size, num_envs, act_dtype, device, torch.uint8)
        self.stack_size = k
        # depth[row, copy]: how many earlier frames of its episode the observation's stack holds (< k).
        self.depth_buf = torch.zeros((self.rows, num_envs), dtype=torch.uint8, device=self.device)
        if self._np is not None:
            self._np[id(self.depth_buf)] = self.depth_buf.numpy()
        self.pad_frame = (
            None if stack.pad_frame is None else torch.as_tensor(stack.pad_frame, device=self.device)
        )
        # Frames back from the newest, for each place in the stack: k-1, ..., 1, 0.
        self._back = torch.arange(k - 1, -1, -1, device=self.device)
        self._ahead = np.arange(1, k)[:, None]  # the rows after a written one that read it as history
        self._open = np.zeros(num_envs, dtype=bool)  # does each copy's stream go on at ptr?
        self._depth_at_ptr = np.zeros(num_envs, dtype=np.int64)

    def store(
        self,
        obs: np.ndarray,
        act: np.ndarray,
        rew: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        stream_ends: np.ndarray,
    ) -> None:
        """As :meth:`ReplayBuffer.store <spinrl.buffers.replay.ReplayBuffer.store>`, with stacked
        observations ``(num_envs, k, H, W)``; only their newest frames are written."""
        rows, next_rows = self.ptr, (self.ptr + 1) % self.rows
        # A stream starts with an episode's first observation (a reset): nothing earlier in its stack.
        depth = np.where(self._open, self._depth_at_ptr, 0)
        next_depth = np.minimum(depth + 1, self.stack_size - 1)
        super().store(obs[:, -1], act, rew, next_obs[:, -1], terminated, stream_ends)
        self._write(self.depth_buf, rows, depth)
        self._write(self.depth_buf, next_rows, next_depth)
        # The oldest rows, which read the overwritten next_rows as history, can no longer be sampled.
        self._write(self.valid, (next_rows + self._ahead) % self.rows, False)
        self._open = ~np.asarray(stream_ends, dtype=bool)
        self._depth_at_ptr = next_depth

    def _observation_pairs(
        self, idx: torch.Tensor, next_idx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The stacks s at flat indices ``idx``, rebuilt from each row and the rows before it, and s'.

        s' (at ``next_idx``, the next row of the same episode) is s shifted by one frame, with the
        newest frame of its own row: its depth is one more than that of s (at most k - 1), so each of
        its frames is the next one of s, padding included. One gather of k + 1 frames per transition.
        """
        n = self.num_envs
        row, copy = idx // n, idx % n
        depth = self.depth_buf.view(-1).index_select(0, idx).long()
        back = torch.minimum(self._back.unsqueeze(0), depth.unsqueeze(1))  # (B, k): never past the episode
        src = ((row.unsqueeze(1) - back) % self.rows) * n + copy.unsqueeze(1)
        src = torch.cat([src, next_idx.unsqueeze(1)], dim=1)  # and the newest frame of s'
        frames = self.obs_buf.view(-1, *self.obs_shape).index_select(0, src.view(-1))
        frames = frames.view(idx.shape[0], self.stack_size + 1, *self.obs_shape)
        if self.pad_frame is not None:  # constant padding where the stack reaches before the episode
            before = self._back.unsqueeze(0) > depth.unsqueeze(1)
            before = torch.cat([before, torch.zeros_like(before[:, :1])], dim=1)[:, :, None, None]
            frames = torch.where(before, self.pad_frame, frames)
        return frames[:, :-1], frames[:, 1:]  # two views of one gathered tensor

    def nbytes(self) -> int:
        return super().nbytes() + self.depth_buf.numel()

    def state_dict(self) -> dict:
        """As :meth:`ReplayBuffer.state_dict <spinrl.buffers.replay.ReplayBuffer.state_dict>` (``obs``
        holds the frames), with the depths and the stack size."""
        state = super().state_dict()
        state.update(depth=self.depth_buf[: self.rows_used].cpu(), stack_size=self.stack_size)
        return state

    def load_state_dict(self, state: dict) -> None:
        if state.get("stack_size") != self.stack_size:
            raise ValueError(
                f"saved replay buffer stacks {state.get('stack_size')} frames, this one {self.stack_size}"
            )
        super().load_state_dict(state)
        self.depth_buf[: self.rows_used] = state["depth"].to(self.device)
        # Saved streams are closed: the env copies restart, and each begins a new stream.
        self._open[:] = False


def make_replay_buffer(
    envs, size: int, act_dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> ReplayBuffer:
    """The replay buffer for the vector env ``envs`` (its spaces, its number of copies): a
    :class:`ReplayBuffer` of float32 vectors, or of uint8 images; for stacked frames a
    :class:`FrameStackReplayBuffer` that keeps each frame once.

    ``act_dtype`` is how actions are stored: float32 for Box actions, int64 for DQN's indices.
    """
    obs_space, act_shape, num_envs = (
        envs.single_observation_space,
        envs.single_action_space.shape,
        envs.num_envs,
    )
    if not is_image_space(obs_space):
        return ReplayBuffer(int(np.prod(obs_space.shape)), act_shape, size, num_envs, act_dtype, device)
    stack = frame_stack_of(envs)
    if stack is not None:
        return FrameStackReplayBuffer(stack, act_shape, size, num_envs, act_dtype, device)
    return ReplayBuffer(obs_space.shape, act_shape, size, num_envs, act_dtype, device, torch.uint8)
