"""TensorBoard: every numeric column of each epoch's row as a scalar (``tensorboard --logdir data``).

The event files go to ``<run>/tb/``. Each row is plotted at its ``TotalEnvInteracts`` (else its ``Epoch``).
Without the tensorboard package nothing is written: progress.txt holds the same numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from spinrl.record.names import TENSORBOARD_DIR

# Columns that are the x-axis, not a curve.
STEP_COLUMNS = ("Epoch", "TotalEnvInteracts")


class TensorBoardWriter:
    """Writes a run's rows as TensorBoard scalars; the writer is opened with the first row."""

    def __init__(self, run_dir: Path, resume: bool = False, enabled: bool = True):
        self.run_dir, self.resume, self.enabled = run_dir, resume, enabled
        self.writer = None  # torch's SummaryWriter, from the first row on

    def write(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        step = row.get("TotalEnvInteracts") or row.get("Epoch")
        if self.writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard not installed: progress.txt is enough
                self.enabled = False
                return
            # purge_step drops events past the resume point, so a resumed curve has no duplicates.
            self.writer = SummaryWriter(
                str(self.run_dir / TENSORBOARD_DIR), purge_step=step if self.resume else None
            )
        for k, v in row.items():
            if k in STEP_COLUMNS:
                continue
            if isinstance(v, int | float | np.floating | np.integer) and np.isfinite(v):
                self.writer.add_scalar(k, float(v), global_step=int(step))
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
