"""The network a saved run trained, built again: its class, its arguments and its weights, each checked.

The class comes from the run's config.json (``actor_critic``) or from what ``save_state`` recorded; a
name a run folder supplies is only imported when it is one of spinrl's own, so loading a run never runs
code it names (:func:`network_class`). Arguments recorded in config.json come first, then those read off
the saved network; the rebuilt network must print as the saved one did, and its weights must be finite.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from spinrl.common.errors import UserError

# Network classes that moved or were renamed since runs recorded them in config.json: old -> new.
RENAMED_CLASSES = {
    "spinrl.offpolicy_nets.MLPActorCritic": "spinrl.nets.q_nets.MLPDeterministicActorCritic",
    "spinrl.offpolicy_nets.MLPTwinActorCritic": "spinrl.nets.q_nets.MLPTwinActorCritic",
    "spinrl.offpolicy_nets.MLPSquashedGaussianActorCritic": "spinrl.nets.q_nets.MLPSquashedGaussianActorCritic",
    "spinrl.offpolicy_nets.MLPQNetwork": "spinrl.nets.q_nets.MLPQNetwork",
}


def network_class(dotted: str):
    """The network class named in config.json: spinrl's own (imported), or one already loaded.

    Runs saved before a class moved name it by its old place; :data:`RENAMED_CLASSES` maps it. A class
    from outside spinrl is only looked up in the modules this process has already imported, the running
    script (``__main__``) included, as Spinning Up's scripts that define their network next to the
    training call expect: a name that a run folder supplies never causes an import, so it runs no code.
    """
    dotted = RENAMED_CLASSES.get(dotted, dotted)
    module, _, name = dotted.rpartition(".")
    if not module.startswith("spinrl."):
        cls = _already_loaded(dotted)
        if cls is None:
            raise UserError(
                f"the run used a custom actor-critic {dotted!r}, which is not loaded here; import its "
                "module first, or load it from Python with load_policy(run_dir, actor_critic=YourClass)"
            )
        return cls
    try:
        cls = getattr(importlib.import_module(module), name, None)
    except ImportError:
        cls = None
    if not callable(cls):
        raise UserError(
            f"the run's config.json names the network {dotted!r}, which this spinrl does not have"
        )
    return cls


def _already_loaded(dotted: str):
    """The class or function ``module.QualName`` if ``module`` is in ``sys.modules``, else None.

    Looked up by attribute only (plain names, no private ones), never imported. Either side may hold
    dots (``pkg.mod.Outer.Inner``): each split, longest module first, is tried.
    """
    parts = dotted.split(".")
    if not all(p.isidentifier() for p in parts):
        return None
    for i in range(len(parts) - 1, 0, -1):
        obj = sys.modules.get(".".join(parts[:i]))
        if obj is None:
            continue
        for attr in parts[i:]:
            obj = None if attr.startswith("_") else getattr(obj, attr, None)
        if isinstance(obj, type) or inspect.isfunction(obj):
            return obj
    return None


def build_network(actor_critic: Callable | None, config: dict, env, state: dict, run_dir: Path):
    """The network config.json describes (or, for a run saved by ``EpochLogger.save_state``, the one the
    checkpoint describes), holding the checkpoint's weights; a mismatch is one line."""
    weights, saved = state["ac"], _saved_module(state, run_dir)
    name = saved.get("class") or config.get("actor_critic") or "spinrl.nets.MLPActorCritic"
    cls = actor_critic or network_class(name)
    # Arguments recorded in config.json come first; save_state's come from the saved network itself.
    candidates = [config["ac_kwargs"] or {}] if "ac_kwargs" in config else []
    candidates += [saved["kwargs"]] if "kwargs" in saved else []
    for ac_kwargs in candidates or [{}]:
        try:
            ac = cls(env.observation_space, env.action_space, **ac_kwargs)
        except TypeError as e:
            raise UserError(
                f"ac_kwargs={ac_kwargs!r} recorded in {run_dir} do not fit {cls.__name__}: {e}"
            ) from None
        if "structure" not in saved or repr(ac) == saved["structure"]:
            break
    else:
        raise UserError(
            f"the network rebuilt as {cls.__name__}(**{ac_kwargs!r}) differs from the one saved in {str(run_dir)!r} "
            f"({_first_difference(repr(ac), saved['structure'])}); pass actor_critic= and record its "
            "ac_kwargs with logger.save_config"
        )
    try:
        ac.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        # torch lists every mismatch after a header line; the first one is enough to see the cause.
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        detail = (lines[1] if len(lines) > 1 else lines[0] if lines else type(e).__name__)[:200]
        raise UserError(
            f"the checkpoint in {str(run_dir)!r} does not fit the network that config.json describes "
            f"(ac_kwargs={ac_kwargs!r}): {detail}"
        ) from None
    return ac


def refuse_non_finite_weights(weights: dict, run_dir: Path) -> None:
    """A network whose weights hold NaN or inf acts on nothing meaningful (and a Categorical policy cannot
    even sample): say so in one line, naming the first such tensor."""
    for name, value in weights.items():
        if torch.is_tensor(value) and value.is_floating_point() and not torch.isfinite(value).all():
            raise UserError(
                f"the checkpoint in {str(run_dir)!r} holds NaN or infinite weights ({name}): the run diverged "
                "before it was saved; watch an earlier snapshot (--itr) or retrain with a smaller learning rate"
            )


def _saved_module(state: dict, run_dir: Path) -> dict:
    """What ``EpochLogger.save_state`` recorded about the network ({} for an algorithm's checkpoint)."""
    saved = state.get("module")
    if saved is None:
        return {}
    types = {"class": str, "kwargs": dict, "structure": str}
    if not isinstance(saved, dict) or any(
        k in saved and not isinstance(saved[k], t) for k, t in types.items()
    ):
        raise UserError(
            f"the checkpoint in {str(run_dir)!r} is damaged: its network description is not readable"
        )
    return saved


def _first_difference(got: str, want: str) -> str:
    for i, (a, b) in enumerate(zip(got.splitlines(), want.splitlines())):
        if a != b:
            return f"line {i + 1}: {a.strip()!r}, saved {b.strip()!r}"
    return "one has more layers"
