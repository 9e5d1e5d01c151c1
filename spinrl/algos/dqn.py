"""Deep Q-Networks with double-Q targets, for Discrete action spaces: DDPG's discrete ancestor.

Mnih et al. 2015, "Human-level control through deep reinforcement learning", Nature 518; van Hasselt,
Guez and Silver 2016, "Deep Reinforcement Learning with Double Q-learning",
https://arxiv.org/abs/1509.06461.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch.optim import Adam

from spinrl.checkpoint import Checkpointer
from spinrl.envs import env_name_of, env_seeds, obs_dim_of
from spinrl.offpolicy import (
    BufferCheckpoint,
    UpdateStats,
    collect_and_update,
    finish_epoch,
    log_interaction_columns,
    polyak_update,
    run_test_episodes,
    seeds_for_test_episodes,
    start_run,
)
from spinrl.offpolicy_nets import MLPQNetwork
from spinrl.onpolicy import steps_per_env_for
from spinrl.replay import ReplayBuffer
from spinrl.runtime import check_hyperparameters


def dqn(
    env_fn: Callable | str,
    actor_critic: Callable = MLPQNetwork,
    ac_kwargs: dict | None = None,
    seed: int = 0,
    steps_per_epoch: int = 4000,
    epochs: int = 100,
    replay_size: int = int(1e6),
    gamma: float = 0.99,
    polyak: float = 0.995,
    q_lr: float = 3e-4,
    batch_size: int = 100,
    start_steps: int = 10000,
    update_after: int = 1000,
    update_every: int = 50,
    epsilon_start: float = 1.0,
    epsilon_end: float = 0.05,
    epsilon_decay_steps: int = 10000,
    num_test_episodes: int = 10,
    max_ep_len: int = 1000,
    logger_kwargs: dict | None = None,
    save_freq: int = 1,
    resume: bool = False,
    num_envs: int = 1,
    device: str = "auto",
    save_buffer: bool = False,
) -> MLPQNetwork:
    """Deep Q-Network (DQN), with double-Q targets and a Polyak-averaged target network.

    DQN and DDPG are two answers to one question: how to learn Q*(s, a) with the Bellman target
    r + gamma * max_a' Q(s', a'). With a few discrete actions, DQN takes the max exactly, over the
    network's one output per action. With continuous actions the max is an optimisation problem, so
    DDPG learns a deterministic actor mu(s) ~ argmax_a Q(s, a) and uses Q(s', mu(s')) instead. The
    rest is shared, here as in spinrl's code: a replay buffer of past transitions, a target network
    moved by Polyak averaging (DQN's original copied it every C steps; averaging is the smooth
    version DDPG introduced), bootstrapping only from non-terminal transitions. Exploration differs:
    epsilon-greedy here, Gaussian action noise in DDPG. Double-Q learning picks a' with the online
    network and evaluates it with the target network, which reduces the max's overestimation bias,
    as TD3's clipped double-Q does for DDPG.

    Args:
        env_fn: A Gymnasium environment id (e.g. "CartPole-v1"), or a function that creates a copy
            of the environment. The environment must have a Discrete action space.
        actor_critic: The constructor method for a PyTorch Module with an ``act`` method (the
            greedy action) and a ``q`` module (see spinrl.offpolicy_nets.MLPQNetwork for the
            shapes it returns): ``q(obs)`` returns Q(s, a) for every action a, shape (1, batch, n).
            Built as ``actor_critic(observation_space, action_space, **ac_kwargs)``.
        ac_kwargs: Any kwargs appropriate for the actor_critic you provided to DQN, e.g.
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
        q_lr: Learning rate for the Q-network (lower than DDPG's: with a max in its target, DQN
            is more prone to oscillate and forget).
        batch_size: Minibatch size for SGD.
        start_steps: Number of steps for uniform-random action selection, before running real
            policy. Helps exploration.
        update_after: Number of env interactions to collect before starting to do gradient
            descent updates. Ensures replay buffer is full enough for useful updates.
        update_every: Number of env interactions that should elapse between gradient descent
            updates. Note: Regardless of how long you wait between updates, the ratio of env
            steps to gradient steps is locked to 1.
        epsilon_start: Probability of a uniform-random action right after start_steps
            (epsilon-greedy exploration).
        epsilon_end: The probability of a random action after the decay. (Between 0 and 1.)
        epsilon_decay_steps: Number of env steps, after start_steps, over which epsilon decreases
            linearly from epsilon_start to epsilon_end.
        num_test_episodes: Number of episodes to test the greedy policy at the end of each
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
        The trained Q-network.
    """
    check_hyperparameters(locals())
    ac_kwargs = dict(ac_kwargs or {})
    config = dict(locals(), algo="dqn", env_name=env_name_of(env_fn))

    # Set up the logger, seeds, device, the env copies and a separate env for test episodes.
    logger, device, envs, test_env = start_run(config, action_spaces=(spaces.Discrete,))
    obs_space, act_space = envs.single_observation_space, envs.single_action_space

    # Create the Q-network and its target network; the target only moves by Polyak averaging.
    ac = actor_critic(obs_space, act_space, **ac_kwargs).to(device)
    ac_targ = copy.deepcopy(ac).requires_grad_(False)
    q_params, q_targ_params = list(ac.q.parameters()), list(ac_targ.q.parameters())

    # Experience buffer: actions are stored as indices 0..n-1.
    buf = ReplayBuffer(obs_dim_of(obs_space), (), replay_size, num_envs, torch.int64, device)
    logger.log_message(f"Number of parameters: \t q: {sum(p.numel() for p in q_params)}")

    def compute_loss_q(data):
        """Huber loss against double-Q targets (DQN paper, Methods; Double DQN paper, eq. 4)."""
        o, a, r, o2, d = data["obs"], data["act"], data["rew"], data["obs2"], data["done"]
        q = ac.q(o)[0].gather(-1, a.unsqueeze(-1)).squeeze(-1)  # Q(s, a), shape (B,)

        # Bellman backup: the online network picks a', the target network evaluates it.
        with torch.no_grad():
            a2 = ac.q(o2)[0].argmax(-1, keepdim=True)
            q_targ = ac_targ.q(o2)[0].gather(-1, a2).squeeze(-1)
            backup = r + gamma * (1 - d) * q_targ

        # The Huber loss is DQN's clipping of the error term to [-1, 1] (its gradient).
        loss_q = F.smooth_l1_loss(q, backup)
        return loss_q, q

    # Fused Adam does the whole parameter update in one kernel per step.
    q_optimizer = Adam(q_params, lr=q_lr, fused=True)
    stats = UpdateStats()

    # Resume from the last checkpoint, if asked to.
    checkpointer = Checkpointer(
        logger.output_dir,
        ac=ac,
        ac_targ=ac_targ,
        q_optimizer=q_optimizer,
        replay_buffer=BufferCheckpoint(buf, save_buffer, logger, start_steps),
    )
    counters = checkpointer.restore(logger) if resume else None
    start_epoch, t = (counters["epoch"], counters["t"]) if counters else (0, 0)
    time_offset = counters["elapsed"] if counters else 0.0

    def update(j: int) -> None:
        data = buf.sample_batch(batch_size)

        # One gradient descent step for Q.
        q_optimizer.zero_grad()
        loss_q, q = compute_loss_q(data)
        loss_q.backward()
        q_optimizer.step()

        # Then update the target network by polyak averaging.
        polyak_update(q_targ_params, q_params, polyak)
        stats.add(LossQ=loss_q, QVals=q)

    def epsilon() -> float:
        """The exploration rate: linear decay over epsilon_decay_steps once start_steps are stored
        (the buffer's count, so that a resume without the saved buffer also restarts exploration)."""
        frac = min(1.0, max(0.0, buf.steps_stored - start_steps) / epsilon_decay_steps)
        return epsilon_start + frac * (epsilon_end - epsilon_start)

    def get_action(o: np.ndarray) -> np.ndarray:
        """Epsilon-greedy: argmax_a Q(s, a), replaced by a uniform-random action with probability epsilon."""
        with torch.inference_mode():
            a = ac.q(torch.as_tensor(o, device=device))[0].argmax(-1).cpu().numpy()
        eps = epsilon()
        stats.add(Epsilon=eps)
        explore = np.random.random_sample(a.shape) < eps
        return np.where(explore, np.random.randint(act_space.n, size=a.shape), a)

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
        logger.log_tabular("LossQ", average_only=True)
        logger.log_tabular("Epsilon", average_only=True)
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

    sys.argv = [sys.argv[0], "dqn", *sys.argv[1:]]
    console_main()
