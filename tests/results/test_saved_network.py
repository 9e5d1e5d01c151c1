"""spinrl.results.saved_network: a saved run's network built again, never importing what a run names."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from spinrl.common.errors import UserError
from spinrl.nets.actor_critic import MLPActorCritic
from spinrl.results.saved_network import RENAMED_CLASSES, network_class, refuse_non_finite_weights


def test_spinrl_classes_are_imported_and_renamed_ones_found():
    assert network_class("spinrl.nets.actor_critic.MLPActorCritic") is MLPActorCritic
    for old, new in RENAMED_CLASSES.items():
        assert network_class(old).__qualname__ == new.rpartition(".")[2]


def test_a_class_from_outside_spinrl_is_never_imported():
    with pytest.raises(UserError, match="not loaded here"):
        network_class("some_module_nobody_has.Net")
    assert network_class("torch.nn.Linear") is torch.nn.Linear  # already loaded: looked up only
    with pytest.raises(UserError, match="does not have"):
        network_class("spinrl.nets.actor_critic.NoSuchNet")


def test_weights_that_diverged_are_refused():
    refuse_non_finite_weights({"w": torch.ones(2)}, Path("run"))
    with pytest.raises(UserError, match=r"NaN or infinite weights \(w\)"):
        refuse_non_finite_weights({"w": torch.tensor([1.0, math.inf])}, Path("run"))
