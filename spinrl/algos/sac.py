"""Soft Actor-Critic (SAC): a stochastic policy trained off-policy to earn reward while staying as
random as it can, with clipped double-Q targets and a fixed or learned temperature.

Haarnoja et al. 2018, arXiv:1801.01290 (the algorithm), and Haarnoja et al. 2018b, arXiv:1812.05905
(the learned temperature, Section 5).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
from gymnasium import spaces
from torch.optim import Adam

from spinrl.algos.arguments import OFF_POLICY, with_shared_argument_docs
from spinrl.buffers.frames import make_replay_buffer
from spinrl.common.checks import check_hyperparameters
from spinrl.common.device import resolve_device, set_thread_budget
from spinrl.common.errors import UserError
from spinrl.common.seeding import env_seeds, seed_everything, seeds_for_test_episodes
from spinrl.envs.actions import ActionMap
from spinrl.envs.make import check_spaces, default_max_ep_len, env_name_of, resolve_env_fn
from spinrl.envs.vector import EpisodeReturns, make_vector_env, real_next_obs, steps_per_copy
from spinrl.nets.custom import build_actor_critic
from spinrl.nets.q_nets import MLPSquashedGaussianActorCritic, Temperature
from spinrl.record.checkpoint import Checkpointer
from spinrl.record.logger import EpochLogger
from spinrl.record.status import marks_failed_runs
from spinrl.training.compiled_update import compile_update
from spinrl.training.normalize import offpolicy_normalizers
from spinrl.training.offpolicy import (
    BufferCheckpoint,
    UpdateStats,
    frozen,
    polyak_update,
    random_actions,
    refuse_mpi,
    run_test_episodes,
    update_rounds_due,
)


# Args: below holds what is SAC's own. The arguments it shares with the other off-policy
# algorithms (seed, gamma, update_after, compile, ...) are explained once, in spinrl/algos/arguments.py;
# the decorator adds them to the docstring, so help(), --help and the API reference list them all.
@marks_failed_runs
@with_shared_argument_docs(OFF_POLICY)
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
    max_ep_len: int | None = None,
    logger_kwargs: dict | None = None,
    save_freq: int = 1,
    resume: bool = False,
    num_envs: int = 1,
    device: str = "auto",
    save_buffer: bool = False,
    env_kwargs: dict | None = None,
    compile: bool = False,
    obs_norm: bool = False,
    obs_clip: float = 10.0,
) -> MLPSquashedGaussianActorCritic:
    """Soft Actor-Critic (SAC)

    Args:
        env_fn: The environment: a Gymnasium id such as "Pendulum-v1", or a function that returns a
            new copy of it (called once per env copy and for the test env). SAC needs a Box action
            space with finite bounds, onto which the policy's tanh output in [-1, 1] is stretched.
        actor_critic: What builds the networks, called as ``actor_critic(observation_space,
            action_space, **ac_kwargs)``. It returns a torch module with ``pi`` (observations -> a
            sampled action in [-1, 1] and its log-probability; the mean action with
            ``deterministic=True``), ``q`` (observations and actions -> both Q-values, shape
            (2, batch)) and ``act`` (observations -> actions the env takes, for test episodes). The
            default, spinrl.nets.q_nets.MLPSquashedGaussianActorCritic, lists the shapes. A module written
            for Spinning Up's core.py (actions scaled by ``act_limit``, critics ``q1`` and ``q2``) is
            adapted and works too; docs/user/custom-networks.md describes both interfaces.
        gamma: Discount factor in (0, 1]: the weight of a reward one step later. The Q-functions
            estimate sum_t gamma^t (r_t + entropy bonus). 0.99 (default) looks about 100 steps ahead;
            closer to 1 makes the targets larger and noisier, smaller makes the agent short-sighted.
        polyak: How slowly the target Q-networks follow the trained ones, in [0, 1): after each
            update, theta_targ <- polyak * theta_targ + (1 - polyak) * theta. 0.995 (default) makes
            the targets an average over roughly the last 200 updates. Much lower, and the targets chase
            the networks trained towards them (unstable); too close to 1 slows learning down.
        lr: Adam's learning rate (step size) for the policy, both Q-functions and, with
            alpha="auto", the temperature. 1e-3 by default (Spinning Up); the SAC papers use 3e-4.
            Too large and the Q-values diverge (the run stops with a NaN loss); too small and
            learning crawls.
        alpha: The temperature: how much entropy (in nats) is worth in units of reward, so its right
            value depends on the scale of the rewards (the first SAC paper scaled rewards instead;
            alpha is the inverse of that scale). Larger keeps the policy more random, 0 drops the
            entropy bonus. 0.2 (default) suits rewards of order 1 per step. "auto" learns alpha
            instead, starting from 1, to hold the policy's entropy near -dim(A) (Haarnoja et al.
            2018b, eq. 18): no tuning per environment.
        batch_size: Transitions drawn from the buffer for each gradient step. 100 by default; 256
            is common with SAC. Larger batches give steadier gradients at a proportional cost.

    Returns:
        The trained actor-critic.
    """
    check_hyperparameters(locals())
    if alpha != "auto" and (
        isinstance(alpha, bool) or not isinstance(alpha, int | float) or not math.isfinite(alpha) or alpha < 0
    ):
        raise UserError(f"alpha={alpha!r} is not valid: it must be a number >= 0 or 'auto'")
    refuse_mpi("sac")
    ac_kwargs = dict(ac_kwargs or {})
    config = dict(locals(), algo="sac", env_name=env_name_of(env_fn))
    # A Gymnasium id becomes a factory: Atari ids get spinrl.envs.atari's protocol, env_kwargs its options.
    env_fn = resolve_env_fn(env_fn, env_kwargs)
    max_ep_len = default_max_ep_len(env_fn, max_ep_len)  # None: 1000 steps, or a full Atari game
    steps_per_env = steps_per_copy(steps_per_epoch, num_envs)

    # Random seeds; the device; on the CPU one torch thread, fastest for small networks.
    seed_everything(seed)
    device = resolve_device(device)
    if device.type == "cpu":
        set_thread_budget()

    # The env copies for training, and a separate env with one copy per test episode. Their spaces are
    # checked before the logger exists, so that a refused env leaves no run directory behind.
    envs = make_vector_env(env_fn, num_envs, max_ep_len)
    check_spaces(envs, "sac", action_spaces=(spaces.Box,))
    test_envs = make_vector_env(env_fn, num_test_episodes, max_ep_len)
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    to_env = ActionMap(act_space)  # the policy's actions in [-1, 1] -> the env's bounds

    # Create the actor-critic module and the target networks, which only move by Polyak averaging.
    ac = build_actor_critic(actor_critic, obs_space, act_space, ac_kwargs, "sac").to(device)
    ac_targ = copy.deepcopy(ac).requires_grad_(False)
    q_params, q_targ_params = list(ac.q.parameters()), list(ac_targ.q.parameters())  # both Q's

    # The replay buffer: actions are stored normalised, as the policy outputs them.
    buf = make_replay_buffer(envs, replay_size, device=device)
    # With obs_norm, the statistics that normalise what the networks see (spinrl.training.normalize).
    norms = offpolicy_normalizers(obs_space, obs_norm, obs_clip)

    # Set up the logger and save the configuration, only now: a refused environment, network or
    # buffer size above leaves no run directory behind.
    logger = EpochLogger(**(logger_kwargs or {}), resume=resume)
    logger.save_config(config)

    # Count variables.
    var_counts = tuple(sum(p.numel() for p in m.parameters()) for m in (ac.pi, ac.q))
    logger.log_message(f"Number of parameters: \t pi: {var_counts[0]}, \t q1 + q2: {var_counts[1]}")

    # The temperature: fixed, or learned towards the target entropy -dim(A) (SAC 2018b, Section 5).
    auto_alpha = alpha == "auto"
    temperature = Temperature(1.0 if auto_alpha else alpha, learned=auto_alpha).to(device)
    target_entropy = -float(act_space.shape[0])

    def compute_loss_q(data):
        """Soft Bellman residual of both Q-functions (SAC paper, eq. 5 and 7, with clipped double-Q)."""
        o, a, r, o2, d = data["obs"], data["act"], data["rew"], data["obs2"], data["done"]
        q = ac.q(o, a)  # (2, B): both Q-functions in one pass

        # The target: the next action is sampled from the *current* policy, not taken from the buffer;
        # the smaller of the two target critics, minus alpha * log pi, is the soft value of s'.
        with torch.no_grad():
            a2, logp_a2 = ac.pi(o2)
            q_pi_targ = ac_targ.q(o2, a2).min(0).values
            backup = r + gamma * (1 - d) * (q_pi_targ - temperature.alpha * logp_a2)

        # Mean-squared error against the target, summed over the two Q-functions.
        loss_q = ((q - backup) ** 2).mean(-1).sum()
        return loss_q, q

    def compute_loss_pi(data):
        """E[alpha * log pi(a|s) - min_i Q_i(s, a)], a ~ pi reparameterised (SAC paper, eq. 12)."""
        o = data["obs"]
        pi, logp_pi = ac.pi(o)
        q_pi = ac.q(o, pi).min(0).values
        loss_pi = (temperature.alpha * logp_pi - q_pi).mean()
        return loss_pi, logp_pi

    # Optimisers for the policy, the Q-functions (one module holds both) and the temperature. Fused
    # Adam updates all of a module's parameters in one kernel.
    pi_optimizer = Adam(ac.pi.parameters(), lr=lr, fused=True)
    q_optimizer = Adam(q_params, lr=lr, fused=True)
    alpha_optimizer = Adam(temperature.parameters(), lr=lr)
    stats = UpdateStats()

    def update(data: dict[str, torch.Tensor]) -> None:
        # First one gradient step on both Q-functions.
        q_optimizer.zero_grad()
        loss_q, q = compute_loss_q(data)
        loss_q.backward()
        q_optimizer.step()

        # Then one gradient step on the policy. The Q-networks are frozen meanwhile, so that no effort
        # goes into gradients for them.
        with frozen(q_params):
            pi_optimizer.zero_grad()
            loss_pi, logp_pi = compute_loss_pi(data)
            loss_pi.backward()
            pi_optimizer.step()

        # Learned temperature: J(alpha) = E[-alpha (log pi(a|s) + target entropy)] (2018b, eq. 18).
        # An entropy below the target (log pi + target > 0) makes the gradient negative: alpha grows.
        if auto_alpha:
            alpha_optimizer.zero_grad()
            temperature.loss(logp_pi, target_entropy).backward()
            alpha_optimizer.step()

        # Finally, the target Q-networks move a little towards the trained ones.
        polyak_update(q_targ_params, q_params, polyak)
        stats.add(
            LossQ=loss_q, LossPi=loss_pi, Q1Vals=q[0], Q2Vals=q[1], LogPi=logp_pi, Alpha=temperature.alpha
        )

    # With compile=True, the same update as compiled code (spinrl.training.compiled_update).
    update = compile_update(update, compile, device, logger)

    def get_action(o: np.ndarray) -> np.ndarray:
        """A sample from the current policy, in [-1, 1]: SAC explores through its own randomness."""
        with torch.inference_mode():
            a, _ = ac.pi(
                torch.as_tensor(norms.observation(o, count=False), device=device), with_logprob=False
            )
        return a.cpu().numpy()

    # Everything a resume needs, saved at the end of every save_freq-th epoch. With resume=True,
    # restore it now and continue after the last checkpoint.
    checkpointer = Checkpointer(
        logger.output_dir,
        ac=ac,
        ac_targ=ac_targ,
        pi_optimizer=pi_optimizer,
        q_optimizer=q_optimizer,
        temperature=temperature,
        alpha_optimizer=alpha_optimizer,
        replay_buffer=BufferCheckpoint(buf, save_buffer, logger, update_after),
        **norms.checkpoint_entries(),
    )
    progress = checkpointer.start(logger, resume, epochs)  # .epoch, .t (env steps so far), .seconds()

    # Prepare for interaction with the environment. The env copies are reset here, once per process;
    # from then on their episodes run across epoch ends and checkpoints. A resumed run restarts them
    # with seeds for its first epoch: only the episodes that were running when it stopped are lost.
    obs, _ = envs.reset(seed=env_seeds(seed, 0, progress.epoch, num_envs))
    episodes = EpisodeReturns(num_envs)

    # Main loop: collect experience in the env copies and update the networks as it comes in.
    for epoch in range(progress.epoch, epochs):
        for _ in range(steps_per_env):
            # Until start_steps env steps have been taken, act uniformly at random (varied early
            # data); afterwards, sample actions from the policy.
            if progress.t < start_steps:
                a = random_actions(act_space, num_envs)
            else:
                a = get_action(obs)

            # Step the env copies.
            next_obs, rew, terminated, truncated, info = envs.step(to_env(a))
            ended = terminated | truncated
            episodes.add(rew, ended, logger)  # logs EpRet and EpLen of the episodes that ended

            # Store the transitions. Where an episode ended, the vector env has already reset that
            # copy and next_obs starts a new episode: store the observation really reached instead.
            # Only `terminated` counts as done; a time limit merely cut the episode off, so its last
            # target still bootstraps from Q(s', a').
            buf.store(obs, a, rew, real_next_obs(next_obs, ended, info), terminated, ended)
            norms.observe(obs)  # obs_norm's statistics count every observation, raw as stored

            # Move on to the observation the copies are in now: the next action must be chosen from
            # it. Forgetting this line raises no error; the agent keeps acting on a stale state.
            obs = next_obs
            progress.t += num_envs

            # Update handling: every update_every env steps (over all copies), update_every gradient
            # steps (one per env step), once update_after transitions are stored. With one copy a round
            # is due when t % update_every == 0; with more, when t passes a multiple of update_every.
            rounds = update_rounds_due(progress.t, num_envs, update_every)
            if rounds:
                norms.update()  # obs_norm: the statistics move before a round of updates, never inside one
            if rounds and buf.steps_stored >= update_after:
                for _ in range(rounds * update_every):
                    update(norms.batch(buf.sample_batch(batch_size)))

        # End of epoch: test the deterministic policy, log the epoch's row, save a checkpoint.
        run_test_episodes(
            test_envs, ac, logger, seeds_for_test_episodes(seed, epoch, num_test_episodes), device, norms
        )
        stats.flush(logger, epoch)
        logger.log_tabular("Epoch", epoch)
        logger.log_tabular("EpRet", with_min_and_max=True)
        logger.log_tabular("TestEpRet", with_min_and_max=True)
        logger.log_tabular("EpLen", average_only=True)
        logger.log_tabular("TestEpLen", average_only=True)
        logger.log_tabular("TotalEnvInteracts", progress.t)
        logger.log_tabular("Q1Vals", with_min_and_max=True)
        logger.log_tabular("Q2Vals", with_min_and_max=True)
        logger.log_tabular("LogPi", with_min_and_max=True)
        logger.log_tabular("LossPi", average_only=True)
        logger.log_tabular("LossQ", average_only=True)
        logger.log_tabular("Alpha", average_only=True)
        logger.log_tabular("Time", progress.seconds())
        logger.dump_tabular()
        checkpointer.end_epoch(logger, progress, epochs, save_freq)

    envs.close()
    test_envs.close()
    logger.finish(epochs)
    return ac


if __name__ == "__main__":
    from spinrl.cli import run_as_script

    run_as_script("sac")
