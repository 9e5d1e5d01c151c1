"""spinrl.launch.grid_args: Spinning Up's grid syntax on the command line."""

from __future__ import annotations

import pytest

from spinrl.algos.ppo import ppo
from spinrl.common.errors import UserError
from spinrl.launch.grid_args import check_keys, parse_grid, single_value, whole_numbers_as_int


def test_values_per_key_with_shorthands_and_substitutions():
    args, shorthands = parse_grid(["--env", "CartPole-v1", "--seed", "0", "10", "--hid[h]", "[32]", "--dt"])
    assert args == {
        "env_fn": ["CartPole-v1"],
        "seed": [0, 10],
        "datestamp": [True],
        "ac_kwargs:hidden_sizes": [[32]],
    }
    assert shorthands == {"ac_kwargs:hidden_sizes": "h"}
    assert single_value(args, "datestamp", False) is True and "datestamp" not in args


def test_mistakes_are_one_line():
    with pytest.raises(UserError, match="comes before any flag"):
        parse_grid(["0.1", "--gamma"])
    with pytest.raises(UserError, match="given twice"):
        parse_grid(["--seed", "0", "--seed", "1"])
    with pytest.raises(UserError, match="did you mean --gamma"):
        check_keys("ppo", ppo, {"gama": [0.9]})


def test_whole_numbers_become_ints_where_the_default_is_one():
    args = {"epochs": [2.0], "gamma": [1.0]}
    whole_numbers_as_int(ppo, args)
    assert args == {"epochs": [2], "gamma": [1.0]}
