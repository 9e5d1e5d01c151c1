"""Presets (``--preset NAME``): shipped tuned settings per environment, resolved into ordinary arguments.

Most tests point :data:`spinrl.presets.PRESET_DIR` at a small preset file of their own for CartPole-v1
and Acrobot-v1, so that the runs take a second; the shipped files are checked against the algorithms'
real signatures.
"""

from __future__ import annotations

import inspect
import json

import pytest

import spinrl.presets as presets
from spinrl.algos.ppo import ppo
from spinrl.cli import ALGORITHMS, _load, algorithm_help, main
from spinrl.common.errors import UserError, run_main_guarded
from spinrl.launch.grid import ExperimentGrid

# Small, fast PPO settings; lam and gamma tell the entries (and the defaults, 0.97 and 0.99) apart.
TEST_PRESETS = """
[tiny."CartPole-v1"]
steps_per_epoch = 200
train_pi_iters = 2
train_v_iters = 2
lam = 0.9
gamma = 0.95
pi_lr = 1e-3
target_kl = "None"
ac_kwargs = { hidden_sizes = [8] }

[tiny."Acrobot-v1"]
steps_per_epoch = 200
train_pi_iters = 2
train_v_iters = 2
lam = 0.8
ac_kwargs = { hidden_sizes = [8] }
"""
# What a run needs to be fast where the preset has no entry (the defaults are 4000 steps, 80 iterations).
FAST = ["--steps_per_epoch", "200", "--train_pi_iters", "2", "--train_v_iters", "2", "--epochs", "1"]


@pytest.fixture
def preset_dir(tmp_path, monkeypatch):
    """A preset folder of the test's own, with ppo.toml holding TEST_PRESETS."""
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "ppo.toml").write_text(TEST_PRESETS)
    monkeypatch.setattr(presets, "PRESET_DIR", folder)
    return folder


def config_of(tmp_data, exp_name: str, seed: int = 0) -> dict:
    return json.loads((tmp_data / "data" / exp_name / f"{exp_name}_s{seed}" / "config.json").read_text())


def one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("spinrl: error:"), err
    return err[0]


# ----- the files -----------------------------------------------------------------------------------------
def test_shipped_presets_load_and_every_entry_fits_its_algorithm():
    shipped = presets.available_presets()
    assert "ppo" in shipped
    tuned = presets.load_presets("ppo")["tuned"]
    assert set(tuned) >= {"Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "Ant-v5"}
    for algo in shipped:
        fn = _load(ALGORITHMS[algo])
        for name, envs in presets.load_presets(algo).items():
            for env_id, entry in envs.items():
                presets.check_settings(fn, algo, name, env_id, presets.flat_settings(entry))


def test_nones_inside_tables_and_arrays(preset_dir):
    (preset_dir / "ppo.toml").write_text('[p."E-v0"]\ntarget_kl = "None"\nac_kwargs = { a = ["None", 1] }\n')
    assert presets.load_presets("ppo") == {"p": {"E-v0": {"target_kl": None, "ac_kwargs": {"a": [None, 1]}}}}


def test_help_lists_the_presets_and_the_environments_they_cover(preset_dir):
    text = algorithm_help("ppo", ppo)
    assert "--preset" in text and "tiny: CartPole-v1, Acrobot-v1" in text


# ----- refusals ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "file_text, argv, expected",
    [
        (TEST_PRESETS, ["ppo", "--preset", "tiyn"], "unknown preset 'tiyn' for ppo; valid: tiny"),
        (
            TEST_PRESETS,
            ["vpg", "--preset", "tiny"],
            "spinrl has no presets for vpg; algorithms with presets: ppo",
        ),
        (
            '[tiny."CartPole-v1"]\npi_rl = 1e-3\n',
            ["ppo", "--preset", "tiny"],
            "preset tiny for CartPole-v1 sets 'pi_rl', which ppo does not have; did you mean pi_lr? valid: ",
        ),
        (
            '[tiny."CartPole-v1"]\nseed = 3\n',
            ["ppo", "--preset", "tiny"],
            "sets 'seed', which ppo does not have",
        ),
        (
            '[tiny."CartPole-v1"]\nac_kwargs = { hiden = [8] }\n',
            ["ppo", "--preset", "tiny"],
            "sets ac_kwargs 'hiden', which MLPActorCritic does not take; valid: hidden_sizes",
        ),
        ('[tiny."CartPole-v1"\n', ["ppo", "--preset", "tiny"], "cannot be read"),
        (
            "[tiny]\nlam = 0.9\n",
            ["ppo", "--preset", "tiny"],
            "malformed: [tiny] must hold one table per environment",
        ),
    ],
)
def test_bad_presets_give_one_line_exit_2_and_write_nothing(
    tmp_data, preset_dir, capsys, file_text, argv, expected
):
    (preset_dir / "ppo.toml").write_text(file_text)
    assert run_main_guarded(main, [*argv, "--env", "CartPole-v1", "--epochs", "1"]) == 2
    assert expected in one_error_line(capsys)
    assert not (tmp_data / "data").exists()


def test_an_entry_is_checked_before_any_variant_of_a_grid_runs(tmp_data, preset_dir, capsys):
    (preset_dir / "ppo.toml").write_text(TEST_PRESETS + "bad_key = 1\n")  # in the Acrobot-v1 entry
    argv = ["ppo", "--preset", "tiny", "--env", "CartPole-v1", "Acrobot-v1", *FAST]
    assert run_main_guarded(main, argv) == 2
    assert "preset tiny for Acrobot-v1 sets 'bad_key'" in one_error_line(capsys)
    assert not (tmp_data / "data").exists()  # CartPole-v1, first in the grid, did not start


# ----- runs ----------------------------------------------------------------------------------------------
def test_flags_given_win_and_config_records_the_preset_and_its_values(tmp_data, preset_dir, capsys):
    argv = ["ppo", "--env", "CartPole-v1", "--preset", "tiny", "--pi_lr", "1e-4", "--hid", "[4]"]
    assert run_main_guarded(main, [*argv, "--epochs", "1", "--exp_name", "p"]) == 0
    out = capsys.readouterr().out
    assert "preset tiny for CartPole-v1: steps_per_epoch=200, train_pi_iters=2" in out
    assert "your flags replace pi_lr, ac_kwargs:hidden_sizes" in out.replace("\n    ", " ")
    config = config_of(tmp_data, "p")
    assert config["preset"] == "tiny"
    assert config["pi_lr"] == 1e-4  # the flag, not the preset's 1e-3
    assert config["ac_kwargs"] == {"hidden_sizes": [4]}
    assert (config["steps_per_epoch"], config["lam"], config["gamma"]) == (200, 0.9, 0.95)
    assert config["target_kl"] is None
    assert config["vf_lr"] == inspect.signature(ppo).parameters["vf_lr"].default  # not in the preset


def test_a_whole_keyword_table_replaces_the_presets_entries_in_it(tmp_data, preset_dir):
    argv = ["ppo", "--env", "CartPole-v1", "--preset", "tiny", "--ac_kwargs", "{'hidden_sizes': [6]}"]
    assert run_main_guarded(main, [*argv, "--epochs", "1", "--exp_name", "p"]) == 0
    assert config_of(tmp_data, "p")["ac_kwargs"] == {"hidden_sizes": [6]}


def test_each_environment_of_a_grid_gets_its_own_entry_and_a_missing_one_keeps_the_defaults(
    tmp_data, preset_dir, capsys
):
    argv = [
        "ppo",
        "--preset",
        "tiny",
        "--env",
        "CartPole-v1",
        "Acrobot-v1",
        "MountainCar-v0",
        "--seed",
        "0",
        "1",
    ]
    assert run_main_guarded(main, [*argv, *FAST, "--exp_name", "g"]) == 0
    out = capsys.readouterr().out
    assert out.count("preset tiny for CartPole-v1:") == 1  # once, not once per seed
    assert out.count("preset tiny for Acrobot-v1:") == 1
    assert out.count("preset tiny has no entry for MountainCar-v0; using the defaults") == 1
    defaults = inspect.signature(ppo).parameters
    for seed in (0, 1):
        cartpole = config_of(tmp_data, "g_cartpole-v1", seed)
        acrobot = config_of(tmp_data, "g_acrobot-v1", seed)
        mountaincar = config_of(tmp_data, "g_mountaincar-v0", seed)
        assert (cartpole["lam"], cartpole["gamma"], cartpole["preset"]) == (0.9, 0.95, "tiny")
        assert (acrobot["lam"], acrobot["gamma"], acrobot["preset"]) == (
            0.8,
            defaults["gamma"].default,
            "tiny",
        )
        assert mountaincar["lam"] == defaults["lam"].default and "preset" not in mountaincar
        assert mountaincar["ac_kwargs"] == {}


def test_the_resolved_values_travel_in_the_run_spec(preset_dir, tmp_path, capsys):
    # What an MPI rank, a parallel child or a Ray task receives: ordinary arguments and the preset's name.
    eg = ExperimentGrid("s")
    eg.add("env_fn", ["CartPole-v1"])
    eg.add("pi_lr", [1e-4])
    run = eg._plan_run(eg.variants()[0], ppo, 1, str(tmp_path), False, "", "tiny", set())
    kwargs = run.spec()["kwargs"]
    assert (kwargs["steps_per_epoch"], kwargs["lam"], kwargs["pi_lr"]) == (200, 0.9, 1e-4)
    assert kwargs["ac_kwargs"] == {"hidden_sizes": [8]} and kwargs["logger_kwargs"]["preset"] == "tiny"


def test_resume_with_the_same_preset_is_the_same_run_and_without_it_is_refused(tmp_data, preset_dir, capsys):
    argv = ["ppo", "--env", "CartPole-v1", "--preset", "tiny", "--exp_name", "r"]
    assert run_main_guarded(main, [*argv, "--epochs", "1"]) == 0
    assert run_main_guarded(main, [*argv, "--epochs", "2", "--resume"]) == 0
    assert "extend r seed 0: finished after 1 epochs, continuing to 2" in capsys.readouterr().out
    config = config_of(tmp_data, "r")
    assert (config["epochs"], config["preset"], config["lam"]) == (2, "tiny", 0.9)
    assert len((tmp_data / "data/r/r_s0/progress.txt").read_text().splitlines()) == 3  # header + 2 epochs

    # Without --preset the values differ: refused, with the likely cause, and nothing changes.
    before = (tmp_data / "data/r/r_s0/config.json").read_text()
    plain = ["ppo", "--env", "CartPole-v1", "--exp_name", "r", "--epochs", "3", "--resume"]
    assert run_main_guarded(main, plain) == 2
    line = one_error_line(capsys)
    assert "--resume would change" in line and "lam from 0.9 to 0.97" in line
    assert "(it was started with --preset tiny)" in line
    assert (tmp_data / "data/r/r_s0/config.json").read_text() == before


def test_the_logger_check_accepts_the_same_values_under_the_preset_key(tmp_data, preset_dir):
    # From Python, without the grid's check first: the logger's own same-run check sees "preset" too.
    argv = ["ppo", "--env", "CartPole-v1", "--preset", "tiny", "--exp_name", "py", "--epochs", "1"]
    assert run_main_guarded(main, argv) == 0
    config = config_of(tmp_data, "py")
    out = str(tmp_data / "data/py/py_s0")
    kwargs = {
        k: config[k] for k in ("steps_per_epoch", "train_pi_iters", "train_v_iters", "lam", "gamma", "pi_lr")
    }
    ppo(
        "CartPole-v1",
        ac_kwargs={"hidden_sizes": [8]},
        target_kl=None,
        epochs=2,
        resume=True,
        logger_kwargs={"output_dir": out, "exp_name": "py", "preset": "tiny"},
        **kwargs,
    )
    assert config_of(tmp_data, "py")["epochs"] == 2
    with pytest.raises(UserError, match=r"lam from 0\.9 to 0\.5 .*\(it was started with --preset tiny\)"):
        ppo(
            "CartPole-v1",
            ac_kwargs={"hidden_sizes": [8]},
            target_kl=None,
            epochs=3,
            resume=True,
            logger_kwargs={"output_dir": out, "exp_name": "py"},
            **dict(kwargs, lam=0.5),
        )


def test_a_td3_preset_sizes_the_networks_and_the_minibatches_of_a_real_run(tmp_data, preset_dir, capsys):
    """TOML arrays reach an off-policy actor-critic as hidden sizes, and the saved policy has them."""
    from spinrl.results.policy import load_saved

    (preset_dir / "td3.toml").write_text(
        '[small."Pendulum-v1"]\nbatch_size = 32\nac_kwargs = { hidden_sizes = [40, 30] }\n'
    )
    short = ["--epochs", "1", "--steps_per_epoch", "120", "--start_steps", "60", "--update_after", "60"]
    argv = ["td3", "--env", "Pendulum-v1", "--preset", "small", *short, "--num_test_episodes", "1"]
    assert run_main_guarded(main, [*argv, "--max_ep_len", "30", "--exp_name", "t"]) == 0
    out = capsys.readouterr().out.replace("\n    ", " ")
    assert "preset small for Pendulum-v1: batch_size=32, ac_kwargs:hidden_sizes=[40, 30]" in out
    config = config_of(tmp_data, "t")
    assert (config["preset"], config["batch_size"]) == ("small", 32)
    assert config["ac_kwargs"] == {"hidden_sizes": [40, 30]}
    weights = load_saved(tmp_data / "data" / "t" / "t_s0", "last", "cpu")["ac"]
    layer_shapes = sorted(tuple(w.shape) for name, w in weights.items() if name.endswith("weight"))
    # Pendulum: 3 observations, 1 action; the twin critics are held as one batched network of 2.
    actor, critics = [(40, 3), (30, 40), (1, 30)], [(2, 4, 40), (2, 40, 30), (2, 30, 1)]
    assert layer_shapes == sorted(actor + critics)


def test_the_shipped_ant_entry_observes_joints_only_and_the_saved_policy_keeps_that(tmp_data, capsys):
    """Ant-v5's tuned entry drops the 78 contact forces; test_policy's loader rebuilds the same env."""
    from spinrl.results.policy import load_policy

    short = ["--epochs", "1", "--steps_per_epoch", "64", "--num_envs", "2", "--minibatch_size", "32"]
    assert (
        run_main_guarded(main, ["ppo", "--env", "Ant-v5", "--preset", "tuned", *short, "--exp_name", "a"])
        == 0
    )
    assert config_of(tmp_data, "a")["env_kwargs"] == {"include_cfrc_ext_in_observation": False}
    assert config_of(tmp_data, "a")["ac_kwargs"] == {"ortho_init": True, "log_std_init": -1}
    env, get_action, _ = load_policy(tmp_data / "data" / "a" / "a_s0")
    try:
        assert env.observation_space.shape == (27,)
        obs, _ = env.reset(seed=0)
        assert env.action_space.contains(get_action(obs))
    finally:
        env.close()


def test_the_shipped_halfcheetah_entry_builds_rl_zoos_networks_in_a_real_run(tmp_data, capsys):
    """HalfCheetah-v5's tuned entry is RL Zoo's: 256x256 ReLU networks, log_std -2, one env copy, 512 steps."""
    from spinrl.record.checkpoint import load_checkpoint

    short = ["--epochs", "1", "--steps_per_epoch", "128"]
    argv = ["ppo", "--env", "HalfCheetah-v5", "--preset", "tuned", *short, "--exp_name", "hc"]
    assert run_main_guarded(main, argv) == 0
    config = config_of(tmp_data, "hc")
    assert config["ac_kwargs"] == {"hidden_sizes": [256, 256], "activation": "ReLU", "log_std_init": -2}
    assert (config["num_envs"], config["minibatch_size"], config["gamma"], config["reward_norm"]) == (
        1,
        64,
        0.98,
        True,
    )
    weights = load_checkpoint(tmp_data / "data" / "hc" / "hc_s0")["ac"]
    assert weights["pi.mu_net.0.weight"].shape == (256, 17)  # HalfCheetah observes 17 values, acts with 6
    assert weights["pi.mu_net.4.weight"].shape == (6, 256)
    # The policy's spread starts at exp(-2) and one short epoch at a tiny rate leaves it close to that.
    assert weights["pi.log_std"].sub(-2).abs().max() < 0.01
