"""PPO-Clip: several policy steps per batch on a clipped objective, halted early once the new
policy's approximate KL from the old one grows too large.

Schulman et al. 2017, "Proximal Policy Optimization Algorithms", https://arxiv.org/abs/1707.06347.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.optim import Adam

from spinrl.algos.arguments import ON_POLICY, with_shared_argument_docs
from spinrl.buffers.gae import GAEBuffer
from spinrl.common.checks import check_finite, check_hyperparameters
from spinrl.common.device import resolve_device
from spinrl.common.errors import UserError
from spinrl.common.mpi import mpi_avg_grads, num_procs, proc_id, setup_pytorch_for_mpi, sync_params
from spinrl.common.seeding import env_seeds, rank_seed, seed_everything
from spinrl.envs.atari import LearningSignals
from spinrl.envs.make import check_spaces, default_max_ep_len, env_name_of, resolve_env_fn
from spinrl.envs.vector import EpisodeReturns, make_vector_env, steps_per_copy
from spinrl.nets.actor_critic import MLPActorCritic, count_vars
from spinrl.nets.custom import build_actor_critic
from spinrl.record.checkpoint import Checkpointer
from spinrl.record.logger import EpochLogger
from spinrl.record.status import marks_failed_runs
from spinrl.training.normalize import make_normalizers
from spinrl.training.onpolicy import (
    PathCloser,
    anneal_learning_rate,
    annealing_epochs,
    fast_policy_step,
    minibatch_steps,
    policy_to_env_actions,
    with_cached_encoder_features,
)


# Args: below holds what is PPO's own. The arguments it shares with the other on-policy
# algorithms (env_fn, seed, gamma, lam, num_envs, ...) are explained once, in spinrl/algos/arguments.py;
# the decorator adds them to the docstring, so help(), --help and the API reference list them all.
@marks_failed_runs
@with_shared_argument_docs(ON_POLICY)
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
    max_ep_len: int | None = None,
    target_kl: float | None = 0.01,
    logger_kwargs: dict | None = None,
    save_freq: int = 10,
    resume: bool = False,
    num_envs: int = 1,
    async_envs: bool = False,
    device: str = "auto",
    env_kwargs: dict | None = None,
    obs_norm: bool = False,
    obs_clip: float = 10.0,
    reward_norm: bool = False,
    reward_clip: float = 10.0,
    value_norm: bool = False,
    minibatch_size: int | None = None,
    max_grad_norm: float | None = None,
    anneal_lr: bool = False,
    anneal_lr_steps: int | None = None,
    adam_eps: float = 1e-8,
    ent_coef: float = 0.0,
) -> MLPActorCritic:
    """PPO-Clip, with early stopping of the policy steps on the approximate KL divergence.

    Each epoch gathers ``steps_per_epoch`` steps with the current policy and estimates advantages
    with GAE-Lambda. The policy then takes up to ``train_pi_iters`` Adam steps on the clipped
    surrogate L^CLIP (PPO paper, eq. 7), stopping as soon as the mean KL from the policy that
    collected the data passes 1.5 * ``target_kl``; the critic takes ``train_v_iters`` steps towards
    the rewards-to-go.

    The defaults are Spinning Up's: whole-batch steps, raw observations and rewards. The options after
    ``env_kwargs`` add what the published MuJoCo results of PPO rely on (Engstrom et al. 2020,
    "Implementation Matters in Deep Policy Gradients"; Andrychowicz et al. 2021, "What Matters in
    On-Policy Reinforcement Learning"): normalised observations, scaled rewards or normalised value
    targets, minibatches, gradient clipping, a decaying learning rate; ``--preset tuned`` turns on a
    set of them per environment (docs/user/running.md).

    ``actor_critic(observation_space, action_space, **ac_kwargs)`` must return a module ``ac`` with,
    for a batch ``obs`` of B observations (shape (B, obs_dim)):

    - ``ac.step(obs)``: a sampled action (shape (B, act_dim), or (B,) for Discrete actions), V(obs)
      (B,) and log pi(a|obs) (B,), computed without gradients;
    - ``ac.act(obs)``: the action alone;
    - ``ac.pi(obs, act)``: the action distribution and log pi(act|obs) (B,), with gradients;
    - ``ac.v(obs)``: V(obs) of shape (B,). A shape (B, 1) would broadcast against the (B,) targets
      and silently turn the value loss into a mean over a (B, B) matrix.

    Args:
        clip_ratio: epsilon, the width of the clipping in the policy objective: the probability ratio
            pi_new / pi_old only counts within [1 - clip_ratio, 1 + clip_ratio], so moving the policy
            further earns nothing more (it still can move further; see target_kl). 0.1 to 0.3; too
            wide and updates grow unstable, too narrow and learning crawls.
        pi_lr: Adam learning rate of the policy. 3e-4 is the usual start; too high and the KL stop
            ends most updates after a step or two, too low and the policy hardly moves.
        train_pi_iters: The most gradient steps on the policy per epoch, each on the whole batch; the
            KL stop (target_kl) often ends them sooner, as the StopIter column shows. With
            ``minibatch_size``, the most passes over the batch instead (10 is usual then).
        train_v_iters: The critic's share of each update: that many whole-batch gradient steps (80 is
            usual), or with ``minibatch_size`` that many passes over the batch (10 is usual then). A
            critic trained too little trails the returns of the improving policy, and the advantages
            computed from it grow noisy.
        target_kl: The approximate KL divergence between the new policy and the one that collected
            the data that an update aims for: the policy steps stop once the KL (averaged over
            ranks) passes 1.5 * target_kl. 0.01 to 0.05; too large and one update can wreck the
            policy, too small and most updates stop after a step. None: no early stop (the clip
            alone bounds the update, as in SB3's and CleanRL's defaults); with minibatches the KL of
            each minibatch is checked, a noisier measure, so None or a larger value is usual.
        minibatch_size: None (default): each gradient step uses the whole batch. A number: each of
            the ``train_pi_iters`` / ``train_v_iters`` passes shuffles the batch and takes one step
            per minibatch of this many samples (counted over all MPI ranks), the PPO of SB3 and
            CleanRL. 64 with 2048-step batches is usual for MuJoCo; more steps per batch of data,
            so more sample-efficient and slower per step of experience.
        ent_coef: Weight of an entropy bonus in the policy loss (mean entropy of pi, summed over
            action dimensions), which keeps exploration up; 0 (default) in MuJoCo, 0.01 on Atari.

    Returns:
        The trained actor-critic.
    """
    check_hyperparameters(locals())
    if minibatch_size is not None and minibatch_size > steps_per_epoch:
        raise UserError(
            f"minibatch_size={minibatch_size} is not valid: it must be at most steps_per_epoch={steps_per_epoch}"
        )
    ac_kwargs = dict(ac_kwargs or {})
    config = dict(locals(), algo="ppo", env_name=env_name_of(env_fn))
    # A Gymnasium id becomes a factory: Atari ids get spinrl.envs.atari's protocol, env_kwargs its options.
    env_fn = resolve_env_fn(env_fn, env_kwargs)
    max_ep_len = default_max_ep_len(env_fn, max_ep_len)  # None: 1000 steps, or a full Atari game
    setup_pytorch_for_mpi()  # one torch thread per rank, and a crash in one rank ends them all

    # Random seed: different on each MPI rank, so ranks collect different experience.
    seed = rank_seed(seed, proc_id())
    seed_everything(seed)
    device = resolve_device(device)

    # Instantiate the environment copies.
    envs = make_vector_env(env_fn, num_envs, max_ep_len, asynchronous=async_envs)
    check_spaces(envs, "ppo")
    obs_space, act_space = envs.single_observation_space, envs.single_action_space

    # Observation, reward and value normalisation, each on only if asked for (spinrl.training.normalize).
    norms = make_normalizers(
        obs_space, num_envs, gamma, obs_norm, obs_clip, reward_norm, reward_clip, value_norm
    )

    # Create the actor-critic module, identical on every rank.
    ac = build_actor_critic(actor_critic, obs_space, act_space, ac_kwargs, "ppo").to(device)
    sync_params(ac)

    # Set up the experience buffer: steps_per_epoch is shared by all ranks and env copies.
    steps_per_env = steps_per_copy(steps_per_epoch, num_envs, num_procs())
    # With anneal_lr, the epoch at which the learning rates reach 0 (the run's end, or anneal_lr_steps).
    lr_horizon = annealing_epochs(epochs, anneal_lr_steps, steps_per_env * num_envs * num_procs())
    obs_shape, obs_dtype = obs_space.shape, obs_space.dtype  # float32 vectors, or uint8 image frames
    buf = GAEBuffer(
        obs_shape, act_space.shape, steps_per_env, num_envs, gamma, lam, act_space.dtype, obs_dtype
    )

    # Set up the logger and save the configuration, only now: a refused environment, network or
    # buffer size above leaves no run directory behind.
    logger = EpochLogger(**(logger_kwargs or {}), resume=resume)
    logger.save_config(config)
    logger.log_message(f"Number of parameters: \t pi: {count_vars(ac.pi)}, \t v: {count_vars(ac.v)}")

    def compute_loss_pi(data):
        """The clipped surrogate objective (PPO paper, eq. 7), negated for gradient descent."""
        obs, act, adv, logp_old = data["obs"], data["act"], data["adv"], data["logp"]
        pi, logp = ac.pi(obs, act)
        ratio = torch.exp(logp - logp_old)
        clip_adv = torch.clamp(ratio, 1 - clip_ratio, 1 + clip_ratio) * adv
        loss_pi = -(torch.min(ratio * adv, clip_adv)).mean()
        if ent_coef:  # an entropy bonus: a policy that stays random longer explores more
            entropy = pi.entropy()
            loss_pi = loss_pi - ent_coef * (entropy.sum(-1) if entropy.dim() > 1 else entropy).mean()

        # Also measured: the approximate KL (for the early stop), the entropy, the fraction clipped.
        approx_kl = (logp_old - logp).mean().item()
        ent = pi.entropy().mean().item()
        clipped = ratio.gt(1 + clip_ratio) | ratio.lt(1 - clip_ratio)
        clipfrac = torch.as_tensor(clipped, dtype=torch.float32).mean().item()
        return loss_pi, dict(kl=approx_kl, ent=ent, cf=clipfrac)

    def compute_loss_v(data):
        """Mean-squared error between V(s) and the critic's targets (with ``data["features"]`` only the
        critic's head runs: see the critic's steps)."""
        features = data.get("features")
        v = ac.v(data["obs"]) if features is None else ac.v(data["obs"], features)
        return ((v - data["ret"]) ** 2).mean()

    # Adam for the policy and for the critic, each with its own learning rate.
    pi_optimizer = Adam(ac.pi.parameters(), lr=pi_lr, eps=adam_eps)
    vf_optimizer = Adam(ac.v.parameters(), lr=vf_lr, eps=adam_eps)

    # Checkpoints; a resumed run continues after the last one, everything restored (the
    # normalisers' statistics too).
    checkpointer = Checkpointer(
        logger.output_dir,
        ac=ac,
        pi_optimizer=pi_optimizer,
        vf_optimizer=vf_optimizer,
        **norms.checkpoint_entries(),
    )
    progress = checkpointer.start(logger, resume, epochs)

    def update(epoch: int):
        data = buf.get(device)
        # The critic's targets: the rewards-to-go, normalised with value_norm.
        data["ret"] = norms.value_targets(data["ret"])
        if anneal_lr:
            anneal_learning_rate(pi_optimizer, pi_lr, epoch, lr_horizon)
            anneal_learning_rate(vf_optimizer, vf_lr, epoch, lr_horizon)

        with torch.no_grad():
            pi_l_old, pi_info_old = compute_loss_pi(data)
            v_l_old = compute_loss_v(data).item()
        pi_l_old = pi_l_old.item()
        check_finite(epoch, LossPi=pi_l_old, LossV=v_l_old)

        # Policy steps on the clipped objective (on the whole batch, or on minibatches pass after
        # pass), until the new policy has moved too far (mean KL over all ranks) from the one that
        # collected the data.
        stop_iter = train_pi_iters
        for i, batch in minibatch_steps(data, train_pi_iters, minibatch_size):
            pi_optimizer.zero_grad()
            loss_pi, pi_info = compute_loss_pi(batch)
            loss_pi.backward()
            # One reduction averages the gradient and the KL over all ranks (the ranks meet once per
            # step, not twice); the step is taken only while the mean KL stays small enough.
            kl = mpi_avg_grads(ac.pi, pi_info["kl"])
            if target_kl is not None and kl > 1.5 * target_kl:
                stop_iter = i
                break
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(ac.pi.parameters(), max_grad_norm)
            pi_optimizer.step()

        # Fit the critic to the rewards-to-go (on image observations, with the policy encoder's features
        # computed once for all critic steps).
        critic_data = with_cached_encoder_features(ac, data)
        for _, batch in minibatch_steps(critic_data, train_v_iters, minibatch_size):
            vf_optimizer.zero_grad()
            loss_v = compute_loss_v(batch)
            loss_v.backward()
            mpi_avg_grads(ac.v)
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(ac.v.parameters(), max_grad_norm)
            vf_optimizer.step()
        if minibatch_size is not None:  # the whole batch's losses after the update, for the Delta columns
            with torch.no_grad():
                loss_pi, _ = compute_loss_pi(data)
                loss_v = compute_loss_v(critic_data)

        # Log the losses before the update and how much it changed them.
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

    # The env copies are reset once, here, seeded from (seed, rank, first epoch of this process);
    # after that, episodes run on across epoch ends and checkpoints.
    obs, _ = envs.reset(seed=env_seeds(seed, proc_id(), progress.epoch, num_envs))
    episodes = EpisodeReturns(num_envs)  # each copy's running return and length
    learning_signals = LearningSignals(envs)  # Atari's rules for rewards and terminals; others: as they are
    to_env = policy_to_env_actions(act_space)
    close_paths = PathCloser(buf, ac, device, norms)

    # Main loop: each epoch, collect experience with the current policy, update, log one row.
    for epoch in range(progress.epoch, epochs):
        policy_step = fast_policy_step(ac, device, num_calls=steps_per_env)  # ac.step, in NumPy if it can
        for t in range(steps_per_env):
            # The networks see (and the buffer keeps) the observation normalised, with obs_norm.
            obs_in = norms.observation(obs)
            a, v, logp = policy_step(obs_in)
            next_obs, rew, terminated, truncated, info = envs.step(to_env(a))
            episodes.count(rew)

            # What the buffer learns from: the env's reward and terminal flag, except for Atari (clipped
            # rewards; a lost life is a terminal, though the game goes on); rewards scaled with reward_norm.
            learn_rew, learn_term = learning_signals(rew, terminated, info)
            learn_rew = norms.reward(learn_rew, terminated, truncated)
            buf.store(obs_in, a, learn_rew, norms.critic_value(v), logp)  # V in the env's units

            # Close the paths that end here: a terminal with 0, a time limit or the epoch's end with V
            # of the observation reached. Every episode that ends ends a path: log EpRet and EpLen.
            # (count_nonzero answers as .any() does, sooner.)
            epoch_ended = t == steps_per_env - 1
            if epoch_ended or np.count_nonzero(learn_term) or np.count_nonzero(truncated):
                close_paths(next_obs, info, learn_term, truncated, epoch_ended)
                episodes.log_ended(terminated | truncated, logger)

            # The easy line to forget: the next step starts from the new observation.
            obs = next_obs
        norms.update()  # the epoch's observations and returns join the statistics, over all ranks
        logger.store(VVals=buf.val_buf.copy())  # the critic's estimates of the epoch, in one array

        # The PPO update: policy steps on the clipped objective, then the critic.
        update(epoch)

        # The epoch's row in progress.txt (statistics over all ranks).
        progress.t += steps_per_env * num_envs * num_procs()
        logger.log_tabular("Epoch", epoch)
        logger.log_tabular("EpRet", with_min_and_max=True)
        logger.log_tabular("EpLen", average_only=True)
        logger.log_tabular("VVals", with_min_and_max=True)
        logger.log_tabular("TotalEnvInteracts", progress.t)
        for key in ("LossPi", "LossV", "DeltaLossPi", "DeltaLossV", "Entropy", "KL", "ClipFrac", "StopIter"):
            logger.log_tabular(key, average_only=True)
        logger.log_tabular("Time", progress.seconds())
        logger.dump_tabular()

        # Count the epoch; every save_freq epochs (and after the last), save a checkpoint.
        checkpointer.end_epoch(logger, progress, epochs, save_freq)

    envs.close()
    logger.finish(epochs)
    return ac


if __name__ == "__main__":
    from spinrl.cli import run_as_script

    run_as_script("ppo")
