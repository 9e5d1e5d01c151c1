import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from spinrl.common.seeding import rng_state, set_rng_state
from spinrl.record import checkpoint
from spinrl.record.checkpoint import (
    CheckpointError,
    check_contents,
    is_checkpoint_epoch,
    load_checkpoint,
    save_checkpoint,
)


def test_round_trip_restores_tensors_and_rng(tmp_path):
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters())
    net(torch.ones(1, 3)).sum().backward()
    opt.step()
    state = {"ac": net.state_dict(), "opt": opt.state_dict(), "rng": rng_state(), "counters": {"epoch": 4}}
    save_checkpoint(tmp_path, state, epoch=4)
    expected = torch.rand(3)

    loaded = load_checkpoint(tmp_path)
    net2 = torch.nn.Linear(3, 2)
    net2.load_state_dict(loaded["ac"])
    torch.testing.assert_close(net2.weight, net.weight)
    assert loaded["counters"]["epoch"] == 4
    set_rng_state(loaded["rng"])
    torch.testing.assert_close(torch.rand(3), expected)


def test_interrupted_write_leaves_last_good_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, {"x": torch.tensor([1.0])}, epoch=1)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # killed between writing the temporary file and renaming it

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, {"x": torch.tensor([2.0])}, epoch=2)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path)["x"].item() == 1.0


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["SPINRL_PWNED"]),))


def test_tampered_checkpoint_is_refused_without_running_payload(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("SPINRL_PWNED", str(marker))
    path = save_checkpoint(tmp_path, {"x": torch.tensor([1.0])}, epoch=1)
    # An attacker replaces the file with a pickle that would run code, and fixes up the checksum.
    with open(path, "wb") as f:
        pickle.dump({"x": _Payload()}, f)
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    meta["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / "checkpoint.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="refused|cannot be read"):
        load_checkpoint(tmp_path)
    assert not marker.exists()


def test_truncated_checkpoint_gives_clear_error(tmp_path):
    path = save_checkpoint(tmp_path, {"x": torch.zeros(1000)}, epoch=1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(tmp_path)
    # A run saved by spinrl 0.1 without its pointer: the reader still fails cleanly.
    (tmp_path / "checkpoint.json").unlink()
    path.rename(tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(tmp_path)


def test_missing_run_dir_and_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path)


class Killed(BaseException):
    """Stands for SIGKILL: nothing after the injection point runs, no except-clause catches it."""


def _save_steps(monkeypatch, kill_at: int | None) -> list[str]:
    """Count every durable step of a save (and kill the writer at step ``kill_at``)."""
    steps: list[str] = []

    def wrap(name, fn):
        def step(*args, **kwargs):
            steps.append(name)
            if kill_at is not None and len(steps) == kill_at:
                raise Killed(name)
            return fn(*args, **kwargs)

        return step

    monkeypatch.setattr(checkpoint.torch, "save", wrap("torch.save", torch.save))
    monkeypatch.setattr(checkpoint, "_fsync_file", wrap("fsync file", checkpoint._fsync_file))
    monkeypatch.setattr(checkpoint, "_fsync_dir", wrap("fsync dir", checkpoint._fsync_dir))
    monkeypatch.setattr(checkpoint.os, "replace", wrap("rename", os.replace))
    monkeypatch.setattr(Path, "write_text", wrap("write pointer", Path.write_text))
    monkeypatch.setattr(Path, "unlink", wrap("delete", Path.unlink))
    return steps


def test_a_kill_at_every_step_of_a_save_leaves_a_complete_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, {"x": torch.tensor([1.0]), "counters": {"epoch": 1}}, epoch=1)
    with monkeypatch.context() as m:
        all_steps = _save_steps(m, kill_at=None)
        save_checkpoint(tmp_path / "dry", {"x": torch.tensor([2.0])}, epoch=2)
    # torch.save, fsync, rename, fsync dir, pointer, fsync, rename (the switch), fsync dir, delete old
    assert len(all_steps) >= 8, all_steps
    for kill_at in range(1, len(all_steps) + 1):
        run = tmp_path / f"kill{kill_at}"
        save_checkpoint(run, {"x": torch.tensor([1.0]), "counters": {"epoch": 1}}, epoch=1)
        with monkeypatch.context() as m:
            _save_steps(m, kill_at)
            with pytest.raises(Killed):
                save_checkpoint(run, {"x": torch.tensor([2.0]), "counters": {"epoch": 2}}, epoch=2)
        # Whatever the step, the pointer names one whole checkpoint: the old one or the new one.
        state = load_checkpoint(run)
        assert (state["x"].item(), state["counters"]["epoch"]) in ((1.0, 1), (2.0, 2)), all_steps[kill_at - 1]
        # ... and the next save (the resumed run's) works and cleans up after the killed one.
        save_checkpoint(run, {"x": torch.tensor([3.0]), "counters": {"epoch": 3}}, epoch=3)
        assert load_checkpoint(run)["x"].item() == 3.0
        assert sorted(p.name for p in run.iterdir()) == ["checkpoint-3.pt", "checkpoint.json"]


def test_sigkill_between_the_two_renames_keeps_the_previous_checkpoint(tmp_path):
    # A real process, killed by the kernel right after the new file is in place and before the switch.
    child = f"""
import os, signal, torch
from spinrl.record import checkpoint
checkpoint.save_checkpoint({str(tmp_path)!r}, {{"x": torch.tensor([1.0])}}, epoch=1)
real_replace = os.replace
def replace(src, dst):
    if str(dst).endswith("checkpoint.json"):
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)
checkpoint.os.replace = replace
checkpoint.save_checkpoint({str(tmp_path)!r}, {{"x": torch.tensor([2.0])}}, epoch=2)
"""
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert (tmp_path / "checkpoint-2.pt").exists()  # the new file was written, the switch was not
    assert load_checkpoint(tmp_path)["x"].item() == 1.0


def test_a_full_disk_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, {"x": torch.tensor([1.0])}, epoch=1)

    def disk_full(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", disk_full)
    with pytest.raises(CheckpointError, match="No space left on device.*previous checkpoint is kept"):
        save_checkpoint(tmp_path, {"x": torch.tensor([2.0])}, epoch=2)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-1.pt", "checkpoint.json"]
    assert load_checkpoint(tmp_path)["x"].item() == 1.0


def test_saving_the_same_epoch_twice_never_overwrites_the_checkpoint_in_use(tmp_path):
    save_checkpoint(tmp_path, {"x": torch.tensor([1.0])}, epoch=4)
    save_checkpoint(tmp_path, {"x": torch.tensor([2.0])}, epoch=4)
    assert load_checkpoint(tmp_path)["x"].item() == 2.0
    assert len(list(tmp_path.glob("checkpoint*.pt"))) == 1


def test_the_pointer_cannot_name_a_file_outside_the_run(tmp_path):
    save_checkpoint(tmp_path, {"x": torch.tensor([1.0])}, epoch=1)
    (tmp_path / "checkpoint.json").write_text(json.dumps({"file": "../elsewhere.pt", "sha256": "0" * 64}))
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(tmp_path)


def test_legacy_checkpoint_pt_still_loads(tmp_path):
    torch.save({"x": torch.tensor([5.0])}, tmp_path / "checkpoint.pt")
    digest = hashlib.sha256((tmp_path / "checkpoint.pt").read_bytes()).hexdigest()
    (tmp_path / "checkpoint.json").write_text(
        json.dumps({"epoch": 1, "sha256": digest, "file": "checkpoint.pt"})
    )
    assert load_checkpoint(tmp_path)["x"].item() == 5.0


def _valid_state(epoch=3):
    from spinrl.common.seeding import rng_state

    return {"ac": {}, "counters": {"epoch": epoch, "t": 300, "elapsed": 1.5}, "rng_per_rank": [rng_state()]}


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda s: s.pop("ac"), "no 'ac'"),
        (lambda s: s.update(pi_optimizer={}), "also holds 'pi_optimizer'"),
        (lambda s: s.pop("counters"), "counters are missing"),
        (lambda s: s["counters"].update(epoch=-3), "epoch is -3"),
        (lambda s: s["counters"].update(epoch="three"), "epoch is 'three'"),
        (lambda s: s["counters"].update(epoch=999), "beyond this run's epochs=6"),
        (lambda s: s["counters"].update(t=-1), "step counter"),
        (lambda s: s["counters"].update(elapsed=float("nan")), "elapsed time"),
        (lambda s: s.pop("rng_per_rank"), "random-number-generator"),
        (lambda s: s.update(rng_per_rank=[{"python": 1}]), "random-number-generator"),
    ],
)
def test_checkpoint_contents_are_checked_before_use(damage, message):
    state = _valid_state()
    check_contents(state, ["ac"], epochs=6, where="run")  # the undamaged state passes
    damage(state)
    with pytest.raises(CheckpointError, match=message):
        check_contents(state, ["ac"], epochs=6, where="run")


def test_checkpoint_cadence():
    assert [e for e in range(1, 8) if is_checkpoint_epoch(e, epochs=7, save_freq=3)] == [3, 6, 7]
    assert all(is_checkpoint_epoch(e, epochs=5, save_freq=1) for e in range(1, 6))
