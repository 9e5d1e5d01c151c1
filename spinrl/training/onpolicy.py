"""The building blocks of the on-policy loop that VPG, TRPO and PPO each write out in their own file.

In the policy-gradient pseudocode the loop is "run the current policy in the environment and keep the
trajectories". Each algorithm file holds that loop (observe, act, step the env copies, store, close the
paths that end, move on to the next observation); the parts that are easy to get subtly wrong, or that
are there for speed, live here once:

- :func:`fast_policy_step`: acting, through the NumPy mirror of the actor-critic where it applies
  (:mod:`spinrl.nets.fast_act`), with the very numbers ``ac.step`` would give.
- :func:`policy_to_env_actions`: what the env gets for the policy's sampled action.
- :class:`PathCloser`: closing the buffer's paths that end in a step, each with the last value its
  kind of end calls for.
- :func:`with_cached_encoder_features`, :func:`minibatch_steps` and :func:`anneal_learning_rate`: pieces
  of the updates.

Two traps are handled here, in :class:`PathCloser`:

- A *terminated* path has no future, so it closes with a last value of 0. For Atari, a lost life
  counts as terminated (``learn_term`` of :class:`spinrl.envs.atari.LearningSignals`), while the game
  and its logged EpRet go on.
- A *truncated* episode (a time limit, ``max_ep_len``) and a path the epoch's end cuts off did have a
  future: they close with V of the observation really reached (:func:`spinrl.envs.make.real_next_obs`),
  not of the next episode's first observation that the vector env has already put in its place.

Episode returns and lengths come from :class:`spinrl.envs.make.EpisodeReturns`, shared with the
off-policy loops; the normalisers' statistics (:class:`spinrl.training.normalize.Normalizers`) stay
frozen while an epoch collects and take in what it saw with one ``norms.update()`` at its end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from gymnasium import spaces

from spinrl.buffers.gae import GAEBuffer
from spinrl.common.mpi import num_procs
from spinrl.envs.vector import real_next_obs
from spinrl.nets.actor_critic import shared_encoder_features
from spinrl.nets.fast_act import numpy_policy
from spinrl.training.normalize import Normalizers

PolicyStep = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def fast_policy_step(ac: torch.nn.Module, device: torch.device, num_calls: int) -> PolicyStep:
    """``step(obs) -> (a, V(obs), log pi(a|obs))`` as NumPy arrays, for an epoch of ``num_calls`` steps.

    For spinrl's MLP actor-critic on the CPU this is its NumPy mirror (:func:`spinrl.nets.fast_act.numpy_policy`):
    for small networks PyTorch's overhead per operation, not the arithmetic, is most of the cost of
    acting, and the mirror spares it while giving the same numbers bit for bit and drawing the same
    random numbers. It copies the weights, so make a new one each epoch, after the update, and call it
    exactly ``num_calls`` times (it may draw an epoch's noise at its first call). Any other actor-critic,
    an image network or a GPU gets ``ac.step`` on ``device``, its outputs brought back to NumPy.
    """
    mirror = numpy_policy(ac, device, num_calls=num_calls)
    if mirror is not None:
        return mirror

    def step(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a, v, logp = ac.step(torch.as_tensor(obs, device=device))
        return a.cpu().numpy(), v.cpu().numpy(), logp.cpu().numpy()

    return step


def policy_to_env_actions(act_space: spaces.Space) -> Callable[[np.ndarray], np.ndarray]:
    """The function that turns the policy's sampled actions (one per env copy) into the env's.

    A Gaussian policy is unbounded: the env gets the sample clipped to the space's bounds, while the
    buffer keeps the sample itself, whose log-probability the update compares against. A categorical
    policy picks an index 0..n-1; a ``Discrete(n, start=s)`` env takes ``s + index``.
    """
    if isinstance(act_space, spaces.Box):
        low, high = act_space.low, act_space.high
        return lambda a: np.clip(a, low, high)
    start = int(act_space.start)
    if start == 0:  # the index is the action: no new array to make (the env only reads it)
        return _same
    return lambda a: a + start


def _same(a: np.ndarray) -> np.ndarray:
    return a


class PathCloser:
    """Closes the buffer's paths that end in a step: ``close_paths(next_obs, info, learn_term, truncated,
    epoch_ended)``, called after :meth:`GAEBuffer.store` whenever a path may have ended.

    Copy ``i``'s path closes when ``learn_term[i]`` (a terminal, or a lost life on Atari: last value
    0), when ``truncated[i]`` (a time limit: last value V of the observation really reached), and, for
    every copy, when ``epoch_ended`` (V of its observation now; 0 if it also terminated). The critic runs
    only when some path needs its value, once for all copies, on the observation normalised as the
    networks saw it during the epoch (not counted towards the statistics); its value is in the env's
    units (:meth:`Normalizers.critic_value`), like the values stored.
    """

    def __init__(
        self,
        buf: GAEBuffer,
        ac: torch.nn.Module,
        device: torch.device,
        normalizers: Normalizers | None = None,
    ) -> None:
        self.buf, self.ac, self.device = buf, ac, device
        self.norms = normalizers or Normalizers()

    def __call__(
        self,
        next_obs: np.ndarray,
        info: dict,
        learn_term: np.ndarray,
        truncated: np.ndarray,
        epoch_ended: bool = False,
    ) -> None:
        last_vals = None
        if epoch_ended or np.count_nonzero(truncated):
            # Only a truncated copy needs real_next_obs: the vector env has already reset it.
            reached = self.norms.observation(real_next_obs(next_obs, truncated, info), count=False)
            with torch.inference_mode():
                last_vals = self.ac.v(torch.as_tensor(reached, device=self.device)).cpu().numpy()
            last_vals = self.norms.critic_value(last_vals)
        closing = range(len(learn_term)) if epoch_ended else np.flatnonzero(learn_term | truncated)
        for i in closing:
            self.buf.finish_path(i, 0.0 if learn_term[i] else float(last_vals[i]))


def with_cached_encoder_features(
    ac: torch.nn.Module, data: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The batch the critic's steps train on: ``data``, plus under ``"features"`` the policy encoder's
    features of ``data["obs"]`` when the critic reads them (:func:`spinrl.nets.actor_critic.shared_encoder_features`).

    With a shared image encoder no critic step changes those features, so they are computed once per
    update instead of once per critic step: this spares all critic steps but the first a pass of the
    whole batch through the convolutions, and ``ac.v(obs, features)`` gives the same numbers as
    ``ac.v(obs)``. The features travel with the batch, so :func:`minibatch_steps` shuffles and slices
    them with it. Vector observations, a critic with its own encoder and custom networks get ``data``
    itself (the same dict).
    """
    features = shared_encoder_features(ac, data["obs"])
    return data if features is None else dict(data, features=features)


def minibatch_steps(
    data: dict[str, torch.Tensor], passes: int, minibatch_size: int | None
) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
    """The data of each gradient step of an update, with the pass it belongs to: ``(pass, batch)``.

    ``minibatch_size`` None is Spinning Up's way: ``passes`` steps, each on the whole batch. Otherwise
    each pass shuffles the batch and steps once per minibatch, the usual PPO of SB3 and CleanRL: many
    small steps per batch of experience. ``minibatch_size`` counts over all MPI ranks, so each rank
    takes ``minibatch_size // ranks`` of its own samples and the averaged gradient is one of
    ``minibatch_size`` samples; the last minibatch of a pass may be smaller. The shuffles draw from
    torch's seeded (and checkpointed) generator, on the CPU whatever the device, so a run repeats.
    """
    n = len(data["ret"])
    if minibatch_size is None:
        for i in range(passes):
            yield i, data
        return
    per_rank = max(1, minibatch_size // num_procs())
    for i in range(passes):
        # One shuffled copy of the batch per pass; its minibatches are then slices (views, no copies).
        order = torch.randperm(n).to(data["ret"].device)
        shuffled = {key: value[order] for key, value in data.items()}
        for start in range(0, n, per_rank):
            yield i, {key: value[start : start + per_rank] for key, value in shuffled.items()}


def annealing_epochs(epochs: int, anneal_lr_steps: int | None, steps_per_update: int) -> float:
    """The epoch at which an annealed learning rate reaches 0: the run's end by default, or after
    ``anneal_lr_steps`` env steps (all copies and ranks counted), ``steps_per_update`` to an epoch.
    A horizon past the run's end leaves the last epochs a part of the starting rate, as Tianshou's
    MuJoCo PPO does: it decays over 3M steps and is read at 1M."""
    return float(epochs) if anneal_lr_steps is None else anneal_lr_steps / steps_per_update


def anneal_learning_rate(
    optimizer: torch.optim.Optimizer, initial_lr: float, epoch: int, epochs: float
) -> None:
    """Set the learning rate of ``epoch`` (0-based) on a line from ``initial_lr`` down to 0 at epoch
    ``epochs`` (the run's end, or the horizon of :func:`annealing_epochs`), and 0 after it. It depends
    on the epoch alone, so a resumed run gets the same rates."""
    for group in optimizer.param_groups:
        group["lr"] = initial_lr * max(0.0, 1.0 - epoch / epochs)
