"""The search space of ``spinrl tune``: distributions written as command-line values.

A value such as ``"loguniform(1e-5, 1e-2)"`` after a flag asks Optuna to search that hyperparameter;
any other value fixes it, as in a grid. The forms, each a Python-like call of literals:

- ``uniform(low, high)``: a float, evenly spread;
- ``loguniform(low, high)``: a float spread evenly in its logarithm (learning rates), ``low > 0``;
- ``int(low, high)`` and ``logint(low, high)``: a whole number from ``low`` to ``high`` inclusive;
- ``choice(a, b, ...)``: one of the listed values, which may be lists (``choice([64,64], [256,256])``).

Several plain values after one flag (``--hid "[64,64]" "[256,256]"``) are a choice too: where the grid
runs every value, the search picks among them. Nothing here imports Optuna, so the command line can
refuse a bad distribution before it starts anything; :func:`suggest` is where a trial asks for a value.
"""

from __future__ import annotations

import ast
import difflib
import math
import re
from dataclasses import dataclass
from typing import Any

from spinrl.common.errors import UserError

DISTRIBUTIONS = ("uniform", "loguniform", "int", "logint", "choice")
# "name(" at the start of a value: the user meant a distribution (a known one or a misspelt one).
_CALL = re.compile(r"\s*([A-Za-z_]\w*)\s*\(")


@dataclass(frozen=True)
class Distribution:
    """One searched hyperparameter: ``kind`` is one of :data:`DISTRIBUTIONS`.

    ``low``/``high`` bound the numeric kinds; ``choices`` hold a choice's values as they are given to
    the algorithm (lists included).
    """

    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple = ()

    def __str__(self) -> str:
        if self.kind == "choice":
            return f"choice({', '.join(repr(c) for c in self.choices)})"
        return f"{self.kind}({self.low!r}, {self.high!r})"


def looks_like_distribution(value: Any) -> bool:
    """Whether a command-line value is written as a call, ``name(...)``: a distribution or a mistaken one."""
    return isinstance(value, str) and _CALL.match(value) is not None


def parse_distribution(key: str, text: str) -> Distribution:
    """Read ``text`` (e.g. ``"uniform(0.1, 0.3)"``) for the flag ``--key``; one clear line if it is wrong."""
    where = f"--{key} {text!r}"
    try:
        call = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise UserError(f"{where} is not a valid distribution: {_forms()}") from None
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name) or call.keywords:
        raise UserError(f"{where} is not a valid distribution: {_forms()}")
    name = call.func.id
    if name not in DISTRIBUTIONS:
        close = difflib.get_close_matches(name, DISTRIBUTIONS, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UserError(f"{where}: unknown distribution {name!r}; {hint}valid: {', '.join(DISTRIBUTIONS)}")
    args = [_literal_or_text(a) for a in call.args]
    if name == "choice":
        if len(args) < 2:
            raise UserError(f"{where}: a choice needs at least two values, e.g. choice(64, 128)")
        return Distribution("choice", choices=tuple(args))
    if len(args) != 2 or not all(_is_number(a) for a in args):
        raise UserError(f"{where}: {name} takes two numbers, low and high, e.g. {name}(1, 10)")
    low, high = args
    if not low < high:
        raise UserError(f"{where}: low ({low}) must be below high ({high})")
    if name.startswith("log") and low <= 0:
        raise UserError(f"{where}: {name} needs low > 0 (a logarithmic scale); got low = {low}")
    if name.endswith("int") and not (float(low).is_integer() and float(high).is_integer()):
        raise UserError(f"{where}: {name} takes whole numbers, got {low} and {high}")
    return Distribution(name, low=low, high=high)


def _literal_or_text(node: ast.expr) -> Any:
    """An argument as a Python literal, or its text (``torch.nn.Tanh``), as the grid reads plain values."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.unparse(node)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _forms() -> str:
    return "write one of uniform(LOW, HIGH), loguniform(LOW, HIGH), int(LOW, HIGH), logint(LOW, HIGH), choice(A, B, ...)"


def split_space(args: dict[str, list[Any]]) -> tuple[dict[str, Distribution], dict[str, Any]]:
    """Split parsed grid arguments into the searched ones and the fixed ones.

    A single distribution value is searched; several values are a choice among them; one plain value
    is fixed. A distribution among other values is refused: it would mean a choice of distributions.
    """
    space: dict[str, Distribution] = {}
    fixed: dict[str, Any] = {}
    for key, vals in args.items():
        calls = [v for v in vals if looks_like_distribution(v)]
        if calls and len(vals) > 1:
            raise UserError(
                f"--{key}: give either one distribution ({calls[0]}) or several plain values, not both"
            )
        if calls:
            space[key] = parse_distribution(key, calls[0])
        elif len(vals) > 1:
            space[key] = Distribution("choice", choices=tuple(vals))
        else:
            fixed[key] = vals[0]
    return space, fixed


# ----- the built-in spaces: used when the command line searches nothing -------------------------------
# Ranges from the tuning literature (RL Zoo's and CleanRL's searches, the algorithms' papers), written in
# the command line's own syntax so that `spinrl tune ALGO --help` can show them as they would be typed.
_LR = "loguniform(1e-5, 1e-2)"
_GAMMA = "choice(0.95, 0.98, 0.99, 0.995, 0.999)"
_HID = "choice([64, 64], [256, 256])"
_ON_POLICY = {"gamma": _GAMMA, "lam": "uniform(0.9, 1.0)", "vf_lr": _LR, "ac_kwargs:hidden_sizes": _HID}
_OFF_POLICY = {"gamma": _GAMMA, "polyak": "uniform(0.99, 0.999)", "batch_size": "choice(64, 100, 256)"}
BUILT_IN_SPACES: dict[str, dict[str, str]] = {
    "vpg": {"pi_lr": _LR, **_ON_POLICY},
    "trpo": {"delta": "loguniform(1e-3, 5e-2)", **_ON_POLICY},
    "ppo": {
        "pi_lr": _LR,
        "clip_ratio": "uniform(0.1, 0.3)",
        "target_kl": "loguniform(3e-3, 5e-2)",
        **_ON_POLICY,
    },
    "ddpg": {"pi_lr": _LR, "q_lr": _LR, "act_noise": "uniform(0.05, 0.3)", **_OFF_POLICY},
    "td3": {"pi_lr": _LR, "q_lr": _LR, "act_noise": "uniform(0.05, 0.3)", **_OFF_POLICY},
    "sac": {"lr": _LR, "alpha": "loguniform(0.01, 0.5)", **_OFF_POLICY},
    "dqn": {"q_lr": _LR, "epsilon_end": "uniform(0.01, 0.1)", **_OFF_POLICY},
}


def built_in_space(algo: str) -> dict[str, Distribution]:
    """The space searched when the command line gives no distribution (empty for an unknown algorithm)."""
    return {k: parse_distribution(k, v) for k, v in BUILT_IN_SPACES.get(algo, {}).items()}


def require_optuna() -> Any:
    """The ``optuna`` module, or one line saying which extra brings it."""
    try:
        import optuna
    except ImportError:
        raise UserError("spinrl tune needs Optuna: pip install 'spinrl[tune]'") from None
    return optuna


# ----- asking a trial for values ------------------------------------------------------------------------
def suggest(trial: Any, key: str, dist: Distribution) -> Any:
    """The value of ``key`` for an Optuna ``trial``.

    Optuna stores a choice's values only as None, bools, numbers or strings, so a choice holding a list
    is stored as each value's ``repr`` and read back with ``ast.literal_eval``.
    """
    if dist.kind == "uniform":
        return trial.suggest_float(key, dist.low, dist.high)
    if dist.kind == "loguniform":
        return trial.suggest_float(key, dist.low, dist.high, log=True)
    if dist.kind in ("int", "logint"):
        return trial.suggest_int(key, int(dist.low), int(dist.high), log=dist.kind == "logint")
    stored = stored_choices(dist)
    picked = trial.suggest_categorical(key, stored)
    return dist.choices[stored.index(picked)]


def stored_choices(dist: Distribution) -> list[Any]:
    """A choice's values as Optuna stores them (see :func:`suggest`)."""
    if all(c is None or isinstance(c, bool | int | float | str) for c in dist.choices):
        return list(dist.choices)
    return [repr(c) for c in dist.choices]


def value_from_storage(dist: Distribution | None, stored: Any) -> Any:
    """The algorithm's value for what Optuna stored (the inverse of :func:`stored_choices`)."""
    if dist is None or dist.kind != "choice":
        return stored
    choices = stored_choices(dist)
    return dist.choices[choices.index(stored)] if stored in choices else stored
