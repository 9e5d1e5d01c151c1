"""spinrl.envs.vector: copies made as spinrl.envs.make makes one env, stepped with same-step autoreset."""

from __future__ import annotations

import numpy as np

from spinrl.envs.vector import EpisodeReturns, SingleCopyVectorEnv, env_seeds, make_vector_env, real_next_obs


class _Store:
    def __init__(self):
        self.stored = []

    def store(self, **values):
        self.stored.append(values)


def test_copies_are_prepared_and_an_ended_episode_shows_its_real_last_observation():
    envs = make_vector_env("CartPole-v1", num_envs=2, max_ep_len=3)
    obs, _ = envs.reset(seed=env_seeds(0, 0, 0, 2))
    assert obs.dtype == np.float32 and obs.shape == (2, 4)
    returns, store = EpisodeReturns(2), _Store()
    for _ in range(3):  # the time limit of 3 steps ends both episodes at the third step
        next_obs, rew, terminated, truncated, info = envs.step(np.zeros(2, dtype=np.int64))
        ended = terminated | truncated
        returns.add(rew, ended, store)
    assert ended.all() and truncated.all()
    real = real_next_obs(next_obs, ended, info)
    assert not np.array_equal(real, next_obs)  # next_obs already holds the new episodes' first observations
    assert store.stored == [{"EpRet": 3.0, "EpLen": 3}] * 2
    envs.close()


def test_one_copy_has_the_short_step():
    envs = make_vector_env("CartPole-v1", num_envs=1)
    assert isinstance(envs, SingleCopyVectorEnv)
    envs.close()
