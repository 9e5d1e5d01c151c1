"""The run directory: where runs go, which files they hold, and what those files say about a run.

Every rule about a run folder lives here once, and the logger, the grid and the commands
(``spinrl ls``, ``plot``, ``compare``) ask this module instead of reading the files themselves:

- where runs go: :func:`default_data_dir` (``$SPINRL_DATA_DIR``, else ``./data``, looked up at each call)
  and :func:`setup_logger_kwargs` (``DATA_DIR/EXP_NAME/EXP_NAME_s<seed>``);
- the files: ``progress.txt`` (one tab-separated row per finished epoch), ``config.json`` (the run's
  arguments) and ``status.json`` (``{"status": ..., "epoch": ..., "epochs": ..., "pid": ..., "hostname": ...}``),
  and for a run launched in a process of its own, ``variant.json`` (its run spec) and ``output.log``;
- what a run's state is (:func:`run_state`): running, finished, failed, or interrupted, the last meaning
  that status.json still says running but the process that wrote it is gone from this machine;
- the one refusal to start a run over an existing one (:func:`refuse_existing_run`);
- finding and reading runs for the commands (:func:`find_runs`, :func:`load_run`, :class:`Run`).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spinrl.errors import UserError

PROGRESS_FILE = "progress.txt"
CONFIG_FILE = "config.json"
STATUS_FILE = "status.json"
# A folder holding any of these is a run.
RUN_FILES = (PROGRESS_FILE, CONFIG_FILE, STATUS_FILE)
# Written by the launchers when a run goes to a process of its own: its spec and its terminal output.
SPEC_FILE = "variant.json"
LOG_FILE = "output.log"
# Folders inside a run that never hold runs themselves; skipping them keeps the search fast.
SKIP_DIRS = {"tb", "videos", "__pycache__"}

# The states a run can be in (see run_state).
RUNNING, FINISHED, FAILED, INTERRUPTED, UNKNOWN = "running", "finished", "failed", "interrupted", "unknown"


# ----- where runs go --------------------------------------------------------------------------------------
def default_data_dir() -> str:
    """``$SPINRL_DATA_DIR``, else ``./data`` in the current working directory.

    Read at every call, so a change of the variable or of the working directory takes effect at once.
    """
    return os.environ.get("SPINRL_DATA_DIR") or os.path.join(os.getcwd(), "data")


def setup_logger_kwargs(
    exp_name: str, seed: int | None = None, data_dir: str | None = None, datestamp: bool = False
) -> dict:
    """Logger arguments that put a run in ``data_dir/exp_name/exp_name_s<seed>``.

    With ``datestamp``, Spinning Up's layout: ``data_dir/YYYY-MM-DD_exp_name/YYYY-MM-DD_HH-MM-SS-exp_name_s<seed>``.
    ``data_dir`` defaults to :func:`default_data_dir`.
    """
    ymd = time.strftime("%Y-%m-%d_") if datestamp else ""
    relpath = ymd + exp_name
    if seed is not None:
        subfolder = (time.strftime("%Y-%m-%d_%H-%M-%S-") if datestamp else "") + f"{exp_name}_s{seed}"
        relpath = os.path.join(relpath, subfolder)
    data_dir = data_dir or default_data_dir()
    return dict(output_dir=os.path.join(data_dir, relpath), exp_name=exp_name)


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, flush it to disk, then rename it over ``path``.

    A reader (or a kill) at any moment sees either the old file or the new one, never half of one.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ----- an existing run is never overwritten ---------------------------------------------------------------
class RunExistsError(UserError):
    """The output directory already holds a run and ``resume`` was not asked for."""


def holds_run(run_dir: str | os.PathLike) -> bool:
    """Whether ``run_dir`` already has logged epochs (a non-empty progress.txt)."""
    progress = Path(run_dir, PROGRESS_FILE)
    return progress.exists() and progress.stat().st_size > 0


def refuse_existing_run(run_dir: str | os.PathLike, resume: bool) -> None:
    """Raise :class:`RunExistsError` when ``run_dir`` holds a run and we were not asked to resume it.

    The logger checks this when it opens a run, and the grid checks every variant before launching
    any, so a grid never starts half its runs and then stops on the others.
    """
    if not resume and holds_run(run_dir):
        raise RunExistsError(
            f"{run_dir} already holds a run; continue it with --resume (resume=True) or pick a new --exp_name"
        )


# ----- status.json ----------------------------------------------------------------------------------------
def write_status(run_dir: str | os.PathLike, status: str, epoch: int, epochs: int, **extra: Any) -> None:
    """Record the run's status, its progress, and which process on which machine wrote it."""
    info = dict(
        status=status,
        epoch=epoch,
        epochs=epochs,
        pid=os.getpid(),
        hostname=socket.gethostname(),
        updated=_dt.datetime.now().isoformat(timespec="seconds"),
        **extra,
    )
    write_text_atomically(Path(run_dir, STATUS_FILE), json.dumps(info, indent=2))


def read_status(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run's status.json, or None when there is none (or it cannot be read)."""
    try:
        status = json.loads(Path(run_dir, STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, but belongs to another user
        return True
    return True


def run_state(status: dict[str, Any] | None) -> str:
    """What a status.json (as :func:`read_status` returns it) says about the run.

    ``finished`` and ``failed`` are taken as written. A ``running`` status is checked: when it was
    written on this machine and its process is gone, the run was ``interrupted`` (killed, crashed
    without clean-up, or the machine restarted) and can be continued with ``--resume``. A run last seen
    running on another machine cannot be checked from here: its state is ``running on HOST``.
    No status at all gives ``unknown``.
    """
    if not status:
        return UNKNOWN
    state = str(status.get("status", UNKNOWN))
    if state != RUNNING:
        return state
    host = status.get("hostname")
    if host not in (None, socket.gethostname()):
        return f"running on {host}"
    pid = status.get("pid")
    return RUNNING if isinstance(pid, int) and pid_alive(pid) else INTERRUPTED


# ----- progress.txt ---------------------------------------------------------------------------------------
def read_progress(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a progress.txt into columns of floats (cells that are not numbers become NaN).

    A row with the wrong number of cells (the last one, half written when a run was killed) is skipped.
    """
    lines = Path(path).read_text().splitlines()
    if not lines:
        return {}
    headers = lines[0].split("\t")
    columns: dict[str, list[float]] = {h: [] for h in headers}
    for line in lines[1:]:
        cells = line.split("\t")
        if len(cells) != len(headers):
            continue
        for h, c in zip(headers, cells):
            try:
                columns[h].append(float(c))
            except ValueError:
                columns[h].append(float("nan"))
    return {h: np.asarray(v) for h, v in columns.items()}


# ----- finding and reading runs (for spinrl ls, plot and compare) ----------------------------------------
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
    """Read a run folder; missing or unreadable files leave their part empty."""
    path = Path(path)
    run = Run(path=path, status=read_status(path))
    try:
        run.config = json.loads((path / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        pass
    try:
        run.progress = read_progress(path / PROGRESS_FILE)
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
