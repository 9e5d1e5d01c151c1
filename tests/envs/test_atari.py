"""The Atari protocol (spinrl.envs.atari) on real ALE games: the env pipeline, its options, the learning signals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spinrl.common.errors import UserError
from spinrl.envs.atari import ATARI_OPTIONS, LearningSignals, atari_env
from spinrl.envs.make import default_max_ep_len, env_name_of, make_env, make_env_fn, resolve_env_fn
from spinrl.envs.vector import EpisodeReturns, make_vector_env

pytest.importorskip("ale_py")


class RowLogger:
    def __init__(self):
        self.rows = []

    def store(self, **kv):
        self.rows.append(kv)


def play(env, steps: int, seed: int = 0, action_seed: int = 0):
    """Random play in one env: (observations, rewards, terminated, truncated, infos), one per step."""
    rng = np.random.default_rng(action_seed)
    obs, info = env.reset(seed=seed)
    out = []
    for _ in range(steps):
        obs, rew, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
        out.append((obs, rew, terminated, truncated, info))
        if terminated or truncated:
            break
    return out


def test_ale_ids_resolve_to_stacked_grey_uint8_frames():
    env = make_env_fn("ALE/Pong-v5")()
    obs, info = env.reset(seed=0)
    assert env.observation_space.shape == (4, 84, 84) and env.observation_space.dtype == np.uint8
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    # Older ids of the same games get the same protocol.
    assert make_env_fn("PongNoFrameskip-v4")().observation_space.shape == (4, 84, 84)
    env.close()


def test_defaults_are_the_standard_protocol_with_v5_sticky_actions():
    fn = make_env_fn("ALE/Pong-v5")
    assert fn.env_name == "ALE/Pong-v5" and fn.env_kwargs == {}
    assert fn.options == {name: default for name, (default, _, _) in ATARI_OPTIONS.items()} | dict(
        repeat_action_probability=0.25, full_action_space=False, max_num_frames_per_episode=108000
    )
    ale = fn().unwrapped.ale
    assert ale.getFloat("repeat_action_probability") == pytest.approx(0.25)
    assert ale.getInt("frame_skip") == 1  # the skipping is AtariPreprocessing's
    # Overridden, and an old v4 id keeps its own (no sticky actions).
    assert make_env_fn("ALE/Pong-v5", repeat_action_probability=0.0)().unwrapped.ale.getFloat(
        "repeat_action_probability"
    ) == pytest.approx(0.0)
    assert make_env_fn("PongNoFrameskip-v4").options["repeat_action_probability"] == 0.0


def test_options_change_the_frames():
    env = atari_env("ALE/Pong-v5", frame_stack=2, screen_size=42, grayscale=False)()
    obs, _ = env.reset(seed=0)
    assert obs.shape == (6, 42, 42) and obs.dtype == np.uint8
    assert env.observation_space.shape == (6, 42, 42)
    # The colour frame is the RGB image, channels first: the last three channels are one frame.
    rgb = obs[3:].transpose(1, 2, 0)
    assert rgb.shape == (42, 42, 3) and len(np.unique(rgb.reshape(-1, 3), axis=0)) > 1


@pytest.mark.parametrize(
    "options, message",
    [
        (
            dict(clip_reward=False),
            r"unknown Atari option 'clip_reward' .*did you mean clip_rewards\?.*valid: ",
        ),
        (dict(frameskip=2), r"unknown Atari option 'frameskip' .*use frame_skip"),
        (
            dict(frame_skip=0),
            r"Atari option frame_skip=0 is not valid for ALE/Pong-v5: give a whole number from 1 to 60",
        ),
        (dict(repeat_action_probability=1.5), r"repeat_action_probability=1.5 .*a probability in \[0, 1\]"),
        (dict(clip_rewards="no"), r"clip_rewards='no' is not valid .*True or False"),
        # Issue 18: a huge no-op count hung the reset; a huge stack or screen would fill the memory.
        (dict(noop_max=10**9), r"noop_max=1000000000 is not valid .*from 0 to 10000"),
        (dict(frame_skip=10**9), r"frame_skip=1000000000 is not valid .*from 1 to 60"),
        (dict(frame_stack=10**6), r"frame_stack=1000000 is not valid .*from 1 to 64"),
        (dict(screen_size=10**5), r"screen_size=100000 is not valid .*from 1 to 512"),
        # ... and a mode or difficulty the game lacks was the ALE's bare RuntimeError.
        (dict(mode=999), r"Atari option mode=999 is not valid for ALE/Pong-v5: its modes are 0, 1"),
        (dict(difficulty=99), r"difficulty=99 is not valid for ALE/Pong-v5: its difficulties are 0, 1, 2, 3"),
    ],
)
def test_bad_options_are_one_line_naming_the_value_and_the_valid_ones(options, message):
    with pytest.raises(UserError, match=message):
        make_env_fn("ALE/Pong-v5", **options)


def test_a_mode_and_difficulty_the_game_has_are_accepted():
    env = make_env_fn("ALE/Pong-v5", mode=1, difficulty=3, noop_max=0)()
    assert env.unwrapped._game_mode == 1 and env.unwrapped._game_difficulty == 3
    env.close()


def test_env_kwargs_go_with_ids_only():
    fn = resolve_env_fn("ALE/Pong-v5", dict(noop_max=0))
    assert fn.options["noop_max"] == 0 and fn.env_kwargs == dict(noop_max=0)
    # A factory with options has no id that alone would make its env again: runs record env_kwargs.
    assert env_name_of(fn) is None and env_name_of(make_env_fn("ALE/Pong-v5")) == "ALE/Pong-v5"
    assert resolve_env_fn("CartPole-v1", dict(sutton_barto_reward=True))().unwrapped._sutton_barto_reward
    with pytest.raises(UserError, match=r"env_kwargs \{'x': 1\} do not fit CartPole-v1"):
        resolve_env_fn("CartPole-v1", dict(x=1))()
    with pytest.raises(UserError, match="apply to a Gymnasium id"):
        resolve_env_fn(lambda: None, dict(noop_max=0))


def test_atari_games_run_to_their_own_end_by_default():
    assert default_max_ep_len(make_env_fn("ALE/Pong-v5"), None) is None
    assert default_max_ep_len(make_env_fn("CartPole-v1"), None) == 1000
    assert default_max_ep_len(make_env_fn("ALE/Pong-v5"), 50) == 50
    # Options do not change what the env is: a game with env_kwargs still runs to its own end.
    assert default_max_ep_len(make_env_fn("ALE/Pong-v5", clip_rewards=False), None) is None


def test_a_lost_life_is_flagged_at_its_step_and_the_game_goes_on():
    env = make_env_fn("ALE/SpaceInvaders-v5")()
    steps = play(env, 5000)
    lives = [3] + [info["lives"] for *_, info in steps]
    lost = [info["life_lost"] for *_, info in steps]
    assert lost == [now < before for before, now in zip(lives[:-1], lives[1:])]
    assert sum(lost) == 3  # every life, the last one at the end of the game
    assert not any(terminated for _, _, terminated, _, _ in steps[:-1])  # one episode: the full game
    assert steps[-1][2] and lives[-1] == 0


def test_learning_signals_clip_rewards_and_end_learning_episodes_at_each_life():
    """In a vector env: learning rewards are signs and a lost life is terminal, while the real score
    (EpRet) and the episode (EpLen) are those of the whole game."""
    envs = make_vector_env(make_env_fn("ALE/SpaceInvaders-v5"), num_envs=2)
    signals = LearningSignals(envs)
    episodes, logger = EpisodeReturns(2), RowLogger()
    envs.reset(seed=[1, 2])
    rng = np.random.default_rng(0)
    real, learned, learn_ends, game_ends = [], [], [], []
    while len(logger.rows) < 2:
        _, rew, terminated, truncated, info = envs.step(rng.integers(envs.single_action_space.n, size=2))
        learn_rew, learn_term = signals(rew, terminated, info)
        episodes.add(rew, terminated | truncated, logger)
        real.append(rew), learned.append(learn_rew)
        learn_ends.append(learn_term), game_ends.append(terminated | truncated)
    real, learned = np.array(real), np.array(learned)
    learn_ends, game_ends = np.array(learn_ends), np.array(game_ends)
    assert np.array_equal(learned, np.sign(real)) and real.max() > 1  # SpaceInvaders scores 5 to 30
    assert np.all(learn_ends >= game_ends)  # every end of a game is a learning end
    expected = []
    for i in range(2):
        if game_ends[:, i].any():
            last = int(np.flatnonzero(game_ends[:, i])[0])
            # A game of 3 lives: 3 learning episodes (the last ends with the game), 1 logged episode
            # whose return is the real score.
            assert np.count_nonzero(learn_ends[: last + 1, i]) == 3
            assert learned[: last + 1, i].sum() < real[: last + 1, i].sum()
            expected.append((real[: last + 1, i].sum(), last + 1))
    assert sorted(expected) == sorted((row["EpRet"], row["EpLen"]) for row in logger.rows)


def test_learning_signals_can_be_turned_off_and_leave_other_envs_alone():
    envs = make_vector_env(
        make_env_fn("ALE/SpaceInvaders-v5", clip_rewards=False, terminal_on_life_loss=False)
    )
    signals = LearningSignals(envs)
    rew, term = np.array([15.0]), np.array([False])
    assert signals(rew, term, {"life_lost": np.array([True]), "_life_lost": np.array([True])}) == (rew, term)
    cartpole = LearningSignals(make_vector_env("CartPole-v1"))
    out_rew, out_term = cartpole(rew, term, {})
    assert out_rew is rew and out_term is term  # the identity: the very same arrays


def test_a_life_lost_on_a_truncated_step_still_ends_the_learning_episode():
    signals = LearningSignals(make_vector_env(make_env_fn("ALE/SpaceInvaders-v5"), num_envs=2))
    info = {
        "final_info": {"life_lost": np.array([True, False]), "_life_lost": np.array([True, False])},
        "life_lost": np.array([False, True]),
        "_life_lost": np.array([False, True]),
    }
    _, term = signals(np.zeros(2), np.array([False, False]), info)
    assert term.tolist() == [True, True]


def test_the_same_seed_plays_the_same_game():
    def frames(seed):
        return np.stack([obs for obs, *_ in play(make_env_fn("ALE/Breakout-v5")(), 60, seed=seed)])

    a, b, c = frames(3), frames(3), frames(4)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)  # sticky actions and no-op starts draw from the seed


def test_prepared_env_keeps_the_game_length():
    env = make_env(make_env_fn("ALE/Pong-v5"), max_ep_len=None)
    assert env.spec.max_episode_steps is None
    assert env.metadata["render_fps"] == 15  # 60 frames/s, 4 frames a step: videos at the game's speed


class StepRecorder:
    """A vector env that remembers, per step and copy, whether a life was lost or the game ended."""

    def __init__(self, envs):
        self.envs, self.lost, self.game_over = envs, [], []

    def __getattr__(self, name):
        return getattr(self.envs, name)

    def step(self, actions):
        obs, rew, terminated, truncated, info = self.envs.step(actions)
        lost = np.zeros(self.envs.num_envs, dtype=bool)
        for source in (info, info.get("final_info", {})):
            if "life_lost" in source:
                lost |= source["life_lost"] & source["_life_lost"]
        self.lost.append(lost)
        self.game_over.append(terminated | truncated)
        return obs, rew, terminated, truncated, info


class PooledFrames(torch.nn.Module):
    """An encoder that costs next to nothing: each frame's mean over 12x12 tiles."""

    def __init__(self, observation_space):
        super().__init__()
        channels, height, width = observation_space.shape
        self.pool = torch.nn.Sequential(torch.nn.AvgPool2d(12), torch.nn.Flatten())
        self.features_dim = channels * (height // 12) * (width // 12)

    def forward(self, frames):
        return self.pool(frames.float() / 255.0)


def test_ppo_closes_the_gae_path_with_0_at_each_lost_life_and_logs_full_games(tmp_path):
    import spinrl.algos.ppo as ppo_module
    from spinrl.buffers.gae import GAEBuffer
    from spinrl.record.logger import EpochLogger

    recorders, closed, rewards, games = [], {}, [], []
    finish_path, get, store = GAEBuffer.finish_path, GAEBuffer.get, EpochLogger.store

    def recorded_envs(*args, **kwargs):
        recorders.append(StepRecorder(make_vector_env(*args, **kwargs)))
        return recorders[-1]

    def recorded_finish_path(self, env_index=0, last_val=0.0):
        closed[(self.ptr - 1, env_index)] = last_val
        return finish_path(self, env_index, last_val)

    def recorded_get(self, device="cpu"):
        rewards.append(self.rew_buf.copy())
        return get(self, device)

    def recorded_store(self, **kw):
        if "EpRet" in kw:
            games.append(kw)
        return store(self, **kw)

    steps = 800  # per copy: enough for a game with random play
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ppo_module, "make_vector_env", recorded_envs)
        patch.setattr(GAEBuffer, "finish_path", recorded_finish_path)
        patch.setattr(GAEBuffer, "get", recorded_get)
        patch.setattr(EpochLogger, "store", recorded_store)
        ppo_module.ppo(
            "ALE/SpaceInvaders-v5",
            steps_per_epoch=2 * steps,
            epochs=1,
            num_envs=2,
            train_pi_iters=1,
            train_v_iters=1,
            ac_kwargs={"encoder": PooledFrames},
            logger_kwargs=dict(output_dir=str(tmp_path), quiet=True),
        )
    (envs,) = recorders
    lost, game_over = np.array(envs.lost), np.array(envs.game_over)
    # Every lost life and every game over closes a path with 0; the epoch's end closes the others
    # with V. No other path is closed: the game goes on after a lost life.
    ends_with_0 = set(zip(*np.nonzero(lost | game_over)))
    cut_by_the_epoch = {(steps - 1, i) for i in range(2)} - ends_with_0
    assert lost.sum() >= 3 and set(closed) == ends_with_0 | cut_by_the_epoch
    assert all(closed[key] == 0.0 for key in ends_with_0)
    assert all(closed[key] != 0.0 for key in cut_by_the_epoch)
    assert set(np.unique(rewards)) <= {-1.0, 0.0, 1.0}
    # The logged episodes are whole games with their real score (5 to 30 points per invader).
    assert len(games) == game_over.sum() >= 1
    assert all(row["EpRet"] % 5 == 0 and row["EpLen"] > 100 for row in games)
    assert max(row["EpRet"] for row in games) > 1


def test_a_factory_with_options_travels_to_child_processes_with_them():
    from spinrl.launch.spec import decode_value, encode_value

    encoded = encode_value(make_env_fn("ALE/Pong-v5", frame_stack=2))
    assert encoded == {"__env__": "ALE/Pong-v5", "kwargs": {"frame_stack": 2}}
    rebuilt = decode_value(encoded)
    assert rebuilt.env_kwargs == {"frame_stack": 2} and rebuilt().observation_space.shape == (2, 84, 84)
    assert encode_value(make_env_fn("ALE/Pong-v5")) == "ALE/Pong-v5"  # a plain id stays a plain id


def test_a_bad_option_on_the_command_line_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from spinrl.cli import main
    from spinrl.common.errors import run_main_guarded

    monkeypatch.chdir(tmp_path)
    argv = ["dqn", "--env", "ALE/Pong-v5", "--env_kwargs", "{'noop_max': -1}", "--exp_name", "bad"]
    assert run_main_guarded(main, argv) == 2
    err = capsys.readouterr().err
    assert "Atari option noop_max=-1 is not valid for ALE/Pong-v5: give a whole number from 0 to 10000" in err
    assert "Traceback" not in err and not (tmp_path / "data").exists()


def test_runs_recorded_with_max_ep_len_1000_resume_with_the_new_default():
    """Before None became the default, runs recorded 1000: None means the same except for Atari games."""
    from spinrl.record.config import resume_changes

    old = dict(algo="ppo", env_name="CartPole-v1", env_fn="CartPole-v1", max_ep_len=1000)
    assert resume_changes(old, dict(old, max_ep_len=None)) == []
    assert resume_changes(old, dict(old, max_ep_len=500)) == ["max_ep_len from 1000 to 500"]
    atari = dict(algo="dqn", env_name="ALE/Pong-v5", env_fn="ALE/Pong-v5", max_ep_len=1000)
    assert resume_changes(atari, dict(atari, max_ep_len=None)) == ["max_ep_len from 1000 to null"]


def _noop_until_the_game_ends(env, steps: int) -> tuple[int | None, int]:
    """Press NOOP (a fresh greedy policy's habit) up to ``steps`` times: (steps to game over or None, lives)."""
    _, info = env.reset(seed=0)
    for t in range(1, steps + 1):
        _, _, terminated, truncated, info = env.step(0)
        if terminated or truncated:
            return t, info["lives"]
    return None, info["lives"]


def test_fire_reset_serves_the_ball_at_the_start_and_after_each_lost_life():
    """Issue 18: Breakout waits for FIRE; a policy that never presses it played until the time limit."""
    opts = dict(noop_max=0, repeat_action_probability=0.0)
    stuck = make_env_fn("ALE/Breakout-v5", **opts)()
    assert _noop_until_the_game_ends(stuck, 1500) == (None, 5)  # no ball served, no life lost, no end
    served = make_env_fn("ALE/Breakout-v5", fire_reset=True, **opts)()
    ended_at, lives = _noop_until_the_game_ends(served, 1500)
    assert ended_at is not None and lives == 0  # all five balls were served and lost
    with pytest.raises(
        UserError, match="fire_reset=True is not valid for ALE/Freeway-v5: the game has no FIRE"
    ):
        make_env_fn("ALE/Freeway-v5", fire_reset=True)


def test_atari_test_games_use_the_field_s_epsilon_and_a_5_minute_cap():
    from spinrl.envs.atari import evaluation_settings

    assert evaluation_settings(make_env_fn("ALE/Breakout-v5")) == (0.05, 4500)
    assert evaluation_settings(make_env_fn("ALE/Breakout-v5", frame_skip=2)) == (0.05, 9000)
    assert evaluation_settings(make_env_fn("CartPole-v1")) is None
