"""The name of every file and folder spinrl writes in a run folder, and in a search's folder: one place each.

Which module writes or reads each one is said beside it; the rules for what a file holds live with that
module. This module imports nothing of spinrl, so any other may ask it.
"""

from __future__ import annotations

import re

# ----- what every run holds (spinrl.record.logger and its parts) ---------------------------------------
PROGRESS_FILE = "progress.txt"  # one tab-separated row per finished epoch (spinrl.record.progress)
CONFIG_FILE = "config.json"  # the run's arguments (spinrl.record.config)
STATUS_FILE = "status.json"  # running, finished or failed, and who wrote it (spinrl.record.status)
LOCK_FILE = ".lock"  # held by the one process that writes the run (spinrl.record.lock)
TENSORBOARD_DIR = "tb"  # TensorBoard's event files (spinrl.record.tensorboard)
TRACKING_FILE = "tracking.json"  # the Weights & Biases run id, for --resume (spinrl.record.tracking)
# A folder holding any of these is a run.
RUN_FILES = (PROGRESS_FILE, CONFIG_FILE, STATUS_FILE)

# A damaged progress.txt is kept as it was before a resume rewrites it: progress.txt.damaged, then
# progress.txt.damaged-2, -3, ... (never overwriting an earlier copy).
DAMAGED_SUFFIX = ".damaged"


def damaged_copy_name(name: str, n: int) -> str:
    """The ``n``-th kept copy (from 1) of the damaged file ``name``."""
    return f"{name}{DAMAGED_SUFFIX}" if n == 1 else f"{name}{DAMAGED_SUFFIX}-{n}"


# ----- checkpoints (spinrl.record.checkpoint) -------------------------------------------------------------
CHECKPOINT_META = "checkpoint.json"  # the pointer: which checkpoint file is current, and its SHA-256
LEGACY_CHECKPOINT_FILE = "checkpoint.pt"  # the one file of runs saved by spinrl 0.1
# A name the pointer may hold: checkpoint-<epoch>.pt, checkpoint-<epoch>-<ns>.pt, or the legacy name.
CHECKPOINT_FILE_PATTERN = re.compile(r"checkpoint(-\d+(-\d+)?)?\.pt")
CHECKPOINT_GLOB = "checkpoint*.pt"
# Where save_state(..., itr=N) keeps numbered snapshots: <run>/snapshots/<N>/, each a checkpoint
# (spinrl.record.saved_policy; spinrl test_policy --itr N loads them).
SNAPSHOTS_DIR = "snapshots"


def checkpoint_file(epoch: int, unique: int | None = None) -> str:
    """The checkpoint file of ``epoch``; ``unique`` tells apart a second save of the same epoch."""
    return f"checkpoint-{epoch}.pt" if unique is None else f"checkpoint-{epoch}-{unique}.pt"


def temporary_name(name: str) -> str:
    """Where a file is written before it is renamed to ``name`` (hidden, so that no reader takes it)."""
    return f".{name}.tmp"


# ----- runs launched in a process of their own (spinrl.launch) --------------------------------------------
SPEC_FILE = "variant.json"  # the run spec the child process reads
LOG_FILE = "output.log"  # the child's terminal output

# Folders inside a run that never hold runs themselves; skipping them keeps the search for runs fast.
SKIP_DIRS = {TENSORBOARD_DIR, "videos", "__pycache__"}

# ----- a search's folder (spinrl.tune) --------------------------------------------------------------------
STUDY_FILE = "study.db"  # the study's Optuna storage, unless --storage names another
PLOTS_DIR = "plots"  # the figures of spinrl tune --show


def worker_log_file(i: int) -> str:
    """The terminal output of the ``i``-th --parallel search process."""
    return f"worker{i}.log"
