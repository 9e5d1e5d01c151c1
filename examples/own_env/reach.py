"""An environment of your own, ready for spinrl: walk a point along a line to a target.

Importing this module registers ``Reach-v0`` with Gymnasium. spinrl then trains it from the command
line as ``--env reach:Reach-v0``: Gymnasium's ``module:EnvId`` form imports ``reach`` first, in every
process that makes the env (grid variants, MPI ranks, ``spinrl test_policy``). See
docs/user/own-env.md for the walk-through.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

STEP = 0.1  # how far one move goes
CLOSE_ENOUGH = 0.05  # the episode ends once the point is this near the target


class Reach(gym.Env):
    """A point at x in [-1, 1] must reach a target g in [-1, 1], both drawn at random on reset.

    - Observation: ``[x, g]`` (a Box of two float32 numbers).
    - Action: move left, stay or move right, as -1, 0 or 1: ``Discrete(3, start=-1)``, so the env
      takes the move itself, not an index.
    - Reward: ``-|x - g|`` after each move, so a direct walk collects the least penalty.
    - The episode terminates once ``|x - g| < 0.05``; the registration below truncates it after 50
      steps otherwise.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode: str | None = None):
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Discrete(3, start=-1)
        self.render_mode = render_mode
        self.x = self.goal = 0.0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)  # seeds self.np_random: the same seed gives the same episode
        self.x, self.goal = (float(v) for v in self.np_random.uniform(-1.0, 1.0, size=2))
        return self._obs(), {}

    def step(self, action):
        self.x = float(np.clip(self.x + STEP * int(action), -1.0, 1.0))
        distance = abs(self.x - self.goal)
        return self._obs(), -distance, distance < CLOSE_ENOUGH, False, {}

    def render(self) -> np.ndarray:
        """A 32 x 200 picture of the line: the target in green, the point in red."""
        frame = np.full((32, 200, 3), 255, dtype=np.uint8)
        for value, colour, half_height in ((self.goal, (0, 160, 0), 14), (self.x, (220, 0, 0), 8)):
            col = int(round((value + 1.0) / 2.0 * 195))
            frame[16 - half_height : 16 + half_height, col : col + 5] = colour
        return frame

    def _obs(self) -> np.ndarray:
        return np.array([self.x, self.goal], dtype=np.float32)


gym.register(id="Reach-v0", entry_point=Reach, max_episode_steps=50)
