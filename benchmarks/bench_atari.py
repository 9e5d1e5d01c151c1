"""Atari benchmark: env stepping, then spinrl DQN and PPO vs Stable-Baselines3 on ALE/Pong-v5.

    .venv/bin/python benchmarks/bench_atari.py --quick    # tiny budgets (about 15 minutes on 2 cores)
    .venv/bin/python benchmarks/bench_atari.py            # 100k agent steps per run (hours on a CPU)

Sections:

1. Env stepping: agent steps (and frames, 4 per step) per second of random play through the full
   preprocessing (frame skip 4, 84x84 grey, 4 stacked frames, sticky actions), for Gymnasium's
   SyncVectorEnv and AsyncVectorEnv as spinrl makes them (spinrl.envs.make_vector_env), SB3's
   make_atari_env + VecFrameStack (DummyVecEnv and SubprocVecEnv), and envpool when it can be
   imported (it is not a spinrl dependency; see docs/user/atari.md).
2. Training: spinrl DQN and PPO and SB3 DQN and PPO (CnnPolicy, the Atari settings of the RL Zoo)
   for the same number of agent steps: frames per second including updates, gradient steps taken,
   and the real score (full games, unclipped) of the games finished in the last part of the run.

Both libraries run side by side in the same invocation on the same machine with one torch thread
each, so a drifting machine affects both. Writes benchmarks/results/atari.md (the title says whether
it was --quick); the table records the load average before and after each section, since the machine may
be shared.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
RESULTS = ROOT / "benchmarks" / "results"
ENV_ID = "ALE/Pong-v5"
DEVICE = "cpu"  # --device: where both libraries put their networks

import gymnasium as gym  # noqa: E402
import torch  # noqa: E402
from bench_onpolicy import machine  # noqa: E402

from spinrl.record.logger import read_progress  # noqa: E402


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def gpu_name(device: str) -> str:
    return f"the GPU ({torch.cuda.get_device_name()})" if device.startswith("cuda") else "the CPU"


def cores() -> int:
    return len(os.sched_getaffinity(0))


# ----- 1. env stepping ----------------------------------------------------------------------------
def steps_per_second(step, num_envs: int, n_actions: int, seconds: float) -> float:
    """Agent steps per second (over all copies) of random actions for about ``seconds``."""
    rng = np.random.default_rng(0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(20):
            step(rng.integers(n_actions, size=num_envs))
        steps += 20 * num_envs
    return steps / (time.perf_counter() - start)


def spinrl_stepping(num_envs: int, asynchronous: bool, seconds: float) -> float:
    from spinrl.envs.vector import make_vector_env

    envs = make_vector_env(ENV_ID, num_envs, None, asynchronous=asynchronous)
    envs.reset(seed=list(range(num_envs)))
    try:
        return steps_per_second(envs.step, num_envs, envs.single_action_space.n, seconds)
    finally:
        envs.close()


def make_pong(**kwargs) -> gym.Env:
    """The v5 game for SB3, registering the ALE's ids first (SubprocVecEnv's workers start afresh)."""
    import ale_py

    gym.register_envs(ale_py)
    return gym.make(ENV_ID, **kwargs)


def sb3_atari_env(num_envs: int, subprocesses: bool, seed: int = 0):
    """SB3's Atari set-up: make_atari_env (noop 30, skip 4, life loss, fire reset, 84x84 grey, reward
    clipping) on the v5 game with frameskip=1 (the wrapper skips), then 4 stacked frames."""
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecFrameStack

    cls = SubprocVecEnv if subprocesses else DummyVecEnv
    env = make_atari_env(make_pong, n_envs=num_envs, seed=seed, env_kwargs=dict(frameskip=1), vec_env_cls=cls)
    return VecFrameStack(env, n_stack=4)


def sb3_stepping(num_envs: int, subprocesses: bool, seconds: float) -> float:
    env = sb3_atari_env(num_envs, subprocesses)
    env.reset()
    try:
        return steps_per_second(env.step, num_envs, env.action_space.n, seconds)
    finally:
        env.close()


def envpool_version() -> str:
    try:
        import envpool
    except ImportError:
        return "envpool: not importable here (not a spinrl dependency), its column stays empty"
    return (
        f"envpool {envpool.__version__} from {Path(envpool.__file__).parent.parent} (not a spinrl dependency)"
    )


def envpool_stepping(num_envs: int, seconds: float) -> float | None:
    try:
        import envpool
    except ImportError:
        return None
    env = envpool.make(
        "Pong-v5", env_type="gymnasium", num_envs=num_envs, seed=0, episodic_life=False, reward_clip=False,
        stack_num=4, img_height=84, img_width=84, noop_max=30, frame_skip=4, repeat_action_probability=0.25,
    )  # fmt: skip
    env.reset()
    try:
        return steps_per_second(env.step, num_envs, env.action_space.n, seconds)
    finally:
        env.close()


def section_stepping(lines: list[str], seconds: float, rounds: int = 3) -> None:
    """Each set-up ``rounds`` times, the rounds interleaved so that a drifting machine load touches all
    set-ups alike; the table gives the median."""
    setups = {
        "spinrl Sync": lambda n: spinrl_stepping(n, False, seconds),
        "spinrl Async": lambda n: spinrl_stepping(n, True, seconds) if n > 1 else None,
        "SB3 DummyVecEnv": lambda n: sb3_stepping(n, False, seconds),
        "SB3 SubprocVecEnv": lambda n: sb3_stepping(n, True, seconds) if n > 1 else None,
        "envpool": lambda n: envpool_stepping(n, seconds),
    }
    lines += [
        "## 1. Env stepping, random actions (agent steps/s; frames/s = 4x)",
        "",
        f"{load()} before; {cores()} cores available to this process; median of {rounds} interleaved rounds "
        f"of {seconds:.1f} s each. {envpool_version()}.",
        "",
        "| env copies | " + " | ".join(setups) + " |",
        "|---|" + "---|" * len(setups),
    ]
    for n in (1, 2, 4, 8):
        results: dict[str, list[float]] = {name: [] for name in setups}
        for _ in range(rounds):
            for name, measure in setups.items():
                value = measure(n)
                if value is not None:
                    results[name].append(value)
        cells = [f"{np.median(v):.0f}" if v else "-" for v in results.values()]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    lines += ["", f"{load()} after.", ""]


# ----- 2. training ----------------------------------------------------------------------------------
def real_scores_spinrl(out: Path, tail: int) -> tuple[float, int]:
    """Mean EpRet (full games, real score) of the last ``tail`` epochs' rows, and the games counted."""
    progress = read_progress(out / "progress.txt")
    rets = progress.get("AverageEpRet", [])[-tail:]
    finite = [r for r in rets if np.isfinite(r)]
    return (float(np.mean(finite)) if finite else float("nan")), len(finite)


def spinrl_dqn(steps: int, seed: int, quick: bool) -> dict:
    from spinrl.algos import dqn as dqn_module

    out = Path(tempfile.mkdtemp(prefix="bench-atari-dqn-")) / "run"
    epoch = min(steps // 4, 10_000)
    # spinrl's DQN plays a greedy test game after every epoch (a whole Pong game: about as many steps as
    # an epoch here); SB3's run plays none, so the test games' time is measured and left out.
    real_test, test_seconds = dqn_module.run_test_episodes, [0.0]

    def timed_test(*args) -> None:
        t0 = time.perf_counter()
        real_test(*args)
        test_seconds[0] += time.perf_counter() - t0

    dqn_module.run_test_episodes = timed_test
    start = time.perf_counter()
    try:
        dqn_module.dqn(
            ENV_ID, seed=seed, steps_per_epoch=epoch, epochs=steps // epoch, replay_size=min(steps, 100_000),
            q_lr=1e-4, batch_size=32, polyak=0.999, start_steps=steps // 10, update_after=steps // 10,
            update_every=4, steps_per_update=4, epsilon_end=0.01, epsilon_decay_steps=steps // 10,
            num_test_episodes=1, logger_kwargs=dict(output_dir=str(out), quiet=True), device=DEVICE,
        )  # fmt: skip
    finally:
        dqn_module.run_test_episodes = real_test
    seconds = time.perf_counter() - start - test_seconds[0]
    score, games = real_scores_spinrl(out, 2)
    updates = (steps - steps // 10) // 4
    return dict(seconds=seconds, steps=steps, updates=updates, score=score, games=games)


def spinrl_ppo(steps: int, seed: int, quick: bool) -> dict:
    from spinrl.algos.ppo import ppo

    out = Path(tempfile.mkdtemp(prefix="bench-atari-ppo-")) / "run"
    num_envs, epoch = 8, 1024  # 128 steps per copy, as SB3's Atari PPO
    start = time.perf_counter()
    ppo(
        ENV_ID, seed=seed, steps_per_epoch=epoch, epochs=max(1, steps // epoch), pi_lr=2.5e-4, vf_lr=2.5e-4,
        clip_ratio=0.1, train_pi_iters=4, train_v_iters=4, lam=0.95, target_kl=0.05, num_envs=num_envs,
        logger_kwargs=dict(output_dir=str(out), quiet=True), device=DEVICE,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    score, games = real_scores_spinrl(out, 4)
    epochs = max(1, steps // epoch)
    return dict(seconds=seconds, steps=epochs * epoch, updates=epochs * 8, score=score, games=games)


def sb3_run(algo: str, steps: int, seed: int) -> dict:
    import stable_baselines3 as sb3

    if algo == "DQN":
        env = sb3_atari_env(1, False, seed)
        model = sb3.DQN(
            "CnnPolicy", env, seed=seed, device=DEVICE, verbose=0, buffer_size=min(steps, 100_000),
            learning_rate=1e-4, batch_size=32, learning_starts=steps // 10, target_update_interval=1000,
            train_freq=4, gradient_steps=1, exploration_fraction=0.1, exploration_final_eps=0.01,
            optimize_memory_usage=False,
        )  # fmt: skip
    else:
        env = sb3_atari_env(8, False, seed)
        model = sb3.PPO(
            "CnnPolicy", env, seed=seed, device=DEVICE, verbose=0, n_steps=128, n_epochs=4, batch_size=256,
            learning_rate=2.5e-4, clip_range=0.1, ent_coef=0.01, vf_coef=0.5,
        )  # fmt: skip
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    seconds = time.perf_counter() - start
    # Monitor sits below AtariWrapper: these are full games with their real score.
    games = [ep["r"] for ep in model.ep_info_buffer]
    tail = games[-max(1, len(games) // 2) :]
    updates = (steps - steps // 10) // 4 if algo == "DQN" else (steps // 1024) * 4 * (1024 // 256)
    env.close()
    return dict(seconds=seconds, steps=model.num_timesteps, updates=updates,
                score=float(np.mean(tail)) if tail else float("nan"), games=len(tail))  # fmt: skip


def section_training(lines: list[str], steps_dqn: int, steps_ppo: int, seed: int, quick: bool) -> None:
    lines += [
        f"## 2. Training on {ENV_ID}: DQN {steps_dqn} and PPO {steps_ppo} agent steps, seed {seed}",
        "",
        f"{load()} before.",
        "",
        "| run | agent steps | frames/s (with updates) | gradient steps | gradient steps/s | wall-clock s "
        "| real score, full games |",
        "|---|---|---|---|---|---|---|",
    ]
    runs = [
        ("spinrl DQN", lambda: spinrl_dqn(steps_dqn, seed, quick)),
        ("SB3 DQN", lambda: sb3_run("DQN", steps_dqn, seed)),
        ("spinrl PPO (8 copies)", lambda: spinrl_ppo(steps_ppo, seed, quick)),
        ("SB3 PPO (8 copies)", lambda: sb3_run("PPO", steps_ppo, seed)),
    ]
    for name, run in runs:
        r = run()
        score = "no game finished" if r["games"] == 0 else f"{r['score']:.1f}"
        lines.append(
            f"| {name} | {r['steps']} | {4 * r['steps'] / r['seconds']:.0f} | {r['updates']} | "
            f"{r['updates'] / r['seconds']:.1f} | {r['seconds']:.0f} | {score} |"
        )
        print(lines[-1], flush=True)
    lines += [
        "",
        f"{load()} after.",
        "",
        "Gradient steps: DQN, one per 4 agent steps for both (the Nature paper's ratio: spinrl's",
        "steps_per_update=4, SB3's train_freq=4), batches of 32 for both; PPO, spinrl's full-batch",
        "steps (4 on the policy and 4 on the critic per epoch of 1024 steps) and SB3's minibatch steps of 256 (4 passes over 1024 steps). The",
        "score is the real, unclipped score of full games: for spinrl the mean of the last epochs'",
        "AverageEpRet, for SB3 the mean of the last half of the games its Monitor recorded. spinrl DQN's",
        "greedy test games after each epoch are left out of its time (SB3 plays none).",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets")
    parser.add_argument("--only", nargs="*", default=None, help="sections: stepping training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda, for both libraries' networks")
    parser.add_argument("--out", default=None, help="result file name in benchmarks/results/")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    torch.set_num_threads(1)
    os.environ.setdefault("SPINRL_NUM_THREADS", "1")
    only = set(args.only or ["stepping", "training"])
    command = "python benchmarks/bench_atari.py " + " ".join(sys.argv[1:])
    lines = [
        f"# Atari benchmark: spinrl vs Stable-Baselines3 on {ENV_ID}{' (quick)' if args.quick else ''}",
        "",
        f"- Command: `{command.strip()}`",
        f"- Machine: {machine()}; {cores()} cores available; networks on {gpu_name(args.device)}, "
        "1 torch thread for both libraries",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M')}",
        "",
    ]
    start = time.time()
    if "stepping" in only:
        section_stepping(lines, 1.5 if args.quick else 5.0)
    if "training" in only:
        if args.quick:
            section_training(lines, 4000, 10240, args.seed, True)
        else:
            section_training(lines, 100_000, 100_352, args.seed, False)
    lines.append(f"Total benchmark time: {(time.time() - start) / 60:.1f} minutes.")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / (args.out or "atari.md")
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
