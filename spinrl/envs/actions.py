"""The one translation from the actions an agent works with to the actions an env takes.

Agents work with actions normalised to [-1, 1] for Box spaces and with indices 0..n-1 for Discrete ones;
:class:`ActionMap` turns them into the env's own. The off-policy networks' ``act`` and the training loops
both go through it.
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces


class ActionMap:
    """Agent actions -> env actions; the only place in spinrl's off-policy code where they differ.

    - Box: the actors end in tanh, so the agent (its networks, the replay buffer, the noise and the
      random actions) works in [-1, 1]^act_dim. The env gets ``low + (a + 1) / 2 * (high - low)``,
      an affine map that also fits bounds that are not symmetric, such as [0, 1] (Spinning Up scaled
      by ``high`` alone, which assumes ``low = -high``).
    - Discrete: the agent picks an index 0..n-1 (a row of the Q-network's output); the env's actions
      are ``start + index``.

    Works on NumPy arrays (the training loop, returned in the space's dtype) and on torch tensors on
    any device (the networks' ``act``).
    """

    def __init__(self, act_space: spaces.Space) -> None:
        self.is_box = isinstance(act_space, spaces.Box)
        if self.is_box:
            low, high = act_space.low.astype(np.float64), act_space.high.astype(np.float64)
            self.low, self.half_range, self.dtype = low, 0.5 * (high - low), act_space.dtype
            self._low32 = torch.as_tensor(act_space.low, dtype=torch.float32)
            self._high32 = torch.as_tensor(act_space.high, dtype=torch.float32)
            self._on_device: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        else:
            self.start = int(act_space.start)

    def __call__(self, a: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        if not self.is_box:
            return a + self.start
        if isinstance(a, torch.Tensor):
            low, half_range = self._tensors(a.device)
            return low + (a + 1.0) * half_range
        return (self.low + (a + 1.0) * self.half_range).astype(self.dtype)

    def to_agent(self, a: torch.Tensor) -> torch.Tensor:
        """The inverse map for Box spaces, on tensors: env actions -> normalised actions.

        Used by :mod:`spinrl.nets.custom` for Spinning Up-style actors, whose outputs are env actions.
        """
        low, half_range = self._tensors(a.device)
        return (a - low) / half_range - 1.0

    def _tensors(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The bounds as float32 tensors on ``device``, copied there once.

        Made as ordinary tensors even when the first call comes under ``torch.inference_mode`` (acting):
        an inference tensor could not enter a later loss that autograd differentiates.
        """
        if device not in self._on_device:
            with torch.inference_mode(False):
                low, high = self._low32.to(device), self._high32.to(device)
                self._on_device[device] = (low, 0.5 * (high - low))
        return self._on_device[device]
