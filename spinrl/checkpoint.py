"""Checkpoints that survive a crash and cannot run code when loaded.

A run directory holds ``checkpoint.pt`` (tensors, optimiser states, RNG states, counters) and
``checkpoint.json`` (the epoch and the SHA-256 of ``checkpoint.pt``). Both are written atomically:
to a temporary file first, then renamed over the old one, so a kill at any moment leaves the last
good checkpoint readable. Loading uses ``torch.load(weights_only=True)``, which refuses anything but
tensors and plain containers: a tampered file cannot execute a payload.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from spinrl.errors import UserError
from spinrl.rng import rng_state, set_rng_state

CHECKPOINT_FILE = "checkpoint.pt"
CHECKPOINT_META = "checkpoint.json"


class CheckpointError(UserError):
    """A checkpoint is missing, truncated, corrupted or tampered with."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_replace(tmp: Path, final: Path) -> None:
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)


def save_checkpoint(run_dir: str | os.PathLike, state: dict[str, Any], epoch: int) -> Path:
    """Atomically write ``state`` (nested dicts of tensors and plain values) for ``epoch``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    final, tmp = run_dir / CHECKPOINT_FILE, run_dir / f".{CHECKPOINT_FILE}.tmp"
    torch.save(state, tmp)
    digest = _sha256(tmp)
    _fsync_replace(tmp, final)
    meta_tmp = run_dir / f".{CHECKPOINT_META}.tmp"
    meta_tmp.write_text(json.dumps({"epoch": epoch, "sha256": digest, "file": CHECKPOINT_FILE}, indent=2))
    _fsync_replace(meta_tmp, run_dir / CHECKPOINT_META)
    return final


def has_checkpoint(run_dir: str | os.PathLike) -> bool:
    return (Path(run_dir) / CHECKPOINT_FILE).exists()


def load_checkpoint(run_dir: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely; any problem is one clear :class:`CheckpointError` line."""
    run_dir = Path(run_dir)
    path = run_dir / CHECKPOINT_FILE
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory {str(run_dir)!r} does not exist")
    if not path.exists():
        raise CheckpointError(
            f"no checkpoint in {str(run_dir)!r} (expected {CHECKPOINT_FILE}); has the run saved one yet?"
        )
    meta_path = run_dir / CHECKPOINT_META
    if meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CheckpointError(f"{meta_path} is corrupted (not valid JSON)") from None
        if meta.get("sha256") != _sha256(path):
            raise CheckpointError(
                f"{path} does not match its recorded SHA-256: it is truncated, corrupted or was modified"
            )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsafe content"
        raise CheckpointError(f"{path} was refused: it holds more than tensors ({first[:160]})") from None
    except (RuntimeError, EOFError, ValueError, OSError) as e:
        raise CheckpointError(
            f"{path} cannot be read: it is truncated or corrupted ({type(e).__name__})"
        ) from None


def is_checkpoint_epoch(epochs_done: int, epochs: int, save_freq: int) -> bool:
    """The checkpoint cadence: after every ``save_freq``-th epoch and after the last one.

    Saving changes nothing the agent experiences (the environments are never reset for it), so two runs
    that differ only in ``save_freq`` train identically.
    """
    return epochs_done % save_freq == 0 or epochs_done == epochs


@dataclass
class RunProgress:
    """How far a run has come, over all the processes that trained it (a resumed run continues it)."""

    epoch: int = 0  # epochs finished
    t: int = 0  # environment steps taken, summed over env copies and MPI ranks
    elapsed: float = 0.0  # seconds of training before this process started
    started: float = field(default_factory=time.time, repr=False)

    def seconds(self) -> float:
        """Seconds of training so far, earlier processes included (the ``Time`` column)."""
        return self.elapsed + time.time() - self.started


class Checkpointer:
    """Saves and restores everything a run needs to continue exactly: networks, optimisers, all RNG
    states (of every MPI rank), counters and the logger's position.

    Example::

        checkpointer = Checkpointer(logger.output_dir, ac=ac, pi_optimizer=pi_optimizer)
        progress = checkpointer.start(logger, resume, epochs)  # RunProgress: epoch, t, seconds()
        for epoch in range(progress.epoch, epochs):
            ...                                                  # collect, update, log the row
            checkpointer.end_epoch(logger, progress, epochs, save_freq)
    """

    def __init__(self, run_dir: str | os.PathLike, **objects: Any):
        self.run_dir = Path(run_dir)
        self.objects = objects  # anything with state_dict() / load_state_dict()

    def save(self, progress: RunProgress) -> None:
        """Write a checkpoint for ``progress.epoch`` finished epochs (rank 0 writes; all ranks send RNGs)."""
        from spinrl.mpi import gather_object, proc_id

        rng_states = gather_object(rng_state())
        if proc_id() != 0:
            return
        state = {name: obj.state_dict() for name, obj in self.objects.items()}
        state["rng_per_rank"] = rng_states
        state["counters"] = {"epoch": progress.epoch, "t": progress.t, "elapsed": progress.seconds()}
        save_checkpoint(self.run_dir, state, progress.epoch)

    def start(self, logger, resume: bool, epochs: int) -> RunProgress:
        """Where training starts: right after the last checkpoint with ``resume``, else at zero.

        Resuming restores every object, the RNG states and the counters, and trims progress.txt to the
        checkpoint's epochs. The run is marked running in status.json.
        """
        progress = self.restore(logger) if resume else None
        progress = progress or RunProgress()
        logger.set_status("running", progress.epoch, epochs)
        return progress

    def end_epoch(self, logger, progress: RunProgress, epochs: int, save_freq: int) -> None:
        """Count the epoch whose row was just written; checkpoint it when the cadence says so.

        Saving after the row is written means a resumed run repeats no row.
        """
        progress.epoch += 1
        if is_checkpoint_epoch(progress.epoch, epochs, save_freq):
            self.save(progress)
        logger.set_status("running", progress.epoch, epochs)

    def restore(self, logger) -> RunProgress | None:
        """Load the last checkpoint if there is one; trim progress.txt to the epochs it covers.

        Returns the saved progress, or None when there is nothing to resume from (the run then starts
        from scratch).
        """
        from spinrl.logx import print_line
        from spinrl.mpi import proc_id

        if not has_checkpoint(self.run_dir):
            print_line(f"resume: no checkpoint in {self.run_dir}; starting from scratch")
            logger.truncate_to_epochs(0)
            return None
        state = load_checkpoint(self.run_dir)
        for name, obj in self.objects.items():
            if name not in state:
                raise CheckpointError(
                    f"checkpoint in {self.run_dir} has no {name!r}: was it saved by another algorithm?"
                )
            try:
                obj.load_state_dict(state[name])
            except (RuntimeError, ValueError, KeyError) as e:
                raise CheckpointError(
                    f"checkpoint in {self.run_dir} does not fit this run's {name!r} (different network sizes?): "
                    f"{str(e).splitlines()[0][:160]}"
                ) from None
        rngs = state["rng_per_rank"]
        set_rng_state(rngs[proc_id()] if proc_id() < len(rngs) else rngs[0])
        counters = state["counters"]
        progress = RunProgress(
            epoch=int(counters["epoch"]),
            t=int(counters.get("t", 0)),
            elapsed=float(counters.get("elapsed", 0.0)),
        )
        logger.truncate_to_epochs(progress.epoch)
        print_line(f"resume: continuing {self.run_dir} after epoch {progress.epoch}")
        return progress
