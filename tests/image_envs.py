"""Tiny image environments for tests: a learning task that takes seconds, not the hours of Atari."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class DotEnv(gym.Env):
    """A dark uint8 image with one bright dot, on its left or right half; the agent should act toward it.

    Each step shows a new dot, drawn at random. Discrete actions: 0 (left) or 1 (right), reward 1 for
    the dot's side, else 0. Continuous actions (``continuous=True``): a in [-1, 1], reward ``a`` when
    the dot is on the right, ``-a`` on the left. An episode lasts ``episode_len`` steps, so the best
    return is ``episode_len`` and acting at random earns half of it (discrete) or 0 (continuous).

    ``channels=None`` gives (H, W) frames, as Atari's preprocessing does before frame stacking; an
    integer gives (channels, H, W) with the dot in every channel.
    """

    metadata = {"render_modes": []}

    def __init__(
        self, size: int = 12, channels: int | None = 1, continuous: bool = False, episode_len: int = 10
    ):
        self.size, self.episode_len, self.continuous = size, episode_len, continuous
        shape = (size, size) if channels is None else (channels, size, size)
        self.observation_space = spaces.Box(0, 255, shape, dtype=np.uint8)
        self.action_space = (
            spaces.Box(-1.0, 1.0, (1,), dtype=np.float32) if continuous else spaces.Discrete(2)
        )
        self.side, self.t = 0, 0

    def _draw(self) -> np.ndarray:
        self.side = int(self.np_random.integers(2))
        half = self.size // 2
        row, col = self.np_random.integers(self.size), self.np_random.integers(half) + self.side * half
        img = np.zeros(self.observation_space.shape, dtype=np.uint8)
        img[..., row, col] = 255
        return img

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self._draw(), {}

    def step(self, action):
        if self.continuous:
            a = float(np.clip(np.asarray(action).reshape(-1)[0], -1.0, 1.0))
            reward = a if self.side == 1 else -a
        else:
            reward = 1.0 if int(action) == self.side else 0.0
        self.t += 1
        return self._draw(), reward, self.t >= self.episode_len, False, {}


class CounterFrameEnv(gym.Env):
    """(H, W) uint8 frames that count the steps: frame t of an episode is filled with the value
    ``(10 * episode + t) % 256``, so a stack of frames says exactly which steps it holds. Episodes end
    (terminated) after ``episode_len`` steps, or are truncated at random with ``truncate_prob``."""

    metadata = {"render_modes": []}

    def __init__(self, size: int = 6, episode_len: int = 7, truncate_prob: float = 0.0):
        self.observation_space = spaces.Box(0, 255, (size, size), dtype=np.uint8)
        self.action_space = spaces.Discrete(2)
        self.episode_len, self.truncate_prob = episode_len, truncate_prob
        self.episode, self.t = -1, 0

    def _frame(self) -> np.ndarray:
        return np.full(self.observation_space.shape, (10 * self.episode + self.t) % 256, dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return self._frame(), {}

    def step(self, action):
        self.t += 1
        truncated = bool(self.np_random.random() < self.truncate_prob)
        return self._frame(), 1.0, self.t >= self.episode_len, truncated, {}
