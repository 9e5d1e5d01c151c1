"""What every exercise checker shares: loading the reader's file, calling into it, and saying what is wrong.

A checker is a function ``check(module, report) -> None`` that calls the reader's functions on small inputs
it controls, compares with a reference computed independently (usually with ``torch.distributions``), and
raises :class:`CheckFailed` with a hint that names the likely mistake. Each passed step is reported with
``report(...)`` so the reader sees how far they got.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from spinrl.common.errors import UserError

Report = Callable[[str], None]

_module_counter = itertools.count()


class CheckFailed(Exception):
    """The reader's code gave a wrong answer; the message says what is wrong and how to fix it."""


class _TimeUp(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` in the reader's code or in
    :func:`call` swallows it."""


# Seconds a whole check may take; every exercise's reference solution needs well under one.
DEFAULT_TIME_LIMIT = 60.0


@contextlib.contextmanager
def time_limit(seconds: float | None = None) -> Iterator[None]:
    """Stop the reader's code after ``seconds`` (default ``$SPINRL_EXERCISE_TIME_LIMIT`` or 60) with a
    failure that suggests an endless loop, instead of hanging. Uses SIGALRM, so it only acts in the main
    thread of a POSIX process; elsewhere it does nothing."""
    seconds = seconds or float(os.environ.get("SPINRL_EXERCISE_TIME_LIMIT", DEFAULT_TIME_LIMIT))
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def time_up(signum, frame):
        raise _TimeUp

    # Another alarm may be armed (a test runner's own time-out): put it back afterwards, minus our time.
    previous_handler = signal.signal(signal.SIGALRM, time_up)
    previous_delay, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    except _TimeUp:
        raise CheckFailed(
            f"your code was still running after {seconds:g} s: is there a loop that never ends "
            "(a `while` whose condition never changes)?"
        ) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay > 0:
            signal.setitimer(signal.ITIMER_REAL, max(previous_delay - (time.monotonic() - started), 1e-3))


def load_module(path: Path) -> ModuleType:
    """Import a Python file by path under a fresh module name, so two checks never share state.

    A missing file is a :class:`~spinrl.common.errors.UserError` (exit 2); an exception while importing is a
    :class:`CheckFailed` (exit 1), because the reader fixes it in their code.
    """
    if not path.is_file():
        raise UserError(f"no such file: {path} (create it with `spinrl exercise init <id> <dir>`)")
    name = f"spinrl_exercise_user_{next(_module_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"cannot import {path}: is it a Python file ending in .py?")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise CheckFailed(f"importing {path} failed:\n{_user_traceback(exc, path)}") from None
    return module


def get_function(module: ModuleType, name: str) -> Callable[..., Any]:
    """The reader's function ``name``; a clear failure if it is missing."""
    fn = getattr(module, name, None)
    if fn is None:
        raise CheckFailed(f"your file defines no `{name}`: keep the names from the template.")
    return fn


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the reader's code, turning an unfinished TODO or a crash into a readable failure."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as exc:
        # The templates' messages name the unfinished piece ("TODO: MLPGaussianActor._distribution").
        where = str(exc) or f"`{_name(fn)}`"
        raise CheckFailed(f"still NotImplementedError ({where}): replace that TODO with your code.") from None
    except CheckFailed:
        raise
    except Exception as exc:
        path = Path(getattr(sys.modules.get(fn.__module__), "__file__", "") or "")
        raise CheckFailed(f"`{_name(fn)}` raised an error:\n{_user_traceback(exc, path)}") from None


def _name(fn: Any) -> str:
    """A function's or a class's name; for a module instance, its class name."""
    return getattr(fn, "__qualname__", None) or type(fn).__qualname__


def _user_traceback(exc: BaseException, path: Path) -> str:
    """The traceback frames inside the reader's file (the checker's own frames are noise to them)."""
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if path.name and f.filename.endswith(path.name)
    ]
    lines = traceback.format_list(frames) if frames else []
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


def as_tensor(value: Any, what: str) -> torch.Tensor:
    """Accept a tensor (or, where harmless, an array); anything else is a failure naming ``what``."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray | float | int | list):
        return torch.as_tensor(np.asarray(value), dtype=torch.float64)
    raise CheckFailed(f"{what} should be a torch.Tensor, got {type(value).__name__}.")


def expect_shape(value: torch.Tensor | np.ndarray, shape: tuple[int, ...], what: str, hint: str = "") -> None:
    """Fail with ``hint`` when ``value`` does not have exactly ``shape``."""
    got = tuple(value.shape)
    if got != tuple(shape):
        raise CheckFailed(f"{what} has shape {got}, expected {tuple(shape)}. {hint}".rstrip())


def close(a: Any, b: Any, atol: float = 1e-5, rtol: float = 1e-5) -> bool:
    """True when two arrays/tensors agree elementwise (shapes must match)."""
    a_np = np.asarray(a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a, dtype=np.float64)
    b_np = np.asarray(b.detach().cpu().numpy() if isinstance(b, torch.Tensor) else b, dtype=np.float64)
    return a_np.shape == b_np.shape and bool(np.allclose(a_np, b_np, atol=atol, rtol=rtol))


def fmt(x: Any, n: int = 4) -> str:
    """A short printout of the first ``n`` numbers of an array, for failure messages."""
    arr = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    flat = arr.reshape(-1)[:n]
    more = ", ..." if arr.size > n else ""
    return "[" + ", ".join(f"{v:.4f}" for v in flat) + more + "]"
