"""The shared replay buffer: each observation stored once, right next observations, uniform sampling."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from spinrl.buffers.replay import ReplayBuffer


def _fill(
    buf: ReplayBuffer,
    num_steps: int,
    num_envs: int,
    end_every: int = 4,
    rng=None,
    offset: int = 0,
    open_end=False,
):
    """Store a scripted stream; observations encode (env copy, episode, step) so pairs can be checked.

    ``offset`` is added to every observation (a restarted env: observations never seen before); with
    ``open_end`` the last step ends no episode, so every copy's stream is open afterwards.
    Returns the transitions (obs[0], obs2[0], done) that were stored, in order.
    """
    rng = rng or np.random.default_rng(0)
    episode = np.zeros(num_envs, dtype=np.int64)
    step = np.zeros(num_envs, dtype=np.int64)
    stored = []

    def obs_of(i):
        return np.array([offset + 1000 * i + 100 * episode[i] + step[i], 0.5], dtype=np.float32)

    for n in range(num_steps):
        obs = np.stack([obs_of(i) for i in range(num_envs)])
        step += 1
        ended = rng.random(num_envs) < 1 / end_every
        if open_end and n == num_steps - 1:
            ended[:] = False
        terminated = ended & (rng.random(num_envs) < 0.5)
        next_obs = np.stack([obs_of(i) for i in range(num_envs)])  # the real last obs if ended
        act = rng.uniform(-1, 1, (num_envs, 2)).astype(np.float32)
        buf.store(obs, act, obs[:, 0] / 10, next_obs, terminated, ended)
        for i in range(num_envs):
            stored.append((obs[i, 0], next_obs[i, 0], float(terminated[i])))
            if ended[i]:
                episode[i] += 1
                step[i] = 0
    return stored


@pytest.mark.parametrize("num_envs", [1, 3])
def test_every_sample_is_a_stored_transition_with_its_real_next_obs(num_envs):
    torch.manual_seed(0)
    buf = ReplayBuffer(obs_dim=2, act_shape=(2,), size=60 * num_envs, num_envs=num_envs)
    stored = _fill(buf, 200, num_envs)  # wraps around the ring several times
    recent = set(stored[-40 * num_envs :])  # surely still in the buffer
    everything = set(stored)
    batch = buf.sample_batch(4000)
    assert (
        batch["obs"].shape == (4000, 2)
        and batch["act"].shape == (4000, 2)
        and batch["done"].dtype == torch.float32
    )
    seen = set()
    for o, o2, d, r in zip(batch["obs"][:, 0], batch["obs2"][:, 0], batch["done"], batch["rew"]):
        key = (float(o), float(o2), float(d))
        assert key in everything, f"sampled a transition never stored: {key}"
        assert float(r) == pytest.approx(float(o) / 10)
        seen.add(key)
    # Uniform over what is stored: with 4000 draws every recent transition shows up.
    assert recent <= seen
    assert len(buf) <= buf.rows * num_envs


def test_terminated_and_truncated_are_stored_apart():
    buf = ReplayBuffer(obs_dim=1, act_shape=(), size=10, act_dtype=torch.int64)
    s = lambda x: np.array([[x]], dtype=np.float32)  # noqa: E731
    f = np.array([False])
    t = np.array([True])
    buf.store(s(0), np.array([1]), np.array([0.0]), s(1), f, f)  # 0 -> 1
    buf.store(s(1), np.array([0]), np.array([0.0]), s(2), f, t)  # truncated at 2: bootstrap from 2
    buf.store(s(10), np.array([1]), np.array([1.0]), s(11), t, t)  # terminated at 11
    buf.store(s(20), np.array([0]), np.array([0.0]), s(21), f, f)
    pairs = {}
    batch = buf.sample_batch(500)
    for o, o2, d in zip(batch["obs"][:, 0].tolist(), batch["obs2"][:, 0].tolist(), batch["done"].tolist()):
        pairs[o] = (o2, d)
    assert pairs == {0: (1, 0.0), 1: (2, 0.0), 10: (11, 1.0), 20: (21, 0.0)}
    assert len(buf) == 4 and buf.steps_stored == 4
    # Rows: 0 1 [2] 10 [11] 20 [21]: the final observations 2 and 11 have rows of their own.
    assert buf.obs_buf[:7, 0, 0].tolist() == [0, 1, 2, 10, 11, 20, 21]
    assert buf.valid[:7, 0].tolist() == [True, True, False, True, False, True, False]


def test_state_dict_saves_only_the_filled_part_and_loads_weights_only():
    torch.manual_seed(0)
    buf = ReplayBuffer(obs_dim=2, act_shape=(2,), size=1000, num_envs=2)
    _fill(buf, 30, 2)
    state = buf.state_dict()
    assert state["obs"].shape[0] < 40  # not the 500 preallocated rows
    f = io.BytesIO()
    torch.save(state, f)
    f.seek(0)
    loaded = torch.load(f, weights_only=True)
    other = ReplayBuffer(obs_dim=2, act_shape=(2,), size=1000, num_envs=2)
    other.load_state_dict(loaded)
    torch.manual_seed(1)
    a = buf.sample_batch(64)
    torch.manual_seed(1)
    b = other.sample_batch(64)
    for k in a:
        assert torch.equal(a[k], b[k])
    # Streams still open in the saved buffer are closed (see the next test); the rest is as it was.
    assert other.steps_stored == buf.steps_stored
    assert np.array_equal(other.ptr, (buf.ptr + buf.open_streams()) % buf.rows)


@pytest.mark.parametrize("num_envs", [1, 3])
def test_saved_mid_stream_then_loaded_and_refilled_samples_only_real_transitions(num_envs):
    """The resume rule: a run saved mid-episode restarts its env copies, so the loaded buffer must
    keep each copy's last s' and begin a new stream after it, while saving leaves the live buffer
    (and so the uninterrupted run) exactly as it was."""
    torch.manual_seed(0)
    buf = ReplayBuffer(obs_dim=2, act_shape=(2,), size=40 * num_envs, num_envs=num_envs)
    before = _fill(buf, 70, num_envs, open_end=True)  # wraps around; every stream open at the save
    assert buf.open_streams().all()
    live = {k: v.clone() for k, v in vars(buf).items() if torch.is_tensor(v)}
    ptr = buf.ptr.copy()

    state = buf.state_dict()
    assert np.array_equal(buf.ptr, ptr) and buf.open_streams().all()  # saving changed nothing live
    for k, v in live.items():
        assert torch.equal(getattr(buf, k), v), k

    loaded = ReplayBuffer(obs_dim=2, act_shape=(2,), size=40 * num_envs, num_envs=num_envs)
    loaded.load_state_dict(state)
    assert not loaded.open_streams().any()
    # The restarted env copies store new episodes (observations offset by 10000: never seen before).
    after = _fill(loaded, 10, num_envs, rng=np.random.default_rng(1), offset=10000)

    real = set(before) | set(after)
    last_before_save = set(before[-num_envs:])  # each copy's transition whose s' waited at row ptr
    seen = set()
    batch = loaded.sample_batch(6000)
    for o, o2, d in zip(batch["obs"][:, 0].tolist(), batch["obs2"][:, 0].tolist(), batch["done"].tolist()):
        assert (o, o2, d) in real, f"sampled a pair that never happened: {(o, o2, d)}"
        seen.add((o, o2, d))
    assert last_before_save <= seen  # still there, with its real s'
    assert set(after) <= seen


def test_humanoid_million_step_buffer_stays_under_two_gigabytes():
    # The meta device allocates nothing: only shapes and dtypes, which is what memory depends on.
    buf = ReplayBuffer(obs_dim=348, act_shape=(17,), size=int(1e6), device="meta")
    assert buf.nbytes() < 2e9
    assert buf.nbytes() == pytest.approx(1e6 * (348 * 4 + 17 * 4 + 4 + 1 + 1), rel=1e-6)


def test_torch_write_path_used_on_gpus_stores_the_same():
    # On a GPU store() writes with torch indexing instead of NumPy views; force that path on the CPU.
    a = ReplayBuffer(obs_dim=2, act_shape=(2,), size=40, num_envs=2)
    b = ReplayBuffer(obs_dim=2, act_shape=(2,), size=40, num_envs=2)
    b._np = None
    _fill(a, 50, 2, rng=np.random.default_rng(3))
    _fill(b, 50, 2, rng=np.random.default_rng(3))
    for name in ("obs_buf", "act_buf", "rew_buf", "term_buf", "valid"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
