"""Soft Actor-Critic, with clipped double-Q targets and an optionally learned temperature.

Haarnoja et al. 2018, "Soft Actor-Critic: Off-Policy Maximum Entropy Deep Reinforcement Learning with
a Stochastic Actor", https://arxiv.org/abs/1801.01290, and Haarnoja et al. 2018b, "Soft Actor-Critic
Algorithms and Applications", https://arxiv.org/abs/1812.05905 (the learned temperature).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable

import numpy as np
import torch
from gymnasium import spaces
from torch.optim import Adam

from spinrl.checkpoint import Checkpointer
from spinrl.envs import env_name_of, env_seeds, obs_dim_of
from spinrl.errors import UserError
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
from spinrl.offpolicy_nets import MLPSquashedGaussianActorCritic, Temperature
from spinrl.onpolicy import steps_per_env_for
from spinrl.replay import ReplayBuffer
from spinrl.runtime import check_hyperparameters


def sac(
    env_fn: Callable | str,
    actor_critic: Callable = MLPSquashedGaussianActorCritic,
    ac_kwargs: dict | None = None,
    seed: int = 0,
    steps_per_epoch: int = 4000,
    epochs: int = 100,
    replay_size: int = int(1e6),
    gamma: float = 0.99,
    polyak: float = 0.995,
    lr: float = 1e-3,
    alpha: float | str = 0.2,
    batch_size: int = 100,
    start_steps: int = 10000,
    update_after: int = 1000,
    update_every: int = 50,
    num_test_episodes: int = 10,
    max_ep_len: int = 1000,
    logger_kwargs: dict | None = None,
    save_freq: int = 1,
    resume: bool = False,
    num_envs: int = 1,
    device: str = "auto",
    save_buffer: bool = False,
) -> MLPSquashedGaussianActorCritic:
    """Soft Actor-Critic (SAC)

    Args:
        env_fn: A Gymnasium environment id (e.g. "Pendulum-v1"), or a function that creates a copy
            of the environment. The environment must have a Box action space with finite bounds.
        actor_critic: The constructor method for a PyTorch Module with an ``act`` method, a ``pi``
            module and a ``q`` module holding both Q-functions (see
            spinrl.offpolicy_nets.MLPSquashedGaussianActorCritic for the shapes they return).
            ``pi(obs)`` returns a normalised action in [-1, 1] and its log-likelihood;
            ``q(obs, act)`` returns both Q-values, shape (2, batch). Built as
            ``actor_critic(observation_space, action_space, **ac_kwargs)``.
        ac_kwargs: Any kwargs appropriate for the actor_critic you provided to SAC, e.g.
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
        lr: Learning rate (used for policy, Q-networks and, with alpha="auto", the temperature).
        alpha: Entropy regularization coefficient (inverse of reward scale in the original SAC
            paper), or "auto" to learn it (starting from 1.0) so that the policy's entropy stays
            near the target -dim(A) (Haarnoja et al. 2018b, eq. 18).
        batch_size: Minibatch size for SGD.
        start_steps: Number of steps for uniform-random action selection, before running real
            policy. Helps exploration.
        update_after: Number of env interactions to collect before starting to do gradient
            descent updates. Ensures replay buffer is full enough for useful updates.
        update_every: Number of env interactions that should elapse between gradient descent
            updates. Note: Regardless of how long you wait between updates, the ratio of env
            steps to gradient steps is locked to 1.
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
    if alpha != "auto" and (
        isinstance(alpha, bool) or not isinstance(alpha, int | float) or not math.isfinite(alpha) or alpha < 0
    ):
        raise UserError(f"alpha={alpha!r} is not valid: it must be a number >= 0 or 'auto'")
    ac_kwargs = dict(ac_kwargs or {})
    config = dict(locals(), algo="sac", env_name=env_name_of(env_fn))
    auto_alpha = alpha == "auto"

    # Set up the logger, seeds, device, the env copies and a separate env for test episodes.
    logger, device, envs, test_env = start_run(config, action_spaces=(spaces.Box,))
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    act_dim = act_space.shape[0]

    # Create actor-critic module and target networks.
    ac = actor_critic(obs_space, act_space, **ac_kwargs).to(device)
    ac_targ = copy.deepcopy(ac)
    # Freeze target networks with respect to optimizers (only update via polyak averaging).
    ac_targ.requires_grad_(False)
    q_params, q_targ_params = list(ac.q.parameters()), list(ac_targ.q.parameters())

    # Experience buffer.
    buf = ReplayBuffer(obs_dim_of(obs_space), act_space.shape, replay_size, num_envs, device=device)

    # Count variables.
    var_counts = tuple(sum(p.numel() for p in m.parameters()) for m in (ac.pi, ac.q))
    logger.log_message(f"Number of parameters: \t pi: {var_counts[0]}, \t q1 + q2: {var_counts[1]}")

    # The temperature: fixed, or learned towards the target entropy -dim(A) (SAC 2018b, Section 5).
    temperature = Temperature(1.0 if auto_alpha else alpha, learned=auto_alpha).to(device)
    target_entropy = -float(act_dim)

    def compute_loss_q(data):
        """Soft Bellman residual of both Q-functions (SAC paper, eq. 5 and 7, with clipped double-Q)."""
        o, a, r, o2, d = data["obs"], data["act"], data["rew"], data["obs2"], data["done"]
        q = ac.q(o, a)  # (2, B): both Q-functions in one pass

        # Bellman backup for Q functions.
        with torch.no_grad():
            # Target actions come from *current* policy.
            a2, logp_a2 = ac.pi(o2)
            # Target Q-values: the smaller of the two target critics.
            q_pi_targ = ac_targ.q(o2, a2).min(0).values
            backup = r + gamma * (1 - d) * (q_pi_targ - temperature.alpha * logp_a2)

        # MSE loss against Bellman backup: loss_q1 + loss_q2.
        loss_q = ((q - backup) ** 2).mean(-1).sum()
        return loss_q, q

    def compute_loss_pi(data):
        """E[alpha * log pi(a|s) - min_i Q_i(s, a)], a ~ pi reparameterised (SAC paper, eq. 12)."""
        o = data["obs"]
        pi, logp_pi = ac.pi(o)
        q_pi = ac.q(o, pi).min(0).values
        # Entropy-regularized policy loss.
        loss_pi = (temperature.alpha * logp_pi - q_pi).mean()
        return loss_pi, logp_pi

    # Set up optimizers for policy, q-functions (one module: both Q's parameters) and temperature.
    # Fused Adam does the whole parameter update in one kernel per step.
    pi_optimizer = Adam(ac.pi.parameters(), lr=lr, fused=True)
    q_optimizer = Adam(q_params, lr=lr, fused=True)
    alpha_optimizer = Adam(temperature.parameters(), lr=lr)
    stats = UpdateStats()

    # Resume from the last checkpoint, if asked to.
    checkpointer = Checkpointer(
        logger.output_dir,
        ac=ac,
        ac_targ=ac_targ,
        pi_optimizer=pi_optimizer,
        q_optimizer=q_optimizer,
        temperature=temperature,
        alpha_optimizer=alpha_optimizer,
        replay_buffer=BufferCheckpoint(buf, save_buffer, logger, start_steps),
    )
    counters = checkpointer.restore(logger) if resume else None
    start_epoch, t = (counters["epoch"], counters["t"]) if counters else (0, 0)
    time_offset = counters["elapsed"] if counters else 0.0

    def update(j: int) -> None:
        data = buf.sample_batch(batch_size)

        # First run one gradient descent step for Q1 and Q2.
        q_optimizer.zero_grad()
        loss_q, q = compute_loss_q(data)
        loss_q.backward()
        q_optimizer.step()

        # Next run one gradient descent step for pi, with the Q-networks frozen so that no effort
        # goes into their gradients.
        with frozen(q_params):
            pi_optimizer.zero_grad()
            loss_pi, logp_pi = compute_loss_pi(data)
            loss_pi.backward()
            pi_optimizer.step()

        # Learned temperature: J(alpha) = E[-alpha (log pi(a|s) + target entropy)] (2018b, eq. 18).
        # Entropy below target (log pi + target > 0) makes the gradient negative: alpha grows.
        if auto_alpha:
            alpha_optimizer.zero_grad()
            temperature.loss(logp_pi, target_entropy).backward()
            alpha_optimizer.step()

        # Finally, update target networks by polyak averaging.
        polyak_update(q_targ_params, q_params, polyak)
        stats.add(LossQ=loss_q, LossPi=loss_pi, QVals=q, LogPi=logp_pi, Alpha=temperature.alpha)

    def get_action(o: np.ndarray) -> np.ndarray:
        """A sample from the current policy, normalised to [-1, 1]."""
        with torch.inference_mode():
            a, _ = ac.pi(torch.as_tensor(o, device=device), with_logprob=False)
        return a.cpu().numpy()

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
        logger.log_tabular("Q1Vals", with_min_and_max=True)
        logger.log_tabular("Q2Vals", with_min_and_max=True)
        logger.log_tabular("LogPi", with_min_and_max=True)
        logger.log_tabular("LossPi", average_only=True)
        logger.log_tabular("LossQ", average_only=True)
        logger.log_tabular("Alpha", average_only=True)
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

    sys.argv = [sys.argv[0], "sac", *sys.argv[1:]]
    console_main()
