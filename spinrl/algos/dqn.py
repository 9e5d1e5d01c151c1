"""Deep Q-Networks (DQN) with double-Q targets, for Discrete action spaces: DDPG's discrete ancestor.

Mnih et al. 2015 (Nature 518, 529-533); van Hasselt, Guez and Silver 2016, arXiv:1509.06461 (the
double-Q target).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch.optim import Adam

from spinrl.algos.arguments import OFF_POLICY, with_shared_argument_docs
from spinrl.buffers.frames import make_replay_buffer
from spinrl.common.checks import check_hyperparameters
from spinrl.common.device import resolve_device, set_thread_budget
from spinrl.common.errors import UserError
from spinrl.common.seeding import env_seeds, seed_everything, seeds_for_test_episodes
from spinrl.envs.actions import ActionMap
from spinrl.envs.atari import LearningSignals, evaluation_settings
from spinrl.envs.make import check_spaces, default_max_ep_len, env_name_of, resolve_env_fn
from spinrl.envs.vector import EpisodeReturns, make_vector_env, real_next_obs, steps_per_copy
from spinrl.nets.q_nets import MLPQNetwork
from spinrl.record.checkpoint import Checkpointer
from spinrl.record.logger import EpochLogger
from spinrl.record.status import marks_failed_runs
from spinrl.training.compiled_update import compile_update
from spinrl.training.offpolicy import (
    BufferCheckpoint,
    UpdateStats,
    polyak_update,
    random_actions,
    refuse_mpi,
    run_test_episodes,
    update_rounds_due,
)


# Args: below holds what is DQN's own. The arguments it shares with the other off-policy
# algorithms (seed, gamma, update_after, compile, ...) are explained once, in spinrl/algos/arguments.py;
# the decorator adds them to the docstring, so help(), --help and the API reference list them all.
@marks_failed_runs
@with_shared_argument_docs(OFF_POLICY)
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
    steps_per_update: int = 1,
    epsilon_start: float = 1.0,
    epsilon_end: float = 0.05,
    epsilon_decay_steps: int = 10000,
    num_test_episodes: int = 10,
    test_epsilon: float | None = None,
    max_test_ep_len: int | None = None,
    max_ep_len: int | None = None,
    logger_kwargs: dict | None = None,
    save_freq: int = 1,
    resume: bool = False,
    num_envs: int = 1,
    device: str = "auto",
    save_buffer: bool = False,
    env_kwargs: dict | None = None,
    compile: bool = False,
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
        env_fn: The environment: a Gymnasium id such as "CartPole-v1", or a function that returns a
            new copy of it (called once per env copy and for the test env). DQN needs a Discrete
            action space: the network has one output per action.
        actor_critic: What builds the network, called as ``actor_critic(observation_space,
            action_space, **ac_kwargs)``. It returns a torch module with ``q`` (observations ->
            Q(s, a) for every action a, shape (1, batch, n)) and ``act`` (observations -> the greedy
            action the env takes, for test episodes). The default, spinrl.nets.q_nets.MLPQNetwork, lists
            the shapes. Spinning Up has no DQN, so only this interface applies (see
            docs/user/custom-networks.md).
        ac_kwargs: Keyword arguments for actor_critic, such as ``dict(hidden_sizes=(256, 256),
            activation="ReLU")`` (the defaults). The cost of an update grows with the number of
            weights; too small a network cannot tell similar states apart.
            Image observations get a convolutional encoder first, picked and sized by ``encoder``
            ("nature", "small" or a class) and ``features_dim``, with no hidden layers after it by
            default, as in the Nature DQN (see docs/user/custom-networks.md).
        replay_size: Capacity of the replay buffer in observation rows, about one transition each
            (the last observation of an episode takes a row of its own; see spinrl.buffers.replay).
            When it is full, the oldest transitions go first. The default 1e6 keeps the whole history
            of a million-step run; a much smaller buffer forgets early experience and can make
            learning unstable. Each row costs 4 bytes per observation number, plus 14.
        polyak: How slowly the target network follows the trained one, in [0, 1): after each
            update, theta_targ <- polyak * theta_targ + (1 - polyak) * theta. 0.995 (default) makes
            the target an average over roughly the last 200 updates (the original DQN instead copied
            the network over every 10,000 updates). Much lower, and the target chases the network
            trained towards it (unstable); too close to 1 slows learning down.
        q_lr: Adam's learning rate (step size) for the Q-network. 3e-4 by default, lower than DDPG's
            1e-3: the max in DQN's target makes it prone to oscillate and to forget what it learned.
            Too large and the Q-values swing or diverge (the run stops with a NaN loss).
        start_steps: Env steps (over all copies, from the start of the run) during which actions are
            drawn uniformly at random, so that the first updates see varied experience; afterwards
            epsilon-greedy takes over. 10000 by default; a few hundred for quick tests.
        update_every: How updates are grouped, in env steps over all copies: after every
            update_every env steps come update_every / steps_per_update gradient steps in a row, so
            the ratio of gradient steps to env steps stays fixed. Larger groups switch less often
            between acting and training (faster) and act with a slightly older network. 50 by default.
        steps_per_update: Env steps (over all copies) per gradient step. 1 by default, as in the other
            off-policy algorithms here; the Nature DQN paper (and SB3's train_freq) take one gradient
            step per 4 agent steps on Atari, where an update through the convolutional network costs
            far more than an env step: steps_per_update=4 does the same, and a quarter of the updates.
            update_every must be a multiple of it (each group of update_every env steps brings
            update_every / steps_per_update gradient steps).
        epsilon_start: The probability of a uniformly random action right after start_steps
            (epsilon-greedy exploration; otherwise the action with the highest Q-value). 1.0 by
            default: fully random at first, then decreasing.
        epsilon_end: The probability of a random action once the decay is over, kept for the rest of
            the run. 0.05 by default. 0 stops exploring, which can leave the agent stuck; large
            values keep the training episodes (EpRet) well below what the greedy policy achieves.
        epsilon_decay_steps: Env steps (over all copies), counted from start_steps, over which
            epsilon falls linearly from epsilon_start to epsilon_end. 10000 by default. Too short and
            exploration stops before the Q-values mean much; too long wastes steps on random actions.
        num_test_episodes: Episodes played after every epoch with the greedy policy (epsilon =
            test_epsilon), in a separate env whose seeds differ from the training envs'. Their returns
            (the TestEpRet columns) are the usual measure of progress. 10 by default; they are not
            counted in TotalEnvInteracts.
        test_epsilon: The probability of a random action in the test episodes, in [0, 1]. None
            (default): 0.05 for Atari games, as in the Nature paper's evaluation (a greedy policy can
            get stuck: a fresh network that never presses FIRE in Breakout plays until the game's
            time limit), 0 otherwise.
        max_test_ep_len: The longest a test episode may run, in env steps. None (default): for Atari
            games 5 minutes of play (18,000 frames, 4,500 steps at frame_skip 4), as in the Nature
            paper; otherwise max_ep_len.
        save_buffer: Also write the filled part of the replay buffer into each checkpoint, so that
            a resumed run keeps its experience. Without it, a resumed run starts from an empty
            buffer.

    Returns:
        The trained Q-network.
    """
    check_hyperparameters(locals())
    if update_every % steps_per_update:
        raise UserError(
            f"update_every={update_every} is not a multiple of steps_per_update={steps_per_update}: "
            f"give an update_every such as {steps_per_update * max(1, update_every // steps_per_update)}"
        )
    if test_epsilon is not None and (
        isinstance(test_epsilon, bool)
        or not isinstance(test_epsilon, int | float)
        or not 0 <= test_epsilon <= 1
    ):
        raise UserError(f"test_epsilon={test_epsilon!r} is not valid: give a probability in [0, 1], or None")
    if max_test_ep_len is not None and (
        isinstance(max_test_ep_len, bool) or not isinstance(max_test_ep_len, int) or max_test_ep_len < 1
    ):
        raise UserError(
            f"max_test_ep_len={max_test_ep_len!r} is not valid: give a whole number >= 1, or None"
        )
    refuse_mpi("dqn")
    ac_kwargs = dict(ac_kwargs or {})
    config = dict(locals(), algo="dqn", env_name=env_name_of(env_fn))
    # A Gymnasium id becomes a factory: Atari ids get spinrl.envs.atari's protocol, env_kwargs its options.
    env_fn = resolve_env_fn(env_fn, env_kwargs)
    max_ep_len = default_max_ep_len(env_fn, max_ep_len)  # None: 1000 steps, or a full Atari game
    # Test games: Atari ones as the field plays them (spinrl.envs.atari.evaluation_settings), others greedy.
    atari_test = evaluation_settings(env_fn)
    if test_epsilon is None:
        test_epsilon = atari_test[0] if atari_test else 0.0
    if max_test_ep_len is None:
        max_test_ep_len = atari_test[1] if atari_test else max_ep_len
    steps_per_env = steps_per_copy(steps_per_epoch, num_envs)

    # Random seeds; the device; on the CPU one torch thread, fastest for small networks.
    seed_everything(seed)
    device = resolve_device(device)
    if device.type == "cpu":
        set_thread_budget()

    # The env copies for training, and a separate env with one copy per test episode. Their spaces are
    # checked before the logger exists, so that a refused env leaves no run directory behind.
    envs = make_vector_env(env_fn, num_envs, max_ep_len)
    check_spaces(envs, "dqn", action_spaces=(spaces.Discrete,))
    test_envs = make_vector_env(env_fn, num_test_episodes, max_test_ep_len)
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    learning_signals = LearningSignals(envs)  # Atari: clipped rewards, a lost life as terminal
    to_env = ActionMap(act_space)  # the index of a Q-network output -> the env's action

    # Create the Q-network and its target network, which only moves by Polyak averaging.
    ac = actor_critic(obs_space, act_space, **ac_kwargs).to(device)
    ac_targ = copy.deepcopy(ac).requires_grad_(False)
    q_params, q_targ_params = list(ac.q.parameters()), list(ac_targ.q.parameters())

    # The replay buffer: actions are stored as indices 0..n-1.
    buf = make_replay_buffer(envs, replay_size, torch.int64, device)

    # Set up the logger and save the configuration, only now: a refused environment, network or
    # buffer size above leaves no run directory behind.
    logger = EpochLogger(**(logger_kwargs or {}), resume=resume)
    logger.save_config(config)
    logger.log_message(f"Number of parameters: \t q: {sum(p.numel() for p in q_params)}")

    def compute_loss_q(data):
        """Huber loss against double-Q targets (DQN paper, Methods; Double DQN paper, eq. 4)."""
        o, a, r, o2, d = data["obs"], data["act"], data["rew"], data["obs2"], data["done"]
        q = ac.q(o)[0].gather(-1, a.unsqueeze(-1)).squeeze(-1)  # Q(s, a), shape (B,)

        # The target: the online network picks a', the target network evaluates it.
        with torch.no_grad():
            a2 = ac.q(o2)[0].argmax(-1, keepdim=True)
            q_targ = ac_targ.q(o2)[0].gather(-1, a2).squeeze(-1)
            backup = r + gamma * (1 - d) * q_targ

        # The Huber loss has DQN's clipped error gradient: the error term counts at most +-1.
        loss_q = F.smooth_l1_loss(q, backup)
        return loss_q, q

    # Fused Adam updates all of the network's parameters in one kernel.
    q_optimizer = Adam(q_params, lr=q_lr, fused=True)
    stats = UpdateStats()

    def update(data: dict[str, torch.Tensor]) -> None:
        # One gradient step on the Q-network.
        q_optimizer.zero_grad()
        loss_q, q = compute_loss_q(data)
        loss_q.backward()
        q_optimizer.step()

        # Then the target network moves a little towards the trained one.
        polyak_update(q_targ_params, q_params, polyak)
        stats.add(LossQ=loss_q, QVals=q)

    # With compile=True, the same update as compiled code (spinrl.training.compiled_update).
    update = compile_update(update, compile, device, logger)

    def epsilon(t: int) -> float:
        """The exploration rate after t env steps: epsilon_start at start_steps, then a straight line
        down to epsilon_end over epsilon_decay_steps."""
        frac = min(1.0, max(0.0, t - start_steps) / epsilon_decay_steps)
        return epsilon_start + frac * (epsilon_end - epsilon_start)

    def get_action(o: np.ndarray, eps: float) -> np.ndarray:
        """Epsilon-greedy: argmax_a Q(s, a), replaced by a uniformly random index with probability eps."""
        with torch.inference_mode():
            a = ac.q(torch.as_tensor(o, device=device))[0].argmax(-1).cpu().numpy()
        explore = np.random.random_sample(a.shape) < eps
        return np.where(explore, np.random.randint(act_space.n, size=a.shape), a)

    # Everything a resume needs, saved at the end of every save_freq-th epoch. With resume=True,
    # restore it now and continue after the last checkpoint.
    checkpointer = Checkpointer(
        logger.output_dir,
        ac=ac,
        ac_targ=ac_targ,
        q_optimizer=q_optimizer,
        replay_buffer=BufferCheckpoint(buf, save_buffer, logger, update_after),
    )
    progress = checkpointer.start(logger, resume, epochs)  # .epoch, .t (env steps so far), .seconds()

    # Prepare for interaction with the environment. The env copies are reset here, once per process;
    # from then on their episodes run across epoch ends and checkpoints. A resumed run restarts them
    # with seeds for its first epoch: only the episodes that were running when it stopped are lost.
    obs, _ = envs.reset(seed=env_seeds(seed, 0, progress.epoch, num_envs))
    episodes = EpisodeReturns(num_envs)

    # Main loop: collect experience in the env copies and update the network as it comes in.
    for epoch in range(progress.epoch, epochs):
        for _ in range(steps_per_env):
            # Until start_steps env steps have been taken, act uniformly at random; afterwards,
            # epsilon-greedy with a decaying epsilon.
            if progress.t < start_steps:
                a = random_actions(act_space, num_envs)
                logger.store(Epsilon=1.0)  # uniform actions: the Epsilon column says so, not nan
            else:
                eps = epsilon(progress.t)
                a = get_action(obs, eps)
                logger.store(Epsilon=eps)

            # Step the env copies.
            next_obs, rew, terminated, truncated, info = envs.step(to_env(a))
            ended = terminated | truncated
            episodes.add(rew, ended, logger)  # logs EpRet and EpLen of the episodes that ended
            # What the network learns from: the env's reward and terminal flag, except for Atari
            # (clipped rewards; a lost life is a terminal, though the game goes on).
            learn_rew, learn_term = learning_signals(rew, terminated, info)

            # Store the transitions. Where an episode ended, the vector env has already reset that
            # copy and next_obs starts a new episode: store the observation really reached instead.
            # Only a terminal counts as done; a time limit merely cut the episode off, so its last
            # target still bootstraps from the next state's value.
            buf.store(obs, a, learn_rew, real_next_obs(next_obs, ended, info), learn_term, ended)

            # Move on to the observation the copies are in now: the next action must be chosen from
            # it. Forgetting this line raises no error; the agent keeps acting on a stale state.
            obs = next_obs
            progress.t += num_envs

            # Update handling: every update_every env steps (over all copies), update_every /
            # steps_per_update gradient steps (one per env step by default), once update_after
            # transitions are stored. With one copy a round is due when t % update_every == 0; with
            # more, when t passes a multiple of update_every.
            rounds = update_rounds_due(progress.t, num_envs, update_every)
            if rounds and buf.steps_stored >= update_after:
                for _ in range(rounds * update_every // steps_per_update):
                    update(buf.sample_batch(batch_size))

        # End of epoch: test the greedy policy, log the epoch's row, save a checkpoint.
        test_seeds = seeds_for_test_episodes(seed, epoch, num_test_episodes)
        run_test_episodes(test_envs, ac, logger, test_seeds, device, epsilon=test_epsilon)
        stats.flush(logger, epoch)
        logger.log_tabular("Epoch", epoch)
        logger.log_tabular("EpRet", with_min_and_max=True)
        logger.log_tabular("TestEpRet", with_min_and_max=True)
        logger.log_tabular("EpLen", average_only=True)
        logger.log_tabular("TestEpLen", average_only=True)
        logger.log_tabular("TotalEnvInteracts", progress.t)
        logger.log_tabular("QVals", with_min_and_max=True)
        logger.log_tabular("LossQ", average_only=True)
        logger.log_tabular("Epsilon", average_only=True)
        logger.log_tabular("Time", progress.seconds())
        logger.dump_tabular()
        checkpointer.end_epoch(logger, progress, epochs, save_freq)

    envs.close()
    test_envs.close()
    logger.finish(epochs)
    return ac


if __name__ == "__main__":
    from spinrl.cli import run_as_script

    run_as_script("dqn")
