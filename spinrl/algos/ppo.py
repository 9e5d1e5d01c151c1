"""Proximal Policy Optimization (by clipping), with early stopping based on approximate KL.

Schulman et al. 2017, "Proximal Policy Optimization Algorithms", https://arxiv.org/abs/1707.06347.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch.optim import Adam

from spinrl.buffers import GAEBuffer
from spinrl.checkpoint import Checkpointer
from spinrl.envs import check_spaces, env_name_of, make_vector_env, obs_dim_of
from spinrl.logx import EpochLogger
from spinrl.mpi import mpi_avg, mpi_avg_grads, num_procs, proc_id, setup_pytorch_for_mpi, sync_params
from spinrl.nets import MLPActorCritic
from spinrl.onpolicy import TrajectoryCollector, restart_seeds, steps_per_env_for
from spinrl.runtime import check_finite, check_hyperparameters, resolve_device, seed_everything


def ppo(
    env_fn: Callable | str,
    actor_critic: Callable = MLPActorCritic,
    ac_kwargs: dict | None = None,
    seed: int = 0,
    steps_per_epoch: int = 4000,
    epochs: int = 50,
    gamma: float = 0.99,
    clip_ratio: float = 0.2,
    pi_lr: float = 3e-4,
    vf_lr: float = 1e-3,
    train_pi_iters: int = 80,
    train_v_iters: int = 80,
    lam: float = 0.97,
    max_ep_len: int = 1000,
    target_kl: float = 0.01,
    logger_kwargs: dict | None = None,
    save_freq: int = 10,
    resume: bool = False,
    num_envs: int = 1,
    async_envs: bool = False,
    device: str = "auto",
) -> MLPActorCritic:
    """Proximal Policy Optimization (by clipping), with early stopping based on approximate KL.

    Args:
        env_fn: A Gymnasium environment id (e.g. "CartPole-v1"), or a function that creates a copy
            of the environment. The environment must satisfy the Gymnasium API.
        actor_critic: The constructor method for a PyTorch Module with a ``step`` method, an ``act``
            method, a ``pi`` module and a ``v`` module (see spinrl.nets.MLPActorCritic for the
            shapes they return). Built as ``actor_critic(observation_space, action_space, **ac_kwargs)``.
        ac_kwargs: Any kwargs appropriate for the actor_critic you provided to PPO, e.g.
            hidden_sizes=(64,64), activation="Tanh".
        seed: Seed for the random number generators (Python, NumPy, torch and every env copy).
        steps_per_epoch: Number of steps of interaction (state-action pairs) for the agent and the
            environment in each epoch, summed over all env copies and MPI ranks.
        epochs: Number of epochs of interaction (equivalent to number of policy updates) to perform.
        gamma: Discount factor. (Always between 0 and 1.)
        clip_ratio: Hyperparameter for clipping in the policy objective. Roughly: how far can the
            new policy go from the old policy while still profiting (improving the objective
            function)? The new policy can still go farther than the clip_ratio says, but it doesn't
            help on the objective anymore. (Usually small, 0.1 to 0.3.) Typically denoted by epsilon.
        pi_lr: Learning rate for the policy optimizer.
        vf_lr: Learning rate for the value function optimizer.
        train_pi_iters: Maximum number of gradient descent steps to take on the policy loss per
            epoch. (Early stopping may cause the optimizer to take fewer than this.)
        train_v_iters: Number of gradient descent steps to take on the value function per epoch.
        lam: Lambda for GAE-Lambda. (Always between 0 and 1, close to 1.)
        max_ep_len: Maximum length of trajectory / episode / rollout; reaching it is a truncation
            (bootstrapped), never a terminal. The env's own time limit applies when it is shorter.
        target_kl: Roughly what KL divergence we think is appropriate between new and old policies
            after an update. This will get used for early stopping. (Usually small, 0.01 or 0.05.)
        logger_kwargs: Keyword args for EpochLogger (output_dir, exp_name).
        save_freq: How often (in terms of gap between epochs) to save a checkpoint; the last epoch
            is always saved.
        resume: Continue the run in logger_kwargs' output_dir from its last checkpoint.
        num_envs: Number of environment copies stepped together in each MPI rank (vectorised:
            one batched forward pass of the policy for all copies).
        async_envs: Step the copies in subprocesses (Gymnasium's AsyncVectorEnv) instead of in
            this process; pays off only for slow environments with cores to spare.
        device: Where the networks live: "auto" (CUDA if available), "cpu" or "cuda".

    Returns:
        The trained actor-critic.
    """
    check_hyperparameters(locals())
    ac_kwargs = dict(ac_kwargs or {})
    config = dict(locals(), algo="ppo", env_name=env_name_of(env_fn))
    setup_pytorch_for_mpi()  # Special function to avoid certain slowdowns from PyTorch + MPI combo.

    # Random seed: different on each MPI rank, so ranks collect different experience.
    seed += 10000 * proc_id()
    seed_everything(seed)
    device = resolve_device(device)

    # Instantiate the environment copies.
    envs = make_vector_env(env_fn, num_envs, max_ep_len, asynchronous=async_envs)
    check_spaces(envs, "ppo")
    obs_space, act_space = envs.single_observation_space, envs.single_action_space

    # Set up the logger and save the configuration (after the checks above, so that a refused
    # environment leaves no run directory behind).
    logger = EpochLogger(**(logger_kwargs or {}), resume=resume)
    logger.save_config(config)

    # Create the actor-critic module, identical on every rank.
    ac = actor_critic(obs_space, act_space, **ac_kwargs).to(device)
    sync_params(ac)

    # Count variables.
    var_counts = tuple(sum(p.numel() for p in m.parameters()) for m in (ac.pi, ac.v))
    logger.log_message(f"Number of parameters: \t pi: {var_counts[0]}, \t v: {var_counts[1]}")

    # Set up the experience buffer: steps_per_epoch is shared by all ranks and env copies.
    steps_per_env = steps_per_env_for(steps_per_epoch, num_envs)
    buf = GAEBuffer(
        obs_dim_of(obs_space), act_space.shape, steps_per_env, num_envs, gamma, lam, act_dtype=act_space.dtype
    )

    def compute_loss_pi(data):
        """The clipped surrogate objective (PPO paper, eq. 7), negated for gradient descent."""
        obs, act, adv, logp_old = data["obs"], data["act"], data["adv"], data["logp"]
        pi, logp = ac.pi(obs, act)
        ratio = torch.exp(logp - logp_old)
        clip_adv = torch.clamp(ratio, 1 - clip_ratio, 1 + clip_ratio) * adv
        loss_pi = -(torch.min(ratio * adv, clip_adv)).mean()

        # Useful extra info: approximate KL (for early stopping), entropy, fraction clipped.
        approx_kl = (logp_old - logp).mean().item()
        ent = pi.entropy().mean().item()
        clipped = ratio.gt(1 + clip_ratio) | ratio.lt(1 - clip_ratio)
        clipfrac = torch.as_tensor(clipped, dtype=torch.float32).mean().item()
        return loss_pi, dict(kl=approx_kl, ent=ent, cf=clipfrac)

    def compute_loss_v(data):
        """Mean-squared error between V(s) and the rewards-to-go."""
        return ((ac.v(data["obs"]) - data["ret"]) ** 2).mean()

    # Set up optimizers for the policy and value function.
    pi_optimizer = Adam(ac.pi.parameters(), lr=pi_lr)
    vf_optimizer = Adam(ac.v.parameters(), lr=vf_lr)

    # Resume from the last checkpoint, if asked to.
    checkpointer = Checkpointer(
        logger.output_dir, ac=ac, pi_optimizer=pi_optimizer, vf_optimizer=vf_optimizer
    )
    counters = checkpointer.restore(logger) if resume else None
    start_epoch = counters["epoch"] if counters else 0
    time_offset = counters["elapsed"] if counters else 0.0

    def update(epoch: int):
        data = buf.get(device)

        with torch.no_grad():
            pi_l_old, pi_info_old = compute_loss_pi(data)
            v_l_old = compute_loss_v(data).item()
        pi_l_old = pi_l_old.item()
        check_finite(epoch, LossPi=pi_l_old, LossV=v_l_old)

        # Train policy with multiple steps of gradient descent, stopping early when the new policy
        # has moved too far (measured over all ranks) from the one that collected the data.
        stop_iter = train_pi_iters
        for i in range(train_pi_iters):
            pi_optimizer.zero_grad()
            loss_pi, pi_info = compute_loss_pi(data)
            kl = mpi_avg(pi_info["kl"])
            if kl > 1.5 * target_kl:
                stop_iter = i
                break
            loss_pi.backward()
            mpi_avg_grads(ac.pi)  # average grads across MPI processes
            pi_optimizer.step()

        # Value function learning.
        for _ in range(train_v_iters):
            vf_optimizer.zero_grad()
            loss_v = compute_loss_v(data)
            loss_v.backward()
            mpi_avg_grads(ac.v)  # average grads across MPI processes
            vf_optimizer.step()

        # Log changes from update.
        kl, ent, cf = pi_info["kl"], pi_info_old["ent"], pi_info["cf"]
        logger.store(
            LossPi=pi_l_old,
            LossV=v_l_old,
            KL=kl,
            Entropy=ent,
            ClipFrac=cf,
            StopIter=stop_iter,
            DeltaLossPi=(loss_pi.item() - pi_l_old),
            DeltaLossV=(loss_v.item() - v_l_old),
        )

    # Main loop: collect experience in env and update/log each epoch.
    collector = TrajectoryCollector(envs, ac, buf, logger, device)
    start_time = time.time()
    logger.set_status("running", start_epoch, epochs)
    for epoch in range(start_epoch, epochs):
        collector.collect(steps_per_env, restart_seeds(seed, epoch, start_epoch, save_freq, num_envs))

        # Perform the PPO update!
        update(epoch)

        # Log info about epoch.
        logger.log_tabular("Epoch", epoch)
        logger.log_tabular("EpRet", with_min_and_max=True)
        logger.log_tabular("EpLen", average_only=True)
        logger.log_tabular("VVals", with_min_and_max=True)
        logger.log_tabular("TotalEnvInteracts", (epoch + 1) * steps_per_env * num_envs * num_procs())
        for key in ("LossPi", "LossV", "DeltaLossPi", "DeltaLossV", "Entropy", "KL", "ClipFrac", "StopIter"):
            logger.log_tabular(key, average_only=True)
        elapsed = time_offset + time.time() - start_time
        logger.log_tabular("Time", elapsed)
        logger.dump_tabular()

        # Save a checkpoint every save_freq epochs, after the epoch's row is written.
        checkpointer.end_epoch(logger, epoch, epochs, save_freq, elapsed=elapsed)

    logger.set_status("finished", epochs, epochs)
    envs.close()
    logger.close()
    return ac


if __name__ == "__main__":
    import sys

    from spinrl.run import console_main

    sys.argv = [sys.argv[0], "ppo", *sys.argv[1:]]
    console_main()
