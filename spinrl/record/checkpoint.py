"""Checkpoints that no kill can break and that cannot run code when loaded.

A run directory holds the checkpoint itself, ``checkpoint-<epoch>.pt`` (tensors, optimiser states,
RNG states, counters), and the pointer ``checkpoint.json``, which names that file and records its
SHA-256. A save goes in this order, each step durable (fsync) before the next:

1. write the new ``.checkpoint-<epoch>.pt.tmp`` and rename it to ``checkpoint-<epoch>.pt``;
2. write ``.checkpoint.json.tmp`` and rename it over ``checkpoint.json`` (the switch: one rename);
3. delete the previous checkpoint file.

A kill before step 2 leaves the pointer on the previous, complete checkpoint; a kill after it leaves the
pointer on the new one. At every instant the pointer names a whole file whose digest it holds.
(Runs saved by spinrl 0.1 have ``checkpoint.pt`` and a pointer naming it; they load as before.)

Loading uses ``torch.load(weights_only=True)``, which refuses anything but tensors and plain
containers: a tampered file cannot execute a payload. What a checkpoint holds is checked before it is
used (:func:`check_contents`), so a damaged one is one clear line and changes nothing on disk.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from spinrl.common.errors import UserError
from spinrl.common.seeding import rng_state, set_rng_state
from spinrl.record.names import (
    CHECKPOINT_FILE_PATTERN,
    CHECKPOINT_GLOB,
    CHECKPOINT_META,
    LEGACY_CHECKPOINT_FILE,
    checkpoint_file,
    temporary_name,
)


class CheckpointError(UserError):
    """A checkpoint is missing, truncated, corrupted, tampered with or cannot be written."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    """Make renames and deletions inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_pointer(run_dir: Path) -> dict[str, Any] | None:
    """The pointer's contents, None when there is no pointer; a damaged pointer is a CheckpointError."""
    meta_path = run_dir / CHECKPOINT_META
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        raise CheckpointError(f"{meta_path} is corrupted (not valid JSON)") from None
    name = meta.get("file") if isinstance(meta, dict) else None
    # The pointer may only name a checkpoint file in the run directory itself, never a path.
    if (
        not isinstance(name, str)
        or not CHECKPOINT_FILE_PATTERN.fullmatch(name)
        or not isinstance(meta.get("sha256"), str)
    ):
        raise CheckpointError(f"{meta_path} is corrupted (it does not name a checkpoint file and its digest)")
    return meta


def checkpoint_path(run_dir: str | os.PathLike) -> Path | None:
    """The checkpoint file a run would resume from, or None when it has none."""
    run_dir = Path(run_dir)
    meta = _read_pointer(run_dir)
    if meta is not None:
        return run_dir / meta["file"]
    legacy = run_dir / LEGACY_CHECKPOINT_FILE
    return legacy if legacy.exists() else None


def save_checkpoint(run_dir: str | os.PathLike, state: dict[str, Any], epoch: int) -> Path:
    """Write ``state`` (nested dicts of tensors and plain values) as the checkpoint of ``epoch``.

    A failure to write (a full disk, say) is one :class:`CheckpointError` line; the previous checkpoint
    stays the one the pointer names.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in run_dir.glob(temporary_name("checkpoint*")):  # left by a save that was killed
        stale.unlink(missing_ok=True)
    try:
        previous = checkpoint_path(run_dir)
    except CheckpointError:
        previous = None  # a damaged pointer is replaced below
    name = checkpoint_file(epoch)
    if previous is not None and previous.name == name:  # the same epoch saved again: a new name
        name = checkpoint_file(epoch, unique=time.time_ns())
    final, tmp = run_dir / name, run_dir / temporary_name(name)
    meta_tmp = run_dir / temporary_name(CHECKPOINT_META)
    try:
        torch.save(state, tmp)
        _fsync_file(tmp)
        digest = _sha256(tmp)
        os.replace(tmp, final)
        _fsync_dir(run_dir)
        meta_tmp.write_text(json.dumps({"epoch": epoch, "file": name, "sha256": digest}, indent=2))
        _fsync_file(meta_tmp)
        os.replace(meta_tmp, run_dir / CHECKPOINT_META)  # the switch
        _fsync_dir(run_dir)
    except OSError as e:
        for leftover in (tmp, meta_tmp):
            leftover.unlink(missing_ok=True)
        if final.exists() and checkpoint_path(run_dir) != final:
            final.unlink()
        reason = e.strerror or type(e).__name__
        raise CheckpointError(
            f"could not save the checkpoint of epoch {epoch} in {run_dir} ({reason}); "
            "the previous checkpoint is kept"
        ) from None
    for old in run_dir.glob(CHECKPOINT_GLOB):
        if old.name != name:
            old.unlink(missing_ok=True)
    return final


def has_checkpoint(run_dir: str | os.PathLike) -> bool:
    try:
        return checkpoint_path(run_dir) is not None
    except CheckpointError:
        return True  # something is there, if damaged: loading it gives the clear error


def load_checkpoint(run_dir: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely; any problem is one clear :class:`CheckpointError` line."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory {str(run_dir)!r} does not exist")
    meta = _read_pointer(run_dir)
    path = checkpoint_path(run_dir)
    if path is None:
        raise CheckpointError(f"no checkpoint in {str(run_dir)!r}; has the run saved one yet?")
    if not path.exists():
        raise CheckpointError(f"{run_dir / CHECKPOINT_META} names {path.name}, which is missing")
    if meta is not None and meta["sha256"] != _sha256(path):
        raise CheckpointError(
            f"{path} does not match its recorded SHA-256: it is truncated, corrupted or was modified"
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsafe content"
        raise CheckpointError(f"{path} was refused: it holds more than tensors ({first[:160]})") from None
    except (RuntimeError, EOFError, ValueError, OSError) as e:
        raise CheckpointError(
            f"{path} cannot be read: it is truncated or corrupted ({type(e).__name__})"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a checkpoint (a {type(state).__name__}, not a dict)")
    return state


def check_contents(state: dict[str, Any], names: list[str], epochs: int, where: str) -> None:
    """Refuse, in one line, a checkpoint that lacks what a run needs or holds impossible counters.

    ``names`` are the objects the algorithm restores; ``epochs`` is the run's length, which the saved
    epoch may not exceed. Called before anything is restored, so a refusal changes nothing.
    """

    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"checkpoint in {where} is not usable: {what}")

    missing = [n for n in names if not isinstance(state.get(n), dict)]
    if missing:
        raise bad(f"it has no {', '.join(map(repr, missing))} (was it saved by another algorithm?)")
    # Entries this run would not restore mean another algorithm wrote it (PPO's pi_optimizer under TRPO).
    extra = sorted(set(state) - set(names) - {"counters", "rng_per_rank", "config"})
    if extra:
        raise bad(
            f"it also holds {', '.join(map(repr, extra))}, which this algorithm has not (was it saved by another algorithm?)"
        )
    if "config" in state:
        try:
            config = json.loads(state["config"]) if isinstance(state["config"], str) else None
        except ValueError:
            config = None
        if not isinstance(config, dict):
            raise bad("the run settings it carries are damaged")
    counters = state.get("counters")
    if not isinstance(counters, dict):
        raise bad("its counters are missing")
    epoch, t, elapsed = counters.get("epoch"), counters.get("t", 0), counters.get("elapsed", 0.0)
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise bad(f"its epoch is {epoch!r}, not a whole number >= 0")
    if epoch > epochs:
        raise bad(
            f"it was saved after epoch {epoch}, beyond this run's epochs={epochs}; pass --epochs {epoch} or more"
        )
    if isinstance(t, bool) or not isinstance(t, int) or t < 0:
        raise bad(f"its step counter is {t!r}, not a whole number >= 0")
    if (
        isinstance(elapsed, bool)
        or not isinstance(elapsed, int | float)
        or not math.isfinite(elapsed)
        or elapsed < 0
    ):
        raise bad(f"its elapsed time is {elapsed!r}, not a number of seconds >= 0")
    rngs = state.get("rng_per_rank")
    if (
        not isinstance(rngs, list)
        or not rngs
        or not all(isinstance(r, dict) and {"python", "numpy", "torch"} <= r.keys() for r in rngs)
    ):
        raise bad("its random-number-generator states are missing or damaged")


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
        self.config: dict | None = None  # the run's settings, from the logger (start)

    def save(self, progress: RunProgress) -> None:
        """Write a checkpoint for ``progress.epoch`` finished epochs (rank 0 writes; all ranks send RNGs)."""
        from spinrl.common.mpi import gather_object, proc_id

        rng_states = gather_object(rng_state())
        if proc_id() != 0:
            return
        state = {name: obj.state_dict() for name, obj in self.objects.items()}
        state["rng_per_rank"] = rng_states
        state["counters"] = {"epoch": progress.epoch, "t": progress.t, "elapsed": progress.seconds()}
        if self.config is not None:  # what --resume compares, should config.json be lost
            state["config"] = json.dumps(self.config)
        save_checkpoint(self.run_dir, state, progress.epoch)

    def start(self, logger, resume: bool, epochs: int) -> RunProgress:
        """Where training starts: right after the last checkpoint with ``resume``, else at zero.

        Resuming restores every object, the RNG states and the counters, and trims progress.txt to the
        checkpoint's epochs. The run is marked running in status.json.
        """
        progress = self.restore(logger, epochs) if resume else None
        progress = progress or RunProgress()
        # The resume is accepted: the config it held back is written, and checkpoints carry it.
        if hasattr(logger, "commit_config"):
            logger.commit_config()
        self.config = getattr(logger, "config", None)
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

    def restore(self, logger, epochs: int) -> RunProgress | None:
        """Load the last checkpoint if there is one; trim progress.txt to the epochs it covers.

        Returns the saved progress, or None when there is nothing to resume from (the run then starts
        from scratch).
        """
        from spinrl.common.mpi import proc_id
        from spinrl.record.console import print_line

        if not has_checkpoint(self.run_dir):
            print_line(f"resume: no checkpoint in {self.run_dir}; starting from scratch")
            logger.truncate_to_epochs(0)
            return None
        state = load_checkpoint(self.run_dir)
        check_contents(state, list(self.objects), epochs, str(self.run_dir))
        if "config" in state and hasattr(logger, "check_checkpoint_config"):
            logger.check_checkpoint_config(json.loads(state["config"]))
        for name, obj in self.objects.items():
            try:
                obj.load_state_dict(state[name])
            except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as e:
                # torch's first line is a header ("Error(s) in loading state_dict for ..."); the
                # next one names the first tensor that does not fit.
                lines = [line.strip() for line in str(e).splitlines() if line.strip()]
                detail = (
                    (lines[1] if len(lines) > 1 and lines[0].startswith("Error(s)") else lines[0])
                    if lines
                    else type(e).__name__
                )
                raise CheckpointError(
                    f"checkpoint in {self.run_dir} does not fit this run's {name!r} (different network sizes?): "
                    f"{detail[:200]}"
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
