"""``spinrl ls DIR ...``: list runs with their algorithm, env, seed, progress, latest return and status.

    $ spinrl ls data
    run                              algo  env          seed  epoch   return  status
    cp/cp_s0                         ppo   CartPole-v1     0  50/50    500.0  finished
    cp/cp_s10                        ppo   CartPole-v1    10  31/50    212.4  interrupted

A run is any folder holding a ``progress.txt``, ``config.json`` or ``status.json``. Its status comes
from ``status.json``: a run marked "running" whose process no longer exists on this machine was
interrupted (killed, crashed, or the machine went down); continue it with ``--resume``.

The helpers here (:func:`find_runs`, :func:`final_value`, :func:`run_status`) are shared by
``spinrl plot`` and ``spinrl compare``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spinrl.errors import UserError
from spinrl.grid import pid_alive, read_status
from spinrl.logx import DEFAULT_DATA_DIR, read_progress

RUN_FILES = ("progress.txt", "config.json", "status.json")
# Folders inside a run that never hold runs themselves; skipping them keeps the walk fast.
SKIP_DIRS = {"tb", "videos", "__pycache__"}


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


def load_run(path: str | os.PathLike) -> Run:
    """Read a run folder; missing or unreadable files leave their part empty."""
    path = Path(path)
    run = Run(path=path, status=read_status(path))
    try:
        run.config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        pass
    try:
        run.progress = read_progress(path / "progress.txt")
    except OSError:
        pass
    return run


def find_runs(root: str | os.PathLike) -> list[Path]:
    """Every run folder at or below ``root``, sorted by path."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        if any(f in filenames for f in RUN_FILES):
            found.append(Path(dirpath))
    return sorted(found)


def run_status(status: dict[str, Any] | None) -> str:
    """finished, failed, running, interrupted (a "running" run whose process is gone), or unknown."""
    if not status:
        return "unknown"
    state = str(status.get("status", "unknown"))
    if state != "running":
        return state
    if status.get("hostname") not in (None, socket.gethostname()):
        return f"running on {status['hostname']}"
    pid = status.get("pid")
    return "running" if isinstance(pid, int) and pid_alive(pid) else "interrupted"


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spinrl ls", description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="*", help=f"folders to search for runs (default {DEFAULT_DATA_DIR})")
    parser.add_argument("--status", help="show only runs with this status, e.g. interrupted")
    args = parser.parse_args(argv)

    rows = []
    for root in args.dirs or [DEFAULT_DATA_DIR]:
        if not os.path.isdir(root):
            raise UserError(f"{root} is not a folder; give the data folder that holds your runs, e.g. data/")
        for path in find_runs(root):
            run = load_run(path)
            status = run_status(run.status)
            if args.status and status != args.status:
                continue
            col = performance_column(run.progress)
            ret = final_value(run.progress, col) if col else float("nan")
            epochs = (run.status or {}).get("epochs", run.config.get("epochs", "?"))
            epoch = (run.status or {}).get("epoch", run.num_epochs_logged)
            rel = os.path.relpath(path, root)
            rows.append(
                [
                    rel if rel != "." else str(path),
                    run.algo,
                    run.env,
                    run.seed,
                    f"{epoch}/{epochs}",
                    "-" if np.isnan(ret) else f"{ret:.1f}",
                    status,
                ]
            )
    if not rows:
        where = ", ".join(args.dirs or [DEFAULT_DATA_DIR])
        print(f"no runs found under {where}" + (f" with status {args.status}" if args.status else ""))
        return 0
    print(
        format_table(
            ["run", "algo", "env", "seed", "epoch", "return", "status"],
            rows,
            right_aligned={"seed", "epoch", "return"},
        )
    )
    return 0


def format_table(headers: list[str], rows: list[list[str]], right_aligned: set[str] = frozenset()) -> str:
    """A plain-text table: columns padded to their widest cell, two spaces apart."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    lines = []
    for row in [headers, *rows]:
        cells = [
            str(c).rjust(w) if h in right_aligned else str(c).ljust(w)
            for c, w, h in zip(row, widths, headers)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    from spinrl.run import run_main_guarded

    sys.exit(run_main_guarded(main))
