"""spinrl.record.saved_policy: what a hand-written loop saves, and how it is numbered."""

from __future__ import annotations

import pytest
import torch

from spinrl.common.errors import UserError
from spinrl.record.checkpoint import load_checkpoint
from spinrl.record.saved_policy import PolicySaver, saveable


def test_saves_are_numbered_and_snapshots_kept_apart(tmp_path):
    saver = PolicySaver(tmp_path)
    saver.setup(torch.nn.Linear(2, 1))
    saver.save({"step": 1})
    saver.save({"step": 2})
    saver.save({"step": 3}, itr=7)
    state = load_checkpoint(tmp_path)
    assert state["state"]["step"] == 2 and state["module"]["class"] == "torch.nn.modules.linear.Linear"
    assert load_checkpoint(tmp_path / "snapshots" / "7")["state"]["step"] == 3
    assert [p.name for p in tmp_path.glob("checkpoint-*.pt")] == ["checkpoint-2.pt"]


def test_only_a_network_can_be_set_up_and_only_plain_values_saved(tmp_path):
    with pytest.raises(UserError, match="needs a torch.nn.Module"):
        PolicySaver(tmp_path).setup(object())
    with pytest.raises(TypeError):
        saveable(object())
