"""Watching a trained policy: returns, and videos that really play, for CartPole and MuJoCo."""

import json
import math
import os
from pathlib import Path

import pytest
import torch

from spinrl.algos.ppo import ppo
from spinrl.cli import main
from spinrl.common.errors import UserError, run_main_guarded
from spinrl.nets.actor_critic import MLPActorCritic


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


def test_video_frames_reach_the_encoder_as_they_are_rendered(cartpole_run, tmp_path, monkeypatch):
    """Issue 18: the frames of each episode were all held in memory (2.7 GB for a full Atari game)."""
    import imageio_ffmpeg

    import spinrl.results.policy as tp

    sent = []
    real_writer = imageio_ffmpeg.write_frames

    def counting_writer(*args, **kwargs):
        writer = real_writer(*args, **kwargs)

        class Counting:
            def send(self, frame):
                sent.append(frame is not None)
                return writer.send(frame)

            def close(self):
                writer.close()

        return Counting()

    frames_before_each_action = []
    real_load = tp.load_policy

    def load_policy(*args, **kwargs):
        env, get_action, config = real_load(*args, **kwargs)

        def act(obs):
            frames_before_each_action.append(sum(sent))
            return get_action(obs)

        return env, act, config

    monkeypatch.setattr(imageio_ffmpeg, "write_frames", counting_writer)
    monkeypatch.setattr(tp, "load_policy", load_policy)
    out = tmp_path / "streamed.gif"
    tp.record_video(str(cartpole_run), str(out), episodes=1, deterministic=True, seed=0)
    # Before the i-th action, the reset's frame and the i - 1 steps' frames were already encoded.
    n = len(frames_before_each_action)
    assert n > 5 and frames_before_each_action == list(range(1, n + 1))
    assert _frames(out)[0] > 5 and [p.name for p in tmp_path.iterdir()] == ["streamed.gif"]


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
    from spinrl.results.policy import load_policy, run_policy

    run = tmp_path / algo
    getattr(spinrl, algo)(
        env_id, steps_per_epoch=100, epochs=1, start_steps=100, update_after=1000, num_test_episodes=1,
        max_ep_len=20, ac_kwargs=dict(hidden_sizes=(8,)), device="cpu",
        logger_kwargs=dict(output_dir=str(run), quiet=True),
    )  # fmt: skip
    config = json.loads((run / "config.json").read_text())
    assert config["actor_critic"].startswith("spinrl.nets.q_nets.")
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


def test_a_checkpoint_with_nan_weights_is_one_line(copied_run, capsys):
    """Issue 18: NaN weights were a traceback (a Categorical's logits must be finite)."""
    from spinrl.record.checkpoint import load_checkpoint, save_checkpoint

    state = load_checkpoint(copied_run)
    name = next(iter(state["ac"]))
    state["ac"][name] = torch.full_like(state["ac"][name], float("nan"))
    save_checkpoint(copied_run, state, epoch=5)
    assert run_main_guarded(main, ["test_policy", str(copied_run), "--episodes", "1"]) == 2
    line = _one_error_line(capsys)
    assert "holds NaN or infinite weights" in line and name in line


def test_a_file_given_as_the_run_is_named_a_file(tmp_path, capsys):
    plain = tmp_path / "progress.txt"
    plain.write_text("Epoch\n0\n")
    assert run_main_guarded(main, ["test_policy", str(plain)]) == 2
    assert "is a file, not a run directory" in _one_error_line(capsys)


def test_video_into_a_missing_folder_is_refused_before_loading(capsys, tmp_path, monkeypatch):
    import spinrl.results.policy as tp

    monkeypatch.setattr(tp, "load_policy", lambda *a, **k: pytest.fail("loaded a policy"))
    missing = tmp_path / "missing" / "dir" / "out.mp4"
    assert run_main_guarded(main, ["test_policy", str(tmp_path), "--video", str(missing)]) == 2
    line = _one_error_line(capsys)
    assert f"the folder '{missing.parent}' does not exist" in line
    assert not missing.parent.exists()


def test_video_into_a_folder_that_cannot_be_written_is_refused(capsys, tmp_path, monkeypatch):
    import spinrl.results.policy as tp

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


# ----- Spinning Up's interface: a hand-written loop's logger, load_policy_and_env, run_policy, the flags -----
def hand_written_loop(out: Path, env_fn, epochs: int = 3, hidden=(16,), activation=None, record_kwargs=False):
    """A training loop written the Spinning Up way: EpochLogger, save_config(locals()), setup_pytorch_saver,
    save_state every epoch (itr=None) and a numbered snapshot each epoch (itr=epoch). No learning."""
    import torch

    from spinrl.nets.actor_critic import MLPActorCritic
    from spinrl.record.logger import EpochLogger

    logger = EpochLogger(output_dir=str(out), quiet=True, tensorboard=False)
    ac_kwargs = dict(hidden_sizes=hidden, activation=activation or torch.nn.Tanh)
    config = dict(locals()) if record_kwargs else {"env_fn": env_fn, "epochs": epochs}
    logger.save_config(config)
    env = env_fn()
    ac = MLPActorCritic(env.observation_space, env.action_space, **ac_kwargs)
    logger.setup_pytorch_saver(ac)
    obs, _ = env.reset(seed=0)
    for epoch in range(epochs):
        for _ in range(50):
            obs, rew, terminated, truncated, _ = env.step(ac.act(torch.as_tensor(obs)).numpy())
            logger.store(Rew=rew)
            if terminated or truncated:
                obs, _ = env.reset()
        logger.save_state({"env": env}, None)
        logger.save_state({"env": env, "epoch": epoch}, epoch)
        logger.log_tabular("Epoch", epoch)
        logger.log_tabular("Rew", average_only=True)
        logger.dump_tabular()
    logger.close()
    return ac


def test_a_hand_written_loop_saved_with_the_logger_loads(tmp_path, capsys):
    import gymnasium as gym
    import torch

    from spinrl.results.policy import load_policy_and_env, run_policy

    run = tmp_path / "loop"
    ac = hand_written_loop(run, lambda: gym.make("CartPole-v1"), activation=torch.nn.ReLU)
    # No pickled module anywhere: the weights, the class, its arguments and the env's id.
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == ["0", "1", "2"]
    config = json.loads((run / "config.json").read_text())
    assert config["env_spec"] == {"id": "CartPole-v1", "kwargs": {}, "max_episode_steps": 500}
    env, get_action = load_policy_and_env(str(run), deterministic=True)
    obs, _ = env.reset(seed=3)
    with torch.no_grad():
        expected = int(ac.pi.distribution(torch.as_tensor(obs)[None]).probs.argmax())
    assert get_action(obs) == expected  # the ReLU network was rebuilt, not the default Tanh one
    results = run_policy(env, get_action, 7, 2, False)  # Spinning Up's positional arguments
    assert [length for _, length in results] == [7, 7]  # max_ep_len=7 ends both episodes
    out = capsys.readouterr().out
    assert out.count("Episode ") == 2 and "MaxEpRet" in out and "EpLen" in out
    env.close()


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["-nr"], None),
        (["--norender", "-i", "1", "-l", "4", "-d"], None),
        (["-i", "7"], "has no snapshot 7; it has snapshot 0, snapshot 1, snapshot 2"),
        (["-l", "-3"], "--len -3 is not valid"),
        (["--render", "-nr"], "contradict"),
    ],
)
def test_spinning_up_flags(tmp_path, capsys, flags, expected):
    import gymnasium as gym

    run = tmp_path / "loop"
    hand_written_loop(run, lambda: gym.make("CartPole-v1"))
    rc = run_main_guarded(main, ["test_policy", str(run), "-n", "2", *flags])
    if expected is None:
        assert rc == 0
        out = capsys.readouterr().out
        assert out.count("Episode ") == 2 and "AverageEpRet" in out
        if "-l" in flags:
            assert out.count("EpLen 4") == 2
    else:
        assert rc == 2 and expected in _one_error_line(capsys)


def test_itr_picks_the_snapshot(tmp_path):
    import gymnasium as gym

    from spinrl.record.checkpoint import load_checkpoint
    from spinrl.results.policy import load_saved

    run = tmp_path / "loop"
    hand_written_loop(run, lambda: gym.make("CartPole-v1"))
    assert load_saved(run, "last")["state"]["epoch"] == 2  # the highest snapshot, as in Spinning Up
    assert load_saved(run, 1)["state"]["epoch"] == 1
    assert load_saved(run, 0)["state"]["epoch"] == 0
    assert "epoch" not in load_checkpoint(run)["state"]  # the unnumbered save had no epoch in its state
    with pytest.raises(UserError, match="itr='first' is not valid"):
        load_saved(run, "first")


def test_an_env_made_by_a_function_is_recorded_and_rebuilt(tmp_path):
    import gymnasium as gym

    from spinrl.algos.ppo import ppo
    from spinrl.results.policy import load_policy

    run = tmp_path / "ll"
    tiny = dict(steps_per_epoch=100, epochs=1, train_pi_iters=1, train_v_iters=1)
    ppo(
        lambda: gym.make("LunarLander-v3", gravity=-9.0),
        **tiny,
        logger_kwargs=dict(output_dir=str(run), quiet=True),
    )
    config = json.loads((run / "config.json").read_text())
    assert config["env_name"] is None and config["env_spec"]["kwargs"] == {"gravity": -9.0}
    env, _, _ = load_policy(run)
    assert env.spec.id == "LunarLander-v3" and env.unwrapped.gravity == -9.0
    env.close()


def test_a_wrapped_env_needs_env_fn(tmp_path, capsys):
    import gymnasium as gym

    from spinrl.results.policy import load_policy_and_env

    def clipped():
        return gym.wrappers.ClipReward(gym.make("CartPole-v1"), -0.5, 0.5)

    run = tmp_path / "wrapped"
    hand_written_loop(run, clipped, epochs=1)
    assert run_main_guarded(main, ["test_policy", str(run), "-n", "1"]) == 2
    assert "wrapped it in ClipReward" in _one_error_line(capsys)
    env, get_action = load_policy_and_env(run, env_fn=clipped)
    layers = [env]
    while hasattr(layers[-1], "env"):
        layers.append(layers[-1].env)
    assert any(isinstance(layer, gym.wrappers.ClipReward) for layer in layers)
    assert get_action(env.reset(seed=0)[0]) in (0, 1)
    env.close()


def test_a_network_that_cannot_be_rebuilt_as_saved_is_one_line(tmp_path, capsys):
    import gymnasium as gym

    from spinrl.record.checkpoint import load_checkpoint, save_checkpoint

    run = tmp_path / "loop"
    hand_written_loop(run, lambda: gym.make("CartPole-v1"), epochs=1)
    state = load_checkpoint(run / "snapshots" / "0")
    state["module"]["kwargs"]["activation"] = "torch.nn.ELU"  # not what the network was built with
    save_checkpoint(run / "snapshots" / "0", state, 0)
    assert run_main_guarded(main, ["test_policy", str(run), "-i", "0"]) == 2
    line = _one_error_line(capsys)
    assert "differs from the one saved" in line and "ELU" in line and "Tanh" in line


class WideActorCritic(MLPActorCritic):
    """A custom actor-critic defined in an imported module (this test file): hidden layers of 16."""

    def __init__(self, observation_space, action_space):
        super().__init__(observation_space, action_space, hidden_sizes=(16,))


def test_a_custom_actor_critic_of_a_module_already_imported_is_resolved_without_importing(tmp_path):
    from spinrl.results.policy import load_policy_and_env

    run = tmp_path / "wide"
    ppo("CartPole-v1", actor_critic=WideActorCritic, steps_per_epoch=200, epochs=1, train_pi_iters=1,
        train_v_iters=1, logger_kwargs=dict(output_dir=str(run), quiet=True))  # fmt: skip
    env, get_action = load_policy_and_env(run)
    assert env.action_space.contains(get_action(env.reset(seed=0)[0]))


def test_an_actor_critic_of_the_running_script_is_resolved_as_spinning_up_did(tmp_path):
    """Spinning Up's scripts define the network next to the training call (module ``__main__``)."""
    import subprocess
    import sys
    import textwrap

    from conftest import ROOT

    script = tmp_path / "train_and_watch.py"
    script.write_text(
        textwrap.dedent("""
        from spinrl import ppo
        from spinrl.nets.actor_critic import MLPActorCritic
        from spinrl.results.policy import load_policy_and_env

        class Narrow(MLPActorCritic):
            def __init__(self, observation_space, action_space):
                super().__init__(observation_space, action_space, hidden_sizes=(8,))

        ppo("CartPole-v1", actor_critic=Narrow, steps_per_epoch=200, epochs=1, train_pi_iters=1,
            train_v_iters=1, logger_kwargs=dict(output_dir="run", quiet=True))
        env, get_action = load_policy_and_env("run")
        print("action", get_action(env.reset(seed=0)[0]))
    """)
    )
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] in ("action 0", "action 1")


def test_a_custom_actor_critic_of_a_module_not_loaded_is_one_line_and_never_imported(cartpole_run, tmp_path):
    import shutil
    import sys

    from spinrl.results.policy import load_policy_and_env

    run = tmp_path / "run"
    shutil.copytree(cartpole_run, run)
    config = json.loads((run / "config.json").read_text())
    config["actor_critic"] = "spinrl_never_imported_mod.Net"
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="spinrl_never_imported_mod.Net.*actor_critic=") as e:
        load_policy_and_env(run)
    assert "\n" not in str(e.value) and "spinrl_never_imported_mod" not in sys.modules
