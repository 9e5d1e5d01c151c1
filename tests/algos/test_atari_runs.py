"""Whole runs on real Atari games, with tiny budgets: DQN's learning signals, checkpoints and --resume,
test_policy and its video of the real screen, plot, MPI and --parallel.

The networks are the Nature encoder with a small feature layer (``features_dim`` 32), so that a
gradient step on 84x84 frames takes milliseconds on a CPU.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spinrl.cli import main
from spinrl.common.errors import run_main_guarded
from spinrl.record.logger import read_progress

pytest.importorskip("ale_py")

SMALL_NET = "{'features_dim': 32, 'hidden_sizes': [16]}"
TINY_DQN = [
    "--steps_per_epoch", "200", "--replay_size", "1000", "--start_steps", "100", "--update_after", "100",
    "--batch_size", "8", "--num_test_episodes", "1", "--max_ep_len", "150", "--ac_kwargs", SMALL_NET,
]  # fmt: skip
TINY_PPO = [
    "--steps_per_epoch", "200", "--train_pi_iters", "2", "--train_v_iters", "2", "--max_ep_len", "150",
    "--ac_kwargs", SMALL_NET,
]  # fmt: skip


def test_dqn_stores_clipped_rewards_and_a_terminal_at_each_lost_life(tmp_path, monkeypatch):
    import spinrl.algos.dqn as dqn_module

    stored = []
    real_make = dqn_module.make_replay_buffer

    def recording_buffer(*args, **kwargs):
        buf = real_make(*args, **kwargs)
        real_store = buf.store

        def store(obs, act, rew, next_obs, terminated, stream_ends):
            assert obs.dtype == np.uint8 and obs.shape == (1, 4, 84, 84)
            stored.append((np.array(rew), np.array(terminated), np.array(stream_ends)))
            real_store(obs, act, rew, next_obs, terminated, stream_ends)

        buf.store = store
        return buf

    monkeypatch.setattr(dqn_module, "make_replay_buffer", recording_buffer)
    out = tmp_path / "run"
    dqn_module.dqn(
        "ALE/SpaceInvaders-v5", ac_kwargs=dict(features_dim=32, hidden_sizes=[16]), steps_per_epoch=700,
        epochs=1, replay_size=1000, start_steps=700, update_after=600, batch_size=8, num_test_episodes=1,
        max_ep_len=700, logger_kwargs=dict(output_dir=str(out), quiet=True),
    )  # fmt: skip
    rew, done, stream_ends = (np.concatenate(x) for x in zip(*stored))
    assert set(np.unique(rew)) <= {-1.0, 0.0, 1.0} and rew.max() == 1
    # A lost life is a terminal for the target, without ending the stream: the game goes on.
    assert np.count_nonzero(done & ~stream_ends) >= 2
    # The logged episode is the whole game, with its real score (5 to 30 points per invader).
    progress = read_progress(out / "progress.txt")
    assert progress["MaxEpRet"][0] > 1 and progress["MaxEpRet"][0] % 5 == 0
    assert progress["EpLen"][0] > 100


def test_dqn_test_games_on_atari_are_capped_and_epsilon_greedy_by_default(tmp_path, monkeypatch):
    """Issue 18: a fresh DQN's greedy test game on Breakout ran the whole 108k-frame game limit."""
    import spinrl.algos.dqn as dqn_module
    import spinrl.envs.atari

    monkeypatch.setattr(spinrl.envs.atari, "TEST_GAME_FRAMES", 160)  # 40 agent steps instead of 4,500
    epsilons = []
    real_run = dqn_module.run_test_episodes
    monkeypatch.setattr(
        dqn_module, "run_test_episodes", lambda *a, **k: epsilons.append(k["epsilon"]) or real_run(*a, **k)
    )
    out = tmp_path / "run"
    dqn_module.dqn(
        "ALE/Breakout-v5", ac_kwargs=dict(features_dim=32, hidden_sizes=[16]), steps_per_epoch=60,
        epochs=1, replay_size=200, start_steps=60, update_after=1000, num_test_episodes=1,
        logger_kwargs=dict(output_dir=str(out), quiet=True),
    )  # fmt: skip
    progress = read_progress(out / "progress.txt")
    assert progress["TestEpLen"].tolist() == [40] and epsilons == [0.05]
    # Before start_steps every action is uniform: the Epsilon column says 1, not nan.
    assert progress["Epsilon"].tolist() == [1.0]


def test_dqn_checkpoint_resume_test_policy_video_and_plot(tmp_data, cli):
    # Recorded env options must come back everywhere: with 2 stacked frames the saved network has 2
    # input channels and would not load into a rebuilt 4-frame env.
    base = ["dqn", "--env", "ALE/Breakout-v5", *TINY_DQN, "--save_buffer", "--exp_name", "br"]
    args = [*base, "--env_kwargs", "{'frame_stack': 2, 'clip_rewards': True}"]
    first = cli(*args, "--epochs", "2", cwd=tmp_data)
    assert first.returncode == 0, first.stderr[-3000:]
    run = tmp_data / "data/br/br_s0"
    config = json.loads((run / "config.json").read_text())
    assert config["env_name"] == "ALE/Breakout-v5" and config["env_kwargs"] == {
        "frame_stack": 2,
        "clip_rewards": True,
    }
    resumed = cli(*args, "--epochs", "3", "--resume", cwd=tmp_data)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    progress = read_progress(run / "progress.txt")
    assert progress["Epoch"].tolist() == [0, 1, 2] and progress["TotalEnvInteracts"].tolist() == [
        200,
        400,
        600,
    ]
    # Another option on --resume is another run: refused in one line.
    other = cli(*base, "--env_kwargs", "{'frame_stack': 4}", "--epochs", "3", "--resume", cwd=tmp_data)
    assert other.returncode == 2 and "env_kwargs" in other.stderr and "Traceback" not in other.stderr

    assert run_main_guarded(main, ["test_policy", str(run), "--episodes", "1", "--len", "30"]) == 0
    video = tmp_data / "breakout.mp4"
    assert (
        run_main_guarded(
            main, ["test_policy", str(run), "--episodes", "1", "--len", "40", "--video", str(video)]
        )
        == 0
    )
    from moviepy import VideoFileClip

    with VideoFileClip(str(video)) as clip:
        # The real game screen (210 x 160 in colour), not the agent's 84 x 84 grey frames, at 15 steps/s.
        assert clip.size == [160, 210] and clip.fps == 15
        frame = clip.get_frame(0)
        assert frame.ndim == 3 and len(np.unique(frame.reshape(-1, 3), axis=0)) > 2
    assert run_main_guarded(main, ["plot", str(run), "--save", str(tmp_data / "curve.png")]) == 0
    assert (tmp_data / "curve.png").stat().st_size > 1000


def test_ppo_with_two_mpi_ranks_on_atari(tmp_data, cli):
    proc = cli(
        "ppo", "--env", "ALE/Pong-v5", *TINY_PPO, "--epochs", "2", "--cpu", "2", "--exp_name", "mp",
        cwd=tmp_data, env={"SPINRL_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_data / "data/mp/mp_s0"
    assert read_progress(run / "progress.txt")["TotalEnvInteracts"].tolist() == [200, 400]
    state = torch.load(next(run.glob("checkpoint-*.pt")), weights_only=True)
    assert all(torch.isfinite(p).all() for p in state["ac"].values())


def test_a_grid_over_an_atari_option_runs_in_parallel(tmp_data, cli):
    proc = cli(
        "ppo", "--env", "ALE/Pong-v5", *TINY_PPO, "--epochs", "1", "--env_kwargs:clip_rewards[clip]", "True",
        "False", "--parallel", "2", "--exp_name", "gr", cwd=tmp_data,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Spinning Up's names: a True flag adds its shorthand, a False one nothing (gr_clip_s0, gr_s0).
    configs = [json.loads(p.read_text()) for p in sorted(tmp_data.glob("data/*/*/config.json"))]
    assert sorted(c["env_kwargs"]["clip_rewards"] for c in configs) == [False, True]
    for run in tmp_data.glob("data/*/*_s0"):
        assert len(read_progress(run / "progress.txt")["Epoch"]) == 1


def test_ppo_on_atari_resumes_from_its_checkpoint_and_its_policy_plays(tmp_path):
    from spinrl.algos.ppo import ppo
    from spinrl.results.policy import load_policy, run_policy

    out = tmp_path / "run"
    kwargs = dict(
        ac_kwargs=dict(features_dim=32, hidden_sizes=[16]), steps_per_epoch=200, train_pi_iters=2,
        train_v_iters=2, max_ep_len=150, env_kwargs=dict(frame_stack=3), logger_kwargs=dict(output_dir=str(out), quiet=True),
    )  # fmt: skip
    ppo("ALE/Breakout-v5", epochs=1, **kwargs)
    ppo("ALE/Breakout-v5", epochs=2, resume=True, **kwargs)
    progress = read_progress(out / "progress.txt")
    assert progress["Epoch"].tolist() == [0, 1] and progress["TotalEnvInteracts"].tolist() == [200, 400]
    env, get_action, config = load_policy(out)
    assert env.observation_space.shape == (3, 84, 84) and config["env_kwargs"] == {"frame_stack": 3}
    [(ret, length)] = run_policy(env, get_action, max_ep_len=30, num_episodes=1, quiet=True)
    assert length == 30 and ret >= 0
