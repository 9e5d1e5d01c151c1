"""The logger: Spinning Up's epoch table, progress.txt, config.json, status.json and TensorBoard.

:class:`EpochLogger` fills a run directory while a run trains:

- ``progress.txt``: tab-separated, one header row, one row per finished epoch (:mod:`spinrl.record.progress`).
- ``config.json``: every argument of the run, made JSON-safe (:mod:`spinrl.record.config`).
- ``status.json``: running, finished or failed, with the epoch reached (:mod:`spinrl.record.status`).
- ``tb/``: TensorBoard event files, ``tensorboard --logdir data`` (:mod:`spinrl.record.tensorboard`).
- with ``track=True`` (``--track``): the config and every row sent to Weights & Biases
  (:mod:`spinrl.record.tracking`), its files in ``wandb/``.

On a terminal it also draws a live progress bar below the epoch table (:mod:`spinrl.record.display`).
Each of those jobs is a small part of its own; the logger opens the run folder, hands each call to the
parts it concerns, and closes them. Opening a run takes the run directory's lock
(:func:`spinrl.record.folder.open_run_dir`), so a second process that tries to write the same run is
refused at once; the lock is held until :meth:`EpochLogger.close` (or :meth:`~EpochLogger.finish`) or the
end of the process. On ``resume``, :meth:`EpochLogger.save_config` refuses settings that would make the
run another run. ``setup_logger_kwargs``, ``read_progress``, ``convert_json`` and ``RunExistsError`` are
importable from here too, as in Spinning Up.

As in Spinning Up, :class:`Logger` writes the table, the config and the model, and :class:`EpochLogger`
adds per-epoch statistics of stored values. A hand-written training loop saves its network with
:meth:`Logger.setup_pytorch_saver` and :meth:`Logger.save_state`, which write a safe checkpoint (the
network's weights, its class and the arguments that rebuild it, never a pickled module) that
``spinrl test_policy`` and :func:`spinrl.results.policy.load_policy_and_env` load
(:mod:`spinrl.record.saved_policy`).

Only rank 0 of an MPI job writes; statistics in :class:`EpochLogger` cover all ranks.
"""

from __future__ import annotations

import atexit
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from spinrl.common.errors import UserError
from spinrl.common.mpi import mpi_statistics_columns, mpi_statistics_scalar, proc_id
from spinrl.record.config import ConfigFile, convert_json
from spinrl.record.console import COLORS, colorize, live_terminal
from spinrl.record.display import LiveDisplay
from spinrl.record.folder import RunExistsError, default_data_dir, open_run_dir, setup_logger_kwargs
from spinrl.record.names import PROGRESS_FILE, SNAPSHOTS_DIR
from spinrl.record.progress import ProgressTable, read_progress
from spinrl.record.saved_policy import PolicySaver
from spinrl.record.status import mark_failed_at_exit, write_status
from spinrl.record.tensorboard import TensorBoardWriter

# Also importable from here, as from Spinning Up's logger module: the loggers, and what scripts import
# beside them.
__all__ = [
    "EpochLogger",
    "Logger",
    "RunExistsError",
    "SNAPSHOTS_DIR",
    "colorize",
    "convert_json",
    "read_progress",
    "setup_logger_kwargs",
]


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
        self.resume = resume
        # The parts, one per job; the ones that write are used on rank 0 only.
        self.table = ProgressTable(self.output_dir / output_fname)
        self.display = LiveDisplay(exp_name or self.output_dir.name, self.quiet)
        self.tensorboard = TensorBoardWriter(self.output_dir, resume, enabled=tensorboard)
        self.config_file = ConfigFile(self.output_dir, resume, exp_name, preset, self._config_written)
        self.saver = PolicySaver(self.output_dir)
        self._lock = None
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

    # Spinning Up's names for the table's state.
    @property
    def progress_path(self) -> Path:
        return self.table.path

    @property
    def log_headers(self) -> list[str]:
        return self.table.headers

    @property
    def log_current_row(self) -> dict[str, Any]:
        return self.table.row

    @property
    def first_row(self) -> bool:
        return self.table.first_row

    @property
    def config(self) -> dict | None:
        """The settings config.json records (:meth:`save_config`); each checkpoint carries a copy."""
        return self.config_file.settings

    @property
    def tb_writer(self) -> Any:
        """TensorBoard's ``SummaryWriter``, once the first row is written (None before, or without TensorBoard)."""
        return self.tensorboard.writer

    @property
    def pytorch_saver_elements(self) -> Any:
        """The network :meth:`save_state` saves (Spinning Up's name)."""
        return self.saver.module

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
        :func:`spinrl.record.config.check_same_run`), else one line lists the differences and nothing is
        written. A larger ``epochs`` is then recorded.

        When the run's environment comes from a function rather than a Gymnasium id (no ``env_name``),
        the Gymnasium id and arguments of the env it makes are recorded as ``env_spec``, so that the
        policy can be watched later (the function is called once here, on rank 0, for that).
        """
        if self.is_writer:
            self.config_file.save(config)

    def check_checkpoint_config(self, saved: dict) -> None:
        """On resume, hold this run's settings against ``saved``, those its checkpoint carries: they must
        be the same run (:func:`spinrl.record.config.refuse_changes`), even when config.json was lost, in
        which case the checkpoint's settings (with the new ``epochs``) are what will be recorded again."""
        if self.is_writer:
            self.config_file.check_checkpoint(saved)

    def commit_config(self) -> None:
        """Write the config that a resume held back, now that the resume goes on (see :meth:`save_config`)."""
        self.config_file.commit()

    def _config_written(self, config: dict) -> None:
        if self._tracker is not None:
            self._tracker.set_config(config)

    def set_status(self, status: str, epoch: int, epochs: int, **extra: Any) -> None:
        """Record whether the run is running, finished or failed in status.json (see :mod:`spinrl.record.status`)."""
        if not self.is_writer:
            return
        write_status(self.output_dir, status, epoch, epochs, **extra)
        self.display.update(status, epoch, epochs)

    def truncate_to_epochs(self, num_epochs: int) -> None:
        """Keep the rows of progress.txt for epochs ``0 .. num_epochs - 1`` (for ``--resume``; see
        :meth:`spinrl.record.progress.ProgressTable.truncate_to_epochs`)."""
        if self.is_writer:
            self.table.truncate_to_epochs(num_epochs)

    # ----- the table ---------------------------------------------------------------------------
    def log_tabular(self, key: str, val: Any) -> None:
        """Set the value of column ``key`` in this row (each column once per row; the first row fixes them)."""
        self.table.set(key, val)

    def dump_tabular(self) -> dict[str, Any]:
        """Print the epoch table, append the row to progress.txt and TensorBoard; return the row."""
        row = self.table.current_row()
        if self.is_writer:
            self.commit_config()  # a hand-written loop that resumes without a Checkpointer
            self.table.add_missing_columns()
            self.display.show_row(row)
            self.table.append(row)
            self.tensorboard.write(row)
            if self._tracker is not None:
                self._tracker.log(row)
        self.table.next_row()
        return row

    # ----- saving the model, as in Spinning Up ------------------------------------------------------
    def setup_pytorch_saver(self, what_to_save: Any) -> None:
        """Name the network that :meth:`save_state` saves: a ``torch.nn.Module``, usually the actor-critic."""
        self.saver.setup(what_to_save)

    def save_state(self, state_dict: dict[str, Any], itr: int | None = None) -> None:
        """Save the network named by :meth:`setup_pytorch_saver` and ``state_dict`` as a safe checkpoint.

        ``itr=None`` replaces the run's checkpoint each time; ``itr=N`` keeps a numbered snapshot in
        ``snapshots/N/`` that ``spinrl test_policy -i N`` loads. The network is saved as its weights, its
        class and the arguments that rebuild it; in ``state_dict``, an environment is saved as its
        Gymnasium id and arguments, objects with a ``state_dict()`` (optimisers) as that, and tensors,
        arrays, numbers and strings as they are. Anything else is left out with a warning line.
        Only rank 0 writes.
        """
        if self.is_writer:
            self.saver.save(state_dict, itr)

    # ----- the end -------------------------------------------------------------------------------
    def finish(self, epochs: int) -> None:
        """Mark the run finished after ``epochs`` epochs and close the outputs."""
        self.set_status("finished", epochs, epochs)
        self.close()

    def _record_failure_at_exit(self) -> None:
        """At interpreter exit, mark the run failed if an exception ended the process while it was running
        (:func:`spinrl.record.status.mark_failed_at_exit`)."""
        if self._lock is None:
            return
        failed = mark_failed_at_exit(self.output_dir)
        if failed is not None:
            self.display.update(failed["status"], failed["epoch"], failed["epochs"])

    def close(self) -> None:
        """Close the outputs and give up the run directory's lock (another process may then write it)."""
        self.display.stop()
        self.tensorboard.close()
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
