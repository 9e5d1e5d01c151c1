"""Tuned hyperparameters that ship with spinrl, one TOML file per algorithm, chosen with ``--preset NAME``.

Spinning Up's defaults stay the defaults: a preset is only used when asked for. The files are plain
data, as in RL Zoo (``spinrl/presets/ppo.toml``): each top-level table is a preset, each of its
sub-tables the settings for one environment id::

    [tuned."Hopper-v5"]
    num_envs = 8
    target_kl = "None"                 # TOML has no null: the string "None" stands for None
    ac_kwargs = { ortho_init = true }  # keyword-argument tables set single entries

A preset never reaches the algorithm function. :meth:`spinrl.launch.grid.ExperimentGrid.run` resolves it per
variant (each environment of a grid gets its own entry) into ordinary keyword arguments, after the
values the user gave, which always win. So config.json, ``--resume``, ``spinrl test_policy`` and
``spinrl compare`` see the real numbers; config.json also records the preset's name.
"""

from __future__ import annotations

import difflib
import inspect
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

from spinrl.common.errors import UserError

PRESET_DIR = Path(__file__).resolve().parent

# Arguments that say which run this is rather than how it learns: a preset never sets them.
NOT_IN_PRESETS = ("env_fn", "env_name", "seed", "logger_kwargs", "resume", "actor_critic")


def _nones(value: Any) -> Any:
    """The string "None" as Python's None, inside tables and arrays too."""
    if value == "None":
        return None
    if isinstance(value, dict):
        return {k: _nones(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nones(v) for v in value]
    return value


def available_presets() -> dict[str, Path]:
    """Algorithm name -> its preset file, for every algorithm that has one."""
    return {p.stem: p for p in sorted(PRESET_DIR.glob("*.toml"))}


def load_presets(algo: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Every preset of ``algo``: preset name -> environment id -> hyperparameters (``None`` as None)."""
    files = available_presets()
    if algo not in files:
        have = ", ".join(files) or "none"
        raise UserError(f"spinrl has no presets for {algo}; algorithms with presets: {have}")
    path = files[algo]
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise UserError(f"the preset file {path} cannot be read: {e}") from None
    for name, envs in data.items():
        bad = (
            [env for env, entry in envs.items() if not isinstance(entry, dict)]
            if isinstance(envs, dict)
            else []
        )
        if not isinstance(envs, dict) or bad:
            raise UserError(
                f"the preset file {path} is malformed: [{name}] must hold one table per environment, "
                f'e.g. [{name}."Hopper-v5"]'
            )
    return _nones(data)


def preset_entry(algo: str, preset: str, env_id: str | None) -> dict[str, Any] | None:
    """The hyperparameters ``preset`` gives ``algo`` on ``env_id``; None where it has no entry for it."""
    presets = load_presets(algo)
    if preset not in presets:
        raise UserError(f"unknown preset {preset!r} for {algo}; valid: {', '.join(presets) or 'none'}")
    return presets[preset].get(env_id) if env_id is not None else None


def flat_settings(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry in the command line's key form: ``{"ac_kwargs": {"ortho_init": True}}`` becomes
    ``{"ac_kwargs:ortho_init": True}``, so that it sets one entry and a flag such as ``--hid`` keeps the others."""
    flat = {}
    for key, value in entry.items():
        if isinstance(value, dict):
            flat.update({f"{key}:{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def check_settings(fn: Callable, algo: str, preset: str, env_id: str, flat: dict[str, Any]) -> None:
    """Refuse an entry naming an argument that ``fn`` (or its default actor-critic) does not have."""
    signature = inspect.signature(fn).parameters
    params = [p for p in signature if p not in NOT_IN_PRESETS]
    ac = signature.get("actor_critic")
    ac_params = (
        [p for p in inspect.signature(ac.default).parameters if not p.endswith("_space")]
        if ac is not None and inspect.isclass(ac.default)
        else None
    )
    where = f"preset {preset} for {env_id} sets"
    for key in flat:
        top, _, inner = key.partition(":")
        if top not in params:
            close = difflib.get_close_matches(top, params, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise UserError(f"{where} {top!r}, which {algo} does not have; {hint}valid: {', '.join(params)}")
        if top == "ac_kwargs" and inner and ac_params is not None and inner not in ac_params:
            raise UserError(
                f"{where} ac_kwargs {inner!r}, which {ac.default.__name__} does not take; "
                f"valid: {', '.join(ac_params)}"
            )


def given_covers(given: list[str], key: str) -> bool:
    """Whether a key the user gave sets ``key``: the same key, or a whole table above it
    (``--ac_kwargs "{...}"`` replaces every ``ac_kwargs:...`` of the preset)."""
    return any(key == g or key.startswith(g + ":") or g.startswith(key + ":") for g in given)


def resolve_preset(
    fn: Callable, preset: str, env_id: str | None, given: list[str]
) -> tuple[dict[str, Any] | None, str]:
    """What ``preset`` adds to a run of ``fn`` on ``env_id`` whose flags set the keys ``given``.

    Returns the settings to add (in the flat ``a:b`` key form, without the keys the user gave) and the
    line that tells the user, e.g. ``preset tuned for Hopper-v5: num_envs=8, ...``. Where the preset has
    no entry for the environment the settings are None and the line says the defaults stay.
    """
    algo = fn.__name__
    entry = preset_entry(algo, preset, env_id)
    if entry is None:
        env = env_id or "an environment made by a function"
        return None, f"preset {preset} has no entry for {env}; using the defaults"
    flat = flat_settings(entry)
    check_settings(fn, algo, preset, str(env_id), flat)
    used = {k: v for k, v in flat.items() if not given_covers(given, k)}
    replaced = [k for k in flat if k not in used]
    text = f"preset {preset} for {env_id}: " + ", ".join(f"{k}={v!r}" for k, v in used.items())
    if replaced:
        text += "; your flags replace " + ", ".join(replaced)
    return used, "\n".join(textwrap.wrap(text, 100, subsequent_indent="    ", break_on_hyphens=False))


def describe_presets(algo: str) -> str | None:
    """One line per preset of ``algo`` with the environments it covers (for ``spinrl ALGO --help``)."""
    if algo not in available_presets():
        return None
    lines = [f"  {name}: {', '.join(envs)}" for name, envs in load_presets(algo).items()]
    return "\n".join(lines)
