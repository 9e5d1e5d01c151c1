"""What kind of observation a space holds: images or vectors.

An image is a ``Box`` of dtype uint8 with two or three dimensions; its layout decides where the channels
are (see :mod:`spinrl.nets.encoders`, which turns images into features). Env handling, buffers,
normalisers and networks all ask this module, so the rule is written once.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

_CHANNEL_COUNTS = (1, 3, 4)


def image_layout(space: spaces.Space) -> str | None:
    """``"CHW"``, ``"HWC"`` or ``"HW"`` for an image space (see the module docstring), else None."""
    if not isinstance(space, spaces.Box) or np.dtype(space.dtype) != np.uint8:
        return None
    shape = space.shape
    if len(shape) == 2:
        return "HW"
    if len(shape) == 3:
        if shape[-1] in _CHANNEL_COUNTS and shape[0] not in _CHANNEL_COUNTS:
            return "HWC"
        return "CHW"
    return None


def is_image_space(space: spaces.Space) -> bool:
    """Whether ``space`` holds images: a uint8 ``Box`` with 2 or 3 dimensions (module docstring)."""
    return image_layout(space) is not None


def image_chw(space: spaces.Space) -> tuple[int, int, int]:
    """The (channels, height, width) of an image space's observations, channels first."""
    layout, shape = image_layout(space), space.shape
    if layout == "HW":
        return 1, shape[0], shape[1]
    if layout == "HWC":
        return shape[2], shape[0], shape[1]
    if layout == "CHW":
        return shape[0], shape[1], shape[2]
    raise ValueError(f"{space} is not an image space")
