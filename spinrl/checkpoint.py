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
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spinrl.errors import UserError

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


# ----- random number generator states -------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states as tensors and plain values (safe for weights_only)."""
    np_state = np.random.get_state()
    state = {
        "python": _python_state_to_plain(random.getstate()),
        "numpy": {
            "name": np_state[0],
            "keys": torch.as_tensor(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_python_state_from_plain(state["python"]))
    n = state["numpy"]
    np.random.set_state(
        (n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state_to_plain(s: tuple) -> list:
    version, internal, gauss = s
    return [version, list(internal), gauss]


def _python_state_from_plain(s: list) -> tuple:
    version, internal, gauss = s
    return (version, tuple(internal), gauss)


class Checkpointer:
    """Saves and restores everything a run needs to continue exactly: networks, optimisers, all RNG
    states (of every MPI rank), counters and the logger's position.

    Example::

        ckpt = Checkpointer(logger.output_dir, ac=ac, pi_optimizer=pi_opt)
        counters = ckpt.restore(logger) if resume else None   # {"epoch": ..., ...} or None
        ...
        ckpt.save(epoch + 1, elapsed=...)                      # after the epoch's row is logged
    """

    def __init__(self, run_dir: str | os.PathLike, **objects: Any):
        self.run_dir = Path(run_dir)
        self.objects = objects  # anything with state_dict() / load_state_dict()

    def save(self, epochs_done: int, **counters: Any) -> None:
        from spinrl.mpi import gather_object, proc_id

        rng_states = gather_object(rng_state())
        if proc_id() != 0:
            return
        state = {name: obj.state_dict() for name, obj in self.objects.items()}
        state["rng_per_rank"] = rng_states
        state["counters"] = dict(counters, epoch=epochs_done)
        save_checkpoint(self.run_dir, state, epochs_done)

    def end_epoch(self, logger, epoch: int, epochs: int, save_freq: int, **counters: Any) -> None:
        """After epoch ``epoch``'s row is written: save every ``save_freq`` epochs and at the last one,
        and record the progress in status.json. Saving after the row means a resume repeats no row."""
        if (epoch + 1) % save_freq == 0 or epoch == epochs - 1:
            self.save(epoch + 1, **counters)
        logger.set_status("running", epoch + 1, epochs)

    def restore(self, logger) -> dict[str, Any] | None:
        """Load the last checkpoint if there is one; trim progress.txt to the epochs it covers.

        Returns the saved counters (``epoch`` = number of finished epochs), or None when there is
        nothing to resume from (the run then starts from scratch).
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
        logger.truncate_to_epochs(counters["epoch"])
        print_line(f"resume: continuing {self.run_dir} after epoch {counters['epoch']}")
        return counters
