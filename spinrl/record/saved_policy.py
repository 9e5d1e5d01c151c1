"""What a hand-written training loop saves so that its policy can be loaded again: Spinning Up's
``setup_pytorch_saver`` and ``save_state`` (:class:`PolicySaver`, which the logger's methods of those
names use).

Spinning Up's logger pickles whole modules and environments; spinrl never does (a pickle can run code
when loaded). Instead :meth:`PolicySaver.save` stores tensors and plain values through the safe
checkpointer (:mod:`spinrl.record.checkpoint`), plus a description of how to rebuild what was saved: the
network's class, its MLP sizes and activation, and its printed structure (:func:`describe_module`), and
the environment's Gymnasium id, arguments and episode limit (:func:`describe_env`). ``spinrl test_policy``
and :func:`spinrl.results.policy.load_policy` read these back.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np

from spinrl.common.errors import UserError
from spinrl.record.checkpoint import save_checkpoint
from spinrl.record.console import warn
from spinrl.record.names import SNAPSHOTS_DIR


def describe_env(env: Any) -> dict[str, Any] | None:
    """How to make ``env`` again, if it is a Gymnasium env with a registered id: the id, the arguments
    given to ``gym.make`` (only when they are JSON values), the episode limit, and the names of wrappers
    added after ``gym.make`` (which a file cannot rebuild). None for anything else."""
    try:
        import gymnasium as gym

        spec = env.spec if isinstance(env, gym.Env) else None
    except Exception:  # a wrapper whose spec cannot be built
        return None
    if spec is None:
        return None
    kwargs = {k: v for k, v in (spec.kwargs or {}).items() if k != "render_mode"}
    out: dict[str, Any] = {"id": spec.id}
    if _is_json_value(kwargs):
        out["kwargs"] = json.loads(json.dumps(kwargs))
    else:  # a callable or an array among them: only the env_fn can make this env again
        out["unrecorded_kwargs"] = sorted(kwargs)
    if spec.max_episode_steps is not None:
        out["max_episode_steps"] = spec.max_episode_steps
    wrappers = [w.name for w in spec.additional_wrappers]
    if wrappers:
        out["wrappers"] = wrappers
    return out


def _is_json_value(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list | tuple):
        return all(_is_json_value(v) for v in value)
    return isinstance(value, dict) and all(isinstance(k, str) and _is_json_value(v) for k, v in value.items())


def recorded_env_spec(config: dict[str, Any]) -> dict[str, Any] | None:
    """The env a run's config points at when it has no Gymnasium id (``env_name``): an env among the
    values, else the one its ``env_fn`` function makes (made once and closed)."""
    if isinstance(config.get("env_name"), str) or "env_spec" in config:
        return None
    for value in config.values():
        spec = describe_env(value)
        if spec is not None:
            return spec
    env_fn = config.get("env_fn")
    if not callable(env_fn) or isinstance(env_fn, type):
        return None
    try:
        env = env_fn()
    except Exception:  # the run itself will report a broken env_fn in its own words
        return None
    try:
        return describe_env(env)
    finally:
        if hasattr(env, "close"):
            env.close()


def describe_module(module: Any) -> dict[str, Any]:
    """What rebuilds ``module``: its class's dotted name, the ``hidden_sizes``/``activation`` read off its
    first MLP when its class takes them, and its printed structure, which the rebuilt network must match."""
    cls = type(module)
    out: dict[str, Any] = {"class": f"{cls.__module__}.{cls.__qualname__}", "structure": repr(module)}
    kwargs = _mlp_kwargs(module)
    if kwargs is not None:
        out["kwargs"] = kwargs
    return out


def _mlp_kwargs(module: Any) -> dict[str, Any] | None:
    import torch

    try:
        params = inspect.signature(type(module)).parameters
    except (TypeError, ValueError):
        return None
    if not {"hidden_sizes", "activation"} <= params.keys():
        return None
    for seq in module.modules():
        layers = list(seq) if isinstance(seq, torch.nn.Sequential) else []
        linears = [i for i, layer in enumerate(layers) if isinstance(layer, torch.nn.Linear)]
        if not linears:
            continue
        kwargs: dict[str, Any] = {"hidden_sizes": [layers[i].out_features for i in linears[:-1]]}
        if len(linears) > 1 and linears[0] + 1 < len(layers):
            act = type(layers[linears[0] + 1])
            same = getattr(torch.nn, act.__name__, None) is act
            kwargs["activation"] = (
                f"torch.nn.{act.__name__}" if same else f"{act.__module__}.{act.__qualname__}"
            )
        return kwargs
    return None


def saveable(value: Any) -> Any:
    """``value`` as what a checkpoint may hold (tensors and plain containers); TypeError when it cannot be."""
    import torch

    if value is None or isinstance(value, bool | int | float | str | torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.as_tensor(value.copy())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [saveable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): saveable(v) for k, v in value.items()}
    if callable(getattr(value, "state_dict", None)):
        return value.state_dict()
    raise TypeError(type(value).__name__)


class PolicySaver:
    """Saves a network and chosen values of a hand-written loop as safe checkpoints in ``run_dir``."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.module: Any = None  # the network to save (setup)
        self.saves = 0  # the checkpoints saved with itr=None, which number them

    def setup(self, module: Any) -> None:
        """Name the network that :meth:`save` saves: a ``torch.nn.Module``, usually the actor-critic."""
        import torch

        if not isinstance(module, torch.nn.Module):
            raise UserError(
                f"setup_pytorch_saver needs a torch.nn.Module (the network to save), got {type(module).__name__}"
            )
        self.module = module

    def save(self, state_dict: dict[str, Any], itr: int | None = None) -> None:
        """Save the network and ``state_dict`` (see :meth:`spinrl.record.logger.Logger.save_state`)."""
        state: dict[str, Any] = {"state": {}}
        skipped = []
        for key, value in state_dict.items():
            spec = describe_env(value)
            if spec is not None:
                state["env_spec"] = spec
                continue
            try:
                state["state"][str(key)] = saveable(value)
            except TypeError:
                skipped.append(str(key))
        if skipped:
            warn(
                f"save_state left out {', '.join(skipped)}: only tensors, arrays, numbers, strings and "
                "objects with a state_dict() are saved"
            )
        if self.module is not None:
            state["ac"] = self.module.state_dict()
            state["module"] = describe_module(self.module)
        if itr is None:
            self.saves += 1
            save_checkpoint(self.run_dir, state, self.saves)
        else:
            save_checkpoint(self.run_dir / SNAPSHOTS_DIR / str(int(itr)), state, int(itr))
