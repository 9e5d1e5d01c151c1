"""Networks with Q-functions, for the off-policy algorithms: DDPG, TD3, SAC and DQN.

- :class:`MLPDeterministicActorCritic` (DDPG) and :class:`MLPTwinActorCritic` (TD3): a deterministic
  actor and one or two Q-functions.
- :class:`MLPSquashedGaussianActorCritic` (SAC): a tanh-squashed Gaussian actor, two Q-functions.
- :class:`MLPQNetwork` (DQN): one Q-value per discrete action.

**Actions.** Actors work in the normalised box [-1, 1]^act_dim (tanh outputs); the critics take
normalised actions too, and the replay buffer stores them. ``act`` hands back actions the env can
take, translated by :class:`spinrl.envs.actions.ActionMap`, the same map the training loops use.

**Critics.** The Q-functions of TD3 and SAC (two each) and DDPG (one) are one module,
:class:`MLPQEnsemble`, whose layers hold the stacked weights of every member: one batched matmul
(``torch.baddbmm``) per layer evaluates all of them, instead of one small matmul per member. That
halves the kernel launches (what limits small networks on a GPU); on a CPU the matmuls themselves
dominate and the two forms cost about the same.

Shapes (B = batch size, K = number of Q-functions, n = number of discrete actions):

=========================  ==========================  =======================================
call                       returns                     shape
=========================  ==========================  =======================================
``ac.act(obs, det)``       actions the env takes        (B, act_dim), or (B,) for DQN
``ac.pi(obs)``             normalised action            (B, act_dim)  (DDPG, TD3)
``ac.pi(obs, det)``        normalised action, logp      (B, act_dim), (B,)  (SAC)
``ac.q(obs, act)``         Q(s, a) of every member      (K, B)
``ac.q(obs)``              Q(s, .) for DQN              (1, B, n)
=========================  ==========================  =======================================

**Image observations** (:func:`spinrl.nets.encoders.is_image_space`) go through one convolutional encoder
(:mod:`spinrl.nets.encoders`) whose features replace the observation vector: Q(s, a) reads the features
concatenated with the action. The encoder belongs to the critic ``q``: the Q-losses train it, and the
actor reads its features without gradient (:class:`spinrl.nets.encoders.DetachedFeatures`), as in SAC-AE
and DrQ (Yarats et al. 2019, 2021), where letting the actor's loss into the encoder made learning
unstable. The target critic holds its own copy of the encoder, which follows by Polyak averaging like
the rest of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import nn

from spinrl.common.errors import UserError
from spinrl.envs.actions import ActionMap
from spinrl.envs.spaces import is_image_space
from spinrl.nets.actor_critic import check_hidden_sizes, mlp, resolve_activation, with_encoder
from spinrl.nets.encoders import DetachedFeatures, make_encoder

LOG_STD_MAX = 2
LOG_STD_MIN = -20


class EnsembleLinear(nn.Module):
    """K independent linear layers applied at once: ``x (K, B, in) -> (K, B, out)``.

    Each member is initialised like ``nn.Linear`` (uniform in +-1/sqrt(in_features)).
    """

    def __init__(self, num_members: int, in_features: int, out_features: int):
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(
            torch.empty(num_members, in_features, out_features).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.empty(num_members, 1, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class MLPQEnsemble(nn.Module):
    """K Q-networks with identical architecture and separate weights, evaluated in one pass.

    ``forward(obs, act)`` gives Q(s, a) of every member, shape (K, B). With ``act_dim = 0`` and
    ``out_dim = n`` it is DQN's Q(s, .), shape (K, B, n). With an ``encoder`` (image observations),
    ``obs_dim`` is the width of its features, and all members read the same features.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_sizes: Sequence[int],
        activation: type[nn.Module],
        num_members: int = 2,
        out_dim: int = 1,
        encoder: nn.Module | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        sizes = [obs_dim + act_dim, *hidden_sizes, out_dim]
        layers: list[nn.Module] = []
        for j in range(len(sizes) - 1):
            layers.append(EnsembleLinear(num_members, sizes[j], sizes[j + 1]))
            if j < len(sizes) - 2:
                layers.append(activation())
        self.net = nn.Sequential(*layers)
        self.num_members, self.out_dim = num_members, out_dim

    def forward(self, obs: torch.Tensor, act: torch.Tensor | None = None) -> torch.Tensor:
        if self.encoder is not None:
            obs = self.encoder(obs)
        x = obs if act is None else torch.cat([obs, act], dim=-1)
        # The same batch goes to every member: expand is a view, no copy.
        q = self.net(x.unsqueeze(0).expand(self.num_members, *x.shape))
        return q.squeeze(-1) if self.out_dim == 1 else q  # Critical: (K, B), not (K, B, 1).

    def first(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Q_1(s, a) alone, shape (B,): TD3's policy loss needs only the first member, at half the cost."""
        if self.encoder is not None:
            obs = self.encoder(obs)
        x = torch.cat([obs, act], dim=-1)
        for layer in self.net:
            x = (
                torch.addmm(layer.bias[0], x, layer.weight[0])
                if isinstance(layer, EnsembleLinear)
                else layer(x)
            )
        return x.squeeze(-1)


class MLPActor(nn.Module):
    """The deterministic policy of DDPG and TD3: a = tanh(MLP(s)), in [-1, 1]."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_sizes: Sequence[int],
        activation: type[nn.Module],
        encoder: nn.Module | None = None,
    ):
        super().__init__()
        self.pi = with_encoder(encoder, mlp([obs_dim, *hidden_sizes, act_dim], activation, nn.Tanh))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.pi(obs)


class _BoxActorCritic(nn.Module):
    """Shared set-up for Box action spaces: dimensions, the env's bounds, the actor and the critics.

    Args:
        observation_space: a flat Box (spinrl flattens vector observations first) or an image space.
        action_space: a Box with finite bounds.
        hidden_sizes: units per hidden layer, for the actor and each critic (also after an image
            encoder: Q(s, a) must be a nonlinear function of the action).
        activation: an activation class from torch.nn, or its name.
        encoder: images only: "nature" (default), "small", or a class (:func:`spinrl.nets.encoders.make_encoder`).
        features_dim: images only: width of the encoder's output (512 for "nature").
    """

    num_q = 2
    actor_class: type[nn.Module] = MLPActor

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        hidden_sizes: Sequence[int] = (256, 256),
        activation: type[nn.Module] | str = nn.ReLU,
        encoder: str | type[nn.Module] = "nature",
        features_dim: int | None = None,
    ):
        super().__init__()
        if not isinstance(action_space, spaces.Box):
            raise UserError(f"{type(self).__name__} needs a Box action space, got {action_space}")
        obs_dim, act_dim = int(np.prod(observation_space.shape)), int(action_space.shape[0])
        hidden_sizes, activation = check_hidden_sizes(hidden_sizes), resolve_activation(activation)
        # From normalised actions to the env's bounds; not saved: the bounds come from the env.
        self.action_map = ActionMap(action_space)
        q_encoder = pi_features = None
        if is_image_space(observation_space):  # the critic owns the encoder (module docstring)
            q_encoder = make_encoder(observation_space, encoder, features_dim)
            pi_features, obs_dim = DetachedFeatures(q_encoder), q_encoder.features_dim
        object.__setattr__(self, "encoder", q_encoder)  # not registered: q owns it
        self.pi = self.actor_class(obs_dim, act_dim, hidden_sizes, activation, pi_features)
        self.q = MLPQEnsemble(obs_dim, act_dim, hidden_sizes, activation, self.num_q, encoder=q_encoder)


class MLPDeterministicActorCritic(_BoxActorCritic):
    """DDPG's actor-critic: a deterministic actor ``pi`` and one Q-function ``q`` (K = 1).

    Built as ``MLPDeterministicActorCritic(observation_space, action_space, hidden_sizes=(256, 256),
    activation="ReLU")``.
    """

    num_q = 1

    @torch.inference_mode()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """The policy's action in the env's bounds (the actor is deterministic either way)."""
        return self.action_map(self.pi(obs))


class MLPTwinActorCritic(MLPDeterministicActorCritic):
    """TD3's actor-critic: as DDPG's, with two Q-functions (clipped double-Q learning)."""

    num_q = 2


class SquashedGaussianMLPActor(nn.Module):
    """SAC's policy: u ~ N(mu(s), sigma(s)^2), a = tanh(u).

    The log-likelihood of a follows from the change of variables (SAC paper, Appendix C, eq. 21):
    log pi(a|s) = log N(u; mu, sigma) - sum_i log(1 - tanh(u_i)^2).
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_sizes: Sequence[int],
        activation: type[nn.Module],
        encoder: nn.Module | None = None,
    ):
        super().__init__()
        self.net = with_encoder(encoder, mlp([obs_dim, *hidden_sizes], activation, activation))
        width = hidden_sizes[-1] if hidden_sizes else obs_dim
        self.mu_layer = nn.Linear(width, act_dim)
        self.log_std_layer = nn.Linear(width, act_dim)

    def forward(
        self, obs: torch.Tensor, deterministic: bool = False, with_logprob: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        net_out = self.net(obs)
        mu = self.mu_layer(net_out)
        log_std = torch.clamp(self.log_std_layer(net_out), LOG_STD_MIN, LOG_STD_MAX)
        std = torch.exp(log_std)

        # Reparameterisation trick: u = mu + sigma * eps, so gradients flow through the sample.
        eps = torch.zeros_like(mu) if deterministic else torch.randn_like(mu)
        u = mu + std * eps
        logp = None
        if with_logprob:
            # Gaussian log-density of u (summed over independent dimensions), then the tanh
            # correction, written as log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)) for
            # numerical stability (the same formula as Spinning Up and the SAC authors' code).
            logp = (-0.5 * eps.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
            logp = logp - (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)
        return torch.tanh(u), logp


class MLPSquashedGaussianActorCritic(_BoxActorCritic):
    """SAC's actor-critic: a squashed Gaussian policy ``pi`` and two Q-functions ``q`` (K = 2).

    Built like :class:`MLPDeterministicActorCritic`.
    """

    num_q = 2
    actor_class = SquashedGaussianMLPActor

    @torch.inference_mode()
    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """A sampled action (or tanh(mu) when ``deterministic``) in the env's bounds."""
        a, _ = self.pi(obs, deterministic, with_logprob=False)
        return self.action_map(a)


class MLPQNetwork(nn.Module):
    """DQN's network: Q(s, .) for every discrete action, one output each (Mnih et al. 2015).

    Args:
        observation_space: a flat Box (spinrl flattens vector observations first) or an image space.
        action_space: a Discrete space.
        hidden_sizes: units per hidden layer: (256, 256) by default for vectors, none for images (the
            Nature DQN: the encoder's 512 features, then one linear layer to the Q-values).
        activation: an activation class from torch.nn, or its name.
        encoder: images only: "nature" (default), "small", or a class (:func:`spinrl.nets.encoders.make_encoder`).
        features_dim: images only: width of the encoder's output (512 for "nature").
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        hidden_sizes: Sequence[int] | None = None,
        activation: type[nn.Module] | str = nn.ReLU,
        encoder: str | type[nn.Module] = "nature",
        features_dim: int | None = None,
    ):
        super().__init__()
        if not isinstance(action_space, spaces.Discrete):
            raise UserError(f"MLPQNetwork needs a Discrete action space, got {action_space}")
        image = is_image_space(observation_space)
        q_encoder = make_encoder(observation_space, encoder, features_dim) if image else None
        obs_dim = q_encoder.features_dim if image else int(np.prod(observation_space.shape))
        if hidden_sizes is None:
            hidden_sizes = () if image else (256, 256)
        object.__setattr__(self, "encoder", q_encoder)  # not registered: q owns it
        self.n = int(action_space.n)
        self.action_map = ActionMap(action_space)  # index -> the env's action (start + index)
        self.q = MLPQEnsemble(
            obs_dim, 0, check_hidden_sizes(hidden_sizes), resolve_activation(activation), 1, self.n, q_encoder
        )

    @torch.inference_mode()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """The greedy action argmax_a Q(s, a) (exploration is the algorithm's epsilon, not the network's)."""
        return self.action_map(self.q(obs)[0].argmax(-1))


class Temperature(nn.Module):
    """SAC's entropy coefficient alpha: a constant, or learned through log(alpha) (SAC 2018b, Section 5).

    Learning log(alpha) rather than alpha keeps alpha positive without constraints.
    """

    def __init__(self, alpha: float = 0.2, learned: bool = False):
        super().__init__()
        self.learned, self.fixed_alpha = learned, float(alpha)
        init = math.log(alpha) if alpha > 0 else -math.inf
        self.log_alpha = nn.Parameter(torch.tensor(init, dtype=torch.float32), requires_grad=learned)

    @property
    def alpha(self) -> torch.Tensor | float:
        """The current alpha, outside the autograd graph (a tensor when learned, else a float)."""
        return self.log_alpha.detach().exp() if self.learned else self.fixed_alpha

    def loss(self, logp: torch.Tensor, target_entropy: float) -> torch.Tensor:
        """J(alpha) = E_a~pi[-alpha (log pi(a|s) + target_entropy)] (SAC 2018b, eq. 18), via log(alpha)."""
        return -(self.log_alpha * (logp.detach() + target_entropy)).mean()
