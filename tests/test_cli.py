"""The command line: grid parsing, safe values, derived help, and one-line errors with exit code 2."""

import json

import pytest

from spinrl.algos.ppo import ppo
from spinrl.cli import (
    algorithm_help,
    main,
    parse_docstring_args,
    parse_grid_args,
    parse_value,
    run_main_guarded,
)
from spinrl.common.errors import UserError


def test_grid_syntax_and_shorthands():
    args = parse_grid_args(
        [
            "--env",
            "CartPole-v1",
            "--seed",
            "0",
            "10",
            "20",
            "--hid",
            "[64,64]",
            "[32]",
            "--act",
            "torch.nn.Tanh",
            "--dt",
        ]
    )
    assert args == {
        "env_fn": ["CartPole-v1"],
        "seed": [0, 10, 20],
        "ac_kwargs:hidden_sizes": [[64, 64], [32]],
        "ac_kwargs:activation": ["torch.nn.Tanh"],
        "datestamp": [True],
    }


def test_equals_form_and_values_that_look_like_flags():
    args = parse_grid_args(["--env=CartPole-v1", "--mpi_args", "--hostfile hosts.txt", "--epochs=3"])
    assert args == {"env_fn": ["CartPole-v1"], "mpi_args": ["--hostfile hosts.txt"], "epochs": [3]}


def test_values_are_literals_never_evaluated(tmp_path):
    marker = tmp_path / "pwned"
    text = f"__import__('pathlib').Path('{marker}').touch()"
    assert parse_value(text) == text  # kept as a plain string
    assert not marker.exists()
    assert parse_value("1e-3") == 1e-3 and parse_value("(64, 64)") == (64, 64) and parse_value("abc") == "abc"


def test_help_lists_every_hyperparameter_from_the_docstring():
    text = algorithm_help("ppo", ppo)
    descriptions = parse_docstring_args(ppo)
    for name in ("clip_ratio", "target_kl", "train_pi_iters", "lam", "num_envs", "device", "resume"):
        assert f"--{name} (default:" in text
        assert descriptions[name].split()[0] in text
    assert "(default: 0.2)" in text and "clipping in the policy objective" in text


def test_main_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("vpg", "trpo", "ppo", "test_policy"):
        assert name in out


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["ppo", "--env", "CartPol-v1"], "did you mean CartPole-v1"),
        (["pppo", "--env", "CartPole-v1"], "did you mean 'ppo'"),
        (["ppo", "--env", "CartPole-v1", "--clip_rato", "0.1"], "did you mean --clip_ratio"),
        (["ppo", "--env", "CartPole-v1", "--epochs", "0"], "epochs=0"),
        (["ppo", "--env", "CartPole-v1", "--gamma", "1.5"], "gamma=1.5"),
        (["ppo", "--env", "CartPole-v1", "--epochs", "ten"], "epochs='ten'"),
        (["ppo", "--env", "CartPole-v1", "--act", "os.system"], "activation 'os.system' is not valid"),
        (["ppo", "--env", "CartPole-v1", "--hid", "[0]"], "hidden_sizes"),
        (["ppo", "--env", "CartPole-v1", "--device", "tpu"], "--device 'tpu'"),
        (["ppo", "--epochs", "1"], "needs an environment"),
        (["test_policy", "does/not/exist"], "does not exist"),
        (["trpo", "--env", "CartPole-v1", "--algo", "sgd"], "algo='sgd'"),
        (["sac", "--env", "Pendulum-v1", "--cpu", "2"], "sac runs in one process"),
        (["ppo", "--env", "CartPole-v1", "--actor_critic", "os.system"], "--actor_critic cannot be set"),
        (["ppo", "--env", "CartPole-v1", "--ac_kwargs", "5"], "--ac_kwargs 5 is not valid"),
        (["ppo", "--env", "CartPole-v1", "--ac_kwargs:hiden_sizes", "[8]"], "did you mean hidden_sizes"),
        (["ppo", "--env", "CartPole-v1", "--data_dir", "/proc/nope", "--epochs", "1"], "/proc/nope"),
        (["ppo", "--env", "CartPole-v1", "--device", "5"], "--device '5'"),
        (["ppo", "--env", "CartPole-v1", "--steps_per_epoch", "10", "--num_envs", "100"], "too small"),
        (["ppo", "--env", "CartPole-v1", "--seed", "99999999999999999999"], "seed=99999999999999999999"),
        (["ppo", "--env", "CartPole-v1", "--epochs", "2.5"], "epochs=2.5 is not valid"),
        (["ppo", "--env", "CartPole-v1", "--exp_name", "../../escaped"], "--exp_name '../../escaped'"),
        (["ppo", "--env", "CartPole-v1", "--cpu", "999"], "--cpu 999 is more than"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(tmp_data, capsys, argv, expected):
    # In-process through the same guard the console script uses (a subprocess per case is slow).
    assert run_main_guarded(main, argv) == 2
    err = capsys.readouterr().err
    err_lines = [line for line in err.splitlines() if line.strip()]
    assert len(err_lines) == 1 and err_lines[0].startswith("spinrl: error:"), err
    assert expected in err_lines[0]


def test_console_script_error_has_no_traceback(tmp_data, cli):
    proc = cli("ppo", "--env", "CartPol-v1", cwd=tmp_data)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spinrl: error: unknown environment id 'CartPol-v1'")
    assert "CartPole-v1" in lines[0]


def test_cuda_without_gpu_is_one_clear_line(tmp_data, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present here")
    assert run_main_guarded(main, ["ppo", "--env", "CartPole-v1", "--device", "cuda", "--epochs", "1"]) == 2
    assert "no CUDA GPU is available" in capsys.readouterr().err


def test_unsupported_observation_space_is_refused():
    import gymnasium as gym

    def dict_env():
        env = gym.make("CartPole-v1")
        return gym.wrappers.TransformObservation(
            env, lambda o: {"x": o}, gym.spaces.Dict({"x": env.observation_space})
        )

    with pytest.raises(UserError, match="observation space Dict"):
        ppo(dict_env, epochs=1, logger_kwargs=dict(output_dir="/tmp/spinrl-never-written"))


def test_grid_runs_every_combination_with_spinning_up_names(tmp_data, cli):
    proc = cli(
        "ppo",
        "--env",
        "CartPole-v1",
        "--seed",
        "0",
        "10",
        "--hid",
        "[8]",
        "[16]",
        "--steps_per_epoch",
        "200",
        "--epochs",
        "1",
        "--exp_name",
        "cp",
        cwd=tmp_data,
    )
    assert proc.returncode == 0, proc.stderr
    runs = sorted(p.relative_to(tmp_data / "data").as_posix() for p in (tmp_data / "data").glob("*/*"))
    assert runs == [
        "cp_hid16/cp_hid16_s0",
        "cp_hid16/cp_hid16_s10",
        "cp_hid8/cp_hid8_s0",
        "cp_hid8/cp_hid8_s10",
    ]
    config = json.loads((tmp_data / "data/cp_hid8/cp_hid8_s10/config.json").read_text())
    assert config["seed"] == 10 and config["ac_kwargs"]["hidden_sizes"] == [8] and config["algo"] == "ppo"
    assert config["env_name"] == "CartPole-v1"


def test_existing_run_refused_and_kept(tmp_data, cli):
    args = ("vpg", "--env", "CartPole-v1", "--steps_per_epoch", "100", "--epochs", "1", "--exp_name", "x")
    assert cli(*args, cwd=tmp_data).returncode == 0
    progress = tmp_data / "data/x/x_s0/progress.txt"
    before = progress.read_text()
    proc = cli(*args, cwd=tmp_data)
    assert proc.returncode == 2 and "--resume" in proc.stderr and "--exp_name" in proc.stderr
    assert progress.read_text() == before


def test_run_as_script_is_the_algorithm_command(monkeypatch, capsys):
    # What an algorithm file's `if __name__ == "__main__":` block does: its own argv, its name first.
    from spinrl.cli import run_as_script

    monkeypatch.setattr("sys.argv", ["spinrl/algos/ppo.py", "--help"])
    with pytest.raises(SystemExit) as done:
        run_as_script("ppo")
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("usage: spinrl ppo")
    monkeypatch.setattr("sys.argv", ["spinrl/algos/ppo.py", "--env", "CartPol-v1"])
    with pytest.raises(SystemExit) as done:
        run_as_script("ppo")
    assert done.value.code == 2 and "did you mean CartPole-v1" in capsys.readouterr().err


def test_an_existing_run_is_one_line(tmp_data, capsys):
    from spinrl.record.folder import RunExistsError

    def refuse():
        raise RunExistsError("data/x/x_s0 already holds a run; continue it with --resume")

    assert run_main_guarded(refuse) == 2
    assert (
        capsys.readouterr().err
        == "spinrl: error: data/x/x_s0 already holds a run; continue it with --resume\n"
    )


def test_shorthand_in_brackets_names_runs_as_in_spinning_up():
    """``--hid[h]`` is a flag with the run-name shorthand ``h`` (it used to become two more values of
    the flag before it), and keys join run names in the order Spinning Up's parser leaves them."""
    from spinrl.cli import DEFAULT_SHORTHANDS, parse_grid
    from spinrl.launch.grid import ExperimentGrid

    tokens = (
        "--exp_name ppo_ant --env Ant-v5 --clip_ratio 0.1 0.2 --hid[h] [32,32] [64,32] --act torch.nn.Tanh"
    )
    args, shorthands = parse_grid([*tokens.split(), "--seed", "0", "10", "20", "--dt"])
    assert args["clip_ratio"] == [0.1, 0.2] and args["ac_kwargs:hidden_sizes"] == [[32, 32], [64, 32]]
    assert shorthands == {"ac_kwargs:hidden_sizes": "h"}
    # Spinning Up moves a key to the end when it strips [short], and again when it expands --env, --hid,
    # --act, --cpu or --dt (in that order).
    assert list(args) == [
        "exp_name",
        "clip_ratio",
        "seed",
        "env_fn",
        "ac_kwargs:hidden_sizes",
        "ac_kwargs:activation",
        "datestamp",
    ]
    eg = ExperimentGrid("ppo_ant")
    for key in ("clip_ratio", "seed", "env_fn", "ac_kwargs:hidden_sizes", "ac_kwargs:activation"):
        eg.add(key, args[key], shorthands.get(key, DEFAULT_SHORTHANDS.get(key)))
    names = sorted({eg.variant_name(v) for v in eg.variants()})
    assert names[0] == "ppo_ant_cli0-1_h32-32"  # the run name in Spinning Up's quickstart
    assert len(names) == 4
    # Written first, --hid[h] still names runs after --clip_ratio, as Spinning Up does.
    args, _ = parse_grid(["--hid[h]", "[8]", "[16]", "--clip_ratio", "0.1", "0.2"])
    assert list(args) == ["clip_ratio", "ac_kwargs:hidden_sizes"]
    assert parse_grid(["--epochs[ep]=3"]) == ({"epochs": [3]}, {"epochs": "ep"})
    assert parse_grid(["--hid[]", "[8]"])[1] == {"ac_kwargs:hidden_sizes": ""}  # the bare value


def test_shorthand_runs_from_the_command_line(tmp_data, capsys):
    argv = ["ppo_pytorch", "--env", "CartPole-v1", "--hid[h]", "[8]", "[4,4]", "--steps_per_epoch", "100"]
    argv += ["--epochs", "1", "--train_pi_iters", "1", "--train_v_iters", "1", "--exp_name", "sh"]
    assert run_main_guarded(main, argv) == 0
    runs = sorted(p.relative_to(tmp_data / "data").as_posix() for p in (tmp_data / "data").glob("*/*"))
    assert runs == ["sh_h4-4/sh_h4-4_s0", "sh_h8/sh_h8_s0"]
    assert json.loads((tmp_data / "data/sh_h4-4/sh_h4-4_s0/config.json").read_text())["algo"] == "ppo"


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["ppo_tf1", "--env", "CartPole-v1"], "ppo_tf1: spinrl has no TensorFlow versions; use ppo"),
        (["sac_tf1", "--help"], "use sac (or sac_pytorch)"),
        (["ppo", "--env", "CartPole-v1", "--hid[h]x", "[8]"], "'--hid[h]x' is not a valid flag"),
        (["ppo", "--env", "CartPole-v1", "--hid[h!]", "[8]", "[9]"], "shorthand 'h!'"),
        (["ppo", "--env", "CartPole-v1", "--hid[h]", "[8]", "--hid", "[9]"], "--hid was given twice"),
    ],
)
def test_spinning_up_names_and_shorthand_mistakes_are_one_line(tmp_data, capsys, argv, expected):
    assert run_main_guarded(main, argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("spinrl: error:") and expected in err[0], err


def test_pytorch_names_are_aliases(capsys):
    import spinrl

    assert run_main_guarded(main, ["td3_pytorch", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: spinrl td3")
    assert spinrl.ppo_pytorch is spinrl.ppo is ppo
    from spinrl import EpochLogger, Logger, sac_pytorch  # noqa: F401

    assert issubclass(EpochLogger, Logger) and sac_pytorch.__name__ == "sac"
    with pytest.raises(AttributeError, match="no TensorFlow versions: use vpg"):
        spinrl.vpg_tf1  # noqa: B018
