"""The replay buffer for stacked frames, checked against Gymnasium's own FrameStackObservation."""

from __future__ import annotations

import io

import gymnasium as gym
import numpy as np
import pytest
import torch
from image_envs import CounterFrameEnv, DotEnv

from spinrl.buffers.frames import FrameStackReplayBuffer, frame_stack_of, make_replay_buffer
from spinrl.buffers.gae import GAEBuffer
from spinrl.buffers.replay import ReplayBuffer
from spinrl.common.errors import UserError
from spinrl.envs.vector import make_vector_env, real_next_obs


def stacked_env(padding="reset", truncate_prob=0.15, stack=4):
    return lambda: gym.wrappers.FrameStackObservation(
        CounterFrameEnv(truncate_prob=truncate_prob), stack, padding_type=padding
    )


class Recorder:
    """Steps a vector env and stores into a buffer as DQN's loop does; the action stored is the
    transition's serial number, so that a sampled transition can be looked up in ``self.real``."""

    def __init__(self, envs, buf):
        self.envs, self.buf, self.real, self.next_id = envs, buf, {}, 0

    def reset(self, seed):
        self.obs, _ = self.envs.reset(seed=[seed + i for i in range(self.envs.num_envs)])

    def run(self, steps):
        n = self.envs.num_envs
        for _ in range(steps):
            ids = np.arange(self.next_id, self.next_id + n)
            self.next_id += n
            next_obs, rew, terminated, truncated, info = self.envs.step(np.zeros(n, dtype=np.int64))
            ended = terminated | truncated
            reached = real_next_obs(next_obs, ended, info)
            self.buf.store(self.obs, ids, rew, reached, terminated, ended)
            for i in range(n):
                self.real[int(ids[i])] = (self.obs[i].copy(), reached[i].copy(), float(terminated[i]))
            self.obs = next_obs

    def check_samples(self, batch_size=3000) -> set[int]:
        """Every sampled (s, s', done) is exactly what the env gave; returns the serial numbers seen."""
        batch = self.buf.sample_batch(batch_size)
        assert batch["obs"].dtype == torch.uint8 and batch["obs"].shape[1:] == self.obs.shape[1:]
        seen = set()
        for a, o, o2, d in zip(
            batch["act"].tolist(), batch["obs"].numpy(), batch["obs2"].numpy(), batch["done"]
        ):
            obs, next_obs, done = self.real[a]
            assert np.array_equal(o, obs), f"transition {a}: stack {o[:, 0, 0]} != {obs[:, 0, 0]}"
            assert np.array_equal(o2, next_obs), (
                f"transition {a}: next stack {o2[:, 0, 0]} != {next_obs[:, 0, 0]}"
            )
            assert float(d) == done
            seen.add(a)
        return seen


def test_the_frame_stack_is_read_off_the_env_copies():
    envs = make_vector_env(stacked_env(), 2)
    stack = frame_stack_of(envs)
    assert stack.size == 4 and stack.frame_shape == (6, 6) and stack.pad_frame is None
    assert isinstance(make_replay_buffer(envs, 100, torch.int64), FrameStackReplayBuffer)
    zero = frame_stack_of(make_vector_env(stacked_env("zero"), 1))
    assert np.array_equal(zero.pad_frame, np.zeros((6, 6), np.uint8))
    # Images that are not stacks of 2-D frames are stored whole, as uint8.
    plain = make_replay_buffer(make_vector_env(DotEnv, 2), 100, torch.int64)
    assert type(plain) is ReplayBuffer and plain.obs_buf.dtype == torch.uint8
    assert plain.obs_buf.shape == (50, 2, 1, 12, 12)


@pytest.mark.parametrize("num_envs", [1, 3])
@pytest.mark.parametrize("padding", ["reset", "zero"])
def test_sampled_stacks_are_those_frame_stack_observation_gave(padding, num_envs):
    """Across episode ends (terminated and truncated), several wraps of the ring and env copies."""
    torch.manual_seed(0)
    envs = make_vector_env(stacked_env(padding), num_envs)
    buf = make_replay_buffer(envs, 30 * num_envs, torch.int64)
    rec = Recorder(envs, buf)
    rec.reset(seed=0)
    rec.run(100)  # 30 rows per copy: the ring wraps three times
    seen = rec.check_samples()
    # Uniform over what can be sampled: every recent transition shows up; none from a lost row.
    recent = set(range(rec.next_id - 10 * num_envs, rec.next_id))
    assert recent <= seen
    assert min(seen) >= rec.next_id - 30 * num_envs
    assert len(buf) <= 30 * num_envs


def test_stacks_of_a_young_episode_are_padded_as_gymnasium_pads_them():
    envs = make_vector_env(stacked_env("reset", truncate_prob=0.0), 1)
    buf = make_replay_buffer(envs, 100, torch.int64)
    rec = Recorder(envs, buf)
    rec.reset(seed=0)
    rec.run(2)
    first = buf.sample_batch(50)
    firsts = first["obs"][first["act"] == 0][0, :, 0, 0].tolist()
    assert firsts == [0, 0, 0, 0]  # the reset frame repeated
    seconds = first["obs2"][first["act"] == 1][0, :, 0, 0].tolist()
    assert seconds == [0, 0, 1, 2]


def test_saved_and_loaded_for_resume_then_refilled(tmp_path):
    torch.manual_seed(0)
    envs = make_vector_env(stacked_env(truncate_prob=0.0), 2)
    buf = make_replay_buffer(envs, 60, torch.int64)
    rec = Recorder(envs, buf)
    rec.reset(seed=0)
    rec.run(45)  # wraps; episodes of 7 steps: streams are open at the save
    assert buf.open_streams().any()
    live = {k: v.clone() for k, v in vars(buf).items() if torch.is_tensor(v)}
    state = buf.state_dict()
    for k, v in live.items():
        assert torch.equal(getattr(buf, k), v), k  # saving changes nothing live
    f = io.BytesIO()
    torch.save(state, f)
    f.seek(0)
    loaded = make_replay_buffer(envs, 60, torch.int64)
    loaded.load_state_dict(torch.load(f, weights_only=True))
    assert not loaded.open_streams().any()
    rec.buf = loaded
    before = rec.check_samples()
    # The resumed run restarts its env copies: new episodes begin new streams in the loaded buffer.
    rec.reset(seed=100)
    rec.run(10)
    seen = rec.check_samples()
    assert set(range(rec.next_id - 20, rec.next_id)) <= seen and before


def test_a_buffer_of_other_frames_is_not_loaded():
    one = FrameStackReplayBuffer(frame_stack_of(make_vector_env(stacked_env(stack=3), 1)), (), 20)
    two = FrameStackReplayBuffer(frame_stack_of(make_vector_env(stacked_env(stack=4), 1)), (), 20)
    with pytest.raises(ValueError, match="stacks 3 frames, this one 4"):
        two.load_state_dict(one.state_dict())
    with pytest.raises(UserError, match="replay_size=5 is too small for 1 env copies with 4 stacked frames"):
        FrameStackReplayBuffer(frame_stack_of(make_vector_env(stacked_env(), 1)), (), 5)


def test_torch_write_path_used_on_gpus_stores_the_same():
    bufs = []
    for numpy_views in (True, False):
        envs = make_vector_env(stacked_env(), 2)
        buf = make_replay_buffer(envs, 40, torch.int64)
        if not numpy_views:
            buf._np = None
        rec = Recorder(envs, buf)
        rec.reset(seed=3)
        rec.run(30)
        bufs.append(buf)
    for name in ("obs_buf", "act_buf", "rew_buf", "term_buf", "valid", "depth_buf"):
        assert torch.equal(getattr(bufs[0], name), getattr(bufs[1], name)), name


def test_atari_million_transitions_memory():
    # The meta device allocates nothing: only shapes and dtypes, which is what memory depends on.
    envs = make_vector_env(stacked_env(), 1)
    stack = frame_stack_of(envs)._replace(frame_shape=(84, 84))
    buf = FrameStackReplayBuffer(stack, (), int(1e6), 1, torch.int64, "meta")
    assert buf.nbytes() == pytest.approx(1e6 * (84 * 84 + 8 + 4 + 1 + 1 + 1), rel=1e-9)  # ~7.07 GB
    whole = ReplayBuffer((4, 84, 84), (), int(1e6), 1, torch.int64, "meta", torch.uint8)
    assert whole.nbytes() > 3.9 * buf.nbytes()


def test_memory_checks_count_uint8_frames_as_one_byte(monkeypatch):
    # 10k frames of 84x84: 71 MB as uint8, 282 MB as float32; with 100 MB free only uint8 fits.
    monkeypatch.setattr("spinrl.common.checks.available_memory", lambda: 100 * 10**6)
    ReplayBuffer((1, 84, 84), (), 10_000, 1, torch.int64, "cpu", torch.uint8)
    with pytest.raises(UserError, match="replay_size=10000 would need 0.3 GB"):
        ReplayBuffer((1, 84, 84), (), 10_000, 1, torch.int64, "cpu", torch.float32)
    GAEBuffer((1, 84, 84), (), 10_000, act_dtype=np.int64, obs_dtype=np.uint8)
    assert GAEBuffer.nbytes_for((1, 84, 84), (), 10, np.int64, np.uint8) == 10 * (7056 + 8 + 20)


def test_real_atari_frames_across_episode_ends_and_wrap_around():
    ale_py = pytest.importorskip("ale_py")
    gym.register_envs(ale_py)

    def pong():
        env = gym.make("ALE/Pong-v5", frameskip=1)
        return gym.wrappers.FrameStackObservation(gym.wrappers.AtariPreprocessing(env, frame_skip=4), 4)

    torch.manual_seed(0)
    envs = make_vector_env(pong, 2, max_ep_len=25)  # a time limit ends episodes every 25 steps
    assert envs.single_observation_space.shape == (4, 84, 84)
    buf = make_replay_buffer(envs, 2 * 40, torch.int64)
    assert isinstance(buf, FrameStackReplayBuffer)
    rec = Recorder(envs, buf)
    rec.reset(seed=0)
    rec.run(90)  # 40 rows per copy: more than two wraps, three episode ends per copy
    seen = rec.check_samples(2000)
    assert set(range(rec.next_id - 20, rec.next_id)) <= seen
    envs.close()
