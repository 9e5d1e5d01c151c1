"""Trust Region Policy Optimization, and Natural Policy Gradient with ``algo="npg"``.

Schulman et al. 2015, "Trust Region Policy Optimization", https://arxiv.org/abs/1502.05477;
Kakade 2002, "A Natural Policy Gradient".
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch.distributions import kl_divergence
from torch.nn.utils import parameters_to_vector, vector_to_parameters
from torch.optim import Adam

from spinrl.buffers import GAEBuffer
from spinrl.checkpoint import Checkpointer
from spinrl.envs import check_spaces, env_name_of, make_vector_env, obs_dim_of
from spinrl.logx import EpochLogger
from spinrl.mpi import mpi_avg, mpi_avg_grads, num_procs, proc_id, setup_pytorch_for_mpi, sync_params
from spinrl.nets import MLPActorCritic
from spinrl.onpolicy import TrajectoryCollector, restart_seeds, steps_per_env_for
from spinrl.runtime import check_finite, check_hyperparameters, resolve_device, seed_everything


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
    max_ep_len: int = 1000,
    logger_kwargs: dict | None = None,
    save_freq: int = 10,
    resume: bool = False,
    num_envs: int = 1,
    async_envs: bool = False,
    device: str = "auto",
    algo: str = "trpo",
) -> MLPActorCritic:
    """Trust Region Policy Optimization (with GAE-Lambda for advantage estimation).

    Each epoch takes the largest step along the natural gradient H^-1 g that keeps the average KL
    divergence between old and new policy below ``delta`` (TRPO paper, eq. 12-14). The Hessian H of
    the KL is never formed: conjugate gradient solves Hx = g from Hessian-vector products, and a
    backtracking line search enforces the constraint and improvement of the surrogate.

    Args:
        env_fn: A Gymnasium environment id (e.g. "CartPole-v1"), or a function that creates a copy
            of the environment. The environment must satisfy the Gymnasium API.
        actor_critic: The constructor method for a PyTorch Module with a ``step`` method, an ``act``
            method, a ``pi`` module and a ``v`` module (see spinrl.nets.MLPActorCritic for the
            shapes they return). Built as ``actor_critic(observation_space, action_space, **ac_kwargs)``.
        ac_kwargs: Any kwargs appropriate for the actor_critic you provided to TRPO, e.g.
            hidden_sizes=(64,64), activation="Tanh".
        seed: Seed for the random number generators (Python, NumPy, torch and every env copy).
        steps_per_epoch: Number of steps of interaction (state-action pairs) for the agent and the
            environment in each epoch, summed over all env copies and MPI ranks.
        epochs: Number of epochs of interaction (equivalent to number of policy updates) to perform.
        gamma: Discount factor. (Always between 0 and 1.)
        delta: KL-divergence limit for TRPO / NPG update. (Should be small for stability. Values
            like 0.01, 0.05.)
        vf_lr: Learning rate for the value function optimizer.
        train_v_iters: Number of gradient descent steps to take on the value function per epoch.
        damping_coeff: Artifact for numerical stability, should be smallish. Adjusts Hessian-vector
            product calculation: Hv -> (alpha I + H) v, where alpha is the damping coefficient.
            Probably don't play with this hyperparameter.
        cg_iters: Number of iterations of conjugate gradient to perform. Increasing this will lead
            to a more accurate approximation to H^{-1} g, and possibly slightly-improved performance,
            but at the cost of slowing things down. Also probably don't play with this hyperparameter.
        backtrack_iters: Maximum number of steps allowed in the backtracking line search. Since the
            line search usually doesn't backtrack, and usually only steps back once when it does,
            this hyperparameter doesn't often matter.
        backtrack_coeff: How far back to step during backtracking line search. (Always between 0
            and 1, usually above 0.5.)
        lam: Lambda for GAE-Lambda. (Always between 0 and 1, close to 1.)
        max_ep_len: Maximum length of trajectory / episode / rollout; reaching it is a truncation
            (bootstrapped), never a terminal. The env's own time limit applies when it is shorter.
        logger_kwargs: Keyword args for EpochLogger (output_dir, exp_name).
        save_freq: How often (in terms of gap between epochs) to save a checkpoint; the last epoch
            is always saved.
        resume: Continue the run in logger_kwargs' output_dir from its last checkpoint.
        num_envs: Number of environment copies stepped together in each MPI rank (vectorised:
            one batched forward pass of the policy for all copies).
        async_envs: Step the copies in subprocesses (Gymnasium's AsyncVectorEnv) instead of in
            this process; pays off only for slow environments with cores to spare.
        device: Where the networks live: "auto" (CUDA if available), "cpu" or "cuda".
        algo: Either "trpo" or "npg": this code supports both, since they are almost the same
            (NPG takes the full natural-gradient step with no line search).

    Returns:
        The trained actor-critic.
    """
    check_hyperparameters(locals())
    if algo not in ("trpo", "npg"):
        from spinrl.errors import UserError

        raise UserError(f"algo={algo!r} is not valid: use 'trpo' or 'npg'")
    ac_kwargs = dict(ac_kwargs or {})
    config = dict(locals(), algo=algo, env_name=env_name_of(env_fn))
    setup_pytorch_for_mpi()  # Special function to avoid certain slowdowns from PyTorch + MPI combo.

    # Random seed: different on each MPI rank, so ranks collect different experience.
    seed += 10000 * proc_id()
    seed_everything(seed)
    device = resolve_device(device)

    # Instantiate the environment copies.
    envs = make_vector_env(env_fn, num_envs, max_ep_len, asynchronous=async_envs)
    check_spaces(envs, algo)
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
        """Mean-squared error between V(s) and the rewards-to-go."""
        return ((ac.v(data["obs"]) - data["ret"]) ** 2).mean()

    # The policy is moved by hand along the natural gradient; only the value function uses Adam.
    vf_optimizer = Adam(ac.v.parameters(), lr=vf_lr)
    pi_params = list(ac.pi.parameters())

    # Resume from the last checkpoint, if asked to.
    checkpointer = Checkpointer(logger.output_dir, ac=ac, vf_optimizer=vf_optimizer)
    counters = checkpointer.restore(logger) if resume else None
    start_epoch = counters["epoch"] if counters else 0
    time_offset = counters["elapsed"] if counters else 0.0

    def hessian_vector_product(kl: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(H + damping I) x, where H is the Hessian of the KL: the gradient of (grad KL . x)."""
        grad_kl = torch.autograd.grad(kl, pi_params, create_graph=True)
        grad_kl_x = (parameters_to_vector(grad_kl) * x).sum()
        hx = parameters_to_vector(torch.autograd.grad(grad_kl_x, pi_params, retain_graph=True))
        return _mpi_avg_tensor(hx) + damping_coeff * x

    def update(epoch: int):
        data = buf.get(device)

        # The policy that collected the data, frozen: the KL constraint is measured against it.
        with torch.no_grad():
            pi_old = ac.pi.distribution(data["obs"])

        # Policy gradient g of the surrogate, averaged over MPI ranks.
        loss_pi, kl, pi = compute_loss_pi(data, pi_old)
        pi_l_old = loss_pi.item()
        with torch.no_grad():
            v_l_old = compute_loss_v(data).item()
        check_finite(epoch, LossPi=pi_l_old, LossV=v_l_old)
        g = _mpi_avg_tensor(parameters_to_vector(torch.autograd.grad(loss_pi, pi_params, retain_graph=True)))

        # Natural gradient direction x = H^-1 g by conjugate gradient, and the step size that puts
        # the quadratic approximation of the KL exactly at delta: sqrt(2 delta / x^T H x).
        x = conjugate_gradient(lambda v: hessian_vector_product(kl, v), g, cg_iters)
        alpha = torch.sqrt(2 * delta / (torch.dot(x, hessian_vector_product(kl, x)) + 1e-8))
        old_params = parameters_to_vector(pi_params).detach().clone()

        def set_and_eval(step: float) -> tuple[float, float]:
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
                    logger.log_message(f"Accepting new params at step {j} of line search.")
                    backtrack = j
                    break
                if j == backtrack_iters - 1:
                    logger.log_message("Line search failed! Keeping old params.")
                    backtrack = j
                    kl_new, pi_l_new = set_and_eval(step=0.0)

        # Value function learning.
        for _ in range(train_v_iters):
            vf_optimizer.zero_grad()
            loss_v = compute_loss_v(data)
            loss_v.backward()
            mpi_avg_grads(ac.v)  # average grads across MPI processes
            vf_optimizer.step()

        # Log changes from update.
        logger.store(
            LossPi=pi_l_old,
            LossV=v_l_old,
            KL=kl_new,
            Entropy=pi.entropy().mean().item(),
            BacktrackIters=backtrack,
            DeltaLossPi=(pi_l_new - pi_l_old),
            DeltaLossV=(loss_v.item() - v_l_old),
        )

    # Main loop: collect experience in env and update/log each epoch.
    collector = TrajectoryCollector(envs, ac, buf, logger, device)
    start_time = time.time()
    logger.set_status("running", start_epoch, epochs)
    for epoch in range(start_epoch, epochs):
        collector.collect(steps_per_env, restart_seeds(seed, epoch, start_epoch, save_freq, num_envs))

        # Perform the TRPO / NPG update!
        update(epoch)

        # Log info about epoch.
        logger.log_tabular("Epoch", epoch)
        logger.log_tabular("EpRet", with_min_and_max=True)
        logger.log_tabular("EpLen", average_only=True)
        logger.log_tabular("VVals", with_min_and_max=True)
        logger.log_tabular("TotalEnvInteracts", (epoch + 1) * steps_per_env * num_envs * num_procs())
        for key in ("LossPi", "LossV", "DeltaLossPi", "DeltaLossV", "Entropy", "KL", "BacktrackIters"):
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


def _mpi_avg_tensor(x: torch.Tensor) -> torch.Tensor:
    """Average a flat tensor over MPI ranks (no-op in one process)."""
    if num_procs() == 1:
        return x
    return torch.as_tensor(mpi_avg(x.detach().cpu().numpy()), dtype=x.dtype, device=x.device)


if __name__ == "__main__":
    import sys

    from spinrl.run import console_main

    sys.argv = [sys.argv[0], "trpo", *sys.argv[1:]]
    console_main()
