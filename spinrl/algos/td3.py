"""Twin Delayed DDPG (TD3): DDPG with clipped double-Q learning, delayed policy updates and target
policy smoothing, three fixes for the Q-value overestimation that destabilises DDPG.

Fujimoto, van Hoof and Meger 2018, arXiv:1802.09477.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from gymnasium import spaces
from torch.optim import Adam

from spinrl.algos.arguments import OFF_POLICY, with_shared_argument_docs
from spinrl.buffers.frames import make_replay_buffer
from spinrl.common.checks import check_hyperparameters
from spinrl.common.device import resolve_device, set_thread_budget
from spinrl.common.seeding import env_seeds, seed_everything, seeds_for_test_episodes
from spinrl.envs.actions import ActionMap
from spinrl.envs.make import check_spaces, default_max_ep_len, env_name_of, resolve_env_fn
from spinrl.envs.vector import EpisodeReturns, make_vector_env, real_next_obs, steps_per_copy
from spinrl.nets.custom import build_actor_critic
from spinrl.nets.q_nets import MLPTwinActorCritic
from spinrl.record.checkpoint import Checkpointer
from spinrl.record.logger import EpochLogger
from spinrl.record.status import marks_failed_runs
from spinrl.training.compiled_update import compile_update
from spinrl.training.normalize import offpolicy_normalizers
from spinrl.training.offpolicy import (
    BufferCheckpoint,
    UpdateStats,
    frozen,
    optimizer_steps,
    polyak_update,
    random_actions,
    refuse_mpi,
    run_test_episodes,
    update_rounds_due,
)


# Args: below holds what is TD3's own. The arguments it shares with the other off-policy
# algorithms (seed, gamma, update_after, compile, ...) are explained once, in spinrl/algos/arguments.py;
# the decorator adds them to the docstring, so help(), --help and the API reference list them all.
@marks_failed_runs
@with_shared_argument_docs(OFF_POLICY)
def td3(
    env_fn: Callable | str,
    actor_critic: Callable = MLPTwinActorCritic,
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
    target_noise: float = 0.2,
    noise_clip: float = 0.5,
    policy_delay: int = 2,
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
) -> MLPTwinActorCritic:
    """Twin Delayed Deep Deterministic Policy Gradient (TD3)

    Args:
        env_fn: The environment: a Gymnasium id such as "Pendulum-v1", or a function that returns a
            new copy of it (called once per env copy and for the test env). TD3 needs a Box action
            space with finite bounds, onto which the actor's tanh output in [-1, 1] is stretched.
        actor_critic: What builds the networks, called as ``actor_critic(observation_space,
            action_space, **ac_kwargs)``. It returns a torch module with ``pi`` (observations -> the
            deterministic action in [-1, 1]), ``q`` (observations and actions -> both Q-values, shape
            (2, batch), and ``q.first`` for Q1 alone) and ``act`` (observations -> actions the env
            takes, for test episodes). The default, spinrl.nets.q_nets.MLPTwinActorCritic, lists the
            shapes. A module written for Spinning Up's core.py (actions scaled by ``act_limit``,
            critics ``q1`` and ``q2``) is adapted and works too; docs/user/custom-networks.md
            describes both interfaces.
        polyak: How slowly the target networks (actor and critics) follow the trained ones, in
            [0, 1): after each policy update, theta_targ <- polyak * theta_targ + (1 - polyak) *
            theta. 0.995 (default) makes the targets an average over roughly the last 200 of them.
            Much lower, and the targets chase the networks trained towards them (unstable); too close
            to 1 slows learning down.
        pi_lr: Adam's learning rate (step size) for the actor. 1e-3 by default (Spinning Up; the TD3
            paper uses 3e-4 with larger networks). Too large and the actor jumps to actions the
            critic has not learned to judge; too small and learning crawls.
        q_lr: Adam's learning rate for the two Q-functions. 1e-3 by default. Too large and the
            Q-values diverge (the run stops with a NaN loss).
        batch_size: Transitions drawn from the buffer for each gradient step. 100 by default (the
            TD3 paper's). Larger batches give steadier gradients at a proportional cost.
        update_every: How updates are grouped, in env steps over all copies: after every
            update_every env steps come update_every critic steps in a row, so there is always one
            critic step per env step. Larger groups switch less often between acting and training
            (faster) and act with a slightly older policy. 50 by default.
        act_noise: Standard deviation of the Gaussian noise added to the actor's action while
            training (exploration), in units of half the action range, so 0.1 (default) is 5% of the
            range, as in the TD3 paper (and Spinning Up's value for bounds [-1, 1]). Too little and the
            agent stops finding better actions; too much and the data is mostly noise.
        target_noise: Standard deviation of the noise added to the target actor's action in the
            targets (target policy smoothing: nearby actions get similar values, so the critic cannot
            exploit a narrow, wrongly high peak), in the same units. 0.2 by default.
        noise_clip: The target noise is clipped to [-noise_clip, noise_clip] (same units), keeping
            the smoothed target action near the actor's. 0.5 by default.
        policy_delay: Critic updates per actor and target update (the delayed policy update: the
            actor learns from a critic that has settled a little). 2 by default, as in the paper;
            1 updates the actor as often as the critics, as DDPG does.

    Returns:
        The trained actor-critic.
    """
    check_hyperparameters(locals())
    refuse_mpi("td3")
    ac_kwargs = dict(ac_kwargs or {})
    config = dict(locals(), algo="td3", env_name=env_name_of(env_fn))
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
    check_spaces(envs, "td3", action_spaces=(spaces.Box,))
    test_envs = make_vector_env(env_fn, num_test_episodes, max_ep_len)
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    to_env = ActionMap(act_space)  # the actor's actions in [-1, 1] -> the env's bounds

    # Create the actor-critic module and the target networks, which only move by Polyak averaging.
    ac = build_actor_critic(actor_critic, obs_space, act_space, ac_kwargs, "td3").to(device)
    ac_targ = copy.deepcopy(ac).requires_grad_(False)
    q_params = list(ac.q.parameters())  # both Q-functions: one module, one parameter list
    params, targ_params = list(ac.parameters()), list(ac_targ.parameters())

    # The replay buffer: actions are stored normalised, as the actor outputs them.
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

    def compute_loss_q(data):
        """Clipped double-Q learning with target policy smoothing (TD3 paper, eq. 14 and 15)."""
        o, a, r, o2, d = data["obs"], data["act"], data["rew"], data["obs2"], data["done"]
        q = ac.q(o, a)  # (2, B): both Q-functions in one pass

        with torch.no_grad():
            pi_targ = ac_targ.pi(o2)

            # Target policy smoothing: clipped noise on the target action, then back into [-1, 1].
            epsilon = torch.clamp(torch.randn_like(pi_targ) * target_noise, -noise_clip, noise_clip)
            a2 = torch.clamp(pi_targ + epsilon, -1.0, 1.0)

            # The target: the smaller of the two target critics.
            q_pi_targ = ac_targ.q(o2, a2).min(0).values
            backup = r + gamma * (1 - d) * q_pi_targ

        # Mean-squared error against the target, summed over the two Q-functions.
        loss_q = ((q - backup) ** 2).mean(-1).sum()
        return loss_q, q

    def compute_loss_pi(data):
        """Deterministic policy gradient through Q1 only (TD3 paper, Algorithm 1)."""
        o = data["obs"]
        q1_pi = ac.q.first(o, ac.pi(o))
        return -q1_pi.mean()

    # Optimisers for the actor and the Q-functions (one module holds both). Fused Adam updates all of
    # a module's parameters in one kernel.
    pi_optimizer = Adam(ac.pi.parameters(), lr=pi_lr, fused=True)
    q_optimizer = Adam(q_params, lr=q_lr, fused=True)
    stats = UpdateStats()

    def update(data: dict[str, torch.Tensor], update_policy: bool) -> None:
        # First one gradient step on both Q-functions.
        q_optimizer.zero_grad()
        loss_q, q = compute_loss_q(data)
        loss_q.backward()
        q_optimizer.step()
        stats.add(LossQ=loss_q, Q1Vals=q[0], Q2Vals=q[1])

        # Delayed policy updates (TD3 paper, Section 5.2): the actor and the targets only move on
        # every policy_delay-th critic step.
        if update_policy:
            # One gradient step on the actor, with the Q-networks frozen so that no effort goes into
            # gradients for them.
            with frozen(q_params):
                pi_optimizer.zero_grad()
                loss_pi = compute_loss_pi(data)
                loss_pi.backward()
                pi_optimizer.step()

            # Finally, the target networks (actor and critics) move a little towards the trained ones.
            polyak_update(targ_params, params, polyak)
            stats.add(LossPi=loss_pi)

    # With compile=True, the same update as compiled code (spinrl.training.compiled_update).
    update = compile_update(update, compile, device, logger)

    def get_action(o: np.ndarray) -> np.ndarray:
        """The actor's action plus Gaussian exploration noise, clipped to [-1, 1]."""
        with torch.inference_mode():
            a = ac.pi(torch.as_tensor(norms.observation(o, count=False), device=device)).cpu().numpy()
        a += act_noise * np.random.randn(*a.shape).astype(np.float32)
        return np.clip(a, -1.0, 1.0)

    # Everything a resume needs, saved at the end of every save_freq-th epoch. With resume=True,
    # restore it now and continue after the last checkpoint.
    checkpointer = Checkpointer(
        logger.output_dir,
        ac=ac,
        ac_targ=ac_targ,
        pi_optimizer=pi_optimizer,
        q_optimizer=q_optimizer,
        replay_buffer=BufferCheckpoint(buf, save_buffer, logger, update_after),
        **norms.checkpoint_entries(),
    )
    progress = checkpointer.start(logger, resume, epochs)  # .epoch, .t (env steps so far), .seconds()
    # Critic steps so far in the whole run, resumed ones included: the policy delay counts these, not
    # the steps of one update round (a round of one step would move the actor every time).
    critic_steps = optimizer_steps(q_optimizer)

    # Prepare for interaction with the environment. The env copies are reset here, once per process;
    # from then on their episodes run across epoch ends and checkpoints. A resumed run restarts them
    # with seeds for its first epoch: only the episodes that were running when it stopped are lost.
    obs, _ = envs.reset(seed=env_seeds(seed, 0, progress.epoch, num_envs))
    episodes = EpisodeReturns(num_envs)

    # Main loop: collect experience in the env copies and update the networks as it comes in.
    for epoch in range(progress.epoch, epochs):
        for _ in range(steps_per_env):
            # Until start_steps env steps have been taken, act uniformly at random (varied early
            # data); afterwards, use the actor with exploration noise.
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
                    update(
                        norms.batch(buf.sample_batch(batch_size)),
                        update_policy=critic_steps % policy_delay == 0,
                    )
                    critic_steps += 1

        # End of epoch: test the deterministic actor, log the epoch's row, save a checkpoint.
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
        logger.log_tabular("LossPi", average_only=True)
        logger.log_tabular("LossQ", average_only=True)
        logger.log_tabular("Time", progress.seconds())
        logger.dump_tabular()
        checkpointer.end_epoch(logger, progress, epochs, save_freq)

    envs.close()
    test_envs.close()
    logger.finish(epochs)
    return ac


if __name__ == "__main__":
    from spinrl.cli import run_as_script

    run_as_script("td3")
