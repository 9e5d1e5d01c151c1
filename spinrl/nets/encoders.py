"""Encoders: what turns an image observation into a feature vector that a network's heads read.

A vector observation goes straight into an MLP. An image goes first through a convolutional
*encoder*, and the heads (policy, value, Q-functions) are small MLPs on its features. The networks in
:mod:`spinrl.nets` and :mod:`spinrl.nets.q_nets` build one encoder per network, shared by its heads.

**What counts as an image** (:func:`spinrl.envs.spaces.is_image_space`): a ``Box`` of dtype uint8 with two or three
dimensions. Three dimensions are channels first, ``(C, H, W)`` (Atari after frame stacking is
``(4, 84, 84)``), unless only the last one looks like a channel count (1, 3 or 4) and the first does
not: then ``(H, W, C)``, as RGB renders come, and the encoder moves the channels first itself. Two
dimensions are one grey channel, ``(H, W)``.

**Pixels stay uint8 until the network.** Buffers and env copies hold bytes (a quarter of float32);
the encoder converts to float32 and scales by 1/255 as its first step. It expects pixel values in
0..255 whatever the dtype it is given, so float frames holding 0..255 give the same features.

**Built-in encoders**, picked by name with ``ac_kwargs`` (``encoder="nature"``, ``features_dim=512``):

=========  ======================================================  ==================  ============
name       layers                                                  smallest image      features
=========  ======================================================  ==================  ============
nature     conv 32x8x8 stride 4, conv 64x4x4 s2, conv 64x3x3 s1,   36x36               512
           linear (Mnih et al. 2015, "Human-level control ...")
small      conv 16x3x3 stride 1, conv 32x3x3 s1, linear            5x5                 128
=========  ======================================================  ==================  ============

Each convolution and the final linear layer are followed by a ReLU. The Nature stack shrinks an image
by 4, 2 and 1 pixels of stride with kernels of 8, 4 and 3: 84x84 becomes 20, 9 and 7 pixels a side,
so 64 x 7 x 7 = 3136 numbers reach the linear layer. Below 36x36 the third convolution has nothing
left to read; :class:`NatureCNN` then refuses the image in one line that names its size and points to
``encoder="small"``, meant for the few-pixel images of tests and toy tasks.

**Your own encoder**: ``encoder=`` also takes a class or function called as
``encoder(observation_space, features_dim=...)`` (``features_dim`` only when given) that returns a
module mapping a batch of observations, shape ``(B, *observation_space.shape)``, to ``(B, F)``;
:func:`make_encoder` measures F with one forward pass on a blank observation.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from gymnasium import spaces
from torch import nn

from spinrl.common.errors import UserError
from spinrl.envs.spaces import image_chw, image_layout


class _PixelInput(nn.Module):
    """The first step of every built-in encoder: uint8 (or 0..255 float) observations of any batch shape
    -> float32 ``(N, C, H, W)`` in [0, 1]."""

    def __init__(self, observation_space: spaces.Space):
        super().__init__()
        self.layout = image_layout(observation_space)
        self.chw = image_chw(observation_space)
        self.dims = len(observation_space.shape)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.reshape(-1, *obs.shape[obs.dim() - self.dims :])
        if self.layout == "HW":
            x = x.unsqueeze(1)
        elif self.layout == "HWC":
            x = x.permute(0, 3, 1, 2)
        # Not in place: a float tensor passed in must not be scaled under its owner's feet.
        return x.to(torch.float32) * (1.0 / 255.0)

    def extra_repr(self) -> str:
        return f"layout={self.layout}, scale=1/255"


def _conv_out(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


class NatureCNN(nn.Module):
    """The convolutional stack of Nature DQN (Mnih et al. 2015, Methods, "Model architecture").

    Args:
        observation_space: an image space (:func:`is_image_space`) of at least 36x36 pixels.
        features_dim: width of the final linear layer, the feature vector the heads read (512).
    """

    LAYERS = ((32, 8, 4), (64, 4, 2), (64, 3, 1))  # (out channels, kernel, stride)
    MIN_SIZE = 36

    def __init__(self, observation_space: spaces.Space, features_dim: int = 512):
        super().__init__()
        channels, height, width = image_chw(observation_space)
        if min(height, width) < self.MIN_SIZE:
            raise UserError(
                f"the Nature CNN needs images of at least {self.MIN_SIZE}x{self.MIN_SIZE} pixels, got "
                f"{height}x{width} (observation shape {observation_space.shape}); for small images pass "
                "ac_kwargs encoder='small'"
            )
        self.pixels = _PixelInput(observation_space)
        layers: list[nn.Module] = []
        for out_channels, kernel, stride in self.LAYERS:
            layers += [nn.Conv2d(channels, out_channels, kernel, stride), nn.ReLU()]
            channels, height, width = (
                out_channels,
                _conv_out(height, kernel, stride),
                _conv_out(width, kernel, stride),
            )
        # The convolutions and the linear layer are kept apart: a Sequential of layers with a Linear in it
        # reads, to spinrl.record.saved_policy, as an MLP whose sizes it could describe.
        self.convs = nn.Sequential(*layers, nn.Flatten())
        self.linear = nn.Linear(channels * height * width, int(features_dim))
        self.features_dim = int(features_dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(self.convs(self.pixels(obs))))


class SmallCNN(nn.Module):
    """A light encoder for images of a few pixels: two 3x3 convolutions with stride 1, then a linear layer.

    Args:
        observation_space: an image space of at least 5x5 pixels.
        features_dim: width of the final linear layer (128).
        channels: output channels of the two convolutions ((16, 32)).
    """

    MIN_SIZE = 5

    def __init__(
        self, observation_space: spaces.Space, features_dim: int = 128, channels: tuple[int, int] = (16, 32)
    ):
        super().__init__()
        in_channels, height, width = image_chw(observation_space)
        if min(height, width) < self.MIN_SIZE:
            raise UserError(
                f"the small CNN needs images of at least {self.MIN_SIZE}x{self.MIN_SIZE} pixels, got "
                f"{height}x{width} (observation shape {observation_space.shape})"
            )
        c1, c2 = (int(c) for c in channels)
        self.pixels = _PixelInput(observation_space)
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3), nn.ReLU(), nn.Conv2d(c1, c2, 3), nn.ReLU(), nn.Flatten()
        )
        self.linear = nn.Linear(c2 * (height - 4) * (width - 4), int(features_dim))
        self.features_dim = int(features_dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(self.convs(self.pixels(obs))))


ENCODERS: dict[str, type[nn.Module]] = {"nature": NatureCNN, "small": SmallCNN}


def make_encoder(
    observation_space: spaces.Space,
    encoder: str | Callable[..., nn.Module] = "nature",
    features_dim: int | None = None,
) -> nn.Module:
    """The encoder for an image space: a built-in one by name, or ``encoder(observation_space, ...)``.

    The module returned has ``features_dim``, the length of the feature vector it outputs.
    A name that is not a built-in encoder, or a ``features_dim`` that is not a positive integer, is
    refused in one line.
    """
    if features_dim is not None:
        if isinstance(features_dim, bool) or not float(features_dim).is_integer() or int(features_dim) <= 0:
            raise UserError(f"features_dim={features_dim!r} is not valid: give a positive integer, e.g. 512")
        features_dim = int(features_dim)
    kwargs = {} if features_dim is None else {"features_dim": features_dim}
    if isinstance(encoder, str):
        cls = ENCODERS.get(encoder.lower())
        if cls is None:
            recorded = (
                " (config.json records a class by its name only: rebuild the network with actor_critic=)"
            )
            raise UserError(
                f"encoder {encoder!r} is not valid: use one of {', '.join(ENCODERS)}, or pass a class from "
                f"Python{recorded if '.' in encoder else ''}"
            )
        return cls(observation_space, **kwargs)
    if not callable(encoder):
        raise UserError(f"encoder {encoder!r} is not valid: give a name ({', '.join(ENCODERS)}) or a class")
    module = encoder(observation_space, **kwargs)
    if not isinstance(getattr(module, "features_dim", None), int):
        # Measure the output width once, on a blank observation, leaving torch's random state as it was.
        blank = torch.zeros((1, *observation_space.shape), dtype=torch.uint8)
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            out = module(blank)
        if out.dim() != 2 or out.shape[0] != 1:
            raise UserError(
                f"encoder {encoder!r} must map a batch of observations (B, *{observation_space.shape}) to "
                f"(B, features), got shape {tuple(out.shape)} for B = 1"
            )
        module.features_dim = int(out.shape[1])
    return module


class DetachedFeatures(nn.Module):
    """Another head's encoder, read without letting gradients flow back into it.

    The encoder is held as a plain attribute, not a registered submodule: it belongs to (is trained,
    saved and moved to a device with) the head that owns it, and appears once in ``parameters()`` and
    ``state_dict()`` of the whole network. ``copy.deepcopy`` of the whole network keeps the sharing.
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        object.__setattr__(self, "encoder", encoder)
        self.features_dim = encoder.features_dim

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.encoder(obs)

    def extra_repr(self) -> str:
        return f"{type(self.encoder).__name__} owned by another head, no gradient"
