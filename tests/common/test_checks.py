"""The checks that stop a run before it starts, with one line naming the value."""

from __future__ import annotations

import math

import pytest

from spinrl.common import checks
from spinrl.common.checks import check_finite, check_fits_in_memory, check_hyperparameters
from spinrl.common.errors import UserError


@pytest.mark.parametrize(
    "values, message",
    [
        (dict(epochs=2.0), r"epochs=2\.0 is not valid: it must be a whole number, e.g. 2"),
        (dict(epochs=2.5), r"epochs=2\.5 is not valid: it must be a whole number$"),
        (dict(epochs=True), "epochs=True"),
        (dict(steps_per_epoch=0), "steps_per_epoch=0 is not valid: it must be >= 1"),
        (dict(start_steps=-1), ">= 0"),
        (dict(seed=99999999999999999999), "seed=99999999999999999999 is not valid: it must be between 0 and"),
        (dict(gamma=1.5), r"gamma=1\.5 is not valid: it must be in \(0, 1\]"),
        (dict(pi_lr=math.nan), "pi_lr=nan"),
        (dict(clip_ratio="big"), "clip_ratio='big' is not valid: it must be a number > 0"),
    ],
)
def test_bad_hyperparameters_are_one_line(values, message):
    with pytest.raises(UserError, match=message):
        check_hyperparameters(values)


def test_good_hyperparameters_pass():
    check_hyperparameters(dict(epochs=3, seed=checks.MAX_SEED, gamma=1.0, start_steps=0, other="anything"))


def test_non_finite_loss_stops_the_run():
    check_finite(3, LossPi=0.5)
    with pytest.raises(checks.TrainingDiverged, match="LossV became inf in epoch 3"):
        check_finite(3, LossPi=0.5, LossV=math.inf)


def test_a_buffer_larger_than_memory_is_refused_before_allocating(monkeypatch):
    monkeypatch.setattr(checks, "available_memory", lambda: 2 * 10**9)
    check_fits_in_memory(10**9, "the buffer", "steps_per_epoch")
    with pytest.raises(
        UserError, match=r"the buffer would need 3\.0 GB, but only 2\.0 GB .* lower steps_per_epoch"
    ):
        check_fits_in_memory(3 * 10**9, "the buffer", "steps_per_epoch")
    monkeypatch.undo()
    assert 10**8 < checks.available_memory() < 10**14
