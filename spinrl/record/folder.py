"""The run folder: where runs go, and who may write one.

- where runs go: :func:`default_data_dir` (``$SPINRL_DATA_DIR``, else ``./data``, looked up at each call)
  and :func:`setup_logger_kwargs` (``DATA_DIR/EXP_NAME/EXP_NAME_s<seed>``); an experiment name is a name,
  never a path (:func:`check_exp_name`);
- one writer per run: :func:`open_run_dir` takes the run's lock (:mod:`spinrl.record.lock`) and refuses a
  second writer in one line that names the first (:class:`~spinrl.record.lock.RunInUseError`);
- the one refusal to start a run over an existing one (:func:`refuse_existing_run`);
- files replaced whole, never half written (:func:`write_text_atomically`).

The names of the files in a run folder are in :mod:`spinrl.record.names`; what each file says is the rule
of the module that writes it: progress.txt (:mod:`spinrl.record.progress`), config.json and the rule that
a resumed run is the same run (:mod:`spinrl.record.config`), status.json and a run's state
(:mod:`spinrl.record.status`), checkpoints (:mod:`spinrl.record.checkpoint`). Finding and reading runs
for the commands is :mod:`spinrl.results.runs`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from spinrl.common.errors import UserError
from spinrl.record.lock import RunLock, acquire_run_lock, in_use_error, lock_holder
from spinrl.record.names import CONFIG_FILE, PROGRESS_FILE


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
