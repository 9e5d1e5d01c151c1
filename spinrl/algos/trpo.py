"""TRPO: the biggest policy step whose mean KL from the old policy stays within a trust region, by
conjugate gradient and a backtracking line search; with ``algo="npg"``, the natural policy gradient.

Schulman et al. 2015, "Trust Region Policy Optimization", https://arxiv.org/abs/1502.05477;
Kakade 2002, "A Natural Policy Gradient".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.distributions import kl_divergence
from torch.nn.utils import parameters_to_vector, vector_to_parameters
from torch.optim import Adam

from spinrl.algos.arguments import ON_POLICY, with_shared_argument_docs
from spinrl.buffers.gae import GAEBuffer
from spinrl.common.checks import check_finite, check_hyperparameters
from spinrl.common.device import resolve_device
from spinrl.common.errors import UserError
from spinrl.common.mpi import mpi_avg, mpi_avg_grads, num_procs, proc_id, setup_pytorch_for_mpi, sync_params
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
    fast_policy_step,
    policy_to_env_actions,
    with_cached_encoder_features,
)


# Args: below holds what is TRPO's own. The arguments it shares with the other on-policy
# algorithms (env_fn, seed, gamma, lam, num_envs, ...) are explained once, in spinrl/algos/arguments.py;
# the decorator adds them to the docstring, so help(), --help and the API reference list them all.
@marks_failed_runs
@with_shared_argument_docs(ON_POLICY)
def trpo(
    env_fn: Callable | str,
    actor_critic: Callable = MLPActorCritic,
    ac_kwargs: dict | None = None,
    seed: int = 0,
    steps_per_epoch: int = 4000,
    epochs: int = 50,
    gamma: float = 0.99,
    delta: float = 0.01,
    vf_lr: float = 1e-3,
    train_v_iters: int = 80,
    damping_coeff: float = 0.1,
    cg_iters: int = 10,
    backtrack_iters: int = 10,
    backtrack_coeff: float = 0.8,
    lam: float = 0.97,
    max_ep_len: int | None = None,
    logger_kwargs: dict | None = None,
    save_freq: int = 10,
    resume: bool = False,
    num_envs: int = 1,
    async_envs: bool = False,
    device: str = "auto",
    algo: str = "trpo",
    env_kwargs: dict | None = None,
    obs_norm: bool = False,
    obs_clip: float = 10.0,
    reward_norm: bool = False,
    reward_clip: float = 10.0,
    value_norm: bool = False,
) -> MLPActorCritic:
    """TRPO, with GAE-Lambda advantages (and NPG with ``algo="npg"``).

    Each epoch takes the largest step along the natural gradient H^-1 g that keeps the average KL
    divergence between old and new policy below ``delta`` (TRPO paper, eq. 12-14). The Hessian H of
    the KL is never formed: conjugate gradient solves Hx = g from Hessian-vector products, and a
    backtracking line search makes sure the step keeps the constraint and improves the surrogate.
    The critic takes ``train_v_iters`` Adam steps towards the rewards-to-go.

    ``actor_critic(observation_space, action_space, **ac_kwargs)`` must return a module ``ac`` with,
    for a batch ``obs`` of B observations (shape (B, obs_dim)):

    - ``ac.step(obs)``: a sampled action (shape (B, act_dim), or (B,) for Discrete actions), V(obs)
      (B,) and log pi(a|obs) (B,), computed without gradients;
    - ``ac.act(obs)``: the action alone;
    - ``ac.pi(obs, act)``: the action distribution and log pi(act|obs) (B,), with gradients;
    - ``ac.pi.distribution(obs)``: the action distribution alone; torch's ``kl_divergence`` must know
      it (Categorical and Normal do), as the trust region is measured with it;
    - ``ac.v(obs)``: V(obs) of shape (B,). A shape (B, 1) would broadcast against the (B,) targets
      and silently turn the value loss into a mean over a (B, B) matrix.

    Args:
        delta: The size of the trust region: the largest mean KL divergence between the old and the
            new policy one update may reach. 0.01 to 0.05; larger moves faster but can overshoot
            where the quadratic model of the KL no longer holds, smaller learns slowly.
        damping_coeff: A multiple of the identity added to the KL Hessian, (H + damping_coeff I) v,
            so that conjugate gradient stays stable where H is nearly singular. Keep it small (0.1):
            too large and the step turns into a shrunken plain gradient step, 0 risks erratic
            steps. It rarely needs tuning.
        cg_iters: Conjugate gradient iterations for x = H^-1 g, each one Hessian-vector product. More
            solve the system more exactly at a proportional cost; the gain beyond about 10 is small,
            and this rarely needs tuning either.
        backtrack_iters: How many step sizes the line search tries before it gives up and keeps the
            old policy (the BacktrackIters column shows how many it took). The full step is usually
            accepted at once, or after one shrink, so this seldom matters.
        backtrack_coeff: The factor in (0, 1) that shrinks the step after each rejected try: try j
            takes backtrack_coeff**j of the full step. Usually above 0.5; small values give away
            much of the step at the first rejection.
        algo: "trpo" (the line search above) or "npg", the natural policy gradient: the same
            direction and step size, taken in full without a line search. The two differ in
            nothing else, hence one function.

    Returns:
        The trained actor-critic.
    """
    check_hyperparameters(locals())
    if algo not in ("trpo", "npg"):
        raise UserError(f"algo={algo!r} is not valid: use 'trpo' or 'npg'")
    ac_kwargs = dict(ac_kwargs or {})
    config = dict(locals(), algo=algo, env_name=env_name_of(env_fn))
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
    check_spaces(envs, algo)
    obs_space, act_space = envs.single_observation_space, envs.single_action_space

    # Observation, reward and value normalisation, each on only if asked for (spinrl.training.normalize).
    norms = make_normalizers(
        obs_space, num_envs, gamma, obs_norm, obs_clip, reward_norm, reward_clip, value_norm
    )

    # Create the actor-critic module, identical on every rank.
    ac = build_actor_critic(actor_critic, obs_space, act_space, ac_kwargs, algo).to(device)
    sync_params(ac)

    # Set up the experience buffer: steps_per_epoch is shared by all ranks and env copies.
    steps_per_env = steps_per_copy(steps_per_epoch, num_envs, num_procs())
    obs_shape, obs_dtype = obs_space.shape, obs_space.dtype  # float32 vectors, or uint8 image frames
    buf = GAEBuffer(
        obs_shape, act_space.shape, steps_per_env, num_envs, gamma, lam, act_space.dtype, obs_dtype
    )

    # Set up the logger and save the configuration, only now: a refused environment, network or
    # buffer size above leaves no run directory behind.
    logger = EpochLogger(**(logger_kwargs or {}), resume=resume)
    logger.save_config(config)
    logger.log_message(f"Number of parameters: \t pi: {count_vars(ac.pi)}, \t v: {count_vars(ac.v)}")

    def compute_loss_pi(data, pi_old):
        """The surrogate objective L(theta) = E[pi_theta(a|s) / pi_old(a|s) A] (TRPO eq. 14), negated,
        and the mean KL divergence from the old policy to the current one."""
        obs, act, adv, logp_old = data["obs"], data["act"], data["adv"], data["logp"]
        pi, logp = ac.pi(obs, act)
        loss_pi = -(torch.exp(logp - logp_old) * adv).mean()
        kl = kl_divergence(pi_old, pi)
        kl = (kl.sum(-1) if kl.dim() > 1 else kl).mean()  # Gaussian KL is per action dimension
        return loss_pi, kl, pi

    def compute_loss_v(data):
        """Mean-squared error between V(s) and the rewards-to-go (with ``data["features"]`` only the
        critic's head runs: see the critic's steps)."""
        features = data.get("features")
        v = ac.v(data["obs"]) if features is None else ac.v(data["obs"], features)
        return ((v - data["ret"]) ** 2).mean()

    # The policy is moved by hand along the natural gradient; only the value function uses Adam.
    vf_optimizer = Adam(ac.v.parameters(), lr=vf_lr)
    pi_params = list(ac.pi.parameters())

    # Checkpoints; a resumed run continues after the last one, everything restored.
    checkpointer = Checkpointer(
        logger.output_dir, ac=ac, vf_optimizer=vf_optimizer, **norms.checkpoint_entries()
    )
    progress = checkpointer.start(logger, resume, epochs)

    def hessian_vector_product(kl: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(H + damping I) x, where H is the Hessian of the KL: the gradient of (grad KL . x)."""
        grad_kl = torch.autograd.grad(kl, pi_params, create_graph=True)
        grad_kl_x = (flat_concat(grad_kl) * x).sum()
        hx = flat_concat(torch.autograd.grad(grad_kl_x, pi_params, retain_graph=True))
        return _mpi_avg_tensor(hx) + damping_coeff * x

    def update(epoch: int):
        data = buf.get(device)
        # The critic's targets: the rewards-to-go, normalised with value_norm.
        data["ret"] = norms.value_targets(data["ret"])

        # The policy that collected the data, frozen: the KL constraint is measured against it.
        with torch.no_grad():
            pi_old = ac.pi.distribution(data["obs"])

        # Policy gradient g of the surrogate, averaged over MPI ranks. The loss is averaged too, so
        # that every rank compares the line search's new losses (averaged) with the same old one,
        # accepts the same step and stays in step with the others' collective calls.
        loss_pi, kl, pi = compute_loss_pi(data, pi_old)
        pi_l_old = float(mpi_avg(loss_pi.item()))
        with torch.no_grad():
            v_l_old = compute_loss_v(data).item()
        check_finite(epoch, LossPi=pi_l_old, LossV=v_l_old)
        g = _mpi_avg_tensor(flat_concat(torch.autograd.grad(loss_pi, pi_params, retain_graph=True)))

        # Natural gradient direction x = H^-1 g by conjugate gradient, and the step size that puts
        # the quadratic approximation of the KL exactly at delta: sqrt(2 delta / x^T H x).
        x = conjugate_gradient(lambda v: hessian_vector_product(kl, v), g, cg_iters)
        alpha = torch.sqrt(2 * delta / (torch.dot(x, hessian_vector_product(kl, x)) + 1e-8))
        old_params = parameters_to_vector(pi_params).detach().clone()

        def set_and_eval(step: float) -> tuple[float, float]:
            """Put the policy at the given fraction of the full step; its KL and loss over all ranks."""
            vector_to_parameters(old_params - alpha * x * step, pi_params)
            with torch.no_grad():
                loss, kl_new, _ = compute_loss_pi(data, pi_old)
            return float(mpi_avg(kl_new.item())), float(mpi_avg(loss.item()))

        if algo == "npg":
            # NPG: take the full step, no line search.
            kl_new, pi_l_new = set_and_eval(step=1.0)
            backtrack = 0
        else:
            # TRPO: backtrack until the KL constraint holds and the surrogate improves.
            for j in range(backtrack_iters):
                kl_new, pi_l_new = set_and_eval(step=backtrack_coeff**j)
                if kl_new <= delta and pi_l_new <= pi_l_old:
                    logger.log_message(f"Line search: step {j} accepted.")
                    backtrack = j
                    break
                if j == backtrack_iters - 1:
                    logger.log_message("Line search: no step accepted; the policy stays as it was.")
                    backtrack = j
                    kl_new, pi_l_new = set_and_eval(step=0.0)

        # Fit the critic to the rewards-to-go (on image observations, with the policy encoder's features
        # computed once for all critic steps).
        critic_data = with_cached_encoder_features(ac, data)
        for _ in range(train_v_iters):
            vf_optimizer.zero_grad()
            loss_v = compute_loss_v(critic_data)
            loss_v.backward()
            mpi_avg_grads(ac.v)  # every rank steps with the gradient averaged over all ranks
            vf_optimizer.step()

        # Log the losses before the update and how much it changed them.
        logger.store(
            LossPi=pi_l_old,
            LossV=v_l_old,
            KL=kl_new,
            Entropy=pi.entropy().mean().item(),
            BacktrackIters=backtrack,
            DeltaLossPi=(pi_l_new - pi_l_old),
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

        # The TRPO (or NPG) update: one natural-gradient step on the policy, then the critic.
        update(epoch)

        # The epoch's row in progress.txt (statistics over all ranks).
        progress.t += steps_per_env * num_envs * num_procs()
        logger.log_tabular("Epoch", epoch)
        logger.log_tabular("EpRet", with_min_and_max=True)
        logger.log_tabular("EpLen", average_only=True)
        logger.log_tabular("VVals", with_min_and_max=True)
        logger.log_tabular("TotalEnvInteracts", progress.t)
        for key in ("LossPi", "LossV", "DeltaLossPi", "DeltaLossV", "Entropy", "KL", "BacktrackIters"):
            logger.log_tabular(key, average_only=True)
        logger.log_tabular("Time", progress.seconds())
        logger.dump_tabular()

        # Count the epoch; every save_freq epochs (and after the last), save a checkpoint.
        checkpointer.end_epoch(logger, progress, epochs, save_freq)

    envs.close()
    logger.finish(epochs)
    return ac


def conjugate_gradient(
    Ax: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, iters: int
) -> torch.Tensor:
    """Approximately solve A x = b for symmetric positive-definite A, given only products A v.

    https://en.wikipedia.org/wiki/Conjugate_gradient_method
    """
    x = torch.zeros_like(b)
    r = b.clone()  # residual b - A x, with x = 0
    p = r.clone()
    r_dot_old = torch.dot(r, r)
    for _ in range(iters):
        z = Ax(p)
        alpha = r_dot_old / (torch.dot(p, z) + 1e-8)
        x += alpha * p
        r -= alpha * z
        r_dot_new = torch.dot(r, r)
        p = r + (r_dot_new / (r_dot_old + 1e-8)) * p
        r_dot_old = r_dot_new
    return x


def flat_concat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """All entries of ``tensors`` in one vector, as parameters_to_vector lays them out; unlike it, this
    accepts the non-contiguous gradients that convolutions (image encoders) can give."""
    return torch.cat([t.reshape(-1) for t in tensors])


def _mpi_avg_tensor(x: torch.Tensor) -> torch.Tensor:
    """Average a flat tensor over MPI ranks (no-op in one process)."""
    if num_procs() == 1:
        return x
    return torch.as_tensor(mpi_avg(x.detach().cpu().numpy()), dtype=x.dtype, device=x.device)


if __name__ == "__main__":
    from spinrl.cli import run_as_script

    run_as_script("trpo")
