"""spinrl.tune.running: the helpers a search runs its trials with."""

from __future__ import annotations

from spinrl.algos.ppo import ppo
from spinrl.tune.running import default_value, load_algorithm, nested


def test_keys_with_colons_become_nested_arguments():
    assert nested({"ac_kwargs:hidden_sizes": [8], "gamma": 0.9}) == {
        "ac_kwargs": {"hidden_sizes": [8]},
        "gamma": 0.9,
    }


def test_the_algorithm_and_its_defaults():
    assert load_algorithm("spinrl.algos.ppo:ppo") is ppo
    assert default_value(ppo, "epochs") == 50
