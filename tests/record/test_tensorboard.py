"""spinrl.record.tensorboard: each row's numeric columns as scalars at the row's step."""

from __future__ import annotations

import math

import pytest

from spinrl.record.tensorboard import TensorBoardWriter

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def test_numeric_columns_are_written_at_total_env_interacts(tmp_path):
    tb = TensorBoardWriter(tmp_path)
    tb.write({"Epoch": 0, "TotalEnvInteracts": 100, "Loss": 0.5, "Name": "x", "Bad": math.nan})
    tb.write({"Epoch": 1, "TotalEnvInteracts": 200, "Loss": 0.25, "Name": "x", "Bad": 1.0})
    tb.close()
    events = event_accumulator.EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["Bad", "Loss"]
    assert [(e.step, e.value) for e in events.Scalars("Loss")] == [(100, 0.5), (200, 0.25)]
    assert [e.step for e in events.Scalars("Bad")] == [200]  # NaN is left out


def test_disabled_writes_nothing(tmp_path):
    tb = TensorBoardWriter(tmp_path, enabled=False)
    tb.write({"Epoch": 0, "Loss": 1.0})
    tb.close()
    assert not (tmp_path / "tb").exists()
