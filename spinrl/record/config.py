"""config.json: a run's arguments, written once, and the rule that a resumed run is the same run.

:class:`ConfigFile` is the logger's part that writes it. On ``--resume`` the recorded config.json stays,
and the new arguments are held against it (:func:`check_same_run`): only the settings in
:data:`MAY_CHANGE_ON_RESUME` may differ (``epochs`` only upwards), else one line lists what would change.
A checkpoint carries a copy of the settings, so the rule holds even when config.json was lost.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from spinrl.common.errors import UserError
from spinrl.moved import same_spinrl_object
from spinrl.record.folder import write_text_atomically
from spinrl.record.names import CONFIG_FILE
from spinrl.record.saved_policy import recorded_env_spec


def convert_json(obj: Any) -> Any:
    """Make ``obj`` JSON-safe: classes and functions become their dotted names, the rest ``str``."""
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, dict):
        return {str(k): convert_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [convert_json(x) for x in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return f"{obj.__module__}.{obj.__qualname__}"
    if hasattr(obj, "env_name"):  # env factories made by spinrl.envs.make_env_fn
        return obj.env_name
    return str(obj)


# ----- a resumed run is the same run -------------------------------------------------------------------
# Settings a resumed run may change: they decide where and how fast it runs, not what it computes.
# ``epochs`` may grow (it extends the run); the rest must match config.json. ``preset`` only names where
# the values came from (spinrl.presets): the values themselves are compared.
MAY_CHANGE_ON_RESUME = (
    "epochs", "resume", "logger_kwargs", "exp_name", "device", "async_envs", "save_freq", "compile",
    "preset",
)  # fmt: skip


# Of those, the ones config.json follows on resume: it then says how the run runs now (a resume with
# --compile False must not leave "compile": true behind). The rest name the call, not the run.
RECORDED_ON_RESUME = ("epochs", "device", "async_envs", "save_freq", "compile")


def resumed_config(recorded: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The config.json of a resumed run: the recorded one, with the new values of
    :data:`RECORDED_ON_RESUME` (call :func:`check_same_run` first: nothing else may differ)."""
    return dict(recorded, **{k: new[k] for k in RECORDED_ON_RESUME if k in new})


class ResumeMismatchError(UserError):
    """``--resume`` was asked with settings that differ from the run's config.json."""


def _show_value(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def _same_setting(key: str, old: Any, new: Any, env_id: Any = None) -> bool:
    if key.endswith("_kwargs") and old in (None, {}) and new in (None, {}):
        return True  # the algorithms record "no extra arguments" as {}
    if key == "env_kwargs" and isinstance(env_id, str) and old != new:
        return _env_arguments(env_id, old) == _env_arguments(env_id, new)
    if isinstance(old, str) and isinstance(new, str):
        # A class recorded by an earlier version under the module it lived in then, such as
        # spinrl.q_nets.MLPTwinActorCritic, is the same setting as its name today.
        return same_spinrl_object(old, new)
    return old == new


def _env_arguments(env_id: str, env_kwargs: Any) -> Any:
    """Every argument the env ``env_id`` is made with when given ``env_kwargs``, defaults included, so
    that ``{'frame_stack': 4}`` on an Atari game (or ``{'continuous': False}`` on LunarLander) is the
    same env as ``{}``. Where the defaults cannot be found, ``env_kwargs`` as they are."""
    if env_kwargs is None:
        env_kwargs = {}
    if not isinstance(env_kwargs, dict):
        return env_kwargs
    try:
        import gymnasium as gym
        from gymnasium.envs.registration import load_env_creator

        from spinrl.envs.atari import atari_options, is_atari_id

        if is_atari_id(env_id):
            return atari_options(env_id, env_kwargs)
        spec = gym.spec(env_id)
        creator = (
            load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else spec.entry_point
        )
        defaults = {
            name: p.default
            for name, p in inspect.signature(creator).parameters.items()
            if p.default is not inspect.Parameter.empty
        }
    except Exception:  # an id or arguments that do not resolve: compared as given
        return env_kwargs
    return json.loads(json.dumps({**defaults, **spec.kwargs, **env_kwargs}, default=str))


def _episode_limit_as_resolved(recorded: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``max_ep_len`` None (the algorithms' default) as the number it stands for, where the recorded run
    has a number: runs started before None was the default recorded 1000, which None still means for
    every environment but Atari games (:func:`spinrl.envs.default_max_ep_len`)."""
    env_id = new.get("env_name") or new.get("env_fn")
    if new.get("max_ep_len") is not None or not isinstance(recorded.get("max_ep_len"), int):
        return new
    if not isinstance(env_id, str):
        return new
    from spinrl.envs.make import default_max_ep_len

    try:
        return dict(new, max_ep_len=default_max_ep_len(env_id, None))
    except UserError:  # an id that cannot be made: the comparison below names the difference
        return new


def resume_changes(recorded: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What continuing a run recorded as ``recorded`` with the settings ``new`` would change.

    Both are configurations as config.json holds them (JSON values). A key only one side knows is not
    compared. Returns phrases such as ``"pi_lr from 0.0003 to 0.001"``, the algorithm and environment first.
    """
    new = _episode_limit_as_resolved(recorded, new)
    first = [k for k in ("algo", "env_name", "env_fn") if k in recorded]
    keys = first + sorted(k for k in recorded if k not in first)
    changes = []
    for key in keys:
        if key not in new or key in MAY_CHANGE_ON_RESUME:
            continue
        env_id = recorded.get("env_name") or recorded.get("env_fn")
        if not _same_setting(key, recorded[key], new[key], env_id):
            changes.append(f"{key} from {_show_value(recorded[key])} to {_show_value(new[key])}")
    old_epochs, new_epochs = recorded.get("epochs"), new.get("epochs")
    if (
        isinstance(old_epochs, int | float)
        and isinstance(new_epochs, int | float)
        and new_epochs < old_epochs
    ):
        changes.append(f"epochs from {old_epochs} to {new_epochs} (a resumed run may only get more epochs)")
    return changes


def read_config(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run's config.json, None when there is none; a damaged one is a UserError naming it."""
    path = Path(run_dir, CONFIG_FILE)
    if not path.exists():
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{path} cannot be read ({type(e).__name__}); it is damaged") from None
    if not isinstance(config, dict):
        raise UserError(f"{path} is damaged: it holds a {type(config).__name__}, not the run's settings")
    return config


def check_same_run(run_dir: str | os.PathLike, new: dict[str, Any]) -> dict[str, Any] | None:
    """Refuse to resume the run in ``run_dir`` with settings ``new`` that would make it another run.

    ``new`` is the resumed run's configuration, as it would be written to config.json. Allowed to differ:
    :data:`MAY_CHANGE_ON_RESUME` (``epochs`` only upwards). Returns the recorded configuration, or None
    when the run has none yet. Reads only.
    """
    try:
        recorded = read_config(run_dir)
    except UserError as e:
        raise ResumeMismatchError(
            f"{e}, so --resume cannot tell whether it continues the same run; start a new run with "
            "another --exp_name instead"
        ) from None
    if recorded is None:
        return None
    refuse_changes(run_dir, recorded, new)
    return recorded


def refuse_changes(run_dir: str | os.PathLike, recorded: dict[str, Any], new: dict[str, Any]) -> None:
    """The same-run rule of :func:`check_same_run`, against settings ``recorded`` wherever they come from
    (config.json, or the copy a checkpoint carries): one line listing what ``new`` would change."""
    changes = resume_changes(recorded, json.loads(json.dumps(new)))
    if changes:
        listed = changes[0] if len(changes) == 1 else ", ".join(changes[:-1]) + " and " + changes[-1]
        old_preset, new_preset = recorded.get("preset"), new.get("preset")
        hint = ""
        if old_preset != new_preset:  # the likeliest cause: --preset left out, or given, this time
            hint = (
                f" (it was started with --preset {old_preset})"
                if old_preset
                else " (it was started without --preset)"
            )
        raise ResumeMismatchError(
            f"--resume would change {listed} of the run in {run_dir}{hint}; start a new run with another "
            "--exp_name instead"
        )


class ConfigFile:
    """The logger's part that writes config.json (on rank 0 only: the logger makes it there).

    ``settings`` is what the file records, and what each checkpoint carries a copy of
    (:class:`spinrl.record.checkpoint.Checkpointer`). On resume the file is written only once the resume
    is accepted (:meth:`commit`), so a resume refused later changes nothing.
    """

    def __init__(
        self,
        run_dir: Path,
        resume: bool,
        exp_name: str | None = None,
        preset: str | None = None,
        on_write: Callable[[dict], None] | None = None,
    ):
        self.run_dir, self.resume = run_dir, resume
        self.exp_name = exp_name
        self.preset = preset  # the --preset whose values the run's arguments hold (spinrl.presets)
        self.on_write = on_write  # called with each config written (experiment tracking)
        self.settings: dict | None = None
        self.pending: dict | None = None  # held back until a resume is accepted

    def save(self, config: dict) -> None:
        """Record ``config`` (see :meth:`spinrl.record.logger.Logger.save_config`)."""
        env_spec = recorded_env_spec(config)
        config = convert_json(config)
        if env_spec is not None:
            config["env_spec"] = env_spec  # how test_policy rebuilds an env made by a function
        if self.exp_name is not None:
            config["exp_name"] = self.exp_name
        if self.preset is not None:
            config["preset"] = self.preset
        self.settings = config
        if self.resume:
            recorded = check_same_run(self.run_dir, config)
            if recorded is not None:
                self.settings = resumed_config(recorded, config)  # more epochs, a new device or compile
                if self.settings == recorded:
                    return  # nothing to record: the original config stays
            # Written once the resume is accepted (commit): a resume refused later, for a damaged
            # checkpoint or settings that differ from those it carries, changes nothing.
            self.pending = self.settings
            return
        self._write(config)

    def check_checkpoint(self, saved: dict) -> None:
        """Hold the settings against ``saved``, those a checkpoint carries (see
        :meth:`spinrl.record.logger.Logger.check_checkpoint_config`)."""
        if self.settings is None:
            return
        refuse_changes(self.run_dir, saved, self.settings)
        if not (self.run_dir / CONFIG_FILE).exists():
            self.settings = self.pending = resumed_config(saved, self.settings)

    def commit(self) -> None:
        """Write the config that a resume held back, now that the resume goes on."""
        if self.pending is not None:
            self._write(self.pending)
            self.pending = None

    def _write(self, config: dict) -> None:
        text = json.dumps(config, separators=(",", ":\t"), indent=4, sort_keys=True)
        write_text_atomically(self.run_dir / CONFIG_FILE, text)
        if self.on_write is not None:
            self.on_write(config)
