"""Reading runs back: finding run folders and loading what they hold, for ``spinrl ls``, ``plot``,
``compare``, ``spinrl tune`` and the benchmarks.

A damaged run is skipped with one warning line instead of ending a listing (:func:`load_runs`). What a
run's files mean is the rule of the module that writes each one (:mod:`spinrl.record.progress`,
:mod:`spinrl.record.config`, :mod:`spinrl.record.status`); the names they read are exported here too,
so that a command needs this module only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spinrl.common.errors import UserError
from spinrl.record.config import read_config
from spinrl.record.console import warn
from spinrl.record.names import PROGRESS_FILE, RUN_FILES, SKIP_DIRS
from spinrl.record.progress import DamagedRunError, read_progress
from spinrl.record.status import read_status, run_state

__all__ = [
    "DamagedRunError",
    "Run",
    "final_value",
    "find_runs",
    "load_run",
    "load_runs",
    "performance_column",
    "read_config",
    "read_progress",
    "read_status",
    "run_state",
    "warn",
]


@dataclass
class Run:
    """One run folder: its configuration, its progress columns and its status file."""

    path: Path
    config: dict[str, Any] = field(default_factory=dict)
    progress: dict[str, np.ndarray] = field(default_factory=dict)
    status: dict[str, Any] | None = None

    @property
    def algo(self) -> str:
        return str(self.config.get("algo", "?"))

    @property
    def env(self) -> str:
        env = self.config.get("env_name", self.config.get("env_fn", self.config.get("env", "?")))
        return str(env)

    @property
    def seed(self) -> str:
        return str(self.config.get("seed", "?"))

    @property
    def exp_name(self) -> str:
        return str(self.config.get("exp_name") or self.path.parent.name)

    @property
    def num_epochs_logged(self) -> int:
        return len(next(iter(self.progress.values()))) if self.progress else 0

    @property
    def state(self) -> str:
        """The run's state, as :func:`run_state` reads its status.json."""
        return run_state(self.status)


def load_run(path: str | os.PathLike) -> Run:
    """Read a run folder; a missing file leaves its part empty.

    A file that is there but cannot be read (binary, not JSON, the wrong shape) raises
    :class:`DamagedRunError` naming it, so that callers can skip this run and say so.
    """
    path = Path(path)
    run = Run(path=path, status=read_status(path))
    try:
        run.config = read_config(path) or {}
    except UserError as e:
        raise DamagedRunError(str(e)) from None
    try:
        run.progress = read_progress(path / PROGRESS_FILE)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise DamagedRunError(f"{path / PROGRESS_FILE} cannot be read ({e.strerror or e})") from None
    return run


def load_runs(paths: list[Path]) -> list[Run]:
    """:func:`load_run` for each path, skipping each damaged run with one warning line that names it."""
    runs = []
    for path in paths:
        try:
            runs.append(load_run(path))
        except DamagedRunError as e:
            warn(f"skipping {path}: {e}")
    return runs


def find_runs(root: str | os.PathLike) -> list[Path]:
    """Every run folder at or below ``root``, sorted by path."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        if any(f in filenames for f in RUN_FILES):
            found.append(Path(dirpath))
    return sorted(found)


def performance_column(progress: dict[str, np.ndarray]) -> str | None:
    """Spinning Up's "Performance": the test return when the run has one, else the training return."""
    for col in ("AverageTestEpRet", "AverageEpRet"):
        if col in progress and len(progress[col]):
            return col
    return None


def final_value(progress: dict[str, np.ndarray], column: str, last: int = 1) -> float:
    """The mean of ``column`` over the last ``last`` logged epochs (NaN when there are none)."""
    values = progress.get(column, np.array([]))
    values = values[np.isfinite(values)][-last:]
    return float(values.mean()) if len(values) else float("nan")
