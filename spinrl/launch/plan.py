"""A grid's variant, planned and checked before anything is launched.

:class:`PlannedRun` is one variant ready to launch: the algorithm, its full keyword arguments and its run
folder; the launchers (:mod:`spinrl.launch.local`, :mod:`spinrl.launch.ray`) and ``spinrl tune``'s
trials start these. Before the first one starts, each is checked (:func:`check_variant`: the values its
algorithm would refuse) and, with ``resume``, held against its run folder (:func:`skip_on_resume`:
finished, extended, continued, or refused when another process writes it or its settings differ).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spinrl.common.errors import UserError
from spinrl.launch.spec import make_spec
from spinrl.record.config import check_same_run, convert_json
from spinrl.record.folder import check_can_write
from spinrl.record.names import LOG_FILE
from spinrl.record.status import FINISHED, RUNNING, read_status, run_state


@dataclass
class PlannedRun:
    """One variant, ready to launch: the algorithm, its full keyword arguments and where it writes."""

    exp_name: str
    thunk: Callable
    kwargs: dict[str, Any]
    output_dir: str
    num_cpu: int = 1
    mpi_args: str = ""

    @property
    def label(self) -> str:
        return f"{self.exp_name} seed {self.kwargs.get('seed', 0)}"

    @property
    def log_path(self) -> str:
        return os.path.join(self.output_dir, LOG_FILE)

    def spec(self) -> dict[str, Any]:
        """What a child process needs to run this variant, as JSON-safe data (see :mod:`spinrl.launch.spec`)."""
        return make_spec(self.thunk, self.kwargs)


def algorithm_kwargs(thunk: Callable, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Check the keyword arguments against ``thunk`` and apply Spinning Up's ``env_name`` convenience."""
    params = inspect.signature(thunk).parameters
    name = getattr(thunk, "__name__", repr(thunk))
    if "seed" not in params:
        raise UserError(f"{name} takes no 'seed' argument")
    # Spinning Up grids say env_name; our algorithms take env_fn, which may be a Gymnasium id.
    if "env_name" in kwargs and "env_name" not in params and "env_fn" in params:
        kwargs["env_fn"] = kwargs.pop("env_name")
    return kwargs


def check_variant(r: PlannedRun, checked_envs: set[str], name_it: bool = True) -> None:
    """Refuse the values its algorithm would refuse when it starts, naming the variant (``name_it``).

    For spinrl's algorithms: the hyperparameter ranges (:func:`spinrl.common.checks.check_hyperparameters`) and
    the environment with its ``env_kwargs``. An Atari game's options are checked against its table; any
    other id given ``env_kwargs`` is made once per distinct setting (``checked_envs``), since only
    ``gym.make`` knows which arguments the env takes. Other algorithms check their own arguments.
    """
    if not getattr(r.thunk, "__module__", "").startswith("spinrl.algos."):
        return
    from spinrl.common.checks import check_hyperparameters
    from spinrl.envs.make import resolve_env_fn

    try:
        bound = inspect.signature(r.thunk).bind_partial(**r.kwargs)
    except TypeError:
        return  # the algorithm itself will refuse these arguments, in its own words
    bound.apply_defaults()
    values = bound.arguments
    try:
        check_hyperparameters(values)
        env_fn, env_kwargs = values.get("env_fn"), values.get("env_kwargs")
        if isinstance(env_fn, str):
            make = resolve_env_fn(env_fn, env_kwargs)  # an unknown id, an Atari option
            key = repr((env_fn, env_kwargs))
            if env_kwargs and key not in checked_envs and not hasattr(make, "options"):
                _make_once(make, env_fn, env_kwargs)  # arguments gym.make or the env refuses
            checked_envs.add(key)
    except UserError as e:
        if not name_it:
            raise
        raise UserError(f"variant {r.label}: {e}") from None


def _make_once(make: Callable, env_id: str, env_kwargs: dict) -> None:
    """Make the env and close it; whatever its constructor raises about the arguments is one line."""
    try:
        make().close()
    except UserError:
        raise
    except Exception as e:
        detail = str(e).strip().splitlines()
        why = f"{type(e).__name__}: {detail[0]}" if detail else type(e).__name__
        raise UserError(f"env_kwargs {env_kwargs!r} are refused by {env_id}: {why}") from None


# ----- resuming ------------------------------------------------------------------------------------------
def planned_config(r: PlannedRun) -> dict[str, Any]:
    """The settings the variant's algorithm will record in config.json, as far as they are known before it
    runs: every argument, defaults included, and for spinrl's own algorithms their name as ``algo``."""
    try:
        bound = inspect.signature(r.thunk).bind_partial(**r.kwargs)
    except TypeError:
        return {}  # the algorithm itself will refuse these arguments, in its own words
    bound.apply_defaults()
    config = dict(bound.arguments)
    preset = (r.kwargs.get("logger_kwargs") or {}).get("preset")
    if preset is not None:
        config["preset"] = preset  # as the logger records it
    if "algo" not in config and getattr(r.thunk, "__module__", "").startswith("spinrl.algos."):
        config["algo"] = r.thunk.__name__
    return convert_json(config)


def skip_on_resume(r: PlannedRun) -> bool:
    """Decide before launching: skip what has finished, refuse what must not be written (see the module
    docstring of :mod:`spinrl.launch.grid`)."""
    resume = bool(r.kwargs.get("resume", False))
    check_can_write(r.output_dir, resume)  # in use by another process; an existing run without resume
    if not resume:
        return False
    config = planned_config(r)
    status = read_status(r.output_dir)
    state = run_state(status)
    # A finished run asked for as many epochs as it has, or fewer, is simply done: epochs need not match.
    check_same_run(r.output_dir, {k: v for k, v in config.items() if k != "epochs" or state != FINISHED})
    if state == FINISHED:
        done, wanted = status.get("epoch"), config.get("epochs")
        if isinstance(done, int) and isinstance(wanted, int) and wanted > done:
            print(f"extend {r.label}: finished after {done} epochs, continuing to {wanted}", flush=True)
            return False
        print(f"skip {r.label}: finished already ({r.output_dir})", flush=True)
        return True
    if state.startswith(f"{RUNNING} on "):
        # We cannot see processes on other machines; a grid is resumed after its runs died.
        print(f"resume {r.label}: last seen {state}", flush=True)
    return False
