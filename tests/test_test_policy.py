"""Watching a trained policy: returns, and videos that really play, for CartPole and MuJoCo."""

import json
import math
import os
from pathlib import Path

import pytest

from spinrl.algos.ppo import ppo
from spinrl.cli import main
from spinrl.errors import run_main_guarded


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "cp_s0"
    ppo(
        "CartPole-v1",
        steps_per_epoch=400,
        epochs=1,
        train_pi_iters=2,
        train_v_iters=2,
        logger_kwargs=dict(output_dir=str(out), quiet=True),
    )
    return out


def test_prints_each_episode_and_the_mean(cartpole_run, capsys):
    assert (
        run_main_guarded(main, ["test_policy", str(cartpole_run), "--episodes", "3", "--deterministic"]) == 0
    )
    out = capsys.readouterr().out
    assert out.count("Episode ") == 3 and "AverageEpRet" in out


def _frames(path):
    from moviepy import VideoFileClip

    with VideoFileClip(str(path)) as clip:
        return sum(1 for _ in clip.iter_frames()), clip.size


def test_video_of_cartpole_is_playable(cartpole_run, tmp_path):
    out = tmp_path / "cartpole.mp4"
    assert (
        run_main_guarded(main, ["test_policy", str(cartpole_run), "--episodes", "2", "--video", str(out)])
        == 0
    )
    n, size = _frames(out)
    assert n > 10 and size[0] > 100


def test_video_never_overwrites(cartpole_run, tmp_path, capsys):
    out = tmp_path / "keep.mp4"
    out.write_bytes(b"precious")
    assert run_main_guarded(main, ["test_policy", str(cartpole_run), "--video", str(out)]) == 2
    assert out.read_bytes() == b"precious" and "already exists" in capsys.readouterr().err


def test_video_of_mujoco_hopper_is_playable(tmp_path):
    run = tmp_path / "hop_s0"
    ppo(
        "Hopper-v5",
        steps_per_epoch=200,
        epochs=1,
        train_pi_iters=1,
        train_v_iters=1,
        logger_kwargs=dict(output_dir=str(run), quiet=True),
    )
    out = tmp_path / "hopper.mp4"
    assert run_main_guarded(main, ["test_policy", str(run), "--episodes", "1", "--video", str(out)]) == 0
    n, size = _frames(out)
    assert n > 3 and size[0] > 100


def test_render_without_display_is_one_line(cartpole_run, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert run_main_guarded(main, ["test_policy", str(cartpole_run), "--render"]) == 2
    assert "needs a display" in capsys.readouterr().err


@pytest.mark.parametrize(
    "algo, env_id, old_name",
    [
        ("ddpg", "Pendulum-v1", "spinrl.offpolicy_nets.MLPActorCritic"),
        ("td3", "Pendulum-v1", "spinrl.offpolicy_nets.MLPTwinActorCritic"),
        ("sac", "Pendulum-v1", "spinrl.offpolicy_nets.MLPSquashedGaussianActorCritic"),
        ("dqn", "CartPole-v1", "spinrl.offpolicy_nets.MLPQNetwork"),
    ],
)
def test_runs_saved_before_the_networks_moved_still_load(tmp_path, algo, env_id, old_name):
    import spinrl
    from spinrl.test_policy import load_policy, run_policy

    run = tmp_path / algo
    getattr(spinrl, algo)(
        env_id, steps_per_epoch=100, epochs=1, start_steps=100, update_after=1000, num_test_episodes=1,
        max_ep_len=20, ac_kwargs=dict(hidden_sizes=(8,)), device="cpu",
        logger_kwargs=dict(output_dir=str(run), quiet=True),
    )  # fmt: skip
    config = json.loads((run / "config.json").read_text())
    assert config["actor_critic"].startswith("spinrl.q_nets.")
    config["actor_critic"] = old_name  # what spinrl wrote before the rename
    (run / "config.json").write_text(json.dumps(config))
    env, get_action, _ = load_policy(run, deterministic=True)
    ((ret, length),) = run_policy(env, get_action, episodes=1, quiet=True)
    assert 0 < length <= 20 and math.isfinite(ret)  # CartPole may fall over before the limit


def _one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("spinrl: error:"), err
    return err[0]


@pytest.fixture
def copied_run(cartpole_run, tmp_path):
    """A copy of the CartPole run whose files a test may damage."""
    import shutil

    return Path(shutil.copytree(cartpole_run, tmp_path / "copy"))


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda c: "{not json", "is damaged: not valid JSON"),
        (lambda c: "[1, 2]", "it holds a list, not the run's settings"),
        (lambda c: json.dumps(dict(c, ac_kwargs=[64])), "ac_kwargs=[64] cannot be what the run used"),
        (lambda c: json.dumps(dict(c, ac_kwargs={"width": 3})), "do not fit MLPActorCritic"),
        (lambda c: json.dumps(dict(c, actor_critic="spinrl.nets.Gone")), "'spinrl.nets.Gone'"),
        (lambda c: json.dumps(dict(c, ac_kwargs={"hidden_sizes": [7, 7]})), "does not fit the network"),
        (lambda c: json.dumps(dict(c, ac_kwargs={"activation": "GLU"})), "activation 'GLU' is not valid"),
    ],
)
def test_a_damaged_config_or_mismatched_network_is_one_line(copied_run, capsys, damage, expected):
    config_path = copied_run / "config.json"
    config_path.write_text(damage(json.loads(config_path.read_text())))
    assert run_main_guarded(main, ["test_policy", str(copied_run), "--episodes", "1"]) == 2
    line = _one_error_line(capsys)
    assert expected in line, line
    if "does not fit the network" in expected:
        assert "hidden_sizes" in line and "size mismatch" in line


def test_video_into_a_missing_folder_is_refused_before_loading(capsys, tmp_path, monkeypatch):
    import spinrl.test_policy as tp

    monkeypatch.setattr(tp, "load_policy", lambda *a, **k: pytest.fail("loaded a policy"))
    missing = tmp_path / "missing" / "dir" / "out.mp4"
    assert run_main_guarded(main, ["test_policy", str(tmp_path), "--video", str(missing)]) == 2
    line = _one_error_line(capsys)
    assert f"the folder '{missing.parent}' does not exist" in line
    assert not missing.parent.exists()


def test_video_into_a_folder_that_cannot_be_written_is_refused(capsys, tmp_path, monkeypatch):
    import spinrl.test_policy as tp

    monkeypatch.setattr(tp, "load_policy", lambda *a, **k: pytest.fail("loaded a policy"))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.geteuid() == 0:  # root may write anywhere: pretend the permission check said no
        monkeypatch.setattr(tp.os, "access", lambda path, mode: Path(path) != locked)
    try:
        assert run_main_guarded(main, ["test_policy", str(tmp_path), "--video", str(locked / "o.mp4")]) == 2
    finally:
        locked.chmod(0o700)
    assert f"the folder '{locked}' is not writable" in _one_error_line(capsys)
    assert list(locked.iterdir()) == []
