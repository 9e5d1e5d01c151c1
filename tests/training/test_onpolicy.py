"""The on-policy collector (spinrl.training.onpolicy): what one epoch of acting stores and logs.

How it bootstraps at time limits and carries episodes across epochs is checked with scripted envs in
envs/test_make.py; how it ends learning episodes at a lost life, in envs/test_atari.py.
"""

import numpy as np
import pytest
import torch

from spinrl.buffers.gae import GAEBuffer


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
