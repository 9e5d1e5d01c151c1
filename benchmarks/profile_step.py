"""Where one environment step's wall-clock goes: PPO on HalfCheetah-v5, SAC on Hopper-v5 and PPO's
collection on CartPole-v1 with one env copy, phase by phase.

    .venv/bin/python benchmarks/profile_step.py                      # about a minute on 2 cores
    .venv/bin/python benchmarks/profile_step.py --ppo_steps 4000 --sac_steps 2000

The algorithm files are left as they are. For PPO, the collection loop of ``spinrl/algos/ppo.py`` is
written out here (:func:`ppo_collection`) with the same building blocks and timers wrapped around them
(the env's ``step``, the NumPy policy, the buffer, the logger); the update and the epoch's log row are
the same calls as in ``ppo.py``, in the same order, with a timer around each. For SAC, the loop of
``spinrl/algos/sac.py`` is written out here with the same building blocks and the same losses, a
timer around each phase. Both run as ``--cpu 1`` does: one process, one torch thread.

Each phase's time is *exclusive*: a phase nested in another (the policy inside the loop) is
counted once, in the inner one. Whatever no timer covers (the loops themselves, attribute look-ups,
small array bookkeeping) is "Python overhead". Writes benchmarks/results/profile.md.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_onpolicy import machine  # noqa: E402


class PhaseTimer:
    """Wall-clock per named phase, exclusive of the phases nested inside it.

    A phase costs two ``perf_counter`` calls and a few list operations (about 0.3 us), counted in
    the phase around it or in "Python overhead"."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._inner = [0.0]  # time spent in nested phases, one entry per open phase
        self.enabled = True

    def start(self) -> float:
        self._inner.append(0.0)
        return time.perf_counter()

    def stop(self, name: str, start: float) -> None:
        elapsed = time.perf_counter() - start
        inner = self._inner.pop()
        if self.enabled:
            self.seconds[name] += elapsed - inner
        self._inner[-1] += elapsed

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = self.start()
        try:
            yield
        finally:
            self.stop(name, start)

    def wrap(self, name: str, fn: Callable) -> Callable:
        """``fn`` with its every call timed as ``name``."""

        def timed(*args, **kwargs):
            start = self.start()
            try:
                return fn(*args, **kwargs)
            finally:
                self.stop(name, start)

        return timed


def table(timer: PhaseTimer, total: float, env_steps: int, order: list[str]) -> list[str]:
    """Rows ``| phase | ms per env step | share |``, the untimed rest as Python overhead."""
    timed = sum(timer.seconds.values())
    seconds = dict(timer.seconds)
    seconds["Python overhead (loops, bookkeeping, untimed)"] = total - timed
    names = [n for n in order if n in seconds] + [n for n in seconds if n not in order]
    rows = [
        f"| {n} | {1e3 * seconds[n] / env_steps:.5f} | {seconds[n] / total:.1%} |"
        for n in names
        if n in seconds
    ]
    rows.append(f"| **total** | **{1e3 * total / env_steps:.5f}** | 100% |")
    return rows


def ppo_collection(
    envs, ac, buf, logger, device: torch.device, timer: PhaseTimer, seeds: list[int]
) -> Callable:
    """``collect(steps)``: the collection loop of ``spinrl/algos/ppo.py`` with its default options (the
    normalisers off), line for line with the same building blocks, the NumPy policy timed as
    "acting (NumPy policy)". The env copies are reset here, once; episodes run on across calls."""
    import numpy as np

    from spinrl.envs.atari import LearningSignals
    from spinrl.envs.vector import EpisodeReturns
    from spinrl.training.normalize import Normalizers
    from spinrl.training.onpolicy import PathCloser, fast_policy_step, policy_to_env_actions

    norms = Normalizers()
    state = {"obs": envs.reset(seed=seeds)[0]}
    episodes = EpisodeReturns(envs.num_envs)
    learning_signals = LearningSignals(envs)
    to_env = policy_to_env_actions(envs.single_action_space)
    close_paths = PathCloser(buf, ac, device, norms)

    def collect(steps_per_env: int) -> None:
        policy_step = timer.wrap(
            "acting (NumPy policy)", fast_policy_step(ac, device, num_calls=steps_per_env)
        )
        obs = state["obs"]
        for t in range(steps_per_env):
            obs_in = norms.observation(obs)
            a, v, logp = policy_step(obs_in)
            next_obs, rew, terminated, truncated, info = envs.step(to_env(a))
            episodes.count(rew)
            learn_rew, learn_term = learning_signals(rew, terminated, info)
            learn_rew = norms.reward(learn_rew, terminated, truncated)
            buf.store(obs_in, a, learn_rew, norms.critic_value(v), logp)
            epoch_ended = t == steps_per_env - 1
            if epoch_ended or np.count_nonzero(learn_term) or np.count_nonzero(truncated):
                close_paths(next_obs, info, learn_term, truncated, epoch_ended)
                episodes.log_ended(terminated | truncated, logger)
            obs = next_obs
        state["obs"] = obs
        norms.update()
        logger.store(VVals=buf.val_buf.copy())

    return collect


def profile_ppo(steps: int) -> tuple[list[str], float, int]:
    """One PPO epoch of ``steps`` steps and its update on HalfCheetah-v5, as ``spinrl ppo --cpu 1`` runs
    it, after one such epoch that warms up (not timed)."""
    from spinrl.buffers.gae import GAEBuffer
    from spinrl.common.mpi import mpi_avg, mpi_avg_grads, setup_pytorch_for_mpi
    from spinrl.common.seeding import env_seeds, seed_everything
    from spinrl.envs.vector import make_vector_env, obs_dim_of
    from spinrl.nets.actor_critic import MLPActorCritic
    from spinrl.record.logger import EpochLogger

    clip_ratio, target_kl, train_pi_iters, train_v_iters = 0.2, 0.01, 80, 80  # ppo()'s defaults
    setup_pytorch_for_mpi()
    seed_everything(0)
    device = torch.device("cpu")
    envs = make_vector_env("HalfCheetah-v5", 1, 1000)
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    ac = MLPActorCritic(obs_space, act_space)
    buf = GAEBuffer(obs_dim_of(obs_space), act_space.shape, steps, 1, 0.99, 0.97, act_dtype=act_space.dtype)
    logger = EpochLogger(output_dir=tempfile.mkdtemp(prefix="spinrl-profile-"), quiet=True)
    pi_optimizer = torch.optim.Adam(ac.pi.parameters(), lr=3e-4)
    vf_optimizer = torch.optim.Adam(ac.v.parameters(), lr=1e-3)
    timer = PhaseTimer()

    # Collection: ppo.py's loop, with timers around what it calls.
    envs.step = timer.wrap("env step (Gymnasium + MuJoCo)", envs.step)
    buf.store = timer.wrap("storing (GAEBuffer.store)", buf.store)
    buf.finish_path = timer.wrap("GAE at path ends (finish_path)", buf.finish_path)
    logger.store = timer.wrap("logging statistics (store, log row)", logger.store)
    v_forward = ac.v.forward
    collect = ppo_collection(envs, ac, buf, logger, device, timer, env_seeds(0, 0, 0, 1))

    def compute_loss_pi(data):
        obs, act, adv, logp_old = data["obs"], data["act"], data["adv"], data["logp"]
        pi, logp = ac.pi(obs, act)
        ratio = torch.exp(logp - logp_old)
        clip_adv = torch.clamp(ratio, 1 - clip_ratio, 1 + clip_ratio) * adv
        loss_pi = -(torch.min(ratio * adv, clip_adv)).mean()
        approx_kl = (logp_old - logp).mean().item()
        ent = pi.entropy().mean().item()
        clipped = ratio.gt(1 + clip_ratio) | ratio.lt(1 - clip_ratio)
        clipfrac = torch.as_tensor(clipped, dtype=torch.float32).mean().item()
        return loss_pi, dict(kl=approx_kl, ent=ent, cf=clipfrac)

    def compute_loss_v(data):
        return ((ac.v(data["obs"]) - data["ret"]) ** 2).mean()

    pi_steps = [0]  # policy steps the KL stop let the last update take

    def run_epoch(epoch: int) -> float:
        start = time.perf_counter()
        with timer.phase("collection loop (Python)"):
            ac.v.forward = timer.wrap("bootstrap V at path ends (torch)", v_forward)
            collect(steps)
            del ac.v.forward  # the update's critic passes count as its losses

        # The update, as ppo()'s update(): the same calls in the same order, each phase timed.
        with timer.phase("buffer get (advantage normalisation)"):
            data = buf.get(device)
        with timer.phase("loss pi forward"), torch.no_grad():
            pi_l_old, pi_info_old = compute_loss_pi(data)
        with timer.phase("loss v forward"), torch.no_grad():
            v_l_old = compute_loss_v(data).item()
        pi_l_old = pi_l_old.item()
        pi_steps[0] = 0
        for _ in range(train_pi_iters):
            with timer.phase("zero_grad"):
                pi_optimizer.zero_grad()
            with timer.phase("loss pi forward"):
                loss_pi, pi_info = compute_loss_pi(data)
            with timer.phase("MPI helpers (1 rank)"):
                kl = mpi_avg(pi_info["kl"])
            if kl > 1.5 * target_kl:
                break
            with timer.phase("backward pi"):
                loss_pi.backward()
            with timer.phase("MPI helpers (1 rank)"):
                mpi_avg_grads(ac.pi)
            with timer.phase("optimiser pi (Adam)"):
                pi_optimizer.step()
            pi_steps[0] += 1
        for _ in range(train_v_iters):
            with timer.phase("zero_grad"):
                vf_optimizer.zero_grad()
            with timer.phase("loss v forward"):
                loss_v = compute_loss_v(data)
            with timer.phase("backward v"):
                loss_v.backward()
            with timer.phase("MPI helpers (1 rank)"):
                mpi_avg_grads(ac.v)
            with timer.phase("optimiser v (Adam)"):
                vf_optimizer.step()

        # The epoch's row, as ppo() logs it.
        with timer.phase("logging statistics (store, log row)"):
            logger.store(LossPi=pi_l_old, LossV=v_l_old, KL=pi_info["kl"], Entropy=pi_info_old["ent"])
            logger.log_tabular("Epoch", epoch)
            logger.log_tabular("EpRet", with_min_and_max=True)
            logger.log_tabular("EpLen", average_only=True)
            logger.log_tabular("VVals", with_min_and_max=True)
            logger.log_tabular("TotalEnvInteracts", (epoch + 1) * steps)
            for key in ("LossPi", "LossV", "Entropy", "KL"):
                logger.log_tabular(key, average_only=True)
            logger.log_tabular("Time", time.perf_counter() - start)
            logger.dump_tabular()
        return time.perf_counter() - start

    # The first epoch warms up (first calls into torch and NumPy, TensorBoard's writer); the second
    # is the one measured.
    timer.enabled = False
    run_epoch(0)
    timer.enabled = True
    total = run_epoch(1)
    envs.close()
    logger.close()
    order = [
        "env step (Gymnasium + MuJoCo)",
        "acting (NumPy policy)",
        "storing (GAEBuffer.store)",
        "GAE at path ends (finish_path)",
        "bootstrap V at path ends (torch)",
        "collection loop (Python)",
        "buffer get (advantage normalisation)",
        "loss pi forward",
        "backward pi",
        "optimiser pi (Adam)",
        "loss v forward",
        "backward v",
        "optimiser v (Adam)",
        "zero_grad",
        "MPI helpers (1 rank)",
        "logging statistics (store, log row)",
    ]
    return table(timer, total, steps, order), total, pi_steps[0]


def profile_cartpole_collection(steps: int) -> tuple[list[str], float, float]:
    """PPO's collection on CartPole-v1 with one env copy (``--num_envs 1``), ``steps`` steps after as many
    that warm up, with timers around what the loop calls; and raw CartPole's time per step with
    random actions, the issue's yardstick. Returns the rows (microseconds per step), the collection's
    and the raw env's microseconds per step."""
    import gymnasium as gym
    import numpy as np

    from spinrl.buffers.gae import GAEBuffer
    from spinrl.common.seeding import seed_everything
    from spinrl.envs.vector import make_vector_env
    from spinrl.nets.actor_critic import MLPActorCritic
    from spinrl.record.logger import EpochLogger

    torch.set_num_threads(1)
    seed_everything(0)
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    raw_us = 1e6 * (time.perf_counter() - start) / steps

    envs = make_vector_env("CartPole-v1", 1)
    ac = MLPActorCritic(envs.single_observation_space, envs.single_action_space)
    buf = GAEBuffer(4, (), steps, 1, act_dtype=np.int64)
    logger = EpochLogger(output_dir=tempfile.mkdtemp(prefix="spinrl-profile-"), quiet=True, tensorboard=False)
    timer = PhaseTimer()
    envs.step = timer.wrap("env step (SingleCopyVectorEnv + Gymnasium)", envs.step)
    buf.store = timer.wrap("storing (GAEBuffer.store)", buf.store)
    buf.finish_path = timer.wrap("GAE at path ends (finish_path)", buf.finish_path)
    logger.store = timer.wrap("logging statistics (EpRet, EpLen, VVals)", logger.store)
    ac.v.forward = timer.wrap("bootstrap V at path ends (torch)", ac.v.forward)
    collect = ppo_collection(envs, ac, buf, logger, torch.device("cpu"), timer, [0])
    timer.enabled = False
    collect(steps)  # warm-up
    buf.get()
    timer.enabled = True
    start = time.perf_counter()
    collect(steps)
    total = time.perf_counter() - start
    order = [
        "env step (SingleCopyVectorEnv + Gymnasium)",
        "acting (NumPy policy)",
        "storing (GAEBuffer.store)",
        "GAE at path ends (finish_path)",
        "bootstrap V at path ends (torch)",
        "logging statistics (EpRet, EpLen, VVals)",
    ]
    # The table gives ms per step; here microseconds read better.
    rows = [_ms_to_us(row) for row in table(timer, total, steps, order)]
    return rows, 1e6 * total / steps, raw_us


def _ms_to_us(row: str) -> str:
    cells = row.split(" | ")
    bold = cells[1].startswith("**")
    value = float(cells[1].strip("*")) * 1e3
    cells[1] = f"**{value:.2f}**" if bold else f"{value:.2f}"
    return " | ".join(cells)


def profile_sac(steps: int) -> tuple[list[str], float]:
    """``steps`` SAC steps on Hopper-v5 with updates, after ``update_after`` random steps and a short
    warm-up (neither timed)."""
    from spinrl.buffers.replay import ReplayBuffer
    from spinrl.common.device import set_thread_budget
    from spinrl.common.seeding import env_seeds, seed_everything
    from spinrl.envs.actions import ActionMap
    from spinrl.envs.vector import EpisodeReturns, make_vector_env, obs_dim_of, real_next_obs
    from spinrl.nets.q_nets import MLPSquashedGaussianActorCritic, Temperature
    from spinrl.record.logger import EpochLogger
    from spinrl.training.offpolicy import UpdateStats, frozen, polyak_update, random_actions

    # sac()'s defaults: 256x256 networks, batch 100, update_after 1000, update_every 50, alpha 0.2.
    gamma, polyak, lr, batch_size, update_after, update_every = 0.99, 0.995, 1e-3, 100, 1000, 50
    seed_everything(0)
    set_thread_budget()
    device = torch.device("cpu")
    envs = make_vector_env("Hopper-v5", 1, 1000)
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    to_env = ActionMap(act_space)
    ac = MLPSquashedGaussianActorCritic(obs_space, act_space)
    ac_targ = copy.deepcopy(ac).requires_grad_(False)
    q_params, q_targ_params = list(ac.q.parameters()), list(ac_targ.q.parameters())
    buf = ReplayBuffer(obs_dim_of(obs_space), act_space.shape, int(1e6), 1, device=device)
    logger = EpochLogger(output_dir=tempfile.mkdtemp(prefix="spinrl-profile-"), quiet=True)
    temperature = Temperature(0.2, learned=False).to(device)
    pi_optimizer = torch.optim.Adam(ac.pi.parameters(), lr=lr, fused=True)
    q_optimizer = torch.optim.Adam(q_params, lr=lr, fused=True)
    stats = UpdateStats()
    timer = PhaseTimer()

    def update(data):
        with timer.phase("zero_grad"):
            q_optimizer.zero_grad()
        with timer.phase("loss q forward (incl. target)"):
            o, a, r, o2, d = data["obs"], data["act"], data["rew"], data["obs2"], data["done"]
            q = ac.q(o, a)
            with torch.no_grad():
                a2, logp_a2 = ac.pi(o2)
                q_pi_targ = ac_targ.q(o2, a2).min(0).values
                backup = r + gamma * (1 - d) * (q_pi_targ - temperature.alpha * logp_a2)
            loss_q = ((q - backup) ** 2).mean(-1).sum()
        with timer.phase("backward q"):
            loss_q.backward()
        with timer.phase("optimiser q (fused Adam)"):
            q_optimizer.step()
        with frozen(q_params):
            with timer.phase("zero_grad"):
                pi_optimizer.zero_grad()
            with timer.phase("loss pi forward"):
                pi, logp_pi = ac.pi(o)
                q_pi = ac.q(o, pi).min(0).values
                loss_pi = (temperature.alpha * logp_pi - q_pi).mean()
            with timer.phase("backward pi"):
                loss_pi.backward()
            with timer.phase("optimiser pi (fused Adam)"):
                pi_optimizer.step()
        with timer.phase("Polyak averaging"):
            polyak_update(q_targ_params, q_params, polyak)
        with timer.phase("logging statistics (store, log row)"):
            stats.add(LossQ=loss_q, LossPi=loss_pi, QVals=q, LogPi=logp_pi, Alpha=temperature.alpha)

    def get_action(o):
        with torch.inference_mode():
            a, _ = ac.pi(torch.as_tensor(o, device=device), with_logprob=False)
        return a.cpu().numpy()

    obs, _ = envs.reset(seed=env_seeds(0, 0, 0, 1))
    episodes = EpisodeReturns(1)
    for _ in range(update_after):  # random actions fill the buffer first, as in sac(); not timed
        a = random_actions(act_space, 1)
        next_obs, rew, terminated, truncated, info = envs.step(to_env(a))
        ended = terminated | truncated
        episodes.add(rew, ended, logger)
        buf.store(obs, a, rew, real_next_obs(next_obs, ended, info), terminated, ended)
        obs = next_obs

    # 100 steps with their updates warm up (first calls, Adam's state), then ``steps`` are measured.
    t, warmup = update_after, 100
    for i in range(warmup + steps):
        if i == warmup:
            timer.enabled, start = True, time.perf_counter()
        elif i == 0:
            timer.enabled = False
        with timer.phase("acting (torch policy)"):
            a = get_action(obs)
        with timer.phase("env step (Gymnasium + MuJoCo)"):
            next_obs, rew, terminated, truncated, info = envs.step(to_env(a))
        with timer.phase("storing (episode counts, ReplayBuffer.store)"):
            ended = terminated | truncated
            episodes.add(rew, ended, logger)
            buf.store(obs, a, rew, real_next_obs(next_obs, ended, info), terminated, ended)
        obs = next_obs
        t += 1
        if t % update_every == 0:
            for _ in range(update_every):
                with timer.phase("sampling the batch"):
                    batch = buf.sample_batch(batch_size)
                update(batch)
    with timer.phase("logging statistics (store, log row)"):
        stats.flush(logger, 0)
        logger.log_tabular("Epoch", 0)
        logger.log_tabular("EpRet", with_min_and_max=True)
        logger.log_tabular("EpLen", average_only=True)
        for key in ("Q1Vals", "Q2Vals", "LogPi"):
            logger.log_tabular(key, with_min_and_max=True)
        for key in ("LossPi", "LossQ", "Alpha"):
            logger.log_tabular(key, average_only=True)
        logger.log_tabular("Time", time.perf_counter() - start)
        logger.dump_tabular()
    total = time.perf_counter() - start
    envs.close()
    logger.close()
    order = [
        "env step (Gymnasium + MuJoCo)",
        "acting (torch policy)",
        "storing (episode counts, ReplayBuffer.store)",
        "sampling the batch",
        "loss q forward (incl. target)",
        "backward q",
        "optimiser q (fused Adam)",
        "loss pi forward",
        "backward pi",
        "optimiser pi (fused Adam)",
        "zero_grad",
        "Polyak averaging",
        "logging statistics (store, log row)",
    ]
    return table(timer, total, steps, order), total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ppo_steps", type=int, default=4000, help="PPO steps in the one profiled epoch")
    parser.add_argument("--sac_steps", type=int, default=2000, help="SAC steps profiled, one update each")
    parser.add_argument("--cartpole_steps", type=int, default=32000, help="CartPole collection steps timed")
    parser.add_argument("--out", default="profile.md", help="file name under benchmarks/results/")
    args = parser.parse_args()
    ppo_rows, ppo_total, ppo_pi_steps = profile_ppo(args.ppo_steps)
    sac_rows, sac_total = profile_sac(args.sac_steps)
    cp_rows, cp_us, raw_us = profile_cartpole_collection(args.cartpole_steps)
    head = "| phase | ms per env step | share |\n|---|---|---|"
    out = [
        "# Where an environment step's wall-clock goes",
        "",
        f"- Command: `python {' '.join(sys.argv)}`",
        f"- Machine: {machine()}",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M')}",
        "- One process, one torch thread (as `--cpu 1`). Each phase's time excludes the phases timed inside "
        'it; "Python overhead" is the wall-clock no timer covers.',
        "",
        f"## PPO, HalfCheetah-v5: one epoch of {args.ppo_steps} steps and its update ({ppo_total:.2f} s)",
        "",
        "Spinning Up's defaults: 64x64 tanh networks, up to 80 policy steps (stopped early by the KL) and "
        "80 critic steps on the full batch. The collection is `ppo.py`'s loop, written out with timers "
        "around what it calls; the update repeats `ppo()`'s calls in order. A first epoch, not timed, warms "
        "up (first calls into torch and NumPy, the TensorBoard writer). In the timed epoch the KL stop let "
        f"the policy take {ppo_pi_steps} of its 80 steps.",
        "",
        head,
        *ppo_rows,
        "",
        f"## SAC, Hopper-v5: {args.sac_steps} steps with one update each ({sac_total:.2f} s)",
        "",
        "Spinning Up's defaults: 256x256 ReLU networks, batch 100, 50 updates every 50 steps, alpha 0.2 "
        "(not learned). The buffer is first filled with 1000 random-action steps (`update_after`) and 100 "
        "steps with their updates warm up, none of them timed; the timed steps act with the policy.",
        "",
        head,
        *sac_rows,
        "",
        f"## PPO collection, CartPole-v1, one env copy: {args.cartpole_steps} steps ({cp_us:.1f} us per step)",
        "",
        "`ppo.py`'s collection loop as `--num_envs 1` runs it, with timers around what it calls, after "
        "as many steps that warm up. The random-action CartPole loop of the throughput benchmark took "
        f"{raw_us:.1f} us per step in the same process, so this collection ran at {raw_us / cp_us:.0%} of "
        "raw (with the timers; each costs about 0.3 us, so without them the collection is ~1 us faster). "
        'The loop\'s own share is in "Python overhead": the episode counters, the end-of-path checks, '
        "the loop.",
        "",
        "| phase | us per env step | share |\n|---|---|---|",
        *cp_rows,
        "",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.out).write_text("\n".join(out) + "\n")
    print("\n".join(out))
    print(f"written to {RESULTS / args.out}")


if __name__ == "__main__":
    main()
