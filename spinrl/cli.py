"""The ``spinrl`` command line.

``spinrl ALGO --key value [value ...] ...`` trains ALGO once per combination of the values given,
with Spinning Up's grid syntax and shorthands::

    spinrl ppo --env CartPole-v1 --seed 0 10 20 --hid[h] "[64,64]" "[32]" --act torch.nn.Tanh --exp_name cp

(``--hid[h]`` picks ``h`` as the key's shorthand in run names.) Spinning Up's ``ppo_pytorch`` and the
like name the same algorithms.

Other commands (``spinrl test_policy``, ``spinrl plot``, ...) live in their own modules, each with a
``main(argv) -> int``; this module only dispatches to them. The grid syntax is read by
:mod:`spinrl.launch.grid_args`. Help for every algorithm is derived from its signature and docstring. An algorithm file run as a script (``python -m spinrl.algos.ppo --env ...``)
comes here through :func:`run_as_script`.
"""

from __future__ import annotations

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

# The grid syntax; all of it stays importable from here, where it was first.
from spinrl.launch.grid_args import (  # noqa: F401
    BOOLEAN_FLAGS,
    DEFAULT_SHORTHANDS,
    LAUNCH_FLAGS,
    SUBSTITUTIONS,
    check_keys,
    parse_grid,
    parse_grid_args,
    parse_value,
    single_value,
    whole_numbers_as_int,
)
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
    exp_name = check_exp_name(single_value(args, "exp_name", f"cmd_{algo}"))
    data_dir = single_value(args, "data_dir", None)
    datestamp = bool(single_value(args, "datestamp", False))
    mpi_args = str(single_value(args, "mpi_args", ""))
    oversubscribe = bool(single_value(args, "oversubscribe", False))
    num_cpu = resolve_num_cpu(
        single_value(args, "num_cpu", single_value(args, "cpu", 1)), mpi_args, oversubscribe
    )
    launch = {
        k: single_value(args, k, None)
        for k in ("parallel", "backend", "address", "preset", "track")
        if k in args
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
