import numpy as np
import pytest
import torch

from spinrl.buffers.gae import GAEBuffer, discount_cumsum
from spinrl.common.errors import UserError


@pytest.mark.parametrize("n", [0, 1, 5, 40])
def test_discount_cumsum_is_the_float64_recursion_bit_for_bit(n):
    """The sums run on Python floats; they must be exactly the recursion done with NumPy float64."""
    x = (np.random.default_rng(n).normal(size=n) * 10).astype(np.float32)
    for discount in (0.99, 0.99 * 0.95, np.float32(0.9)):
        expected = np.zeros(n)
        running = np.float64(0.0)
        for t in reversed(range(n)):
            running = np.float64(x[t]) + np.float64(discount) * running
            expected[t] = running
        got = discount_cumsum(x, discount)
        assert got.dtype == np.float64 and got.shape == (n,)
        assert got.tobytes() == expected.tobytes()


def test_discount_cumsum_matches_hand_computation():
    x = np.array([1.0, 2.0, 3.0])
    # [1 + .5*2 + .25*3, 2 + .5*3, 3]
    np.testing.assert_allclose(discount_cumsum(x, 0.5), [2.75, 3.5, 3.0])
    np.testing.assert_allclose(discount_cumsum(x, 1.0), [6.0, 5.0, 3.0])


def _fill(buf, rews, vals, env_index=0, num_envs=1):
    for r, v in zip(rews, vals):
        row = np.zeros(num_envs)
        row[env_index] = r
        vrow = np.zeros(num_envs)
        vrow[env_index] = v
        buf.store(np.zeros((num_envs, 2)), np.zeros(num_envs), row, vrow, np.zeros(num_envs))


def test_gae_terminated_and_truncated_paths_by_hand():
    gamma, lam = 0.9, 0.8
    buf = GAEBuffer(obs_dim=2, act_shape=(), steps_per_env=5, gamma=gamma, lam=lam)
    # Episode 1: 3 steps, terminated -> last value 0.
    _fill(buf, [1.0, 1.0, 1.0], [0.5, 0.4, 0.3])
    buf.finish_path(0, last_val=0.0)
    # Episode 2: 2 steps, truncated by a time limit -> bootstrap from V(s_T) = 2.0.
    _fill(buf, [1.0, 1.0], [0.2, 0.1])
    buf.finish_path(0, last_val=2.0)

    # Hand computation, episode 1: deltas d_t = r_t + g V_{t+1} - V_t.
    d = [1 + gamma * 0.4 - 0.5, 1 + gamma * 0.3 - 0.4, 1 + gamma * 0.0 - 0.3]
    gl = gamma * lam
    adv1 = [d[0] + gl * d[1] + gl**2 * d[2], d[1] + gl * d[2], d[2]]
    ret1 = [1 + gamma + gamma**2, 1 + gamma, 1.0]
    # Episode 2 bootstraps: the value 2.0 stands in for the rewards after the cut.
    d2 = [1 + gamma * 0.1 - 0.2, 1 + gamma * 2.0 - 0.1]
    adv2 = [d2[0] + gl * d2[1], d2[1]]
    ret2 = [1 + gamma * 1 + gamma**2 * 2.0, 1 + gamma * 2.0]

    np.testing.assert_allclose(buf.adv_buf[:, 0], adv1 + adv2, rtol=1e-6)
    np.testing.assert_allclose(buf.ret_buf[:, 0], ret1 + ret2, rtol=1e-6)


def test_get_normalises_advantages_and_resets():
    buf = GAEBuffer(obs_dim=2, act_shape=(), steps_per_env=4, gamma=0.99, lam=0.95)
    _fill(buf, [1.0, -2.0, 3.0, 0.5], [0.0, 0.1, 0.2, 0.3])
    buf.finish_path(0, 0.0)
    data = buf.get()
    assert data["adv"].shape == (4,)
    assert abs(data["adv"].mean().item()) < 1e-6
    assert abs(data["adv"].std(unbiased=False).item() - 1.0) < 1e-4
    assert buf.ptr == 0  # ready for the next epoch


def test_get_refuses_unfinished_paths():
    buf = GAEBuffer(obs_dim=2, act_shape=(), steps_per_env=2)
    _fill(buf, [1.0, 1.0], [0.0, 0.0])
    with pytest.raises(AssertionError):
        buf.get()


def test_vectorised_gae_equals_single_env_reference():
    """Two env copies with interleaved episode ends give the same advantages as each alone."""
    rng = np.random.default_rng(0)
    T = 7
    rews = rng.normal(size=(T, 2))
    vals = rng.normal(size=(T, 2))
    # Copy 0: terminates after step 2, then is cut by the epoch end (bootstrap 0.7).
    # Copy 1: truncated (time limit) after step 4 with V(final obs) = 1.5, then cut (bootstrap -0.3).
    ends = {0: [(3, 0.0), (7, 0.7)], 1: [(5, 1.5), (7, -0.3)]}

    vec = GAEBuffer(obs_dim=1, act_shape=(), steps_per_env=T, num_envs=2, gamma=0.97, lam=0.9)
    for t in range(T):
        vec.store(np.zeros((2, 1)), np.zeros(2), rews[t], vals[t], np.zeros(2))
        for i in range(2):
            for end, last in ends[i]:
                if end == t + 1:
                    vec.finish_path(i, last)

    for i in range(2):
        ref = GAEBuffer(obs_dim=1, act_shape=(), steps_per_env=T, num_envs=1, gamma=0.97, lam=0.9)
        for t in range(T):
            ref.store(np.zeros((1, 1)), np.zeros(1), rews[t, i : i + 1], vals[t, i : i + 1], np.zeros(1))
            for end, last in ends[i]:
                if end == t + 1:
                    ref.finish_path(0, last)
        np.testing.assert_allclose(vec.adv_buf[:, i], ref.adv_buf[:, 0], rtol=1e-6)
        np.testing.assert_allclose(vec.ret_buf[:, i], ref.ret_buf[:, 0], rtol=1e-6)


def test_get_returns_tensors_on_device():
    buf = GAEBuffer(obs_dim=3, act_shape=(2,), steps_per_env=2, num_envs=2)
    for _ in range(2):
        buf.store(np.ones((2, 3)), np.ones((2, 2)), np.ones(2), np.zeros(2), np.zeros(2))
    buf.finish_path(0, 0.0)
    buf.finish_path(1, 0.0)
    data = buf.get("cpu")
    assert data["obs"].shape == (4, 3) and data["act"].shape == (4, 2)
    assert data["obs"].dtype == torch.float32


def test_nbytes_for_counts_every_array():
    buf = GAEBuffer(obs_dim=3, act_shape=(2,), steps_per_env=5, num_envs=4)
    arrays = (buf.obs_buf, buf.act_buf, buf.rew_buf, buf.val_buf, buf.logp_buf, buf.adv_buf, buf.ret_buf)
    assert GAEBuffer.nbytes_for(3, (2,), 20) == sum(a.nbytes for a in arrays)
    assert GAEBuffer.nbytes_for(3, (), 20, np.int64) == 20 * (3 * 4 + 8 + 5 * 4)


def test_a_buffer_larger_than_memory_is_refused_before_allocating(monkeypatch):
    monkeypatch.setattr("spinrl.common.checks.available_memory", lambda: 2 * 10**9)
    with pytest.raises(
        UserError, match=r"100000000000 steps x 1 env copies would need 4400\.0 GB.*steps_per_epoch"
    ):
        GAEBuffer(obs_dim=4, act_shape=(), steps_per_env=10**11, act_dtype=np.int64)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_collection_with_one_env_copy_fills_the_buffer_as_sync_vector_env_did(tmp_path, env_id):
    """One env copy goes through spinrl's lean single-copy env; the general SyncVectorEnv must give
    the same epoch bit for bit: buffer contents, GAE, logged statistics and torch's RNG state after."""
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode

    from spinrl.envs.make import make_env
    from spinrl.envs.vector import SingleCopyVectorEnv, make_vector_env
    from spinrl.nets.actor_critic import MLPActorCritic
    from spinrl.record.logger import EpochLogger
    from spinrl.training.onpolicy import TrajectoryCollector

    def collect(envs, out):
        torch.manual_seed(0)
        ac = MLPActorCritic(envs.single_observation_space, envs.single_action_space)
        act_space = envs.single_action_space
        buf = GAEBuffer(
            envs.single_observation_space.shape[0], act_space.shape, 150, act_dtype=act_space.dtype
        )
        logger = EpochLogger(output_dir=str(out), quiet=True, tensorboard=False)
        collector = TrajectoryCollector(envs, ac, buf, logger, torch.device("cpu"))
        collector.collect(150, reset_seeds=[3])
        buf.get()
        collector.collect(150)  # the episodes go on across the epoch's end
        return buf, logger.epoch_dict, torch.get_rng_state()

    lean = make_vector_env(env_id, num_envs=1, max_ep_len=25)
    ref = gym.vector.SyncVectorEnv([lambda: make_env(env_id, 25)], autoreset_mode=AutoresetMode.SAME_STEP)
    assert type(lean) is SingleCopyVectorEnv
    buf_l, logged_l, rng_l = collect(lean, tmp_path / "lean")
    buf_r, logged_r, rng_r = collect(ref, tmp_path / "ref")
    for name in ("obs_buf", "act_buf", "rew_buf", "val_buf", "logp_buf", "adv_buf", "ret_buf"):
        np.testing.assert_array_equal(getattr(buf_l, name), getattr(buf_r, name), err_msg=name)
    assert logged_l.keys() == logged_r.keys() == {"EpRet", "EpLen", "VVals"}
    for key in logged_r:
        np.testing.assert_array_equal(
            np.concatenate([np.ravel(v) for v in logged_l[key]]),
            np.concatenate([np.ravel(v) for v in logged_r[key]]),
        )
    assert len(logged_r["EpLen"]) > 5  # episodes ended (time limit and, on CartPole, falls) in both
    assert torch.equal(rng_l, rng_r)


def test_vvals_are_logged_once_per_epoch_as_the_values_stored(tmp_path):
    """The critic's estimates reach the logger as one array per epoch: the buffer's value column."""
    from spinrl.envs.vector import make_vector_env
    from spinrl.nets.actor_critic import MLPActorCritic
    from spinrl.record.logger import EpochLogger
    from spinrl.training.onpolicy import TrajectoryCollector

    envs = make_vector_env("CartPole-v1", num_envs=3)
    ac = MLPActorCritic(envs.single_observation_space, envs.single_action_space)
    buf = GAEBuffer(4, (), 40, 3, act_dtype=np.int64)
    logger = EpochLogger(output_dir=str(tmp_path), quiet=True, tensorboard=False)
    TrajectoryCollector(envs, ac, buf, logger, torch.device("cpu")).collect(40, reset_seeds=[0, 1, 2])
    (vvals,) = logger.epoch_dict["VVals"]
    assert vvals.shape == (40, 3)
    np.testing.assert_array_equal(vvals, buf.val_buf)
