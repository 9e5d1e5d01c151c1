"""What a run shows while it trains: Spinning Up's epoch table after every epoch, and on a terminal a
live progress bar (epochs done, elapsed time, ETA) drawn below it.

The bar is drawn only when stdout is a terminal (:func:`spinrl.record.console.live_terminal`) and the run is
not quiet; anywhere else the table is printed as plain text, as in Spinning Up.
"""

from __future__ import annotations

from typing import Any

from spinrl.record.console import format_epoch_table, live_terminal


class LiveDisplay:
    """The epoch table and the progress bar of one run (rank 0; nothing at all when ``quiet``)."""

    def __init__(self, description: str, quiet: bool = False):
        self.description = description  # the bar's label: the experiment name, or the run folder's
        self.quiet = quiet
        self._progress = None  # rich's Progress while the bar is drawn
        self._task = None

    def show_row(self, row: dict[str, Any]) -> None:
        """Print one epoch's table (above the bar when there is one)."""
        if self._progress is not None:
            self._progress.console.print(format_epoch_table(row), markup=False, highlight=False)
        elif not self.quiet:
            print(format_epoch_table(row), flush=True)

    def update(self, status: str, epoch: int, epochs: int) -> None:
        """Follow the run's status: the bar starts with a running run and ends when it stops running."""
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
            self._task = self._progress.add_task(self.description, total=epochs, completed=epoch)
            self._progress.start()
        elif self._progress is not None:
            self._progress.update(self._task, completed=epoch)
            if status != "running":
                self.stop()

    def stop(self) -> None:
        """Take the bar off the terminal (safe to call twice)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
