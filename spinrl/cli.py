"""The ``spinrl`` command line.

``spinrl ALGO --key value [value ...] ...`` trains ALGO once per combination of the values given,
with Spinning Up's grid syntax and shorthands::

    spinrl ppo --env CartPole-v1 --seed 0 10 20 --hid[h] "[64,64]" "[32]" --act torch.nn.Tanh --exp_name cp

(``--hid[h]`` picks ``h`` as the key's shorthand in run names.) Spinning Up's ``ppo_pytorch`` and the
like name the same algorithms.

Other commands (``spinrl test_policy``, ``spinrl plot``, ...) live in their own modules, each with a
``main(argv) -> int``; this module only dispatches to them. Help for every algorithm is derived from its
signature and docstring. An algorithm file run as a script (``python -m spinrl.algos.ppo --env ...``)
comes here through :func:`run_as_script`.
"""

from __future__ import annotations

import ast
import difflib
import gc
import importlib
import importlib.util
import inspect
import re
import sys
import textwrap
from collections.abc import Callable
from typing import Any

from spinrl.common.errors import UserError, run_main_guarded
from spinrl.presets import describe_presets

# Algorithm name -> "module:function". An algorithm appears once its file exists.
ALGORITHMS: dict[str, str] = {
    "vpg": "spinrl.algos.vpg:vpg",
    "trpo": "spinrl.algos.trpo:trpo",
    "ppo": "spinrl.algos.ppo:ppo",
    "ddpg": "spinrl.algos.ddpg:ddpg",
    "td3": "spinrl.algos.td3:td3",
    "sac": "spinrl.algos.sac:sac",
    "dqn": "spinrl.algos.dqn:dqn",
}

OFF_POLICY = ("ddpg", "td3", "sac", "dqn")  # single-process: no MPI data parallelism

# Other commands -> "module:main" (each takes argv and returns an exit code).
COMMANDS: dict[str, tuple[str, str]] = {
    "test_policy": ("spinrl.results.policy:main", "run a trained policy: returns, rendering, video"),
    "plot": ("spinrl.results.plot:main", "plot learning curves across seeds"),
    "compare": ("spinrl.results.compare:main", "compare final performance with confidence intervals"),
    "ls": ("spinrl.results.ls:main", "list runs and their status"),
    "tune": ("spinrl.tune.study:main", "search hyperparameters with Optuna, several seeds per trial"),
    "exercise": ("spinrl.exercises.cli:main", "self-checking exercises"),
    "demo": ("spinrl.demo:main", "train PPO on CartPole and plot it"),
}

# Spinning Up's shorthands for the command line.
SUBSTITUTIONS = {
    "env": "env_fn",
    "env_name": "env_fn",
    "hid": "ac_kwargs:hidden_sizes",
    "act": "ac_kwargs:activation",
    "dt": "datestamp",
}

# Run-name shorthands of the keys that get one without --key[short] (other keys: Spinning Up's default,
# the first three letters of each ":" part). The environment's value alone names it.
DEFAULT_SHORTHANDS = {"env_fn": "", "ac_kwargs:hidden_sizes": "hid", "ac_kwargs:activation": "act"}

# Flags that configure how runs are launched rather than the algorithm itself (and --preset, which the
# grid turns into the algorithm's own arguments).
LAUNCH_FLAGS = {
    "exp_name": "name of the experiment (a plain name, not a path): runs go to "
    "DATA_DIR/EXP_NAME/EXP_NAME_s<seed> (default cmd_<algo>)",
    "data_dir": "where runs are written (default ./data or $SPINRL_DATA_DIR)",
    "datestamp": "prefix run folders with the date and time (flag, or --dt)",
    "cpu": "number of MPI ranks per run: an integer up to the number of cores, or 'auto' (one per core; "
    "default 1)",
    "num_cpu": "same as --cpu",
    "oversubscribe": "allow --cpu above the number of cores of this machine (flag)",
    "mpi_args": 'extra arguments passed to mpiexec, e.g. "--hostfile hosts.txt"',
    "parallel": "run up to K grid variants at once, each in its own process with a share of the cores "
    "(default 1: one after another); with --backend ray, the most Ray tasks in flight",
    "backend": "where the variants run: local (this machine, default) or ray (one Ray task each)",
    "address": "the Ray cluster to join, HOST:PORT (default: start Ray on this machine); needs --backend ray",
    "preset": "tuned settings per environment shipped with spinrl (e.g. --preset tuned; listed below): "
    "each run takes its environment's entry for every hyperparameter you do not give (default: none, "
    "Spinning Up's defaults)",
    "track": "send each run's config and epochs to Weights & Biases (flag; the track extra)",
}
BOOLEAN_FLAGS = {"datestamp", "resume", "save_buffer", "compile", "async_envs", "oversubscribe", "track"}


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _load(target: str) -> Any:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def available_algorithms() -> dict[str, str]:
    """Algorithms whose files exist in this installation."""
    out = {}
    for name, target in ALGORITHMS.items():
        if _module_exists(target.split(":")[0]):
            out[name] = target
    return out


# ----- help derived from the function ---------------------------------------------------------------
def parse_docstring_args(fn: Callable) -> dict[str, str]:
    """Map each argument to its description in the docstring's ``Args:`` section."""
    doc = inspect.getdoc(fn) or ""
    match = re.search(r"^Args:\n(.*?)(?:\n\S|\Z)", doc, flags=re.S | re.M)
    if not match:
        return {}
    out: dict[str, str] = {}
    current = None
    for line in match.group(1).splitlines():
        m = re.match(r"^    (\w+)(?: \(.*?\))?:\s*(.*)$", line)
        if m:
            current = m.group(1)
            out[current] = m.group(2).strip()
        elif current is not None and line.strip():
            out[current] += " " + line.strip()
    return out


def algorithm_help(algo: str, fn: Callable) -> str:
    """``spinrl ALGO --help``: every hyperparameter with its default and docstring explanation."""
    descriptions = parse_docstring_args(fn)
    summary = (inspect.getdoc(fn) or "").split("\n\n")[0]
    lines = [
        f"usage: spinrl {algo} [--KEY VALUE [VALUE ...]] ...",
        "",
        summary,
        "",
        "Several values after a flag give one run per combination (a grid).",
        "",
        "hyperparameters:",
    ]
    for name, p in inspect.signature(fn).parameters.items():
        if name in ("logger_kwargs",):
            continue
        flag = "--env ENV_ID" if name == "env_fn" else f"--{name}"
        default = "" if p.default is inspect.Parameter.empty else f" (default: {_show_default(p.default)})"
        desc = descriptions.get(name, "")
        lines.append(f"  {flag}{default}")
        if desc:
            lines += textwrap.wrap(desc, 96, initial_indent="      ", subsequent_indent="      ")
    lines += [
        "",
        "shorthands: --env/--env_name = env_fn, --hid = ac_kwargs:hidden_sizes, "
        "--act = ac_kwargs:activation, --dt = --datestamp",
        "run names: a key with several values joins the name as its shorthand and value; write --KEY[SHORT]",
        'to choose the shorthand (--hid[h] "[32,32]" "[64,32]" gives ..._h32-32 and ..._h64-32)',
        "",
        "launching:",
    ]
    for flag, desc in LAUNCH_FLAGS.items():
        lines.append(f"  --{flag}: {desc}")
    presets = describe_presets(algo)
    lines += ["", "presets (--preset NAME) and the environments they cover:", presets or "  none yet"]
    return "\n".join(lines)


def _show_default(v: Any) -> str:
    if inspect.isclass(v) or inspect.isfunction(v):
        return v.__name__
    return repr(v)


def main_help() -> str:
    lines = [
        "usage: spinrl COMMAND [ARGS ...]",
        "",
        "Spinning Up in deep RL, rebuilt for today.",
        "",
        "algorithms (spinrl ALGO --help for hyperparameters):",
    ]
    for name in available_algorithms():
        lines.append(f"  {name}")
    lines += ["", "commands:"]
    for name, (_, desc) in COMMANDS.items():
        lines.append(f"  {name:<12} {desc}")
    lines += [
        "",
        "Spinning Up's names work too: ppo_pytorch is ppo (spinrl has no TensorFlow versions).",
        "example: spinrl ppo --env CartPole-v1 --seed 0 10 20 --exp_name cp",
    ]
    return "\n".join(lines)


# ----- parsing the grid ---------------------------------------------------------------------------
def parse_value(text: str) -> Any:
    """A command-line value: a Python literal when it is one, else the string itself. Never eval."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_grid_args(tokens: list[str]) -> dict[str, list[Any]]:
    """``--key v1 v2 --flag`` -> ``{"key": [v1, v2], "flag": [True]}`` (with shorthands substituted)."""
    return parse_grid(tokens)[0]


# A flag: --name, --name[short] (Spinning Up's run-name shorthand), either one optionally =value.
_FLAG = re.compile(r"--([A-Za-z_][\w:]*)(?:\[([^\[\]]*)\])?(?:=(.*))?", flags=re.S)


def parse_grid(tokens: list[str]) -> tuple[dict[str, list[Any]], dict[str, str]]:
    """Split the command line into values per key and the shorthands the user chose for run names.

    As in Spinning Up, ``--hid[h] "[32,32]" "[64,32]"`` gives the key ``ac_kwargs:hidden_sizes`` two
    values and the shorthand ``h``, so the runs are named ``..._h32-32`` and ``..._h64-32``. A shorthand
    follows its key through the substitutions (``--env``, ``--hid``, ``--act``, ``--dt``).
    """
    args: dict[str, list[Any]] = {}
    shorthands: dict[str, str] = {}
    written: dict[str, str] = {}  # key -> the flag name as typed (before substitution)
    key = None
    for tok in tokens:
        # A flag is --name (letters, digits, _ and :), maybe with [short] and =value; anything else is
        # a value, so that --mpi_args "--hostfile hosts.txt" passes its text through.
        flag = _FLAG.fullmatch(tok)
        if flag is None and re.match(r"--[A-Za-z_][\w:]*\[", tok):
            raise UserError(
                f"{tok!r} is not a valid flag: a shorthand goes in brackets at the end, e.g. --hid[h]"
            )
        if flag or tok == "--":
            name = flag.group(1) if flag else ""
            if not name:
                raise UserError("empty flag '--': flags look like --epochs 10")
            key = SUBSTITUTIONS.get(name, name)
            if key in args:
                raise UserError(f"--{name} was given twice; give all its values after one flag")
            args[key], written[key] = [], name
            if flag.group(2) is not None:
                shorthands[key] = flag.group(2)
            if flag.group(3) is not None:
                args[key].append(parse_value(flag.group(3)))
        elif key is None:
            raise UserError(f"value {tok!r} comes before any flag: write --KEY {tok}")
        else:
            args[key].append(parse_value(tok))
    for k, vals in args.items():
        if not vals:
            if k in BOOLEAN_FLAGS:
                args[k] = [True]
            else:
                raise UserError(f"--{k} needs a value")
    return _in_spinning_up_order(args, shorthands, written), shorthands


def _in_spinning_up_order(
    args: dict[str, list[Any]], shorthands: dict[str, str], written: dict[str, str]
) -> dict[str, list[Any]]:
    """The keys in the order Spinning Up's parser leaves them, which is the order they join run names.

    Its parser moves a key to the end when it strips a ``[short]`` from it, then again when it
    replaces a short flag (``--env``, ``--hid``, ``--act``, ``--cpu``, ``--dt``, in that order) by the
    full name; every other key keeps its place on the command line.
    """
    order = list(args)

    def to_end(key: str) -> None:
        order.remove(key)
        order.append(key)

    for key in [k for k in order if k in shorthands]:
        to_end(key)
    for short in ("env", "hid", "act", "cpu", "dt"):
        for key in [k for k in order if written[k] == short]:
            to_end(key)
    return {k: args[k] for k in order}


def _single(args: dict[str, list[Any]], key: str, default: Any) -> Any:
    vals = args.pop(key, None)
    if vals is None:
        return default
    if len(vals) != 1:
        raise UserError(f"--{key} takes one value, got {len(vals)}: {vals}")
    return vals[0]


def check_keys(algo: str, fn: Callable, args: dict[str, list[Any]]) -> None:
    """Refuse unknown hyperparameters (suggesting the closest valid name) and values the command line
    cannot give (classes, which are set from Python; keyword dictionaries that are not dictionaries)."""
    params = [p for p in inspect.signature(fn).parameters if p != "logger_kwargs"]
    if "actor_critic" in args:
        raise UserError(
            f"--actor_critic cannot be set from the command line; pass a class from Python: "
            f"{algo}(env_fn, actor_critic=MyActorCritic), or change the built-in one with --hid and --act"
        )
    ac_default = inspect.signature(fn).parameters.get("actor_critic")
    if ac_default is not None and inspect.isclass(ac_default.default):
        ac_params = [p for p in inspect.signature(ac_default.default).parameters if not p.endswith("_space")]
        for key in args:
            if key.startswith("ac_kwargs:") and key.split(":", 1)[1] not in ac_params:
                name = key.split(":", 1)[1]
                close = difflib.get_close_matches(name, ac_params, n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                raise UserError(
                    f"unknown actor-critic argument {name!r} (--{key}); {hint}valid: {', '.join(ac_params)}"
                )
    for key, vals in args.items():
        if key.endswith("_kwargs") and ":" not in key:
            for v in vals:
                if not isinstance(v, dict):
                    raise UserError(
                        f"--{key} {v!r} is not valid: give a dictionary, e.g. \"{{'hidden_sizes': [64, 64]}}\""
                    )
    for key in args:
        top = key.split(":")[0]
        if top not in params:
            close = difflib.get_close_matches(top, params + list(LAUNCH_FLAGS), n=1)
            hint = f"; did you mean --{close[0]}?" if close else f"; valid: {', '.join(params)}"
            raise UserError(f"unknown hyperparameter --{top} for {algo}{hint}")


def whole_numbers_as_int(fn: Callable, args: dict[str, list[Any]]) -> None:
    """``--epochs 2.0`` or ``--replay_size 1e6`` mean whole numbers: give integer-valued floats as ints to
    the arguments whose default is an int. (From Python, a float there stays an error.)"""
    for name, p in inspect.signature(fn).parameters.items():
        if name in args and isinstance(p.default, int) and not isinstance(p.default, bool):
            args[name] = [int(v) if isinstance(v, float) and v.is_integer() else v for v in args[name]]


def algorithm_name(cmd: str) -> str:
    """Spinning Up's names with a backend: ``ppo_pytorch`` is ``ppo``; ``ppo_tf1`` is refused in one line."""
    base, _, backend = cmd.rpartition("_")
    if base in available_algorithms():
        if backend == "pytorch":
            return base
        if backend == "tf1":
            raise UserError(
                f"{cmd}: spinrl has no TensorFlow versions; use {base} (or {base}_pytorch), the PyTorch one"
            )
    return cmd


def run_algorithm(algo: str, tokens: list[str]) -> int:
    algos = available_algorithms()
    if algo not in algos:
        raise UserError(f"unknown command {algo!r}")
    if "--parallel" in tokens:  # a local parallel grid: its zygote's imports overlap ours (launch_zygote)
        from spinrl.launch.zygote import start_early

        start_early(algos[algo].split(":")[0], tokens)
    fn = _load(algos[algo])
    if any(t in ("-h", "--help") for t in tokens):
        print(algorithm_help(algo, fn))
        return 0
    from spinrl.common.mpi import resolve_num_cpu
    from spinrl.launch.grid import ExperimentGrid
    from spinrl.record.folder import check_exp_name

    args, shorthands = parse_grid(tokens)
    exp_name = check_exp_name(_single(args, "exp_name", f"cmd_{algo}"))
    data_dir = _single(args, "data_dir", None)
    datestamp = bool(_single(args, "datestamp", False))
    mpi_args = str(_single(args, "mpi_args", ""))
    oversubscribe = bool(_single(args, "oversubscribe", False))
    num_cpu = resolve_num_cpu(_single(args, "num_cpu", _single(args, "cpu", 1)), mpi_args, oversubscribe)
    launch = {
        k: _single(args, k, None) for k in ("parallel", "backend", "address", "preset", "track") if k in args
    }
    check_keys(algo, fn, args)
    whole_numbers_as_int(fn, args)
    if num_cpu > 1 and algo in OFF_POLICY:
        raise UserError(
            f"{algo} runs in one process; --cpu {num_cpu} is only for vpg, trpo and ppo "
            "(use --num_envs for more env copies)"
        )
    if "env_fn" not in args:
        raise UserError(f"spinrl {algo} needs an environment: add --env ENV_ID (e.g. --env CartPole-v1)")

    eg = ExperimentGrid(name=exp_name)
    # The keys join run names in Spinning Up's order (see parse_grid); env only when it varies.
    for key, vals in args.items():
        shorthand = shorthands.get(key, DEFAULT_SHORTHANDS.get(key))
        eg.add(key, vals, shorthand, in_name=False)
    run_kwargs: dict[str, Any] = dict(
        num_cpu=num_cpu, data_dir=data_dir, datestamp=datestamp, mpi_args=mpi_args
    )
    if launch:
        run_kwargs.update({k: v for k, v in launch.items() if v is not None})
    eg.run(fn, **run_kwargs)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``spinrl`` command; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(main_help())
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd in COMMANDS:
        target = COMMANDS[cmd][0]
        if not _module_exists(target.split(":")[0]):
            raise UserError(f"command {cmd!r} is not available in this installation")
        return int(_load(target)(rest) or 0)
    algo = algorithm_name(cmd)
    if algo in available_algorithms():
        return run_algorithm(algo, rest)
    valid = list(available_algorithms()) + list(COMMANDS)
    close = difflib.get_close_matches(cmd, valid, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise UserError(f"unknown command {cmd!r}; {hint}valid: {', '.join(valid)}")


def console_main() -> None:
    """The ``spinrl`` console script: run the command line on ``sys.argv`` and exit with its code."""
    code = run_main_guarded(main)
    # Leave everything loaded so far out of the garbage collection the interpreter makes at exit: with
    # torch imported, that one pass over its objects is most of the exit's time
    # (benchmarks/results/code-measurements.md). Exit handlers and the closing of files run as before.
    gc.freeze()
    sys.exit(code)


def run_as_script(algo: str) -> None:
    """Run one algorithm's command line from that algorithm's own file.

    ``python -m spinrl.algos.ppo --env CartPole-v1 --seed 0 10`` behaves exactly like
    ``spinrl ppo --env CartPole-v1 --seed 0 10``: grid syntax, help and one-line errors included.
    """
    sys.exit(run_main_guarded(main, [algo, *sys.argv[1:]]))


if __name__ == "__main__":
    console_main()
