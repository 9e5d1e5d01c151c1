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


BUFFER_ARRAYS = ("obs_buf", "act_buf", "rew_buf", "val_buf", "logp_buf", "adv_buf", "ret_buf")


def run_vpg_seeing_each_batch(out, env_id="CartPole-v1", vector_env_fn=None, **kwargs):
    """A short VPG run; the buffer's arrays as each update found them, what the logger was given under
    ``VVals``, progress.txt (Time aside) and torch's RNG state after the run."""
    import spinrl.algos.vpg as vpg_module
    from spinrl.record.folder import read_progress
    from spinrl.record.logger import EpochLogger

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

    from spinrl.envs.make import SingleCopyVectorEnv, make_env, make_vector_env

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
