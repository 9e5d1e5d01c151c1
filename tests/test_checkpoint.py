import os
import pickle
from pathlib import Path

import pytest
import torch

from spinrl.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from spinrl.rng import rng_state, set_rng_state


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
    save_checkpoint(tmp_path, {"x": torch.tensor([1.0])}, epoch=1)
    # An attacker replaces the file with a pickle that would run code, and fixes up the checksum.
    with open(tmp_path / "checkpoint.pt", "wb") as f:
        pickle.dump({"x": _Payload()}, f)
    (tmp_path / "checkpoint.json").unlink()
    with pytest.raises(CheckpointError, match="refused|cannot be read"):
        load_checkpoint(tmp_path)
    assert not marker.exists()


def test_truncated_checkpoint_gives_clear_error(tmp_path):
    save_checkpoint(tmp_path, {"x": torch.zeros(1000)}, epoch=1)
    data = (tmp_path / "checkpoint.pt").read_bytes()
    (tmp_path / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(tmp_path)
    (tmp_path / "checkpoint.json").unlink()  # without the checksum, the reader still fails cleanly
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(tmp_path)


def test_missing_run_dir_and_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path)
