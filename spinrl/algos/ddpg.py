"""Deep Deterministic Policy Gradient: Q-learning with a learned argmax, for continuous actions.

Lillicrap et al. 2016, "Continuous control with deep reinforcement learning",
https://arxiv.org/abs/1509.02971; Silver et al. 2014, "Deterministic Policy Gradient Algorithms".
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import numpy as np
import torch
from gymnasium import spaces
from torch.optim import Adam

from spinrl.checkpoint import Checkpointer
from spinrl.envs import env_name_of, env_seeds, obs_dim_of
from spinrl.offpolicy import (
    BufferCheckpoint,
    UpdateStats,
    collect_and_update,
    finish_epoch,
    frozen,
    log_interaction_columns,
    polyak_update,
    run_test_episodes,
    seeds_for_test_episodes,
    start_run,
)
from spinrl.offpolicy_nets import MLPActorCritic
from spinrl.onpolicy import steps_per_env_for
from spinrl.replay import ReplayBuffer
from spinrl.runtime import check_hyperparameters


def ddpg(
    env_fn: Callable | str,
    actor_critic: Callable = MLPActorCritic,
    ac_kwargs: dict | None = None,
    seed: int = 0,
    steps_per_epoch: int = 4000,
    epochs: int = 100,
    replay_size: int = int(1e6),
    gamma: float = 0.99,
    polyak: float = 0.995,
    pi_lr: float = 1e-3,
    q_lr: float = 1e-3,
    batch_size: int = 100,
    start_steps: int = 10000,
    update_after: int = 1000,
    update_every: int = 50,
    act_noise: float = 0.1,
    num_test_episodes: int = 10,
    max_ep_len: int = 1000,
    logger_kwargs: dict | None = None,
    save_freq: int = 1,
    resume: bool = False,
    num_envs: int = 1,
    device: str = "auto",
    save_buffer: bool = False,
) -> MLPActorCritic:
    """Deep Deterministic Policy Gradient (DDPG)

    Args:
        env_fn: A Gymnasium environment id (e.g. "Pendulum-v1"), or a function that creates a copy
            of the environment. The environment must have a Box action space with finite bounds.
        actor_critic: The constructor method for a PyTorch Module with an ``act`` method, a ``pi``
            module and a ``q`` module (see spinrl.offpolicy_nets.MLPActorCritic for the shapes they
            return). ``pi(obs)`` returns the deterministic action normalised to [-1, 1];
            ``q(obs, act)`` returns the Q-values, shape (1, batch). Built as ``actor_critic(observation_space, action_space,
            **ac_kwargs)``.
        ac_kwargs: Any kwargs appropriate for the actor_critic you provided to DDPG, e.g.
            hidden_sizes=(256,256), activation="ReLU".
        seed: Seed for the random number generators (Python, NumPy, torch and every env copy).
        steps_per_epoch: Number of steps of interaction (state-action pairs) for the agent and the
            environment in each epoch, summed over all env copies.
        epochs: Number of epochs to run and train agent.
        replay_size: Maximum length of replay buffer (observation rows; see spinrl.replay).
        gamma: Discount factor. (Always between 0 and 1.)
        polyak: Interpolation factor in polyak averaging for target networks:
            theta_targ <- polyak * theta_targ + (1 - polyak) * theta. (Always between 0 and 1,
            usually close to 1.)
        pi_lr: Learning rate for policy.
        q_lr: Learning rate for Q-networks.
        batch_size: Minibatch size for SGD.
        start_steps: Number of steps for uniform-random action selection, before running real
            policy. Helps exploration.
        update_after: Number of env interactions to collect before starting to do gradient
            descent updates. Ensures replay buffer is full enough for useful updates.
        update_every: Number of env interactions that should elapse between gradient descent
            updates. Note: Regardless of how long you wait between updates, the ratio of env
            steps to gradient steps is locked to 1.
        act_noise: Stddev for Gaussian exploration noise added to policy at training time, in
            units of half the action range (for bounds [-1, 1] the same as Spinning Up's).
        num_test_episodes: Number of episodes to test the deterministic policy at the end of each
            epoch, on a separate, separately seeded env.
        max_ep_len: Maximum length of trajectory / episode / rollout; reaching it is a truncation
            (bootstrapped), never a terminal. The env's own time limit applies when it is shorter.
        logger_kwargs: Keyword args for EpochLogger (output_dir, exp_name).
        save_freq: How often (in terms of gap between epochs) to save a checkpoint; the last epoch
            is always saved.
        resume: Continue the run in logger_kwargs' output_dir from its last checkpoint.
        num_envs: Number of environment copies stepped together (vectorised).
        device: Where the networks and the replay buffer live: "auto" (CUDA if available), "cpu"
            or "cuda".
        save_buffer: Also save the replay buffer (its filled part) in each checkpoint, so that
            resume continues exactly; without it, a resumed run refills the buffer, starting with
            random actions. Large: up to 1.5 GB per save for a full Humanoid buffer.

    Returns:
        The trained actor-critic.
    """
    check_hyperparameters(locals())
    ac_kwargs = dict(ac_kwargs or {})
    config = dict(locals(), algo="ddpg", env_name=env_name_of(env_fn))

    # Set up the logger, seeds, device, the env copies and a separate env for test episodes.
    logger, device, envs, test_env = start_run(config, action_spaces=(spaces.Box,))
    obs_space, act_space = envs.single_observation_space, envs.single_action_space

    # Create actor-critic module and target networks; the targets only move by Polyak averaging.
    ac = actor_critic(obs_space, act_space, **ac_kwargs).to(device)
    ac_targ = copy.deepcopy(ac).requires_grad_(False)
    q_params = list(ac.q.parameters())
    params, targ_params = list(ac.parameters()), list(ac_targ.parameters())

    # Experience buffer.
    buf = ReplayBuffer(obs_dim_of(obs_space), act_space.shape, replay_size, num_envs, device=device)

    # Count variables.
    var_counts = tuple(sum(p.numel() for p in m.parameters()) for m in (ac.pi, ac.q))
    logger.log_message(f"Number of parameters: \t pi: {var_counts[0]}, \t q: {var_counts[1]}")

    def compute_loss_q(data):
        """Mean-squared Bellman error against targets from the target networks (DDPG paper, eq. 4-6)."""
        o, a, r, o2, d = data["obs"], data["act"], data["rew"], data["obs2"], data["done"]
        q = ac.q(o, a)  # (1, B)

        # Bellman backup for Q function: the target actor stands in for argmax_a Q(s', a).
        with torch.no_grad():
            q_pi_targ = ac_targ.q(o2, ac_targ.pi(o2))[0]
            backup = r + gamma * (1 - d) * q_pi_targ

        # MSE loss against Bellman backup.
        loss_q = ((q[0] - backup) ** 2).mean()
        return loss_q, q

    def compute_loss_pi(data):
        """Maximise Q(s, pi(s)): the deterministic policy gradient (DPG paper, Theorem 1)."""
        o = data["obs"]
        q_pi = ac.q(o, ac.pi(o))[0]
        return -q_pi.mean()

    # Set up optimizers for policy and q-function. Fused Adam does the whole parameter update in one
    # kernel per step.
    pi_optimizer = Adam(ac.pi.parameters(), lr=pi_lr, fused=True)
    q_optimizer = Adam(q_params, lr=q_lr, fused=True)
    stats = UpdateStats()

    # Resume from the last checkpoint, if asked to.
    checkpointer = Checkpointer(
        logger.output_dir,
        ac=ac,
        ac_targ=ac_targ,
        pi_optimizer=pi_optimizer,
        q_optimizer=q_optimizer,
        replay_buffer=BufferCheckpoint(buf, save_buffer, logger, start_steps),
    )
    counters = checkpointer.restore(logger) if resume else None
    start_epoch, t = (counters["epoch"], counters["t"]) if counters else (0, 0)
    time_offset = counters["elapsed"] if counters else 0.0

    def update(j: int) -> None:
        data = buf.sample_batch(batch_size)

        # First run one gradient descent step for Q.
        q_optimizer.zero_grad()
        loss_q, q = compute_loss_q(data)
        loss_q.backward()
        q_optimizer.step()

        # Freeze Q-network so you don't waste computational effort computing gradients for it
        # during the policy learning step; then one gradient descent step for pi.
        with frozen(q_params):
            pi_optimizer.zero_grad()
            loss_pi = compute_loss_pi(data)
            loss_pi.backward()
            pi_optimizer.step()

        # Finally, update target networks by polyak averaging.
        polyak_update(targ_params, params, polyak)
        stats.add(LossQ=loss_q, LossPi=loss_pi, QVals=q)

    def get_action(o: np.ndarray) -> np.ndarray:
        """The deterministic action plus Gaussian exploration noise, clipped to [-1, 1]."""
        with torch.inference_mode():
            a = ac.pi(torch.as_tensor(o, device=device)).cpu().numpy()
        a += act_noise * np.random.randn(*a.shape).astype(np.float32)
        return np.clip(a, -1.0, 1.0)

    # Main loop: collect experience in env and update each epoch.
    steps_per_env = steps_per_env_for(steps_per_epoch, num_envs)
    start_time = time.time()
    logger.set_status("running", start_epoch, epochs)
    for epoch in range(start_epoch, epochs):
        # Collect experience and update. Unlike Spinning Up, the env copies restart at each epoch
        # start, seeded from (seed, epoch): that is what lets --resume continue exactly.
        t = collect_and_update(
            envs, buf, logger, get_action, update, steps_per_env, env_seeds(seed, 0, epoch, num_envs), t,
            start_steps=start_steps, update_after=update_after, update_every=update_every,
        )  # fmt: skip

        # Test the performance of the deterministic version of the agent.
        run_test_episodes(
            test_env, ac, logger, seeds_for_test_episodes(seed, epoch, num_test_episodes), device
        )

        # Log info about epoch.
        stats.flush(logger, epoch)
        log_interaction_columns(logger, epoch, t)
        logger.log_tabular("QVals", with_min_and_max=True)
        logger.log_tabular("LossPi", average_only=True)
        logger.log_tabular("LossQ", average_only=True)
        finish_epoch(
            logger, checkpointer, epoch, epochs, save_freq, time_offset + time.time() - start_time, t
        )

    logger.set_status("finished", epochs, epochs)
    envs.close()
    test_env.close()
    logger.close()
    return ac


if __name__ == "__main__":
    import sys

    from spinrl.run import console_main

    sys.argv = [sys.argv[0], "ddpg", *sys.argv[1:]]
    console_main()
