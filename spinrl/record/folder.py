"""The run directory: where runs go, which files they hold, and what those files say about a run.

Every rule about a run folder lives here once, and the logger, the grid and the commands
(``spinrl ls``, ``plot``, ``compare``) ask this module instead of reading the files themselves:

- where runs go: :func:`default_data_dir` (``$SPINRL_DATA_DIR``, else ``./data``, looked up at each call)
  and :func:`setup_logger_kwargs` (``DATA_DIR/EXP_NAME/EXP_NAME_s<seed>``); an experiment name is a name,
  never a path (:func:`check_exp_name`);
- the files: ``progress.txt`` (one tab-separated row per finished epoch), ``config.json`` (the run's
  arguments), ``status.json`` (``{"status": ..., "epoch": ..., "epochs": ..., "pid": ..., "pid_start": ...,
  "hostname": ...}``) and ``.lock`` (who writes the run now), and for a run launched in a process of its
  own, ``variant.json`` (its run spec) and ``output.log``;
- one writer per run: :func:`open_run_dir` takes the run's lock (:mod:`spinrl.record.lock`) and refuses a
  second writer in one line that names the first (:class:`~spinrl.record.lock.RunInUseError`);
- a run whose algorithm raised is marked failed at once (:func:`marks_failed_runs`), even when the
  Python session that called it goes on;
- what a run's state is (:func:`run_state`): running, finished, failed, or interrupted, the last meaning
  that status.json still says running but the process that wrote it is gone from this machine (its pid
  is free, or now belongs to a process that started at another time);
- the one refusal to start a run over an existing one (:func:`refuse_existing_run`), and the rule that a
  resumed run is the same run (:func:`check_same_run`);
- finding and reading runs for the commands (:func:`find_runs`, :func:`load_run`, :class:`Run`), where a
  damaged run is skipped with a warning instead of ending the listing (:func:`load_runs`).
"""

from __future__ import annotations

import datetime as _dt
import functools
import inspect
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spinrl.common.errors import UserError, is_interruption
from spinrl.moved import same_spinrl_object
from spinrl.record.lock import (
    RunLock,
    acquire_run_lock,
    held_locks,
    in_use_error,
    lock_holder,
    process_alive,
    this_process,
)

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
    A ``~`` in the variable means the home folder, as in a shell (a quoted ``"~/x"`` reaches us as is).
    """
    folder = os.environ.get("SPINRL_DATA_DIR")
    return os.path.expanduser(folder) if folder else os.path.join(os.getcwd(), "data")


# An experiment name is one folder inside the data directory and a prefix of its runs' folders. Beyond
# this length, the run folder (name, "_s" and a seed; with --datestamp a 20-character time prefix too)
# would pass the 255 bytes most file systems allow for one name.
MAX_EXP_NAME_LENGTH = 200
_EXP_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def check_exp_name(exp_name: Any) -> str:
    """Refuse an experiment name that is not a plain folder name; return it as a string.

    The rule: ASCII letters, digits, ``-``, ``_`` and ``.``, not starting with ``.``, at most
    :data:`MAX_EXP_NAME_LENGTH` characters. So no path (``../x`` or ``/tmp/x`` would put the run
    outside ``--data_dir``), no hidden folder (``.x``, which ``spinrl ls``, ``plot`` and ``compare``
    skip), nothing that breaks a table or a shell line (spaces, newlines), and no name the file system
    refuses halfway, after the experiment folder was made.
    """
    name = str(exp_name)
    if not name or name.startswith(".") or not set(name) <= _EXP_NAME_CHARS:
        raise UserError(
            f"--exp_name {name!r} is not valid: give a plain name such as 'cp' (letters, digits, '-', '_' and "
            "'.', not starting with '.'; no '/' or spaces); choose the folder runs go to with --data_dir"
        )
    if len(name) > MAX_EXP_NAME_LENGTH:
        raise UserError(
            f"--exp_name {name[:20]}... is not valid: it has {len(name)} characters, at most "
            f"{MAX_EXP_NAME_LENGTH} fit in a folder name"
        )
    return name


def setup_logger_kwargs(
    exp_name: str, seed: int | None = None, data_dir: str | None = None, datestamp: bool = False
) -> dict:
    """Logger arguments that put a run in ``data_dir/exp_name/exp_name_s<seed>``.

    With ``datestamp``, Spinning Up's layout: ``data_dir/YYYY-MM-DD_exp_name/YYYY-MM-DD_HH-MM-SS-exp_name_s<seed>``.
    ``data_dir`` defaults to :func:`default_data_dir`. ``exp_name`` must be a plain name
    (:func:`check_exp_name`).
    """
    exp_name = check_exp_name(exp_name)
    ymd = time.strftime("%Y-%m-%d_") if datestamp else ""
    relpath = ymd + exp_name
    if seed is not None:
        subfolder = (time.strftime("%Y-%m-%d_%H-%M-%S-") if datestamp else "") + f"{exp_name}_s{seed}"
        relpath = os.path.join(relpath, subfolder)
    data_dir = os.path.expanduser(data_dir) if data_dir else default_data_dir()
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


def open_run_dir(run_dir: str | os.PathLike, resume: bool) -> RunLock:
    """The one way a writer (the logger of a run, on rank 0) opens its run directory.

    Refuses, before anything is written, a directory another live process writes to
    (:class:`~spinrl.record.lock.RunInUseError`) and one that holds a run when ``resume`` is False
    (:class:`RunExistsError`); then creates the directory and takes its lock, which the caller holds
    for as long as it writes.
    """
    check_can_write(run_dir, resume)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    lock = acquire_run_lock(run_dir)
    try:
        refuse_existing_run(run_dir, resume)  # again: another writer may have finished in between
    except RunExistsError:
        lock.release()
        raise
    return lock


def check_can_write(run_dir: str | os.PathLike, resume: bool) -> None:
    """Refuse a run directory that a live process is writing to, or that holds a run without ``resume``.

    Reads only; the grid asks this for every variant before it launches any.
    """
    holder = lock_holder(run_dir)
    if holder is not None:
        raise in_use_error(run_dir, holder)
    refuse_existing_run(run_dir, resume)


# ----- an existing run is never overwritten ---------------------------------------------------------------
class RunExistsError(UserError):
    """The output directory already holds a run and ``resume`` was not asked for."""


def holds_run(run_dir: str | os.PathLike) -> bool:
    """Whether ``run_dir`` already holds a run: logged epochs, a checkpoint or a config.json."""
    run_dir = Path(run_dir)
    progress = run_dir / PROGRESS_FILE
    if (progress.exists() and progress.stat().st_size > 0) or (run_dir / CONFIG_FILE).exists():
        return True
    if not run_dir.is_dir():
        return False
    from spinrl.record.checkpoint import (
        has_checkpoint,  # imports torch: only where a run is about to be written
    )

    return has_checkpoint(run_dir)


def refuse_existing_run(run_dir: str | os.PathLike, resume: bool) -> None:
    """Raise :class:`RunExistsError` when ``run_dir`` holds a run and we were not asked to resume it.

    The logger checks this when it opens a run, and the grid checks every variant before launching
    any, so a grid never starts half its runs and then stops on the others.
    """
    if not resume and holds_run(run_dir):
        raise RunExistsError(
            f"{run_dir} already holds a run; continue it with --resume (resume=True) or pick a new --exp_name"
        )


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


# ----- status.json ----------------------------------------------------------------------------------------
def write_status(run_dir: str | os.PathLike, status: str, epoch: int, epochs: int, **extra: Any) -> None:
    """Record the run's status, its progress, and which process (pid and start time) on which machine wrote it."""
    info = dict(
        status=status,
        epoch=epoch,
        epochs=epochs,
        **this_process(),
        updated=_dt.datetime.now().isoformat(timespec="seconds"),
        **extra,
    )
    write_text_atomically(Path(run_dir, STATUS_FILE), json.dumps(info, indent=2))


def error_summary(error: BaseException) -> str:
    """An exception in one line for status.json: its type and the first line of its message."""
    message = str(error).strip().splitlines()
    summary = f"{type(error).__name__}: {message[0]}" if message else type(error).__name__
    return summary[:300]


def marks_failed_runs(algo: Callable) -> Callable:
    """Decorate an algorithm function: when it raises, the run it was writing is marked failed.

    Without this, a run started from Python (a notebook, a sweep that catches errors and goes on) stayed
    "running" in status.json and ``spinrl ls`` for as long as the interpreter lived, and kept its lock:
    only the exit hook of the logger marked it. The run is the one whose lock this call took; its
    status becomes "failed" with the error's summary (if it was "running" and written by this process),
    and its lock is given up, so that a fixed call can resume it at once. Ctrl-C is not a failure
    (:func:`spinrl.common.errors.is_interruption`): that run stays resumable, as on the command line.
    """

    @functools.wraps(algo)
    def run(*args: Any, **kwargs: Any) -> Any:
        held_before = held_locks()
        try:
            return algo(*args, **kwargs)
        except Exception as e:
            if is_interruption(e):
                raise
            for lock in held_locks():
                if not any(lock is old for old in held_before):
                    _mark_failed(lock.run_dir, e)
                    lock.release()
            raise

    return run


def _mark_failed(run_dir: Path, error: Exception) -> None:
    status = read_status(run_dir) or {}
    if status.get("status") == RUNNING and status.get("pid") == os.getpid():
        epoch, epochs = status.get("epoch", 0), status.get("epochs", 0)
        write_status(run_dir, FAILED, epoch, epochs, error=error_summary(error))


def read_status(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run's status.json, or None when there is none (or it cannot be read)."""
    try:
        status = json.loads(Path(run_dir, STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def run_state(status: dict[str, Any] | None) -> str:
    """What a status.json (as :func:`read_status` returns it) says about the run.

    ``finished`` and ``failed`` are taken as written; anything else written there is ``unknown``. A
    ``running`` status is checked: when it was written on this machine and its process is gone, the
    run was ``interrupted`` (killed, crashed without clean-up, or the machine restarted) and can be
    continued with ``--resume``. "Gone" includes
    a pid that the system has since given to another process: the recorded start time tells them apart.
    A run last seen running on another machine cannot be checked from here: its state is
    ``running on HOST``. No status at all gives ``unknown``.
    """
    if not status:
        return UNKNOWN
    state = status.get("status", UNKNOWN)
    if state not in (RUNNING, FINISHED, FAILED, INTERRUPTED):
        return UNKNOWN  # a damaged or foreign status.json: its text is not shown as a state
    if state != RUNNING:
        return state
    host = status.get("hostname")
    if host not in (None, socket.gethostname()):
        return f"running on {host}"
    pid, start = status.get("pid"), status.get("pid_start")
    if isinstance(pid, bool) or not isinstance(pid, int):
        return INTERRUPTED
    start = start if isinstance(start, int) and not isinstance(start, bool) else None
    return RUNNING if process_alive(pid, start) else INTERRUPTED


# ----- progress.txt ---------------------------------------------------------------------------------------
class DamagedRunError(UserError):
    """A file of a run cannot be read: binary, cut short in a way no kill leaves, or of the wrong shape."""


def read_progress(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a progress.txt into columns of floats (cells that are not numbers become NaN).

    A row with the wrong number of cells (the last one, half written when a run was killed) is skipped.
    A file that is not text (binary, or holding NUL bytes) raises :class:`DamagedRunError`.
    """
    try:
        text = Path(path).read_text()
    except UnicodeDecodeError:
        raise DamagedRunError(f"{path} is not text (binary or damaged)") from None
    if "\0" in text:
        raise DamagedRunError(f"{path} holds NUL bytes (damaged)")
    lines = text.splitlines()
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


def warn(message: str) -> None:
    """One warning line on stderr, for something a command skipped and went on without."""
    print(f"spinrl: warning: {message}", file=sys.stderr, flush=True)


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
