"""Bad input to the algorithms through the command line: one ``spinrl: error:`` line, exit code 2, no
traceback, and no run directory when the refusal comes before the run starts (issue 10)."""

from __future__ import annotations

import pytest

from spinrl.record.logger import read_progress


def _one_error_line(result) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    err = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("spinrl: error:"), err
    return err[0]


def _files_under(path) -> list:
    return sorted(p for p in path.rglob("*")) if path.exists() else []


@pytest.mark.parametrize(
    "argv, expected",
    [
        # Fewer steps than env copies: nothing to collect.
        (["sac", "--env", "Pendulum-v1", "--steps_per_epoch", "2", "--num_envs", "3"], "steps_per_epoch=2"),
        # Buffers bigger than the memory: refused by an estimate, before anything is allocated.
        (["ppo", "--env", "CartPole-v1", "--steps_per_epoch", "100000000000"], "100000000000 steps"),
        (["sac", "--env", "Pendulum-v1", "--replay_size", "1000000000000"], "replay_size=1000000000000"),
        (["td3", "--env", "Pendulum-v1", "--replay_size", "1e12"], "replay_size="),
        # Activations that cannot sit between two layers; the message offers only ones that can.
        (["ppo", "--env", "CartPole-v1", "--act", "torch.nn.Threshold"], "'torch.nn.Threshold' is not valid"),
        (["vpg", "--env", "CartPole-v1", "--act", "GLU"], "'GLU' is not valid"),
        (["sac", "--env", "Pendulum-v1", "--act", "GLU"], "'GLU' is not valid"),
        (["dqn", "--env", "CartPole-v1", "--hid", "[0]"], "hidden_sizes [0]"),
    ],
)
def test_refused_before_the_run_directory_exists(cli, tmp_path, argv, expected):
    data = tmp_path / "data"
    line = _one_error_line(cli(*argv, "--epochs", "1", "--data_dir", str(data), cwd=tmp_path))
    assert expected in line, line
    if "--act" in argv:
        offered = line.split("use one of torch.nn's ")[1].split(", ")
        assert "Tanh" in offered and "Threshold" not in offered and "GLU" not in offered
    if "memory" in line:
        assert "lower --" in line
    assert _files_under(data) == []


def test_an_epoch_that_does_not_split_evenly_runs_with_a_note(cli, tmp_path):
    data = tmp_path / "data"
    result = cli(
        "ppo", "--env", "CartPole-v1", "--num_envs", "3", "--steps_per_epoch", "100", "--epochs", "2",
        "--train_pi_iters", "1", "--train_v_iters", "1", "--exp_name", "odd", "--data_dir", str(data),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    note = (
        "note: steps_per_epoch=100 is not a multiple of 3 env copies x 1 rank(s): each epoch takes 99 steps"
    )
    assert result.stdout.count(note) == 1, result.stdout
    rows = read_progress(data / "odd" / "odd_s0" / "progress.txt")
    assert [int(t) for t in rows["TotalEnvInteracts"]] == [99, 198]


def _train(algo: str, run_dir, **kwargs) -> None:
    import spinrl

    getattr(spinrl, algo)(
        "CartPole-v1", steps_per_epoch=100, epochs=2, logger_kwargs=dict(output_dir=str(run_dir), quiet=True),
        **kwargs,
    )  # fmt: skip


def _resume_with(cli, tmp_path, algo: str, run_dir, *extra: str):
    """``spinrl ALGO --resume`` on ``run_dir`` (data/NAME/NAME_s0), its config.json removed first so that
    only the checkpoint's contents can tell the algorithms apart."""
    (run_dir / "config.json").unlink()
    progress_before = (run_dir / "progress.txt").read_bytes()
    name = run_dir.parent.name
    result = cli(
        algo, "--env", "CartPole-v1", "--steps_per_epoch", "100", "--epochs", "3", "--exp_name", name,
        "--data_dir", str(run_dir.parent.parent), "--resume", *extra, cwd=tmp_path,
    )  # fmt: skip
    line = _one_error_line(result)
    assert (run_dir / "progress.txt").read_bytes() == progress_before
    return line


def test_resume_with_a_checkpoint_that_lacks_what_the_algorithm_restores(cli, tmp_path):
    run_dir = tmp_path / "data" / "trpo_run" / "trpo_run_s0"
    _train("trpo", run_dir)
    line = _resume_with(cli, tmp_path, "ppo", run_dir)  # PPO also restores a policy optimiser
    assert "'pi_optimizer'" in line and "another algorithm" in line


def test_resume_with_a_checkpoint_whose_networks_do_not_fit(cli, tmp_path):
    run_dir = tmp_path / "data" / "small" / "small_s0"
    _train("ppo", run_dir, ac_kwargs=dict(hidden_sizes=(8,)))
    line = _resume_with(cli, tmp_path, "ppo", run_dir)
    # The checkpoint carries the run's settings (issue 18): the change of network is named before any
    # weight is loaded, config.json or not.
    assert "--resume would change ac_kwargs" in line and '"hidden_sizes": [8]' in line


def test_trpo_resume_on_a_ppo_checkpoint_is_one_line(cli, tmp_path):
    run_dir = tmp_path / "data" / "ppo_run" / "ppo_run_s0"
    _train("ppo", run_dir, train_pi_iters=1, train_v_iters=1)
    line = _resume_with(cli, tmp_path, "trpo", run_dir)
    assert "another algorithm" in line
