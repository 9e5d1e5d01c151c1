"""The logger: Spinning Up's epoch table, progress.txt, config.json, status.json and TensorBoard.

:class:`EpochLogger` fills a run directory while a run trains:

- ``progress.txt``: tab-separated, one header row, one row per finished epoch.
- ``config.json``: every argument of the run, made JSON-safe.
- ``status.json``: running, finished or failed, with the epoch reached.
- ``tb/``: TensorBoard event files (``tensorboard --logdir data``).
- with ``track=True`` (``--track``): the config and every row sent to Weights & Biases
  (:mod:`spinrl.record.tracking`), its files in ``wandb/``.

What those files mean, where runs go and when a directory may not be written to are the rules of
:mod:`spinrl.record.folder`; the logger asks it rather than deciding for itself. Opening a run takes the run
directory's lock, so a second process that tries to write the same run is refused at once; the lock is
held until :meth:`EpochLogger.close` (or :meth:`~EpochLogger.finish`) or the end of the process.
On ``resume``, :meth:`EpochLogger.save_config` refuses settings that would make the run another run. ``setup_logger_kwargs``,
``read_progress`` and ``RunExistsError`` are importable from here too, as in Spinning Up.

As in Spinning Up, :class:`Logger` writes the table, the config and the model, and :class:`EpochLogger`
adds per-epoch statistics of stored values. A hand-written training loop saves its network with
:meth:`Logger.setup_pytorch_saver` and :meth:`Logger.save_state`, which write a safe checkpoint (the
network's weights, its class and the arguments that rebuild it, never a pickled module) that
``spinrl test_policy`` and :func:`spinrl.results.policy.load_policy_and_env` load.

Only rank 0 of an MPI job writes; statistics in :class:`EpochLogger` cover all ranks.
"""

from __future__ import annotations

import atexit
import inspect
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from spinrl.common.errors import UserError
from spinrl.common.mpi import mpi_statistics_columns, mpi_statistics_scalar, proc_id
from spinrl.record.checkpoint import save_checkpoint
from spinrl.record.console import COLORS, colorize, format_epoch_table, live_terminal, print_line
from spinrl.record.folder import (
    CONFIG_FILE,
    PROGRESS_FILE,
    check_same_run,
    default_data_dir,
    open_run_dir,
    refuse_changes,
    resumed_config,
    warn,
    write_status,
    write_text_atomically,
)

# Re-exported: Spinning Up's scripts and ours import these from the logger module.
from spinrl.record.folder import RunExistsError as RunExistsError
from spinrl.record.folder import read_progress as read_progress
from spinrl.record.folder import setup_logger_kwargs as setup_logger_kwargs
from spinrl.record.saved_policy import describe_env, describe_module, recorded_env_spec, saveable


def convert_json(obj: Any) -> Any:
    """Make ``obj`` JSON-safe: classes and functions become their dotted names, the rest ``str``."""
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, dict):
        return {str(k): convert_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [convert_json(x) for x in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return f"{obj.__module__}.{obj.__qualname__}"
    if hasattr(obj, "env_name"):  # env factories made by spinrl.envs.make_env_fn
        return obj.env_name
    return str(obj)


# Where save_state(..., itr=N) keeps numbered snapshots: <run>/snapshots/<N>/, each a checkpoint.
SNAPSHOTS_DIR = "snapshots"


class Logger:
    """Writes a run's table of diagnostics (one row per :meth:`dump_tabular`), its config and its model.

    Give each column with :meth:`log_tabular` once per row, then call :meth:`dump_tabular`. For
    averages of values collected during an epoch, use :class:`EpochLogger`.
    """

    def __init__(
        self,
        output_dir: str | None = None,
        output_fname: str = PROGRESS_FILE,
        exp_name: str | None = None,
        resume: bool = False,
        tensorboard: bool = True,
        quiet: bool = False,
        preset: str | None = None,
        track: bool = False,
    ):
        self.is_writer = proc_id() == 0
        self.output_dir = Path(output_dir or os.path.join(default_data_dir(), f"run_{int(time.time())}"))
        self.exp_name = exp_name
        self.preset = preset  # the --preset whose values the run's arguments hold (spinrl.presets)
        self.quiet = quiet or not self.is_writer
        self.progress_path = self.output_dir / output_fname
        self.log_current_row: dict[str, Any] = {}
        self.log_headers: list[str] = []
        self.first_row = True
        self.tb_writer = None
        self._tb_enabled = tensorboard
        self.resume = resume
        self._progress = None  # rich progress bar, on a terminal only
        self._lock = None
        self.config: dict | None = None  # the settings config.json records (save_config)
        self._pending_config: dict | None = None  # held back until a resume is accepted
        # After a resume kept rows of progress.txt: its columns, until the next row is written.
        self._columns_from_file = self._columns_added = False
        self._tracker = None  # Weights & Biases, with track=True (spinrl.record.tracking)
        if not self.is_writer:
            return
        # Refuses a directory in use by another process, or one holding a run without resume; then locks it.
        self._lock = open_run_dir(self.output_dir, resume)
        if track:
            from spinrl.record.tracking import Tracker  # wandb is an optional extra

            self._tracker = Tracker(self.output_dir, exp_name, resume)
        atexit.register(self.close)
        atexit.register(self._record_failure_at_exit)  # runs first (last in, first out): the lock is held

    def log_message(self, msg: str) -> None:
        """Print a line from rank 0 (unless quiet)."""
        if not self.quiet:
            print(msg, flush=True)

    def log(self, msg: str, color: str = "green") -> None:
        """Spinning Up's message line: printed from rank 0 in bold ``color`` (plain text when the output is
        not a terminal, or with ``quiet``)."""
        if color not in COLORS:
            raise UserError(f"color {color!r} is not valid: use one of {', '.join(COLORS)}")
        self.log_message(colorize(msg, color, bold=True) if live_terminal() else msg)

    # ----- config and status -------------------------------------------------------------------
    def save_config(self, config: dict) -> None:
        """Write every argument of the run to config.json.

        On resume, the run's recorded config.json stays; the new arguments must match it (only
        ``epochs`` may grow, and launch settings such as ``device`` may change, see
        :func:`spinrl.record.folder.check_same_run`), else one line lists the differences and nothing is
        written. A larger ``epochs`` is then recorded.

        When the run's environment comes from a function rather than a Gymnasium id (no ``env_name``),
        the Gymnasium id and arguments of the env it makes are recorded as ``env_spec``, so that the
        policy can be watched later (the function is called once here, on rank 0, for that).
        """
        env_spec = recorded_env_spec(config) if self.is_writer else None
        config = convert_json(config)
        if env_spec is not None:
            config["env_spec"] = env_spec  # how test_policy rebuilds an env made by a function
        if self.exp_name is not None:
            config["exp_name"] = self.exp_name
        if self.preset is not None:
            config["preset"] = self.preset
        if not self.is_writer:
            return
        self.config = config  # also what each checkpoint carries (spinrl.record.checkpoint.Checkpointer)
        if self.resume:
            recorded = check_same_run(self.output_dir, config)
            if recorded is not None:
                self.config = resumed_config(recorded, config)  # more epochs, a new device or compile
                if self.config == recorded:
                    return  # nothing to record: the original config stays
            # Written once the resume is accepted (commit_config): a resume refused later, for a
            # damaged checkpoint or settings that differ from those it carries, changes nothing.
            self._pending_config = self.config
            return
        self._write_config(config)

    def check_checkpoint_config(self, saved: dict) -> None:
        """On resume, hold this run's settings against ``saved``, those its checkpoint carries: they must
        be the same run (:func:`spinrl.record.folder.refuse_changes`), even when config.json was lost, in which
        case the checkpoint's settings (with the new ``epochs``) are what will be recorded again."""
        if not self.is_writer or self.config is None:
            return
        refuse_changes(self.output_dir, saved, self.config)
        if not (self.output_dir / CONFIG_FILE).exists():
            self.config = self._pending_config = resumed_config(saved, self.config)

    def commit_config(self) -> None:
        """Write the config that a resume held back, now that the resume goes on (see :meth:`save_config`)."""
        if self._pending_config is not None:
            self._write_config(self._pending_config)
            self._pending_config = None

    def _write_config(self, config: dict) -> None:
        text = json.dumps(config, separators=(",", ":\t"), indent=4, sort_keys=True)
        write_text_atomically(self.output_dir / CONFIG_FILE, text)
        if self._tracker is not None:
            self._tracker.set_config(config)

    def set_status(self, status: str, epoch: int, epochs: int, **extra: Any) -> None:
        """Record whether the run is running, finished or failed in status.json (see :mod:`spinrl.record.folder`)."""
        if not self.is_writer:
            return
        write_status(self.output_dir, status, epoch, epochs, **extra)
        self._update_progress_bar(status, epoch, epochs)

    def _update_progress_bar(self, status: str, epoch: int, epochs: int) -> None:
        """A live bar with the epoch count, elapsed time and ETA, only when attached to a terminal."""
        if self.quiet or not live_terminal():
            return
        if self._progress is None and status == "running":
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                "[bold]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                "epochs",
                TimeElapsedColumn(),
                "ETA",
                TimeRemainingColumn(),
            )
            self._task = self._progress.add_task(
                self.exp_name or self.output_dir.name, total=epochs, completed=epoch
            )
            self._progress.start()
        elif self._progress is not None:
            self._progress.update(self._task, completed=epoch)
            if status != "running":
                self._progress.stop()
                self._progress = None

    # ----- resuming ----------------------------------------------------------------------------
    def truncate_to_epochs(self, num_epochs: int) -> None:
        """Keep the rows of progress.txt for epochs ``0 .. num_epochs - 1`` (for ``--resume``).

        Rows are kept by their ``Epoch`` value, not by their position, so a duplicated, missing or
        half-written row cannot shift what is kept: each epoch below ``num_epochs`` keeps its first
        complete row (a last row that only lacks its newline counts), everything else goes (it is
        logged again, once, when training repeats it). A file without an ``Epoch`` column keeps its
        first ``num_epochs`` rows. When an epoch below ``num_epochs`` has no readable row (a row cut
        in the middle, random bytes, an empty file), the file as it was is kept beside it as
        ``progress.txt.damaged`` (never overwriting one) and one line names the missing epochs.
        """
        if not self.is_writer or not self.progress_path.exists():
            return
        raw = self.progress_path.read_bytes()
        lines = raw.decode("utf-8", errors="replace").splitlines(keepends=True)
        headers = lines[0].rstrip("\n").split("\t") if lines and lines[0].endswith("\n") else []
        kept: dict[float, str] = {}
        if headers and _readable(headers):
            column = headers.index("Epoch") if "Epoch" in headers else None
            for line in lines[1:]:
                cells = line.rstrip("\n").split("\t")
                if len(cells) != len(headers) or not _readable(cells):
                    continue  # cut short by a kill or damage, or not a row of this table
                if column is None:
                    epoch = float(len(kept))
                else:
                    try:
                        epoch = float(cells[column])
                    except ValueError:
                        continue  # e.g. a second header row
                if 0 <= epoch < num_epochs and epoch not in kept:
                    kept[epoch] = line if line.endswith("\n") else line + "\n"
        missing = [e for e in range(num_epochs) if float(e) not in kept]
        if missing:
            self._report_damaged_progress(raw, missing)
        if kept:
            self.log_headers, self.first_row = headers, False
            self._columns_from_file = True  # a column this run logs may be missing: see log_tabular
            write_text_atomically(self.progress_path, lines[0] + "".join(kept.values()))
        else:  # no epoch survives: start the file afresh, header included
            self.log_headers, self.first_row = [], True
            write_text_atomically(self.progress_path, "")

    def _report_damaged_progress(self, raw: bytes, missing: list[int]) -> None:
        """Say in one line which epochs a damaged progress.txt lost, keeping the file as it was."""
        kept_as = f", and the file as it was in {self._keep_copy(raw)}" if raw else ""
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        print_line(
            f"resume: {PROGRESS_FILE} is damaged: no readable row for epoch{'s' if len(missing) > 1 else ''} "
            f"{shown}; kept the rows that could be read{kept_as}"
        )

    def _keep_copy(self, raw: bytes) -> str:
        """Write ``raw`` (progress.txt as it was) to ``progress.txt.damaged``, or ``.damaged-N`` when that
        exists; return the name."""
        backup, n = self.output_dir / f"{PROGRESS_FILE}.damaged", 1
        while backup.exists():
            n += 1
            backup = self.output_dir / f"{PROGRESS_FILE}.damaged-{n}"
        backup.write_bytes(raw)
        return backup.name

    def _add_missing_columns(self) -> None:
        """Rewrite progress.txt with the columns a resumed run logs that its file lacked (their cells in
        the old rows empty), keeping the file as it was as ``progress.txt.damaged``."""
        raw = self.progress_path.read_bytes() if self.progress_path.exists() else b""
        lines = raw.decode("utf-8", errors="replace").splitlines()
        old = lines[0].split("\t") if lines else []
        rows = [dict(zip(old, line.split("\t"), strict=False)) for line in lines[1:]]
        added = ", ".join(k for k in self.log_headers if k not in old)
        print_line(
            f"resume: {PROGRESS_FILE} had no column {added}: added, empty in its earlier rows, and the file "
            f"as it was kept in {self._keep_copy(raw)}"
        )
        text = "\t".join(self.log_headers) + "\n"
        text += "".join("\t".join(r.get(k, "") for k in self.log_headers) + "\n" for r in rows)
        write_text_atomically(self.progress_path, text)

    # ----- the table ---------------------------------------------------------------------------
    def log_tabular(self, key: str, val: Any) -> None:
        """Set the value of column ``key`` in this row (each column once per row; the first row fixes them)."""
        if self.first_row:
            self.log_headers.append(key)
        elif key not in self.log_headers:
            if not self._columns_from_file:
                raise KeyError(f"new column {key!r} after the first epoch; columns are fixed by then")
            # The first row after a resume, and the file lacked this column: it is added (dump_tabular).
            self.log_headers.append(key)
            self._columns_added = True
        if key in self.log_current_row:
            raise KeyError(f"column {key!r} logged twice in one epoch")
        self.log_current_row[key] = val

    def dump_tabular(self) -> dict[str, Any]:
        """Print the epoch table, append the row to progress.txt and TensorBoard; return the row."""
        row = {k: self.log_current_row.get(k, "") for k in self.log_headers}
        if self.is_writer:
            self.commit_config()  # a hand-written loop that resumes without a Checkpointer
            if self._columns_added:
                self._add_missing_columns()
            if self._progress is not None:  # print above the live progress bar
                self._progress.console.print(format_epoch_table(row), markup=False, highlight=False)
            elif not self.quiet:
                print(format_epoch_table(row), flush=True)
            header = "" if not self.first_row else "\t".join(self.log_headers) + "\n"
            with open(self.progress_path, "a") as f:
                f.write(header + "\t".join(_fmt_cell(row[k]) for k in self.log_headers) + "\n")
                f.flush()
                os.fsync(f.fileno())
            self._write_tensorboard(row)
            if self._tracker is not None:
                self._tracker.log(row)
        self.log_current_row.clear()
        self.first_row = False
        self._columns_from_file = self._columns_added = False
        return row

    def _write_tensorboard(self, row: dict[str, Any]) -> None:
        if not self._tb_enabled:
            return
        step = row.get("TotalEnvInteracts") or row.get("Epoch")
        if self.tb_writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard not installed: progress.txt is enough
                self._tb_enabled = False
                return
            # purge_step drops events past the resume point, so a resumed curve has no duplicates.
            self.tb_writer = SummaryWriter(
                str(self.output_dir / "tb"), purge_step=step if self.resume else None
            )
        for k, v in row.items():
            if k in ("Epoch", "TotalEnvInteracts"):
                continue
            if isinstance(v, int | float | np.floating | np.integer) and np.isfinite(v):
                self.tb_writer.add_scalar(k, float(v), global_step=int(step))
        self.tb_writer.flush()

    # ----- saving the model, as in Spinning Up ------------------------------------------------------
    def setup_pytorch_saver(self, what_to_save: Any) -> None:
        """Name the network that :meth:`save_state` saves: a ``torch.nn.Module``, usually the actor-critic."""
        import torch

        if not isinstance(what_to_save, torch.nn.Module):
            raise UserError(
                f"setup_pytorch_saver needs a torch.nn.Module (the network to save), got {type(what_to_save).__name__}"
            )
        self.pytorch_saver_elements = what_to_save

    def save_state(self, state_dict: dict[str, Any], itr: int | None = None) -> None:
        """Save the network named by :meth:`setup_pytorch_saver` and ``state_dict`` as a safe checkpoint.

        ``itr=None`` replaces the run's checkpoint each time; ``itr=N`` keeps a numbered snapshot in
        ``snapshots/N/`` that ``spinrl test_policy -i N`` loads. The network is saved as its weights, its
        class and the arguments that rebuild it; in ``state_dict``, an environment is saved as its
        Gymnasium id and arguments, objects with a ``state_dict()`` (optimisers) as that, and tensors,
        arrays, numbers and strings as they are. Anything else is left out with a warning line.
        Only rank 0 writes.
        """
        if not self.is_writer:
            return
        state: dict[str, Any] = {"state": {}}
        skipped = []
        for key, value in state_dict.items():
            spec = describe_env(value)
            if spec is not None:
                state["env_spec"] = spec
                continue
            try:
                state["state"][str(key)] = saveable(value)
            except TypeError:
                skipped.append(str(key))
        if skipped:
            warn(
                f"save_state left out {', '.join(skipped)}: only tensors, arrays, numbers, strings and "
                "objects with a state_dict() are saved"
            )
        module = getattr(self, "pytorch_saver_elements", None)
        if module is not None:
            state["ac"] = module.state_dict()
            state["module"] = describe_module(module)
        if itr is None:
            self._saves = getattr(self, "_saves", 0) + 1
            save_checkpoint(self.output_dir, state, self._saves)
        else:
            save_checkpoint(self.output_dir / SNAPSHOTS_DIR / str(int(itr)), state, int(itr))

    def finish(self, epochs: int) -> None:
        """Mark the run finished after ``epochs`` epochs and close the outputs."""
        self.set_status("finished", epochs, epochs)
        self.close()

    def _record_failure_at_exit(self) -> None:
        """At interpreter exit: if an exception ended the process while this run was "running", write
        "failed" and the exception's one-line summary into status.json.

        Every algorithm, however started (Python, the command line, a grid's child), ends here, so this
        is the one place that knows. Left alone: finished runs; runs stopped by Ctrl-C or ``sys.exit``,
        which stay "running" (``spinrl ls`` calls them interrupted, ``--resume`` continues them); and
        killed processes, which run no exit handlers. The command line's one-line errors count as
        failures too (see ``spinrl.common.errors.caught_error``).
        """
        from spinrl.common import errors
        from spinrl.record.folder import read_status

        # Python sets sys.last_value when an uncaught exception ends the process; a command that caught
        # the error and printed it in one line leaves it in errors.caught_error.
        error = getattr(sys, "last_value", None) or errors.caught_error
        if self._lock is None or not isinstance(error, Exception):
            return
        status = read_status(self.output_dir) or {}
        if status.get("status") != "running" or status.get("pid") != os.getpid():
            return
        message = str(error).strip().splitlines()
        summary = f"{type(error).__name__}: {message[0]}" if message else type(error).__name__
        self.set_status("failed", status.get("epoch", 0), status.get("epochs", 0), error=summary[:300])

    def close(self) -> None:
        """Close the outputs and give up the run directory's lock (another process may then write it)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self.tb_writer is not None:
            self.tb_writer.close()
            self.tb_writer = None
        if self._tracker is not None:
            self._tracker.finish()
            self._tracker = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None


class EpochLogger(Logger):
    """Collects values during an epoch and writes one row of statistics per epoch.

    Use :meth:`store` during the epoch (e.g. ``logger.store(EpRet=ep_ret)``), then at the end
    :meth:`log_tabular` each column and :meth:`dump_tabular` once.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.epoch_dict: dict[str, list] = defaultdict(list)
        # Statistics columns logged in this row, computed at dump_tabular:
        # (column names, the stored values, with_min_and_max, average_only).
        self._pending_stats: list[tuple[list[str], np.ndarray, bool, bool]] = []

    def store(self, **kwargs: Any) -> None:
        """Save values (scalars or arrays) to average at the end of the epoch."""
        for k, v in kwargs.items():
            self.epoch_dict[k].append(v)

    def log_tabular(
        self, key: str, val: Any = None, with_min_and_max: bool = False, average_only: bool = False
    ) -> None:
        """Log a column: a given value, or statistics over everything stored under ``key``.

        Statistics over stored values give ``Average<key>`` and ``Std<key>`` (and ``Max``/``Min``),
        computed over all MPI ranks. Their columns take their place in the row now; the numbers are
        computed at :meth:`dump_tabular`, for every column at once (see ``_fill_statistics``).
        """
        if val is not None:
            super().log_tabular(key, val)
            return
        values = self.epoch_dict.get(key, [])
        flat = np.concatenate([np.ravel(v) for v in values]) if values else np.array([], dtype=np.float64)
        names = [key if average_only else "Average" + key]
        if not average_only:
            names.append("Std" + key)
        if with_min_and_max:
            names += ["Max" + key, "Min" + key]
        for name in names:
            super().log_tabular(name, None)  # the column's place; its number comes at dump_tabular
        self._pending_stats.append((names, flat, with_min_and_max, average_only))
        self.epoch_dict[key] = []

    def dump_tabular(self) -> dict[str, Any]:
        """Compute the statistics columns over all ranks, then write the row as :meth:`Logger.dump_tabular`."""
        self._fill_statistics()
        return super().dump_tabular()

    def _fill_statistics(self) -> None:
        """The numbers of every statistics column of this row, from a few collective calls in all.

        One :func:`~spinrl.common.mpi.mpi_statistics_columns` call replaces two to four reductions per
        column (about thirty per PPO epoch), each a point where the ranks wait for one another; the
        numbers are the same as column by column.
        """
        pending = self._pending_stats
        if not pending:
            return
        stats = mpi_statistics_columns([p[1] for p in pending], [p[2] for p in pending])
        for (names, _, with_min_and_max, average_only), col in zip(pending, stats):
            values = [col[0]] + ([] if average_only else [col[1]])
            if with_min_and_max:
                values += [col[3], col[2]]  # Max, then Min, as the columns are named
            self.log_current_row.update(zip(names, values))
        pending.clear()

    def get_stats(self, key: str) -> tuple:
        """Mean and std over all ranks of the values stored under ``key`` this epoch."""
        values = self.epoch_dict.get(key, [])
        flat = np.concatenate([np.ravel(v) for v in values]) if values else np.array([])
        return mpi_statistics_scalar(flat)


def _fmt_cell(v: Any) -> str:
    if isinstance(v, float | np.floating):
        return f"{float(v):.8g}"
    return str(v)


def _readable(cells: list[str]) -> bool:
    """Whether cells read from progress.txt are text a run wrote (not random bytes decoded)."""
    return all(cell.isprintable() and "\ufffd" not in cell for cell in cells)
