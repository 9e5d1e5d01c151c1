"""Custom actor-critics: spinrl's interface, or Spinning Up's ``core.py`` interface adapted once.

Every algorithm builds its networks with :func:`build_actor_critic`. A module that already speaks
spinrl's interface (spinrl's own classes included) comes back as it is: the same object, no cost. A
module written for Spinning Up's PyTorch ``core.py`` is wrapped once into spinrl's interface:

- **VPG, TRPO, PPO.** ``step`` may return NumPy arrays (Spinning Up) or tensors; the wrapper hands
  tensors on. ``pi._distribution`` becomes ``pi.distribution`` (TRPO needs it), ``pi(obs, act)`` is
  used as it is, and ``act(obs)`` without a ``deterministic`` keyword gets one (the mode of the
  distribution).
- **DDPG, TD3, SAC.** Spinning Up's actor outputs actions the env takes, scaled by ``act_limit``, and
  its critics take them; spinrl's work in [-1, 1]. The wrapper translates with the action space's
  bounds (:class:`spinrl.envs.actions.ActionMap` and its inverse) and stacks ``q`` (DDPG) or ``q1`` and
  ``q2`` (TD3, SAC) into one critic returning (K, B), with ``q.first`` for TD3.
- **SAC's log-probability** needs no correction: Spinning Up computes it for tanh(u), before scaling by
  ``act_limit``, which is exactly the normalised action spinrl's SAC sees. (Were it the density of the
  scaled action, it would be smaller by sum_i log(act_limit_i).)

The wrapper is an ``nn.Module`` whose ``state_dict`` is the user's module's, so checkpoints, resume
and :func:`spinrl.results.policy.load_policy` see the user's parameter names; ``copy.deepcopy`` gives a
working target network. Its views (``pi``, ``q``) are plain attributes, not registered submodules,
so every parameter belongs to exactly one registered module: the user's.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from spinrl.common.errors import UserError

if TYPE_CHECKING:
    from spinrl.envs.actions import ActionMap

ON_POLICY = ("vpg", "trpo", "npg", "ppo")
OFF_POLICY = ("ddpg", "td3", "sac")
DOCS = "docs/user/custom-networks.md"


def build_actor_critic(
    actor_critic: Callable[..., nn.Module],
    observation_space: spaces.Space,
    action_space: spaces.Space,
    ac_kwargs: dict[str, Any],
    algo: str,
) -> nn.Module:
    """``actor_critic(observation_space, action_space, **ac_kwargs)``, in spinrl's interface for ``algo``."""
    ac = actor_critic(observation_space, action_space, **ac_kwargs)
    return as_spinrl_actor_critic(ac, observation_space, action_space, algo)


def as_spinrl_actor_critic(
    ac: nn.Module, observation_space: spaces.Space, action_space: spaces.Space, algo: str
) -> nn.Module:
    """``ac`` itself when it speaks spinrl's interface for ``algo``, else ``ac`` wrapped from Spinning Up's.

    Algorithms other than the on- and off-policy ones above (DQN, which Spinning Up does not have)
    get ``ac`` unchanged.
    """
    name = type(ac).__name__
    if algo in (*ON_POLICY, *OFF_POLICY) and not isinstance(getattr(ac, "pi", None), nn.Module):
        raise UserError(f"actor_critic {name} has no policy module `pi` (see {DOCS})")
    if algo in ON_POLICY:
        pi = ac.pi
        if algo in ("trpo", "npg") and not (hasattr(pi, "distribution") or hasattr(pi, "_distribution")):
            raise UserError(
                f"{algo} needs the policy's distribution: give {name}.pi a method distribution(obs) "
                f"(spinrl) or _distribution(obs) (Spinning Up); see {DOCS}"
            )
        return ac if hasattr(pi, "distribution") else SpinningUpPolicyGradientAC(ac)
    if algo in OFF_POLICY:
        critics = _spinning_up_critics(ac, observation_space, action_space)
        if critics is None:
            return ac
        if algo != "ddpg":
            if len(critics) < 2:
                raise UserError(
                    f"{algo} needs two Q-functions: {name} has only `q`; give it q1 and q2 as Spinning "
                    f"Up's TD3 and SAC core.py do (see {DOCS})"
                )
            critics = critics[:2]
        return SpinningUpOffPolicyAC(ac, critics[:1] if algo == "ddpg" else critics, action_space, algo)
    return ac


def _spinning_up_critics(
    ac: nn.Module, observation_space: spaces.Space, action_space: spaces.Space
) -> list[nn.Module] | None:
    """Spinning Up's Q-functions of ``ac`` (``[q1, q2]`` or ``[q]``), or None when ``ac`` is spinrl's.

    ``q1`` is Spinning Up's alone. A lone ``q`` is spinrl's when it has ``first`` or returns one row
    per Q-function, (K, B); Spinning Up's returns (B,). That shape is read from one call on a batch of
    two zero observations, with torch's random state restored afterwards.
    """
    if hasattr(ac, "q1"):
        return [ac.q1] + ([ac.q2] if hasattr(ac, "q2") else [])
    q = getattr(ac, "q", None)
    if not isinstance(q, nn.Module):
        raise UserError(
            f"actor_critic {type(ac).__name__} has no Q-function: give it `q` (spinrl, or Spinning Up's "
            f"DDPG) or q1 and q2 (Spinning Up's TD3 and SAC); see {DOCS}"
        )
    if hasattr(q, "first"):
        return None
    obs = torch.as_tensor(np.zeros((2, *observation_space.shape), dtype=observation_space.dtype))
    act = torch.zeros(2, int(np.prod(action_space.shape)))
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        return [q] if q(obs, act).dim() == 1 else None


def _takes_deterministic(method: Callable) -> bool:
    """Whether ``method`` accepts a ``deterministic`` keyword (Spinning Up's SAC act does; its others don't)."""
    try:
        params = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "deterministic" or p.kind is p.VAR_KEYWORD for p in params)


class _Wrapper(nn.Module):
    """Holds the user's module as its one submodule, ``ac``, and saves and loads exactly its state."""

    def __init__(self, ac: nn.Module):
        super().__init__()
        self.ac = ac
        act = getattr(ac, "act", None)
        self._act_takes_deterministic = act is not None and _takes_deterministic(act)

    def _set_view(self, name: str, view: nn.Module) -> None:
        # A plain attribute: registered as a submodule, the view would list the user's parameters a
        # second time (in apply(), named_modules(remove_duplicate=False), ...).
        object.__setattr__(self, name, view)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.ac.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        return self.ac.load_state_dict(state_dict, strict=strict, assign=assign)

    def _user_act(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """The user's ``act``, with ``deterministic`` passed when it takes it, as a tensor on obs' device."""
        a = (
            self.ac.act(obs, deterministic=deterministic)
            if self._act_takes_deterministic
            else self.ac.act(obs)
        )
        return torch.as_tensor(a, device=obs.device)


# ----- VPG, TRPO, PPO ---------------------------------------------------------------------------------
class _PolicyGradientPolicy(nn.Module):
    """Spinning Up's policy (``forward(obs, act)``, ``_distribution``) with spinrl's ``distribution``."""

    def __init__(self, pi: nn.Module):
        super().__init__()
        self.pi = pi

    def forward(self, obs: torch.Tensor, act: torch.Tensor | None = None) -> Any:
        return self.pi(obs, act)

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Distribution:
        return self.pi._distribution(obs)


class SpinningUpPolicyGradientAC(_Wrapper):
    """An on-policy actor-critic in Spinning Up's interface, seen through spinrl's (see the module doc)."""

    def __init__(self, ac: nn.Module):
        super().__init__(ac)
        self._set_view("pi", _PolicyGradientPolicy(ac.pi))

    @property
    def v(self) -> nn.Module:
        return self.ac.v

    @torch.no_grad()
    def step(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The user's ``step``: action, V(obs) and log pi(a|obs), as tensors on the device of ``obs``."""
        a, v, logp = self.ac.step(obs)
        return tuple(torch.as_tensor(x, device=obs.device) for x in (a, v, logp))

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """The user's ``act``; when it takes no ``deterministic``, the distribution's mode stands in for it."""
        if deterministic and not self._act_takes_deterministic:
            if not hasattr(self.ac.pi, "_distribution"):
                raise UserError(
                    f"deterministic actions need {type(self.ac).__name__}.act(obs, deterministic=...) or "
                    f"pi._distribution(obs); see {DOCS}"
                )
            return self.pi.distribution(obs).mode
        if hasattr(self.ac, "act"):
            return self._user_act(obs, deterministic)
        return self.step(obs)[0]


# ----- DDPG, TD3, SAC ---------------------------------------------------------------------------------
class _NormalisedActor(nn.Module):
    """Spinning Up's deterministic actor, whose actions the env takes, giving spinrl's in [-1, 1]."""

    def __init__(self, pi: nn.Module, action_map: ActionMap):
        super().__init__()
        self.pi, self.action_map = pi, action_map

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.action_map.to_agent(self.pi(obs))


class _NormalisedSquashedActor(_NormalisedActor):
    """Spinning Up's SAC actor, giving actions in [-1, 1] and their log-probability unchanged (see the
    module doc: Spinning Up's is already the density of the action before the act_limit scaling)."""

    def forward(
        self, obs: torch.Tensor, deterministic: bool = False, with_logprob: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        a, logp = self.pi(obs, deterministic, with_logprob)
        return self.action_map.to_agent(a), logp


class _StackedCritics(nn.Module):
    """Spinning Up's separate Q-functions, each Q(s, a) of shape (B,) for actions the env takes, seen
    as spinrl's stacked critic: normalised actions in, (K, B) out, ``first`` for Q_1 alone."""

    def __init__(self, critics: list[nn.Module], action_map: ActionMap):
        super().__init__()
        self.members, self.action_map = nn.ModuleList(critics), action_map

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        a = self.action_map(act)
        return torch.stack([q(obs, a) for q in self.members])

    def first(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.members[0](obs, self.action_map(act))


class SpinningUpOffPolicyAC(_Wrapper):
    """An off-policy actor-critic in Spinning Up's interface, seen through spinrl's (see the module doc)."""

    def __init__(self, ac: nn.Module, critics: list[nn.Module], action_space: spaces.Space, algo: str):
        super().__init__(ac)
        from spinrl.envs.actions import ActionMap

        self.action_map = ActionMap(action_space)  # not a module: the bounds come from the env
        actor = _NormalisedSquashedActor if algo == "sac" else _NormalisedActor
        self._set_view("pi", actor(ac.pi, self.action_map))
        self._set_view("q", _StackedCritics(critics, self.action_map))

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """Actions the env takes: the user's ``act`` (``deterministic`` passed when it takes it), or the
        actor's output mapped to the env's bounds when the module has no ``act``."""
        if hasattr(self.ac, "act"):
            return self._user_act(obs, deterministic)
        if isinstance(self.pi, _NormalisedSquashedActor):
            return self.action_map(self.pi(obs, deterministic, with_logprob=False)[0])
        return self.action_map(self.pi(obs))
