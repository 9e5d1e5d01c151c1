"""Environment handling: terminal vs truncated bootstrapping, seeding, flattening, bad spaces."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from spinrl.common.errors import UserError
from spinrl.envs.make import check_spaces, make_env, make_env_fn
from spinrl.envs.vector import (
    EpisodeReturns,
    SingleCopyVectorEnv,
    env_seeds,
    make_vector_env,
    real_next_obs,
    steps_per_copy,
)
from spinrl.results.runs import read_progress


class ScriptedEnv(gym.Env):
    """Reward 1 per step. Episodes starting with a reset seed that is even terminate after 3 steps;
    odd ones run until the 4-step time limit truncates them."""

    observation_space = spaces.Box(-1, 1, (2,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.terminates = bool(self.np_random.integers(2) == 0) if seed is None else seed % 2 == 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        obs = np.full(2, self.t / 10, np.float32)
        return obs, 1.0, self.terminates and self.t == 3, False, {}


def test_env_seeds_distinct_and_reproducible():
    a = env_seeds(0, rank=0, epoch=0, num_envs=4)
    assert len(set(a)) == 4 and a == env_seeds(0, 0, 0, 4)
    assert set(a).isdisjoint(env_seeds(0, rank=1, epoch=0, num_envs=4))
    assert a != env_seeds(0, rank=0, epoch=1, num_envs=4)


def test_image_like_observations_are_flattened():
    class ImageEnv(ScriptedEnv):
        observation_space = spaces.Box(0, 1, (3, 4, 2), np.float32)

        def reset(self, seed=None, options=None):
            super().reset(seed=seed)
            return np.zeros((3, 4, 2), np.float32), {}

    envs = make_vector_env(ImageEnv, num_envs=2)
    assert envs.single_observation_space.shape == (24,)
    obs, _ = envs.reset(seed=[0, 1])
    assert obs.shape == (2, 24) and obs.dtype == np.float32


def test_unknown_env_suggests_close_ids():
    with pytest.raises(UserError, match="did you mean .*LunarLander-v3"):
        make_env_fn("LunarLandr-v3")


@pytest.mark.parametrize(
    "space",
    [
        spaces.Dict({"a": spaces.Discrete(2)}),
        spaces.Tuple([spaces.Discrete(2)]),
        spaces.MultiDiscrete([2, 2]),
    ],
)
def test_unsupported_action_spaces_named_in_error(space):
    class Bad(ScriptedEnv):
        action_space = space

    with pytest.raises(UserError, match=type(space).__name__):
        check_spaces(Bad(), "ppo")


def test_episodes_carry_over_between_epochs(tmp_path):
    """An episode longer than an epoch's share of steps runs on (never capped): one of 12 steps spans
    three epochs of 5 and is logged whole, in the epoch it ends in."""
    from spinrl.algos.vpg import vpg

    class TwelveSteps(ScriptedEnv):
        def step(self, action):
            obs, rew, _, truncated, info = super().step(action)
            return obs, rew, self.t == 12, truncated, info

    vpg(
        TwelveSteps,
        steps_per_epoch=5,
        epochs=3,
        train_v_iters=1,
        logger_kwargs=dict(output_dir=str(tmp_path), quiet=True),
    )
    rows = read_progress(tmp_path / "progress.txt")
    assert np.isnan(rows["EpLen"][:2]).all() and rows["EpLen"][2] == 12 and rows["AverageEpRet"][2] == 12


def test_envs_are_reset_once_per_process_seeded_from_its_start_epoch(tmp_path):
    """The rule: one seeded reset when a process starts training (epoch 0, or the resumed epoch);
    neither epoch ends nor checkpoints (here after every epoch) reset the env copies."""
    from spinrl.algos.ppo import ppo

    seeds = []

    class RecordSeeds(gym.Wrapper):
        def reset(self, *, seed=None, options=None):
            if seed is not None:  # the vector env's own resets after an episode ends pass no seed
                seeds.append(seed)
            return self.env.reset(seed=seed, options=options)

    def env_fn():
        return RecordSeeds(gym.make("CartPole-v1"))

    out = dict(output_dir=str(tmp_path), quiet=True)
    kw = dict(seed=5, steps_per_epoch=200, train_pi_iters=2, train_v_iters=2, num_envs=2, save_freq=1)
    ppo(env_fn, epochs=3, logger_kwargs=out, **kw)
    assert seeds == env_seeds(5, rank=0, epoch=0, num_envs=2)
    seeds.clear()
    ppo(env_fn, epochs=5, resume=True, logger_kwargs=out, **kw)  # continues after epoch 3
    assert seeds == env_seeds(5, rank=0, epoch=3, num_envs=2)


def test_real_next_obs_takes_final_obs_only_where_an_episode_ended():
    envs = make_vector_env("CartPole-v1", num_envs=2, max_ep_len=3)
    envs.reset(seed=[1, 2])
    for _ in range(2):
        next_obs, _, terminated, truncated, info = envs.step(np.array([0, 1]))
        assert real_next_obs(next_obs, terminated | truncated, info) is next_obs
    next_obs, _, terminated, truncated, info = envs.step(np.array([0, 1]))
    assert truncated.all()
    real = real_next_obs(next_obs, terminated | truncated, info)
    np.testing.assert_array_equal(real, np.stack(info["final_obs"]))
    assert not np.array_equal(real, next_obs)  # next_obs already starts the new episodes


def test_episode_returns_logs_finished_episodes_and_restarts_their_count():
    class Store:
        def __init__(self):
            self.rows = []

        def store(self, **kw):
            self.rows.append(kw)

    logger, episodes = Store(), EpisodeReturns(2)
    episodes.add(np.array([1.0, 2.0]), np.array([False, False]), logger)
    episodes.add(np.array([1.0, 2.0]), np.array([True, False]), logger)
    assert logger.rows == [dict(EpRet=2.0, EpLen=2)]
    episodes.add(np.array([5.0, 2.0]), np.array([False, True]), logger)
    assert logger.rows[1] == dict(EpRet=6.0, EpLen=3)
    assert episodes.ret.tolist() == [5.0, 0.0] and episodes.len.tolist() == [1, 0]


def test_episode_returns_in_two_calls_count_every_step_and_log_when_asked():
    logger, episodes = [], EpisodeReturns(2)
    store = type("Store", (), {"store": lambda self, **kw: logger.append(kw)})()
    for rew in ([1.0, 2.0], [1.0, 2.0], [3.0, 2.0]):
        episodes.count(np.array(rew))
    episodes.log_ended(np.array([False, True]), store)
    assert logger == [dict(EpRet=6.0, EpLen=3)]
    assert episodes.ret.tolist() == [5.0, 0.0] and episodes.len.tolist() == [3, 0]


def test_old_mujoco_ids_name_the_v5_replacement():
    with pytest.raises(UserError, match=r"'Hopper-v2' cannot be built here; use Hopper-v5"):
        make_env_fn("Hopper-v2")()


def test_atari_ids_without_ale_py_name_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ale(name, *args, **kwargs):
        if name == "ale_py":
            raise ImportError("no ale_py")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ale)
    # As in a fresh process: no ALE id registered yet (other tests may have registered them here).
    without_ale = {k: v for k, v in gym.registry.items() if v.entry_point != "ale_py.env:AtariEnv"}
    monkeypatch.setattr(gym.envs.registration, "registry", without_ale)
    monkeypatch.setattr(gym, "registry", without_ale)
    with pytest.raises(
        UserError, match=r"ALE/Pong-v5 is an Atari game: it needs ale-py, pip install 'spinrl\[atari\]'"
    ):
        make_env_fn("ALE/Pong-v5")


def test_steps_per_copy_splits_the_epoch_over_copies_and_ranks(capsys):
    assert steps_per_copy(100, 4) == 25
    assert steps_per_copy(4000, 2, num_ranks=4) == 500
    assert capsys.readouterr().out == ""  # an even split says nothing


def test_steps_per_copy_notes_a_remainder_in_one_line(capsys):
    assert steps_per_copy(100, 3) == 33
    assert capsys.readouterr().out == (
        "note: steps_per_epoch=100 is not a multiple of 3 env copies x 1 rank(s): each epoch takes 99 steps\n"
    )
    assert steps_per_copy(100, 3, num_ranks=2) == 16
    assert "each epoch takes 96 steps" in capsys.readouterr().out


def test_steps_per_copy_refuses_fewer_steps_than_copies():
    with pytest.raises(UserError, match=r"steps_per_epoch=5 is too small for 3 env copies x 2 rank\(s\)"):
        steps_per_copy(5, 3, num_ranks=2)


class StepInfo(gym.Wrapper):
    """Adds an info entry on every step, so that the per-step info path is exercised too."""

    def step(self, action):
        obs, rew, terminated, truncated, info = self.env.step(action)
        return obs, rew, terminated, truncated, {**info, "x": float(obs[0])}


@pytest.mark.parametrize(
    "env_fn",
    [
        lambda: gym.wrappers.RecordEpisodeStatistics(gym.make("CartPole-v1")),  # info when an episode ends
        lambda: StepInfo(gym.make("Pendulum-v1")),  # Box actions, info on every step
    ],
    ids=["CartPole", "Pendulum"],
)
def test_single_copy_vector_env_steps_exactly_as_sync_vector_env(env_fn):
    """The one-copy path returns what SyncVectorEnv returns, step by step: observations, rewards,
    terminated/truncated (with their dtypes and shapes), and on the step an episode ends the real last
    observation and info in info["final_obs"] / ["final_info"], the env already reset."""
    lean = make_vector_env(env_fn, num_envs=1, max_ep_len=15)
    ref = gym.vector.SyncVectorEnv([lambda: make_env(env_fn, 15)], autoreset_mode=AutoresetMode.SAME_STEP)
    assert type(lean) is SingleCopyVectorEnv
    assert lean.single_observation_space == ref.single_observation_space
    assert lean.single_action_space == ref.single_action_space
    obs_l, _ = lean.reset(seed=[7])
    obs_r, _ = ref.reset(seed=[7])
    np.testing.assert_array_equal(obs_l, obs_r)
    rng = np.random.default_rng(0)
    ends = {"terminated": 0, "truncated": 0}
    for _ in range(300):
        if isinstance(ref.single_action_space, spaces.Discrete):
            action = rng.integers(2, size=1)
        else:
            action = rng.uniform(-2, 2, size=(1, 1)).astype(np.float32)
        out_l, out_r = lean.step(action), ref.step(action)
        for x, y in zip(out_l[:4], out_r[:4]):
            assert x.dtype == y.dtype and x.shape == y.shape
            np.testing.assert_array_equal(x, y)
        info_l, info_r = out_l[4], out_r[4]
        assert info_l.keys() == info_r.keys()
        if out_r[2][0] or out_r[3][0]:
            ends["terminated" if out_r[2][0] else "truncated"] += 1
            np.testing.assert_array_equal(info_l["final_obs"][0], info_r["final_obs"][0])
            np.testing.assert_array_equal(
                real_next_obs(out_l[0], out_l[2] | out_l[3], info_l), info_r["final_obs"][0][None]
            )
            assert info_l["final_info"].keys() == info_r["final_info"].keys()
        for key in info_r.keys() - {"final_obs", "final_info"}:
            np.testing.assert_array_equal(info_l[key], info_r[key])
    assert ends["truncated"] > 0  # the 15-step limit cut episodes off
    if isinstance(ref.single_action_space, spaces.Discrete):
        assert ends["terminated"] > 0  # and CartPole's pole fell in others


def test_one_copy_takes_the_lean_path_only_when_stepped_in_this_process():
    assert type(make_vector_env("CartPole-v1", num_envs=1)) is SingleCopyVectorEnv
    assert type(make_vector_env("CartPole-v1", num_envs=2)) is gym.vector.SyncVectorEnv


def test_single_copy_env_with_a_dict_space_takes_the_general_path():
    # A space spinrl refuses later (check_spaces) must still build: the refusal is one clear line.
    def dict_env():
        env = gym.make("CartPole-v1")
        return gym.wrappers.TransformObservation(
            env, lambda o: {"x": o}, spaces.Dict({"x": env.observation_space})
        )

    envs = make_vector_env(dict_env, num_envs=1)
    with pytest.raises(UserError, match="observation space Dict"):
        check_spaces(envs, "ppo")
    obs, _ = envs.reset(seed=0)
    assert obs["x"].shape == (1, 4)
    envs.step(np.array([0]))
