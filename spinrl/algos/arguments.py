"""The arguments several algorithms share, each explained once.

An algorithm's own docstring explains what is its own: PPO's ``clip_ratio``, TD3's ``policy_delay``,
DQN's epsilon schedule. An argument that several algorithms take with one meaning (``seed``, ``gamma``,
``num_envs``, ``compile``, ...) is explained here instead, and :func:`with_shared_argument_docs`, applied
to each algorithm function, writes its text into the function's docstring when the module is imported.
So ``help(ppo)``, ``spinrl ppo --help`` (read from the docstring by :func:`spinrl.cli.parse_docstring_args`)
and the API reference (``docs/shared_arguments.py`` hands mkdocstrings the same docstring) list every
argument, in the order of the signature, while a change to a shared explanation is made in one place.

An algorithm whose use of a shared argument differs keeps an entry of its own, which always wins: PPO's
``train_v_iters`` (minibatches change what it counts), SAC's ``gamma`` (the entropy bonus), DQN's
``replay_size`` (its rows cost other bytes). The texts come in three tables: :data:`ALL_ALGORITHMS`, what
every algorithm means alike, and the two families built on it, :data:`ON_POLICY` (VPG, TRPO, PPO: an epoch
is one batch and one update, MPI ranks split it) and :data:`OFF_POLICY` (DDPG, TD3, SAC, DQN: an epoch is a
reporting unit; a replay buffer, test episodes). The signature, which help shows, is the source of the
defaults: a text here names a default only where every algorithm it serves has the same one (``epochs`` and
``save_freq``, whose defaults differ between the families, name none).
"""

from __future__ import annotations

import inspect
import re
import textwrap
from collections.abc import Callable, Mapping
from typing import TypeVar

Algorithm = TypeVar("Algorithm", bound=Callable)

# Width of a shared entry's lines in the docstring (the cleaned docstring, without the function's indent).
DOC_WIDTH = 100
# An entry of the Args section: "    name: text" or "    name (type): text", as Google-style parsers read it.
ENTRY = re.compile(r"^    (\w+)(?: \(.*?\))?:")


def _text(paragraph: str) -> str:
    """One paragraph on one line: the tables below are wrapped for reading, the docstring rewraps them."""
    return " ".join(paragraph.split())


ALL_ALGORITHMS: dict[str, str] = {
    "gamma": _text("""
        Discount factor, in (0, 1]: a reward k steps ahead counts gamma**k as much as one now, in the
        returns and in the critics' targets. 0.99 (a horizon of roughly 100 steps) is usual; smaller
        values make the agent short-sighted, values near 1 make the returns and targets large and noisy
        in long episodes.
    """),
    "max_ep_len": _text("""
        The longest an episode may run, in env steps. Reaching it is a truncation, not a terminal: the
        last step still bootstraps from the value of the state it reached. The env's own time limit
        applies where it is shorter (500 steps for CartPole-v1). None (default): 1000 steps, MuJoCo's
        limit, except for Atari games, which run to the end of the game (at most the ALE's 108,000
        frames), so that their EpRet is a full game's score.
    """),
    "logger_kwargs": _text("""
        Where and how the run is logged: arguments of spinrl.record.logger.EpochLogger, usually made by
        setup_logger_kwargs: ``output_dir`` (where progress.txt, config.json and the checkpoints go),
        ``exp_name`` and ``quiet``.
    """),
    "save_freq": _text("""
        Save a checkpoint every save_freq epochs, and after the last one. Checkpoints never change
        training: two runs that differ only in save_freq log the same rows. A smaller value loses less
        work to a crash and writes more to disk (a lot more with an off-policy save_buffer).
    """),
    "env_kwargs": _text("""
        Keyword arguments for making the environment from its id: ``gym.make(env_fn, **env_kwargs)``,
        e.g. ``{"continuous": True}`` for LunarLander-v3. For an Atari id (ALE/Pong-v5) they change the
        options of its protocol (spinrl.envs.atari.ATARI_OPTIONS), e.g. ``{"clip_rewards": False,
        "frame_stack": 2}``. config.json records them, so resumed runs, grid children and test_policy
        make the same env.
    """),
    "obs_clip": _text("""
        With obs_norm, the bound of a normalised entry, in standard deviations (10).
    """),
}

ON_POLICY: dict[str, str] = {
    **ALL_ALGORITHMS,
    "env_fn": _text("""
        The environment to learn in: a Gymnasium id (``"CartPole-v1"``) or a function without arguments
        that returns a new Gymnasium environment (called once per env copy).
    """),
    "actor_critic": _text("""
        What builds the networks, called as ``actor_critic(observation_space, action_space,
        **ac_kwargs)``. The module it returns needs ``pi``, ``v``, ``step`` and ``act``, with the shapes
        listed at the top of this docstring. The default has separate MLPs for the policy and the
        critic. A module written for Spinning Up's PyTorch core.py (NumPy from ``step``,
        ``pi._distribution``) is adapted and works too; docs/user/custom-networks.md describes both
        interfaces.
    """),
    "ac_kwargs": _text("""
        Keyword arguments for ``actor_critic``. The default one takes ``hidden_sizes`` (units per hidden
        layer, (64, 64)) and ``activation`` (a torch.nn class or its name, Tanh). Image observations get
        a convolutional encoder first, picked and sized by ``encoder`` ("nature", "small" or a class)
        and ``features_dim``, with no hidden layers after it by default (see
        docs/user/custom-networks.md).
    """),
    "seed": _text("""
        The one integer every random draw of the run follows from: Python, NumPy and torch, and the reset
        seeds of each env copy. MPI rank r uses seed + 10000 * r, so ranks see different episodes
        (spinrl.common.seeding derives every seed). The same seed on the same machine logs the same
        progress.txt (Time aside).
    """),
    "steps_per_epoch": _text("""
        Agent-environment steps per epoch, the batch of one update, counted over all env copies and MPI
        ranks together (each copy takes steps_per_epoch // (ranks * num_envs)). Bigger batches give
        steadier updates but fewer of them for the same number of steps; 4000 suits MuJoCo tasks.
    """),
    "epochs": _text("""
        How many epochs to train. Each is one batch and one update, so a run takes about epochs *
        steps_per_epoch environment steps.
    """),
    "vf_lr": _text("""
        Adam learning rate of the critic, usually 1e-3. A critic that learns too slowly gives a poor
        baseline, hence noisy advantages.
    """),
    "train_v_iters": _text("""
        Gradient steps on the critic per epoch, each on the whole batch; 80 is usual. Too few and V lags
        behind the returns of the improving policy, which makes the advantages noisy.
    """),
    "lam": _text("""
        The lambda of GAE-Lambda, in [0, 1]; it trades bias against variance in the advantages. 0 uses
        the one-step TD error (steady, but biased by the critic's errors), 1 the whole discounted return
        minus V (unbiased, noisy). 0.95 to 0.97 is usual.
    """),
    "resume": _text("""
        Continue the run in ``logger_kwargs["output_dir"]`` from its last checkpoint (networks,
        optimisers, random states, counters). The env copies restart, seeded from (seed, rank, resumed
        epoch). With no checkpoint there, the run starts from scratch.
    """),
    "num_envs": _text("""
        Env copies stepped together on each MPI rank, with one batched forward pass of the policy for all
        of them: faster collection, with steps_per_epoch split over more copies.
    """),
    "async_envs": _text("""
        Step the env copies in subprocesses (Gymnasium's AsyncVectorEnv) instead of in this process.
        Worth it only for environments slow enough to outweigh the traffic between processes, with
        cores to spare.
    """),
    "device": _text("""
        Where the networks and the update run: "auto" (a CUDA GPU when there is one), "cpu" or "cuda".
        The environments always step on the CPU.
    """),
    "obs_norm": _text("""
        Feed the networks observations normalised by running statistics: each entry minus its mean, over
        its standard deviation, clipped to +-obs_clip. The statistics move once per epoch, merged over
        env copies and MPI ranks, and are saved with the policy, so test_policy, --video and load_policy
        see what training saw. Helps most where the entries' scales differ by orders of magnitude
        (MuJoCo velocities vs angles). Vector observations only (spinrl.training.normalize).
    """),
    "reward_norm": _text("""
        Divide the rewards the learner sees by the running standard deviation of the discounted return
        (then clip to +-reward_clip), so the critic's targets stay near unit scale whatever the env's
        reward units; EpRet still logs the env's own return.
    """),
    "reward_clip": _text("""
        With reward_norm, the bound of a scaled reward (10).
    """),
    "value_norm": _text("""
        Fit the critic to rewards-to-go normalised by their running mean and standard deviation, its
        outputs mapped back to the env's units for the advantages. LossV is then in the normalised
        units; VVals stays in the env's.
    """),
    "max_grad_norm": _text("""
        Rescale each network's gradient so its global L2 norm is at most this (after averaging over
        ranks), against rare huge steps; None (default) never clips. 0.5 is usual.
    """),
    "anneal_lr": _text("""
        Decay both learning rates linearly from pi_lr / vf_lr in the first epoch to 0 after the last, a
        steadier end of training; set by the epoch, so resumes match.
    """),
    "anneal_lr_steps": _text("""
        With anneal_lr, the env steps (all copies and ranks together) over which the rates fall to 0;
        None (default): the run's length. A horizon longer than the run ends it at part of the starting
        rate: Tianshou's MuJoCo PPO decays over 1,500 updates of 2,048 steps (3,072,000) and reports the
        first 1e6 steps, where the rate is still two thirds of its start. Ignored without anneal_lr.
    """),
    "adam_eps": _text("""
        The epsilon of both Adam optimisers (added to the root of the second moment). PyTorch's 1e-8 is
        the default; 1e-5 (CleanRL, OpenAI baselines) damps steps on parameters whose gradients are
        nearly always small.
    """),
}

OFF_POLICY: dict[str, str] = {
    **ALL_ALGORITHMS,
    "ac_kwargs": _text("""
        Keyword arguments for actor_critic, such as ``dict(hidden_sizes=(256, 256), activation="ReLU")``
        (the defaults). The cost of an update grows with the number of weights; too small a network
        cannot represent a good policy on hard tasks. Image observations get a convolutional encoder
        first, picked and sized by ``encoder`` ("nature", "small" or a class) and ``features_dim`` (see
        docs/user/custom-networks.md).
    """),
    "seed": _text("""
        The one integer every random number of the run derives from: Python, NumPy, torch, the reset
        seeds of each env copy and of the test episodes (spinrl.common.seeding derives every seed). The
        same seed and settings on the same machine log the same numbers. Single runs differ a lot, so
        compare over seeds.
    """),
    "steps_per_epoch": _text("""
        Env steps per epoch, counted over all env copies together (each copy takes steps_per_epoch //
        num_envs). An epoch is a reporting unit: one row of progress.txt, a round of test episodes,
        perhaps a checkpoint; episodes run on across its end. Smaller epochs give finer curves but spend
        more time on test episodes.
    """),
    "epochs": _text("""
        How many epochs to train; the run takes epochs * steps_per_epoch env steps in all.
    """),
    "replay_size": _text("""
        Capacity of the replay buffer in observation rows, about one transition each (the last
        observation of an episode takes a row of its own; see spinrl.buffers.replay). When it is full,
        the oldest transitions go first. The default 1e6 keeps the whole history of a million-step run;
        a much smaller buffer forgets early experience and can make learning unstable. Each row costs 4
        bytes per observation and action number (+ 6).
    """),
    "batch_size": _text("""
        Transitions drawn from the buffer for each gradient step. Larger batches give steadier gradients
        at a proportional cost.
    """),
    "start_steps": _text("""
        Env steps (over all copies, from the start of the run) during which actions are drawn uniformly
        at random instead of from the policy, so that the first updates see varied experience. A few
        hundred for quick tests. Too few, and early data only shows what an untrained policy does; too
        many wastes env steps.
    """),
    "update_after": _text("""
        Transitions the buffer must hold before the first gradient step, so that the first updates do
        not overfit a handful of samples. After a resume without the saved buffer, updates wait until
        the new buffer holds this many again.
    """),
    "update_every": _text("""
        How updates are grouped, in env steps over all copies: after every update_every env steps come
        update_every gradient steps in a row, so there is always one gradient step per env step. Larger
        groups switch less often between acting and training (faster) and act with a slightly older
        policy.
    """),
    "num_test_episodes": _text("""
        Episodes played after every epoch with the deterministic policy (no exploration noise), in a
        separate env whose seeds differ from the training envs'. Their returns (the TestEpRet columns)
        are the usual measure of progress. They are not counted in TotalEnvInteracts.
    """),
    "resume": _text("""
        Continue the run in logger_kwargs' output_dir from its last checkpoint: networks, optimiser
        states, random generators, counters and (with save_buffer) the replay buffer come back, and
        progress.txt is cut back to the checkpoint. The env copies restart, freshly seeded, so only the
        episodes running at the interruption are lost.
    """),
    "num_envs": _text("""
        Env copies stepped together: each pass of the loop takes one step in every copy and chooses all
        their actions in one forward pass. Cheap environments gain speed from more copies; the number of
        gradient steps per env step stays the same.
    """),
    "device": _text("""
        Where the networks and the replay buffer live: "auto" (a CUDA GPU when one is visible, else the
        CPU), "cpu" or "cuda". Small networks often run as fast on a CPU, where torch uses one thread
        unless $SPINRL_NUM_THREADS says otherwise.
    """),
    "obs_norm": _text("""
        Feed the networks observations normalised by running statistics (mean 0, std 1, clipped to
        +-obs_clip). The replay buffer keeps raw observations and each sampled batch is normalised with
        the current statistics, which take in every env step and move before each round of updates;
        they are saved with the policy, so test_policy and load_policy see what training saw. Off by
        default; vector observations only (spinrl.training.normalize).
    """),
    "save_buffer": _text("""
        Also write the filled part of the replay buffer into each checkpoint, so that a resumed run keeps
        its experience. Big: about 1.5 GB per save for a million Humanoid transitions (replay_size gives
        the cost of a row). Without it, a resumed run starts from an empty buffer.
    """),
    "compile": _text("""
        Run the update step (losses with their backward passes, target averaging) through torch.compile,
        on a CUDA GPU also as CUDA graphs. Same algorithm, same random draws. The first update compiles,
        which takes a while (the log says how long). Meant for a GPU and long runs: on a CPU the
        compiled update is slower than the eager one, so it is off by default. What it costs and gains,
        measured: docs/user/running.md (Compiling the update) and
        benchmarks/results/offpolicy-throughput.md, offpolicy-throughput-cuda.md.
    """),
}


def with_shared_argument_docs(shared: Mapping[str, str]) -> Callable[[Algorithm], Algorithm]:
    """Decorate an algorithm function: its docstring's ``Args:`` section gets the text of every argument of
    its signature that it does not explain itself, taken from ``shared`` (:data:`ON_POLICY` or
    :data:`OFF_POLICY`), with all entries in the order of the signature.

    Applied at import, so every reader of ``__doc__`` sees the whole list. An argument explained nowhere,
    or an entry for an argument the signature lacks, raises TypeError at import: a new argument cannot go
    undocumented. ``__shared_arguments__`` on the function names the arguments whose text came from here.
    """

    def decorate(fn: Algorithm) -> Algorithm:
        fn.__doc__, fn.__shared_arguments__ = merged_docstring(fn, shared)
        return fn

    return decorate


def merged_docstring(fn: Callable, shared: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """``fn``'s cleaned docstring with the shared entries added, and the names of those entries."""
    lines = inspect.cleandoc(fn.__doc__ or "").splitlines()
    if "Args:" not in lines:
        raise TypeError(f"{fn.__name__}'s docstring has no Args: section for the shared arguments")
    start = lines.index("Args:") + 1
    end = next((i for i in range(start, len(lines)) if lines[i] and not lines[i][0].isspace()), len(lines))
    own = own_entries(lines[start:end])

    params = list(inspect.signature(fn).parameters)
    unknown = [name for name in own if name not in params]
    if unknown:
        raise TypeError(f"{fn.__name__}'s docstring explains {unknown}, which its signature does not take")
    entries, from_shared = [], []
    for name in params:
        if name in own:
            entries += own[name]
        elif name in shared:
            entries += _wrapped_entry(name, shared[name])
            from_shared.append(name)
        else:
            raise TypeError(
                f"{fn.__name__}'s argument {name!r} is explained neither in its docstring nor in "
                "spinrl.algos.arguments"
            )
    after = lines[end:]
    doc = "\n".join(lines[:start] + entries + ([""] + after if after else []))
    return doc, tuple(from_shared)


def own_entries(section: list[str]) -> dict[str, list[str]]:
    """The entries of an ``Args:`` section, each with its lines as written (blank lines dropped)."""
    entries: dict[str, list[str]] = {}
    current = None
    for line in section:
        match = ENTRY.match(line)
        if match:
            current = match.group(1)
            if current in entries:
                raise TypeError(f"the Args: section explains {current!r} twice")
            entries[current] = [line]
        elif line.strip():
            if current is None:
                raise TypeError(f"the Args: section starts with a line that explains no argument: {line!r}")
            entries[current].append(line)
    return entries


def _wrapped_entry(name: str, text: str) -> list[str]:
    return textwrap.wrap(
        f"{name}: {text}",
        DOC_WIDTH,
        initial_indent="    ",
        subsequent_indent="        ",
        break_long_words=False,
        break_on_hyphens=False,
    )
