"""``spinrl tune --show STUDY``: the best trial and the command that reruns it, every trial, Optuna's plots.

::

    spinrl tune --show data/cp-search                      # a study folder (its study.db)
    spinrl tune --show cp-search --storage URL             # a study in a shared storage
    spinrl tune --show data/cp-search --save_preset tuned  # print the best settings as a preset entry
    spinrl tune --show data/cp-search --save_preset tuned --preset_file my_presets.toml

A preset entry is a TOML table ``[NAME."ENV_ID"]`` of ``hyperparameter = value`` lines, the layout of
the per-environment settings files that ``--preset`` reads (``spinrl/presets/<algo>.toml``): keyword
arguments such as ``ac_kwargs`` become inline tables and None is written as the string ``"None"``,
since TOML has no null. The entry holds the best trial's searched values and the fixed settings of the
search, except those that say where, how long or how many times to run (``env``, ``seed``, ``epochs``,
``device``). A file is only ever appended to, and an entry it already has is refused.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import Any

from spinrl.common.errors import UserError
from spinrl.record.names import PLOTS_DIR
from spinrl.tune.space import parse_distribution, require_optuna, value_from_storage

# Settings of a search that are not hyperparameters of the tuned algorithm.
NOT_IN_PRESET = ("env_fn", "seed", "epochs", "device", "resume", "logger_kwargs")
_FLAGS = ("show", "storage", "save_preset", "preset_file", "data_dir")


def parse_show_args(argv: list[str]) -> dict[str, str]:
    """``--show STUDY [--storage URL] [--save_preset NAME] [--preset_file FILE]`` (``-`` or ``_`` in names)."""
    out: dict[str, str] = {}
    it = iter(argv)
    for tok in it:
        name = tok[2:].replace("-", "_") if tok.startswith("--") else None
        if name not in _FLAGS:
            raise UserError(
                f"spinrl tune --show: {tok!r} is not valid here; flags: "
                + ", ".join(f"--{f}" for f in _FLAGS)
            )
        value = next(it, None)
        if value is None or value.startswith("--"):
            raise UserError(f"--{name} needs a value")
        out[name] = value
    if "preset_file" in out and "save_preset" not in out:
        raise UserError("--preset_file names where --save_preset NAME writes: give --save_preset too")
    return out


def find_study(args: dict[str, str]) -> tuple[str, str]:
    """The study's name and storage URL: a study folder's ``study.db``, or ``--storage``."""
    from spinrl.record.folder import default_data_dir
    from spinrl.record.names import STUDY_FILE

    where = args["show"]
    if args.get("storage"):
        return Path(where).name, args["storage"]
    for folder in (Path(where), Path(args.get("data_dir") or default_data_dir(), where)):
        if (folder / STUDY_FILE).is_file():
            return folder.resolve().name, f"sqlite:///{(folder / STUDY_FILE).resolve()}"
    raise UserError(
        f"no study at {where!r}: give a study folder (holding {STUDY_FILE}) or its name with --storage URL"
    )


def main(argv: list[str]) -> int:
    args = parse_show_args(argv)
    name, url = find_study(args)
    optuna = require_optuna()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        study = optuna.load_study(study_name=name, storage=url)
    except KeyError:
        raise UserError(f"the storage {url} holds no study named {name!r}") from None
    settings = study.user_attrs.get("settings") or {}
    best = _best_trial(study)
    if "save_preset" in args:
        if best is None:
            raise UserError(f"study {name!r} has no completed trial yet: nothing to save as a preset")
        text = preset_entry(args["save_preset"], settings, best, study)
        if "preset_file" in args:
            append_preset(Path(args["preset_file"]), text, args["save_preset"], _env_id(settings))
            print(f"preset {args['save_preset']!r} for {_env_id(settings)} appended to {args['preset_file']}")
        else:
            print(text, end="")
        return 0
    print_report(study, settings, best)
    plots_dir = Path(study.user_attrs.get("study_dir") or ".", PLOTS_DIR)
    for line in write_plots(study, plots_dir):
        print(line)
    return 0


def _best_trial(study: Any) -> Any:
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return max(done, key=lambda t: t.value) if done else None


def best_values(settings: dict[str, Any], trial: Any) -> dict[str, Any]:
    """The trial's searched values as the algorithm takes them (a choice of lists back as lists)."""
    space = {k: parse_distribution(k, v) for k, v in settings.get("space", {}).items()}
    return {k: value_from_storage(space.get(k), v) for k, v in trial.params.items()}


def rerun_command(settings: dict[str, Any], trial: Any, exp_name: str) -> str:
    """The one ``spinrl ALGO ...`` command line that trains the trial's settings again, on the same seeds."""
    from spinrl.common.seeding import trial_seeds

    values = dict(settings.get("fixed", {}), **best_values(settings, trial))
    base = values.pop("seed", 0)
    words = ["spinrl", settings.get("algo", "ALGO")]
    for key, value in values.items():
        words += ["--env" if key == "env_fn" else f"--{key}", _command_line_value(value)]
    words += ["--seed", *map(str, trial_seeds(base, settings.get("trial_seeds", 1)))]
    if settings.get("num_cpu", 1) > 1:
        words += ["--cpu", str(settings["num_cpu"])]
    words += ["--exp_name", exp_name]
    return " ".join(shlex.quote(w) for w in words)


def _command_line_value(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"__env__", "kwargs"}:
        return str(value["__env__"])
    if isinstance(value, dict) and set(value) == {"__callable__"}:
        return value["__callable__"].replace(":", ".")
    return value if isinstance(value, str) else repr(value).replace(" ", "")


def print_report(study: Any, settings: dict[str, Any], best: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    states: dict[str, int] = {}
    for t in study.trials:
        states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
    console = Console(highlight=False, width=max(100, Console().width))
    console.print(
        f"Study {study.study_name}: {len(study.trials)} trial(s): "
        + ", ".join(f"{n} {s}" for s, n in states.items())
    )
    column = best.user_attrs.get("column", "the return") if best is not None else "the return"
    console.print(
        f"objective (maximised): the mean over {settings.get('trial_seeds', '?')} seed(s) of {column} "
        f"averaged over each seed's last {settings.get('last_epochs', '?')} epoch(s)"
    )
    if best is None:
        console.print("no completed trial yet")
    else:
        console.print(f"best: trial {best.number}, {best.value:.6g}")
        for key, value in best_values(settings, best).items():
            console.print(f"  {key} = {value!r}")
        console.print(
            "rerun it:\n  " + rerun_command(settings, best, f"{study.study_name}_best"), soft_wrap=True
        )
    keys = list(settings.get("space", {})) or sorted({k for t in study.trials for k in t.params})
    table = Table(box=None, pad_edge=False)
    for col in ("#", "state", "value", *keys, "epochs"):
        table.add_column(col, justify="right" if col != "state" else "left")
    for t in study.trials:
        value = "" if t.value is None else f"{t.value:.4g}"
        if t.state.name == "PRUNED" and t.intermediate_values:
            value = f"({t.intermediate_values[max(t.intermediate_values)]:.4g})"
        epochs = str(len(t.intermediate_values))
        params = [_short(v) for v in (best_values(settings, t).get(k, "") for k in keys)]
        table.add_row(str(t.number), t.state.name.lower(), value, *params, epochs)
    console.print(table)
    console.print("(a pruned trial shows in brackets its mean return at the epoch it was stopped)")


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def write_plots(study: Any, plots_dir: Path) -> list[str]:
    """Optuna's optimisation history and parameter importances as PNG files; one line per file or skip."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as oplt

    plots_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for fname, plot in (("optimization_history.png", oplt.plot_optimization_history),
                        ("param_importances.png", oplt.plot_param_importances)):  # fmt: skip
        path = plots_dir / fname
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax = plot(study)
            fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
            fig.tight_layout()
            fig.savefig(path, dpi=100)
            plt.close(fig)
            lines.append(f"plot: {path}")
        except (ValueError, RuntimeError, ZeroDivisionError) as e:
            lines.append(
                f"no {fname[:-4].replace('_', ' ')} plot yet: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
            )
    return lines


# ----- a preset entry -------------------------------------------------------------------------------------
def _env_id(settings: dict[str, Any]) -> str:
    env = settings.get("fixed", {}).get("env_fn", "ENV")
    if isinstance(env, dict) and "__env__" in env:
        return str(env["__env__"])
    if isinstance(env, dict) and "__callable__" in env:
        return env["__callable__"].rsplit(":", 1)[-1]
    return str(env)


def preset_entry(name: str, settings: dict[str, Any], trial: Any, study: Any) -> str:
    """The TOML table ``[name."ENV_ID"]`` of the trial's settings (see the module docstring)."""
    values = {k: v for k, v in settings.get("fixed", {}).items() if k.split(":")[0] not in NOT_IN_PRESET}
    values.update(best_values(settings, trial))
    tables: dict[str, dict[str, Any]] = {}
    plain: dict[str, Any] = {}
    for key, value in values.items():
        top, _, sub = key.partition(":")
        if sub:
            tables.setdefault(top, {})[sub] = value
        elif isinstance(value, dict):
            tables.setdefault(top, {}).update(value)
        else:
            plain[key] = value
    lines = [
        f"# spinrl tune: study {study.study_name}, trial {trial.number}, objective {trial.value:.6g}",
        f"[{_toml_key(name)}.{toml_value(_env_id(settings))}]",  # the env id quoted, as the presets have it
    ]
    lines += [f"{_toml_key(k)} = {toml_value(v)}" for k, v in plain.items()]
    lines += [f"{_toml_key(k)} = {toml_value(v)}" for k, v in tables.items()]
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    import re

    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_value(str(key))


def toml_value(v: Any) -> str:
    """A value in TOML; None as ``"None"``, the presets' convention."""
    if v is None:
        return '"None"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        if set(v) == {"__callable__"}:
            return toml_value(v["__callable__"].replace(":", "."))
        return "{ " + ", ".join(f"{_toml_key(str(k))} = {toml_value(x)}" for k, x in v.items()) + " }"
    import json

    return json.dumps(str(v))


def append_preset(path: Path, text: str, name: str, env_id: str) -> None:
    """Append the entry to ``path``; refuse a file that has it already (nothing is overwritten)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    old = path.read_text() if path.exists() else ""
    try:
        existing = tomllib.loads(old)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path} is not a TOML file ({e}); give another --preset_file") from None
    if env_id in existing.get(name, {}):
        raise UserError(f'{path} has a [{name}."{env_id}"] entry already: give another preset name or file')
    sep = "" if not old or old.endswith("\n\n") else ("\n" if old.endswith("\n") else "\n\n")
    with open(path, "a") as f:
        f.write(sep + text)
