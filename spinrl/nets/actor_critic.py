"""Actor-critic networks for the on-policy algorithms (VPG, TRPO, PPO).

A stochastic policy needs two computations (Spinning Up, "Key Concepts"): sampling an action, and
the log-likelihood of a given action. Categorical policies serve Discrete action spaces; diagonal
Gaussian policies serve Box action spaces, with a state-independent vector of log standard
deviations. ``torch.distributions`` does the math.

Shapes (B = batch size, obs_dim, act_dim):

===================  ======================  =============================================
call                 returns                 shape
===================  ======================  =============================================
``ac.step(obs)``     action, value, logp     (B, act_dim) or (B,); (B,); (B,)
``ac.act(obs)``      action                  as above
``ac.pi(obs, act)``  distribution, logp      logp (B,)
``ac.v(obs)``        value estimate          (B,)  (not (B, 1): see MLPCritic)
===================  ======================  =============================================

**Image observations** (:func:`spinrl.nets.encoders.is_image_space`: uint8 frames such as Atari's
(4, 84, 84)) go through a convolutional encoder first (:mod:`spinrl.nets.encoders`), and the MLPs above
become heads on its features. One encoder serves both heads; see :class:`MLPActorCritic` for who
trains it.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.distributions import Categorical, Distribution, Normal

from spinrl.common.errors import UserError
from spinrl.envs.spaces import is_image_space
from spinrl.nets.encoders import DetachedFeatures, make_encoder

# Argument validation in torch.distributions costs more than the tiny networks here on every step.
torch.distributions.Distribution.set_default_validate_args(False)

LOG_2PI = float(np.log(2 * np.pi))


def _why_not_an_activation(cls: type[nn.Module]) -> str | None:
    """Why ``cls`` cannot sit between two layers of an MLP, or None when it can.

    It must be built without arguments, keep the shape of its input, act on each entry alone
    (element-wise) and give the same output for the same input. The probe runs on a fixed tensor and
    restores torch's random state afterwards, so it changes nothing in a seeded run.
    """
    x = torch.linspace(-3.0, 3.0, 12).reshape(3, 4)
    nudged = x.clone()
    nudged[1, 2] += 0.5
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            act = cls()
        except Exception:
            return "it cannot be built without arguments"
        try:
            y, y_again, y_nudged = act(x), act(x), act(nudged)
        except Exception:
            return "it fails on a batch of vectors"
        if not all(isinstance(t, torch.Tensor) and t.shape == x.shape for t in (y, y_again, y_nudged)):
            return "it changes the shape of its input"
        if not torch.equal(y, y_again):
            return "its output is random"
        moved = y_nudged != y
        moved[1, 2] = False
        if moved.any():
            return "it mixes the entries of a vector instead of acting on each alone"
    return None


def _torch_activation_classes() -> dict[str, type[nn.Module]]:
    """The module classes defined in torch.nn's activation module, by lower-case name."""
    import torch.nn.modules.activation as acts

    return {
        name.lower(): cls
        for name in dir(acts)
        if isinstance(cls := getattr(acts, name), type)
        and issubclass(cls, nn.Module)
        and cls.__module__ == acts.__name__
        and hasattr(nn, name)
    }


@functools.cache
def activation_names() -> tuple[str, ...]:
    """The names of torch.nn's activations that an MLP here accepts (see :func:`resolve_activation`)."""
    classes = _torch_activation_classes().values()
    return tuple(sorted(c.__name__ for c in classes if _why_not_an_activation(c) is None))


def resolve_activation(activation: type[nn.Module] | str) -> type[nn.Module]:
    """An activation class from ``torch.nn``, given itself or its name (``"torch.nn.Tanh"``, ``"Tanh"``).

    Names are looked up, never evaluated, among torch.nn's element-wise activations that need no
    arguments (Tanh, ReLU, ELU, ...). Threshold (which needs arguments), GLU (which halves the
    width), Softmax (which mixes a vector's entries) and RReLU (random while training) are refused in
    one line that says why and lists the valid names. A class passed directly gets the same check.
    """
    if isinstance(activation, type) and issubclass(activation, nn.Module):
        cls, shown = activation, activation.__name__
    else:
        name = str(activation)
        for prefix in ("torch.nn.modules.activation.", "torch.nn.", "nn."):
            if name.startswith(prefix):
                name = name[len(prefix) :]
        cls, shown = _torch_activation_classes().get(name.lower()), repr(activation)
    reason = _why_not_an_activation(cls) if cls is not None else "it is not an activation of torch.nn"
    if reason is None:
        return cls
    raise UserError(
        f"activation {shown} is not valid: {reason}; use one of torch.nn's {', '.join(activation_names())}"
    )


def mlp(
    sizes: Sequence[int], activation: type[nn.Module], output_activation: type[nn.Module] = nn.Identity
) -> nn.Sequential:
    """A multi-layer perceptron: ``sizes[0]`` inputs, ``sizes[-1]`` outputs, ``activation`` between."""
    layers: list[nn.Module] = []
    for j in range(len(sizes) - 1):
        act = activation if j < len(sizes) - 2 else output_activation
        layers += [nn.Linear(sizes[j], sizes[j + 1]), act()]
    return nn.Sequential(*layers)


def with_encoder(encoder: nn.Module | None, head: nn.Module) -> nn.Module:
    """``head`` itself for vector observations; ``encoder`` then ``head`` for images (``net[-1]`` is
    the head either way, so code that already has the features can run the head alone)."""
    return head if encoder is None else nn.Sequential(encoder, head)


def shared_encoder_features(ac: nn.Module, obs: torch.Tensor) -> torch.Tensor | None:
    """The features a critic reads from the policy's image encoder, for a whole batch; None otherwise.

    With a shared image encoder (:class:`MLPActorCritic` on images) the critic reads the policy's
    encoder without gradient, and the critic's steps do not move the policy: the features of one batch
    are the same for all ``train_v_iters`` of them. Computed once, they spare train_v_iters - 1 passes
    of the whole batch through the convolutions per epoch; ``ac.v(obs, features)`` then runs the head
    alone, with the same numbers. Vector observations, a critic with its own encoder
    (``share_encoder=False``) and custom networks get None: the critic reads ``obs`` as before.
    """
    if not getattr(ac, "share_encoder", False):  # set by MLPActorCritic, as step() reads it
        return None
    with torch.no_grad():
        return ac.encoder(obs)


def orthogonal_init(net: nn.Module, last_layer_gain: float) -> None:
    """Orthogonal weights and zero biases for every linear and convolutional layer of ``net``: gain
    sqrt(2) (suited to ReLU and tanh hidden layers), ``last_layer_gain`` for its output layer."""
    layers = [m for m in net.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    for i, layer in enumerate(layers):
        nn.init.orthogonal_(layer.weight, gain=last_layer_gain if i == len(layers) - 1 else np.sqrt(2))
        nn.init.zeros_(layer.bias)


def count_vars(module: nn.Module) -> int:
    """How many numbers ``module`` learns: the entries of all its parameters."""
    return sum(p.numel() for p in module.parameters())


class MLPCategoricalActor(nn.Module):
    """pi(a|s) = Categorical(logits = MLP(s)), for Discrete action spaces."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_sizes: Sequence[int],
        activation: type[nn.Module],
        encoder: nn.Module | None = None,
    ):
        super().__init__()
        self.logits_net = with_encoder(encoder, mlp([obs_dim, *hidden_sizes, act_dim], activation))

    def distribution(self, obs: torch.Tensor) -> Distribution:
        return Categorical(logits=self.logits_net(obs))

    def log_prob(self, pi: Distribution, act: torch.Tensor) -> torch.Tensor:
        return pi.log_prob(act)

    def sample(
        self, obs: torch.Tensor, features: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample actions and their log-likelihoods (the same math as Categorical, without its overhead).

        ``features``, when given, is the image encoder's output for ``obs``: only the head runs.
        """
        logits = self.logits_net(obs) if features is None else self.logits_net[-1](features)
        logp_all = torch.log_softmax(logits, dim=-1)
        # Inverse-CDF sampling: the first action whose cumulative probability exceeds u ~ U(0, 1).
        # (torch.multinomial does the same, with far more overhead per call.)
        cdf = logp_all.exp().cumsum(-1)
        u = torch.rand(cdf.shape[:-1] + (1,), device=cdf.device)
        a = (cdf < u).sum(-1, keepdim=True).clamp_(max=cdf.shape[-1] - 1)
        return a.squeeze(-1), logp_all.gather(-1, a).squeeze(-1)

    def forward(self, obs: torch.Tensor, act: torch.Tensor | None = None):
        """The action distribution for ``obs``, and the log-likelihood of ``act`` under it if given."""
        pi = self.distribution(obs)
        return pi, None if act is None else self.log_prob(pi, act)


class MLPGaussianActor(nn.Module):
    """pi(a|s) = N(mu = MLP(s), diag(exp(log_std))^2), for Box action spaces.

    ``log_std`` is a learned vector that does not depend on the state, started at ``log_std_init``
    (-0.5 by default: std ~0.6).
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_sizes: Sequence[int],
        activation: type[nn.Module],
        encoder: nn.Module | None = None,
        log_std_init: float = -0.5,
    ):
        super().__init__()
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))
        self.mu_net = with_encoder(encoder, mlp([obs_dim, *hidden_sizes, act_dim], activation))

    def distribution(self, obs: torch.Tensor) -> Distribution:
        return Normal(self.mu_net(obs), torch.exp(self.log_std))

    def log_prob(self, pi: Distribution, act: torch.Tensor) -> torch.Tensor:
        # Diagonal Gaussian: the log-likelihood of the vector is the sum over its independent dimensions.
        return pi.log_prob(act).sum(axis=-1)

    def sample(
        self, obs: torch.Tensor, features: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample a = mu + std * z, z ~ N(0, I), and its log-likelihood
        log pi(a|s) = -1/2 * sum_i ((a_i - mu_i)^2 / std_i^2 + 2 log std_i + log 2 pi).

        ``features``, when given, is the image encoder's output for ``obs``: only the head runs."""
        mu = self.mu_net(obs) if features is None else self.mu_net[-1](features)
        z = torch.randn_like(mu)
        a = mu + torch.exp(self.log_std) * z
        logp = -0.5 * (z.pow(2) + 2 * self.log_std + LOG_2PI).sum(-1)
        return a, logp

    def forward(self, obs: torch.Tensor, act: torch.Tensor | None = None):
        pi = self.distribution(obs)
        return pi, None if act is None else self.log_prob(pi, act)


class MLPCritic(nn.Module):
    """V(s) = MLP(s)."""

    def __init__(
        self,
        obs_dim: int,
        hidden_sizes: Sequence[int],
        activation: type[nn.Module],
        encoder: nn.Module | None = None,
    ):
        super().__init__()
        self.v_net = with_encoder(encoder, mlp([obs_dim, *hidden_sizes, 1], activation))

    def forward(self, obs: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """V(obs); with ``features`` (the image encoder's output for ``obs``) only the head runs."""
        v = self.v_net(obs) if features is None else self.v_net[-1](features)
        # (B, 1) -> (B,). Left as (B, 1), V minus (B,) returns would broadcast to a (B, B) matrix and
        # the value loss would quietly average the wrong differences.
        return torch.squeeze(v, -1)


class MLPActorCritic(nn.Module):
    """A policy ``pi`` and a value function ``v``, built from the env's spaces.

    Vector observations: separate MLPs for the two. Image observations: one convolutional encoder
    (:mod:`spinrl.nets.encoders`) and an MLP head on its features for each.

    **Who trains a shared encoder.** VPG, TRPO and PPO update ``pi`` and ``v`` with separate optimisers,
    one after the other, and only the policy steps are checked (PPO's KL stop, TRPO's trust region).
    The encoder therefore belongs to ``pi``: it is among ``pi.parameters()``, trained by the policy
    objective, while ``v`` reads its features without gradient (:class:`spinrl.nets.encoders.DetachedFeatures`).
    Were the value steps also to move the encoder, they would change the policy after its step was
    accepted, by an amount nothing bounds, and PPO would no longer be PPO. With ``share_encoder=False``
    the critic gets an encoder of its own, trained by the value loss: sound as well, at twice the cost
    of the convolutions.

    Args:
        observation_space: a flat Box (spinrl flattens vector observations first) or an image space.
        action_space: Box (diagonal Gaussian policy) or Discrete (categorical policy).
        hidden_sizes: units per hidden layer, for both networks: (64, 64) by default for vectors, none
            for images (the heads are then one linear layer on the encoder's features, as in the Nature
            DQN and the usual Atari PPO networks).
        activation: an activation class from torch.nn, or its name (between the heads' hidden layers).
        encoder: images only: "nature" (default), "small", or a class (see :func:`spinrl.nets.encoders.make_encoder`).
        features_dim: images only: width of the encoder's output (512 for "nature").
        share_encoder: images only: one encoder owned by the policy (True) or one for each network.
        ortho_init: start every layer from an orthogonal matrix (gain sqrt 2, zero biases) and the
            policy's last layer 100 times smaller, so the first actions are near the mean with the
            full starting noise (Andrychowicz et al. 2021, "What Matters in On-Policy RL"); False
            (default) keeps PyTorch's default initialisation, as Spinning Up does.
        log_std_init: Box actions: the starting log standard deviation of the Gaussian policy
            (-0.5, std ~0.6); lower starts with less exploration noise (RL Zoo's MuJoCo PPO uses -2).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        hidden_sizes: Sequence[int] | None = None,
        activation: type[nn.Module] | str = nn.Tanh,
        encoder: str | type[nn.Module] = "nature",
        features_dim: int | None = None,
        share_encoder: bool = True,
        ortho_init: bool = False,
        log_std_init: float = -0.5,
    ):
        super().__init__()
        activation = resolve_activation(activation)
        image = is_image_space(observation_space)
        if hidden_sizes is None:
            hidden_sizes = () if image else (64, 64)
        hidden_sizes = check_hidden_sizes(hidden_sizes)
        pi_encoder = v_encoder = None
        if image:
            pi_encoder = make_encoder(observation_space, encoder, features_dim)
            v_encoder = (
                DetachedFeatures(pi_encoder)
                if share_encoder
                else make_encoder(observation_space, encoder, features_dim)
            )
            obs_dim = pi_encoder.features_dim
        else:
            obs_dim = int(np.prod(observation_space.shape))
        # Not a registered submodule (pi owns it); kept so that code can tell an image network apart.
        object.__setattr__(self, "encoder", pi_encoder)
        self.share_encoder = image and share_encoder
        if isinstance(action_space, spaces.Box):
            self.pi = MLPGaussianActor(
                obs_dim, action_space.shape[0], hidden_sizes, activation, pi_encoder, log_std_init
            )
        elif isinstance(action_space, spaces.Discrete):
            self.pi = MLPCategoricalActor(obs_dim, int(action_space.n), hidden_sizes, activation, pi_encoder)
            self.action_start = int(action_space.start)  # act() returns the env's actions: start + index
        else:
            raise UserError(
                f"MLPActorCritic cannot handle the action space {action_space}; use Box or Discrete"
            )
        self.v = MLPCritic(obs_dim, hidden_sizes, activation, v_encoder)
        if ortho_init:
            orthogonal_init(self.pi, last_layer_gain=0.01)
            orthogonal_init(self.v, last_layer_gain=1.0)

    @torch.inference_mode()
    def step(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample actions for a batch of observations; also return V(s) and log pi(a|s)."""
        # Images with one encoder: run it once, and both heads read its features (the same numbers
        # as two passes, at half the cost of the convolutions while collecting experience).
        features = self.encoder(obs) if self.share_encoder else None
        a, logp = self.pi.sample(obs, features)
        return a, self.v(obs, features), logp

    @torch.inference_mode()
    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """The env's actions; ``deterministic`` takes the mean (Gaussian) or the most likely action
        (categorical, then ``start + index`` for a ``Discrete(n, start)`` space)."""
        pi = self.pi.distribution(obs)
        if isinstance(pi, Normal):
            return pi.mean if deterministic else pi.sample()
        return (pi.probs.argmax(-1) if deterministic else pi.sample()) + self.action_start


def check_hidden_sizes(hidden_sizes: int | Sequence[int]) -> tuple[int, ...]:
    """``hidden_sizes`` as a tuple of positive integers (one number means one layer); anything else is
    refused in one line."""
    if isinstance(hidden_sizes, int):
        hidden_sizes = (hidden_sizes,)
    try:
        # A string is refused rather than read one character per layer ("64" -> layers of 6 and 4).
        if isinstance(hidden_sizes, str | bytes) or any(isinstance(h, str | bytes) for h in hidden_sizes):
            raise TypeError
        sizes = tuple(int(h) for h in hidden_sizes)
    except (TypeError, ValueError):
        raise UserError(
            f"hidden_sizes {hidden_sizes!r} is not valid: give a list of positive integers, e.g. [64,64]"
        ) from None
    if any(h <= 0 for h in sizes) or any(float(h) != int(float(h)) for h in hidden_sizes):
        raise UserError(
            f"hidden_sizes {list(hidden_sizes)!r} is not valid: give positive integers, e.g. [64,64]"
        )
    return sizes
