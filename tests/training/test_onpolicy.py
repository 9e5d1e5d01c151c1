"""The on-policy loop's building blocks (spinrl.training.onpolicy), and what a whole epoch of acting stores
and logs, seen through VPG's own loop.

How the loop bootstraps at time limits and carries episodes across epochs is checked with scripted envs in
envs/test_make.py; how it ends learning episodes at a lost life, in envs/test_atari.py.
"""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from spinrl.buffers.gae import GAEBuffer
from spinrl.envs.vector import make_vector_env
from spinrl.nets.actor_critic import MLPActorCritic
from spinrl.training.normalize import Normalizers, ObservationNormalizer, ValueNormalizer
from spinrl.training.onpolicy import (
    PathCloser,
    fast_policy_step,
    policy_to_env_actions,
    with_cached_encoder_features,
)

CPU = torch.device("cpu")


@pytest.mark.parametrize("act_space", [spaces.Discrete(2), spaces.Discrete(3), spaces.Box(-2, 1, (2,))])
def test_fast_policy_step_gives_ac_step_s_numbers_and_leaves_the_generator_where_it_does(act_space):
    torch.manual_seed(0)
    ac = MLPActorCritic(spaces.Box(-1, 1, (5,)), act_space, hidden_sizes=(16, 16))
    obs = np.random.default_rng(0).normal(size=(6, 3, 5)).astype(np.float32)
    runs = []
    for step in (fast_policy_step(ac, CPU, num_calls=len(obs)), lambda o: ac.step(torch.as_tensor(o))):
        torch.manual_seed(7)
        runs.append(([[np.asarray(x) for x in step(o)] for o in obs], torch.get_rng_state()))
    (fast, rng_fast), (torch_out, rng_torch) = runs
    for fast_call, torch_call in zip(fast, torch_out):
        for x, y in zip(fast_call, torch_call):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)
    assert torch.equal(rng_fast, rng_torch)


def test_fast_policy_step_falls_back_to_ac_step_with_numpy_outputs():
    class Custom(MLPActorCritic):  # not the class the NumPy mirror knows
        pass

    torch.manual_seed(0)
    ac = Custom(spaces.Box(-1, 1, (3,)), spaces.Discrete(2))
    obs = np.zeros((4, 3), np.float32)
    torch.manual_seed(1)
    a, v, logp = fast_policy_step(ac, CPU, num_calls=1)(obs)
    torch.manual_seed(1)
    a_ref, v_ref, logp_ref = ac.step(torch.as_tensor(obs))
    assert all(isinstance(x, np.ndarray) for x in (a, v, logp))
    np.testing.assert_array_equal(a, a_ref.numpy())
    np.testing.assert_array_equal(v, v_ref.numpy())
    np.testing.assert_array_equal(logp, logp_ref.numpy())


def test_policy_to_env_actions_clips_box_samples_and_shifts_discrete_indices():
    to_env = policy_to_env_actions(spaces.Box(np.array([-1, 0], np.float32), np.array([1, 2], np.float32)))
    a = np.array([[-3.0, 1.5], [0.5, 7.0]], np.float32)
    np.testing.assert_array_equal(to_env(a), [[-1.0, 1.5], [0.5, 2.0]])
    assert a[0, 0] == -3.0  # the sample itself, which the buffer keeps, is untouched
    np.testing.assert_array_equal(
        policy_to_env_actions(spaces.Discrete(3, start=-1))(np.array([0, 2])), [-1, 1]
    )
    np.testing.assert_array_equal(policy_to_env_actions(spaces.Discrete(3))(np.array([0, 2])), [0, 2])


class CountingEnv(gym.Env):
    """Observation [t / 10] after t steps; reward 1 per step. A reset seed that is even terminates the
    episode after 3 steps; an odd one runs until a time limit truncates it."""

    observation_space = spaces.Box(-10, 10, (1,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.terminates = 0, seed is not None and seed % 2 == 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t / 10], np.float32), 1.0, self.terminates and self.t == 3, False, {}


class ObservationCritic(torch.nn.Module):
    """V(obs) = 100 * obs[0]: the value a path closes with says which observation it was taken of."""

    def v(self, obs):
        return 100 * obs[:, 0]


class RecordingBuffer:
    def __init__(self):
        self.closed = []

    def finish_path(self, env_index, last_val):
        self.closed.append((env_index, last_val))


def step_and_close(envs, close_paths, steps, epoch_ends=True):
    """Step ``envs`` ``steps`` times, calling ``close_paths`` after each step as the algorithms do
    (also where no path ends: it must then do nothing)."""
    for t in range(steps):
        next_obs, _, terminated, truncated, info = envs.step(np.zeros(envs.num_envs, dtype=np.int64))
        close_paths(next_obs, info, terminated, truncated, epoch_ends and t == steps - 1)


def test_terminal_closes_with_0_and_truncation_with_v_of_the_observation_really_reached():
    envs = make_vector_env(lambda: gym.wrappers.TimeLimit(CountingEnv(), max_episode_steps=4), num_envs=2)
    envs.reset(seed=[2, 3])  # copy 0 terminates after 3 steps, copy 1 is truncated after 4
    buf = RecordingBuffer()
    step_and_close(envs, PathCloser(buf, ObservationCritic(), CPU), 4, epoch_ends=False)
    # Copy 1's value is of its last observation (0.4), not of the new episode's first (0.0).
    assert buf.closed == [(0, 0.0), (1, pytest.approx(40.0))]


def test_the_epoch_s_end_closes_every_path_with_v_unless_it_terminated_there():
    envs = make_vector_env(CountingEnv, num_envs=3)
    envs.reset(seed=[1, 2, 3])  # copy 1 terminates at step 3, the others run on
    buf = RecordingBuffer()
    step_and_close(envs, PathCloser(buf, ObservationCritic(), CPU), 3)
    assert buf.closed == [(0, pytest.approx(30.0)), (1, 0.0), (2, pytest.approx(30.0))]


def test_a_learning_terminal_closes_with_0_while_the_episode_goes_on():
    """Atari's lost life: ``learn_term`` without ``terminated`` closes the path with 0 all the same."""
    buf = RecordingBuffer()
    close_paths = PathCloser(buf, ObservationCritic(), CPU)
    no = np.array([False, False])
    close_paths(np.ones((2, 1), np.float32), {}, np.array([False, True]), no)
    assert buf.closed == [(1, 0.0)]
    close_paths(np.ones((2, 1), np.float32), {}, no, no)  # nothing ended: nothing closed
    assert buf.closed == [(1, 0.0)]


def test_bootstrap_values_see_normalised_observations_and_come_back_in_the_env_s_units():
    obs_norm, value_norm = ObservationNormalizer((1,)), ValueNormalizer()
    obs_norm.observe(np.array([[0.0], [2.0]]))
    obs_norm.update()  # mean 1, std 1
    value_norm.update(torch.tensor([10.0, 30.0]))  # mean 20, std 10
    norms = Normalizers(obs_norm, None, value_norm)
    buf = RecordingBuffer()
    close_paths = PathCloser(buf, ObservationCritic(), CPU, norms)
    close_paths(np.array([[3.0]], np.float32), {}, np.array([False]), np.array([False]), epoch_ended=True)
    # V sees (3 - 1) / 1 = 2, gives 200 in normalised units: 20 + 10 * 200 in the env's.
    assert buf.closed == [(0, pytest.approx(2020.0, rel=1e-5))]
    assert obs_norm.stats.pending_n == 0  # the bootstrap's observation is not counted


def test_closed_paths_give_gae_the_returns_of_each_kind_of_end():
    """Through a real GAE buffer: terminal, truncated and cut-off paths, rewards-to-go by hand."""
    gamma = 0.5
    envs = make_vector_env(lambda: gym.wrappers.TimeLimit(CountingEnv(), max_episode_steps=4), num_envs=2)
    obs, _ = envs.reset(seed=[2, 3])
    buf = GAEBuffer(1, (), steps_per_env=5, num_envs=2, gamma=gamma, lam=1.0, act_dtype=np.int64)
    close_paths = PathCloser(buf, ObservationCritic(), CPU)
    for t in range(5):
        values = ObservationCritic().v(torch.as_tensor(obs)).numpy()
        next_obs, rew, terminated, truncated, info = envs.step(np.zeros(2, dtype=np.int64))
        buf.store(obs, np.zeros(2), rew, values, np.zeros(2))
        close_paths(next_obs, info, terminated, truncated, t == 4)
        obs = next_obs
    # Copy 0: terminal after 3 steps (1.75, 1.5, 1), then 2 steps cut off by the epoch at obs 0.2.
    # Copy 1: truncated after 4 steps at obs 0.4 (V = 40), then 1 step cut off at obs 0.1 (V = 10).
    cut_0, trunc_1, cut_1 = 1 + gamma * 20.0, 1 + gamma * 40.0, 1 + gamma * 10.0
    np.testing.assert_allclose(buf.ret_buf[:, 0], [1.75, 1.5, 1.0, 1 + gamma * cut_0, cut_0])
    expected_1 = [1 + gamma * (1 + gamma * (1 + gamma * trunc_1)), 1 + gamma * (1 + gamma * trunc_1)]
    np.testing.assert_allclose(buf.ret_buf[:, 1], [*expected_1, 1 + gamma * trunc_1, trunc_1, cut_1])
    buf.get()  # every path was closed


def test_cached_encoder_features_are_computed_once_and_travel_with_the_batch():
    obs_space = spaces.Box(0, 255, (1, 12, 12), np.uint8)
    ac = MLPActorCritic(obs_space, spaces.Discrete(2), encoder="small", hidden_sizes=(8,))
    obs = torch.randint(0, 256, (5, 1, 12, 12), dtype=torch.uint8)
    data = dict(obs=obs, ret=torch.arange(5.0))
    critic_data = with_cached_encoder_features(ac, data)
    assert "features" not in data  # the caller's batch is left as it was
    assert torch.equal(critic_data["features"], ac.encoder(obs).detach())
    assert torch.equal(ac.v(obs, critic_data["features"]), ac.v(obs))
    # Nothing to cache: vector observations, or a critic with an encoder of its own.
    vector = dict(obs=torch.zeros(5, 3), ret=torch.zeros(5))
    assert (
        with_cached_encoder_features(MLPActorCritic(spaces.Box(-1, 1, (3,)), spaces.Discrete(2)), vector)
        is vector
    )
    own = MLPActorCritic(obs_space, spaces.Discrete(2), encoder="small", share_encoder=False)
    assert with_cached_encoder_features(own, data) is data


BUFFER_ARRAYS = ("obs_buf", "act_buf", "rew_buf", "val_buf", "logp_buf", "adv_buf", "ret_buf")


def run_vpg_seeing_each_batch(out, env_id="CartPole-v1", vector_env_fn=None, **kwargs):
    """A short VPG run; the buffer's arrays as each update found them, what the logger was given under
    ``VVals``, progress.txt (Time aside) and torch's RNG state after the run."""
    import spinrl.algos.vpg as vpg_module
    from spinrl.record.logger import EpochLogger
    from spinrl.results.runs import read_progress

    batches, vvals = [], []
    get, store = GAEBuffer.get, EpochLogger.store

    def get_and_see(self, device="cpu"):
        batches.append({name: getattr(self, name).copy() for name in BUFFER_ARRAYS})
        return get(self, device)

    def store_and_see(self, **kw):
        if "VVals" in kw:
            vvals.append(kw["VVals"])
        return store(self, **kw)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(GAEBuffer, "get", get_and_see)
        patch.setattr(EpochLogger, "store", store_and_see)
        if vector_env_fn is not None:
            patch.setattr(vpg_module, "make_vector_env", vector_env_fn)
        vpg_module.vpg(env_id, logger_kwargs=dict(output_dir=str(out), quiet=True), **kwargs)
    progress = {k: v for k, v in read_progress(out / "progress.txt").items() if k != "Time"}
    return batches, vvals, progress, torch.get_rng_state()


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_collection_with_one_env_copy_fills_the_buffer_as_sync_vector_env_did(tmp_path, env_id):
    """One env copy goes through spinrl's lean single-copy env; the general SyncVectorEnv must give
    the same epochs of VPG bit for bit: buffer contents, GAE, logged statistics and torch's RNG state
    after."""
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode

    from spinrl.envs.make import make_env
    from spinrl.envs.vector import SingleCopyVectorEnv, make_vector_env

    def lean(env_fn, num_envs, max_ep_len, asynchronous=False):
        envs = make_vector_env(env_fn, num_envs, max_ep_len, asynchronous)
        assert type(envs) is SingleCopyVectorEnv
        return envs

    def sync(env_fn, num_envs, max_ep_len, asynchronous=False):
        return gym.vector.SyncVectorEnv(
            [lambda: make_env(env_fn, max_ep_len)], autoreset_mode=AutoresetMode.SAME_STEP
        )

    # 150 steps per epoch and episodes of at most 25: episodes end by time limit (and, on CartPole, by
    # falls) and run on across the epoch's end.
    kw = dict(env_id=env_id, steps_per_epoch=150, epochs=2, max_ep_len=25, train_v_iters=2)
    lean_run = run_vpg_seeing_each_batch(tmp_path / "lean", vector_env_fn=lean, **kw)
    sync_run = run_vpg_seeing_each_batch(tmp_path / "sync", vector_env_fn=sync, **kw)
    (batches_l, vvals_l, progress_l, rng_l), (batches_r, vvals_r, progress_r, rng_r) = lean_run, sync_run
    assert len(batches_l) == len(batches_r) == 2
    for batch_l, batch_r in zip(batches_l, batches_r):
        for name in BUFFER_ARRAYS:
            np.testing.assert_array_equal(batch_l[name], batch_r[name], err_msg=name)
    for v_l, v_r in zip(vvals_l, vvals_r):
        np.testing.assert_array_equal(v_l, v_r)
    assert progress_l.keys() == progress_r.keys()
    for key in progress_r:
        np.testing.assert_array_equal(progress_l[key], progress_r[key], err_msg=key)
    assert progress_r["EpLen"].min() > 0  # episodes ended in every epoch
    assert torch.equal(rng_l, rng_r)


def test_vvals_are_logged_once_per_epoch_as_the_values_stored(tmp_path):
    """The critic's estimates reach the logger as one array per epoch: the buffer's value column."""
    batches, vvals, _, _ = run_vpg_seeing_each_batch(
        tmp_path, steps_per_epoch=120, epochs=2, num_envs=3, train_v_iters=1
    )
    assert len(vvals) == len(batches) == 2
    for logged, batch in zip(vvals, batches):
        assert logged.shape == (40, 3)
        np.testing.assert_array_equal(logged, batch["val_buf"])
