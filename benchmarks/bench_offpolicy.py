"""Off-policy benchmarks: spinrl SAC/TD3 vs Stable-Baselines3 SAC/TD3, update throughput, buffer memory.

    .venv/bin/python benchmarks/bench_offpolicy.py --quick    # 1 seed, small budgets (~15 minutes on 2 cores)
    .venv/bin/python benchmarks/bench_offpolicy.py            # 3 seeds, Hopper-v5 100k steps (hours on a CPU)

Both libraries run side by side in the same invocation on the same machine (so drifting machine speed
affects both), each on the same device with the same number of torch threads. Sections:

1. Pendulum-v1: wall-clock until the average test return (10 deterministic episodes, evaluated every
   1000 env steps) reaches -200, each library with its own defaults. Evaluation time is excluded
   for both (spinrl's vectorised test episodes would otherwise be an unfair advantage).
2. Equal configuration (256x256 networks, batch 256, one update per env step, no warm-up gap): env
   steps per second while updating, spinrl eager and with ``--compile`` (its compile seconds apart,
   and after how many updates compiling pays), next to SB3.
3. Hopper-v5, 100k steps, final test return of SAC (full mode, or ``--hopper``).
4. Replay-buffer memory for Humanoid-v5 at 1M capacity.

Writes benchmarks/results/offpolicy.md (offpolicy-quick.md with --quick).
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
RESULTS = ROOT / "benchmarks" / "results"

import gymnasium as gym  # noqa: E402
import torch  # noqa: E402

import spinrl.algos.sac as spinrl_sac_module  # noqa: E402
import spinrl.algos.td3 as spinrl_td3_module  # noqa: E402
from spinrl.common.seeding import episode_seeds  # noqa: E402
from spinrl.record.logger import read_progress  # noqa: E402


def machine(device: str) -> str:
    """CPU model and cores (as the on-policy benchmark reports them), plus the GPU when one is used."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_onpolicy import machine as cpu_machine

    gpu = f", GPU {torch.cuda.get_device_name()}" if device.startswith("cuda") else ""
    return cpu_machine() + gpu


class Reached(Exception):
    """Raised from inside a run to stop it once the threshold is reached."""


# ----- spinrl: stop at the threshold, time the test episodes to subtract them ---------------------
def spinrl_until(
    module, algo: str, env_id: str, seed: int, threshold: float | None, max_steps: int, device: str, **kwargs
) -> dict:
    """Train spinrl ``algo`` with its defaults, testing every 1000 steps; stop once TestEpRet >= threshold."""
    real_test = module.run_test_episodes
    eval_time, hit = [0.0], {}
    start = time.perf_counter()

    def timed_test(test_env, ac, logger, seeds, dev):
        t0 = time.perf_counter()
        real_test(test_env, ac, logger, seeds, dev)
        eval_time[0] += time.perf_counter() - t0
        ret = float(np.mean(logger.epoch_dict["TestEpRet"][-1]))
        if threshold is not None and ret >= threshold and not hit:
            hit.update(seconds=time.perf_counter() - start - eval_time[0], ret=ret)
            raise Reached

    module.run_test_episodes = timed_test
    out = tempfile.mkdtemp(prefix=f"bench-{algo}-")
    steps_per_epoch = kwargs.pop("steps_per_epoch", 1000)
    try:
        getattr(module, algo)(
            env_id, seed=seed, steps_per_epoch=steps_per_epoch, epochs=max_steps // steps_per_epoch,
            logger_kwargs=dict(output_dir=out, quiet=True), device=device, **kwargs,
        )  # fmt: skip
    except Reached:
        pass
    finally:
        module.run_test_episodes = real_test
    total = time.perf_counter() - start - eval_time[0]
    progress = read_progress(Path(out) / "progress.txt") if (Path(out) / "progress.txt").exists() else {}
    epochs_logged = len(progress.get("Epoch", []))
    # A hit stops the run inside the test of the epoch after the last logged one.
    total_steps = (epochs_logged + (1 if hit else 0)) * steps_per_epoch
    last_ret = float(progress["AverageTestEpRet"][-1]) if epochs_logged else float("nan")
    return dict(
        seconds=hit.get("seconds"), steps=total_steps if hit else None, train_seconds=total,
        total_steps=total_steps, final=hit.get("ret", last_ret),
    )  # fmt: skip


# ----- Stable-Baselines3 ------------------------------------------------------------------------
def sb3_until(
    cls_name: str,
    env_id: str,
    seed: int,
    threshold: float | None,
    max_steps: int,
    device: str,
    eval_every: int = 1000,
    **kwargs,
) -> dict:
    """Train SB3 ``cls_name`` with its defaults; evaluate every ``eval_every`` steps (timed apart);
    stop at the threshold."""
    import stable_baselines3 as sb3
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy

    eval_env = gym.make(env_id)
    state = dict(eval_time=0.0, hit=None, last=np.nan)
    start = time.perf_counter()

    class EvalAndStop(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % eval_every != 0:
                return True
            t0 = time.perf_counter()
            rets = []
            # Separately seeded test episodes, like spinrl's: each evaluation from its own first seed.
            first_seed = 10_000 + 100 * (self.num_timesteps // eval_every)
            for episode_seed in episode_seeds(first_seed, 10):
                eval_env.reset(seed=episode_seed)
                r, _ = evaluate_policy(self.model, eval_env, n_eval_episodes=1, deterministic=True)
                rets.append(r)
            state["eval_time"] += time.perf_counter() - t0
            state["last"] = float(np.mean(rets))
            print(
                f"  SB3 {cls_name} {env_id} step {self.num_timesteps}: test return {state['last']:.1f}",
                flush=True,
            )
            if threshold is not None and state["last"] >= threshold:
                state["hit"] = (time.perf_counter() - start - state["eval_time"], self.num_timesteps)
                return False
            return True

    model = getattr(sb3, cls_name)(
        "MlpPolicy", gym.make(env_id), seed=seed, device=device, verbose=0, **kwargs
    )
    model.learn(total_timesteps=max_steps, callback=EvalAndStop())
    total = time.perf_counter() - start - state["eval_time"]
    hit = state["hit"]
    return dict(
        seconds=hit[0] if hit else None, steps=hit[1] if hit else None, train_seconds=total,
        total_steps=model.num_timesteps, final=state["last"],
    )  # fmt: skip


def fmt(x, spec: str = ".1f") -> str:
    return "not reached" if x is None else format(x, spec)


def section_pendulum(seeds, max_steps, device, lines):
    lines += [
        "## Pendulum-v1: wall-clock until average test return >= -200",
        "",
        f"Each library with its own defaults (spinrl: Spinning Up's, start_steps=10000, batch 100; SB3: "
        f"learning_starts=100, batch 256; SB3 TD3 without action noise). Test: 10 deterministic episodes every "
        f"1000 steps, their time excluded. Budget {max_steps:,} steps.",
        "",
        "| algo | seed | library | seconds to -200 | steps to -200 | env steps/s | final test return |",
        "|---|---|---|---|---|---|---|",
    ]
    summary = []
    for algo, module, sb3_name in (("sac", spinrl_sac_module, "SAC"), ("td3", spinrl_td3_module, "TD3")):
        times = {"spinrl": [], "SB3": []}
        for seed in seeds:
            for lib in ("spinrl", "SB3"):
                if lib == "spinrl":
                    r = spinrl_until(module, algo, "Pendulum-v1", seed, -200, max_steps, device)
                else:
                    r = sb3_until(sb3_name, "Pendulum-v1", seed, -200, max_steps, device)
                times[lib].append(r["seconds"] if r["seconds"] is not None else np.inf)
                rate = r["total_steps"] / r["train_seconds"]
                lines.append(
                    f"| {algo.upper()} | {seed} | {lib} {algo.upper()} | {fmt(r['seconds'])} | {fmt(r['steps'], ',')} "
                    f"| {rate:.0f} | {r['final']:.1f} |"
                )
                print(lines[-1], flush=True)
        a, b = np.median(times["spinrl"]), np.median(times["SB3"])
        ratio = b / a if np.isfinite(a) and np.isfinite(b) else float("nan")
        summary.append(
            f"- {algo.upper()}: median seconds to -200: spinrl {a:.1f}, SB3 {b:.1f}: spinrl is **{ratio:.2f}x** "
            "sooner (goal: 2x)."
        )
    lines += ["", *summary, ""]


def spinrl_compiled(module, algo: str, *args, **kwargs) -> tuple[dict, float]:
    """``spinrl_until`` with compile=True, and the seconds its first updates spent compiling."""
    real, made = module.compile_update, []

    def recording(*a, **kw):
        made.append(real(*a, **kw))
        return made[-1]

    module.compile_update = recording
    try:
        result = spinrl_until(module, algo, *args, compile=True, **kwargs)
    finally:
        module.compile_update = real
    return result, sum(getattr(f, "compile_seconds", 0.0) for f in made)


def section_throughput(steps, device, lines):
    """Equal configuration: 256x256, batch 256, an update every env step from step 1000 on; spinrl
    eager, spinrl compiled and SB3 side by side."""
    load_before = os.getloadavg()
    lines += [
        "## Equal configuration: env steps per second while updating",
        "",
        f"Pendulum-v1, 256x256 networks, batch 256, one gradient update per env step (spinrl update_every=1), "
        f"updates from step 1000 on; {steps:,} steps timed after a 1000-step warm-up, test episodes excluded. "
        "spinrl eager, spinrl with `compile=True` (`--compile`) and SB3 take turns, twice; the faster run of each "
        "counts. The compiled runs' steps/s leave out their compile seconds, shown apart (TorchInductor's cache empty at the start, as on a user's first run). Break-even: the updates after which compiling has paid for "
        'itself (compile seconds / time saved per update), "never" when the compiled update is slower.',
        "",
        "| algo | spinrl eager steps/s | spinrl --compile steps/s | compile s | break-even | SB3 steps/s "
        "| eager vs SB3 | --compile vs SB3 | goal |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    common = dict(start_steps=1000, update_after=1000, update_every=1, batch_size=256, num_test_episodes=1)
    for algo, module, sb3_name, extra, goal in (
        ("sac", spinrl_sac_module, "SAC", dict(lr=3e-4), 1.5),
        ("td3", spinrl_td3_module, "TD3", {}, 2.0),
    ):
        total = 1000 + steps
        r0 = spinrl_until(
            module, algo, "Pendulum-v1", 0, None, 1000, device, steps_per_epoch=1000, **common, **extra
        )
        s0 = sb3_until(sb3_name, "Pendulum-v1", 0, None, 1000, device, learning_starts=1000)
        # spinrl eager, spinrl compiled and SB3 take turns, twice, and the faster run of each counts: on
        # a shared machine the load drifts from one run to the next. The second compiled run finds its
        # code compiled already (in this process), so the compile seconds are the first run's.
        eager_rates, compiled_rates, sb3_rates, compile_seconds = [], [], [], []
        for _ in range(2):
            r1 = spinrl_until(
                module, algo, "Pendulum-v1", 0, None, total, device, steps_per_epoch=total, **common, **extra
            )
            eager_rates.append(steps / (r1["train_seconds"] - r0["train_seconds"]))
            rc, seconds = spinrl_compiled(
                module, algo, "Pendulum-v1", 0, None, total, device, steps_per_epoch=total, **common, **extra
            )
            compiled_rates.append(steps / (rc["train_seconds"] - seconds - r0["train_seconds"]))
            compile_seconds.append(seconds)
            s1 = sb3_until(sb3_name, "Pendulum-v1", 0, None, total, device, learning_starts=1000)
            sb3_rates.append(steps / (s1["train_seconds"] - s0["train_seconds"]))
        eager, compiled, theirs = max(eager_rates), max(compiled_rates), max(sb3_rates)
        compile_s = compile_seconds[0]
        saved_per_update = 1 / eager - 1 / compiled
        break_even = f"{compile_s / saved_per_update:,.0f} updates" if saved_per_update > 0 else "never"
        lines.append(
            f"| {algo.upper()} | {eager:.0f} | {compiled:.0f} | {compile_s:.0f} | {break_even} | {theirs:.0f} "
            f"| **{eager / theirs:.2f}x** | **{compiled / theirs:.2f}x** | {goal}x |"
        )
        print(lines[-1], flush=True)
    load_after = os.getloadavg()
    lines += [
        "",
        f"Load average (1, 5, 15 min) before this section: {', '.join(f'{x:.1f}' for x in load_before)}; "
        f"after: {', '.join(f'{x:.1f}' for x in load_after)} (on {len(os.sched_getaffinity(0))} usable cores).",
        "",
    ]


def section_hopper(seeds, steps, device, lines, libs=("spinrl", "SB3")):
    lines += [
        f"## Hopper-v5: final test return after {steps:,} steps (SAC, each library's defaults)",
        "",
        "Test: 10 deterministic episodes every 10,000 steps (excluded from the time); the last one is reported.",
        "",
        "| seed | spinrl SAC | SB3 SAC | spinrl seconds | SB3 seconds |",
        "|---|---|---|---|---|",
    ]
    for seed in seeds:
        none = dict(final=float("nan"), train_seconds=float("nan"))
        a, b = none, none
        if "spinrl" in libs:
            a = spinrl_until(
                spinrl_sac_module, "sac", "Hopper-v5", seed, None, steps, device, steps_per_epoch=10000
            )
        if "SB3" in libs:
            b = sb3_until("SAC", "Hopper-v5", seed, None, steps, device, eval_every=10_000)
        lines.append(
            f"| {seed} | {a['final']:.1f} | {b['final']:.1f} | {a['train_seconds']:.0f} | {b['train_seconds']:.0f} |"
        )
        print(lines[-1], flush=True)
    lines.append("")


def section_memory(lines):
    from stable_baselines3.common.buffers import ReplayBuffer as SB3Buffer

    from spinrl.buffers.replay import ReplayBuffer

    env = gym.make("Humanoid-v5")
    ours = ReplayBuffer(
        int(np.prod(env.observation_space.shape)), env.action_space.shape, int(1e6), device="meta"
    )
    # NumPy's zeros are lazily mapped, so building SB3's buffer costs no real memory here.
    sb3 = SB3Buffer(
        int(1e6), env.observation_space, env.action_space, device="cpu", handle_timeout_termination=True
    )
    sb3_bytes = sum(
        getattr(sb3, k).nbytes
        for k in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
    )
    sb3_opt = SB3Buffer(
        int(1e6), env.observation_space, env.action_space, device="cpu", optimize_memory_usage=True,
        handle_timeout_termination=False,
    )  # fmt: skip
    sb3_opt_bytes = sum(getattr(sb3_opt, k).nbytes for k in ("observations", "actions", "rewards", "dones"))
    obs_dim = env.observation_space.shape[0]
    lines += [
        "## Replay buffer memory: Humanoid-v5 (obs 348, act 17), 1M transitions",
        "",
        "| buffer | bytes | GB |",
        "|---|---|---|",
        f"| spinrl ReplayBuffer (float32, each observation once) | {ours.nbytes():,} | {ours.nbytes() / 1e9:.2f} |",
        f"| SB3 ReplayBuffer, defaults (obs and next_obs, env dtype {env.observation_space.dtype}) | {sb3_bytes:,} "
        f"| {sb3_bytes / 1e9:.2f} |",
        f"| SB3 ReplayBuffer, optimize_memory_usage=True (no timeout handling) | {sb3_opt_bytes:,} | "
        f"{sb3_opt_bytes / 1e9:.2f} |",
        "",
        f"spinrl: 1e6 x ({obs_dim} x 4 B obs + 17 x 4 B act + 4 B rew + 1 B terminated + 1 B valid).",
        "",
    ]
    env.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, small budgets, no Hopper")
    parser.add_argument("--hopper", action="store_true", help="run the Hopper section in quick mode too")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (both libraries)")
    parser.add_argument(
        "--only", nargs="*", default=None, help="sections to run: pendulum throughput hopper memory"
    )
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default: 1 quick, 3 full)")
    parser.add_argument(
        "--lib", choices=["both", "spinrl", "SB3"], default="both", help="Hopper: which library"
    )
    parser.add_argument("--out", default=None, help="result file name in benchmarks/results/")
    args = parser.parse_args()
    torch.set_num_threads(1)  # spinrl's choice on the CPU; SB3 gets the same
    # --compile's seconds as a user's first run sees them: TorchInductor's on-disk cache starts empty
    # (torch sets this variable to its default when imported; the cache reads it at each use).
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-inductor-cache-")
    os.environ.setdefault("SPINRL_NUM_THREADS", "1")
    seeds = list(range(args.seeds or (1 if args.quick else 3)))
    only = set(args.only or ["pendulum", "throughput", "hopper", "memory"])
    command = "python benchmarks/bench_offpolicy.py " + " ".join(sys.argv[1:])
    lines = [
        f"# Off-policy benchmark: spinrl vs Stable-Baselines3{' (quick)' if args.quick else ''}",
        "",
        f"- Command: `{command.strip()}`",
        f"- Machine: {machine(args.device)}; device {args.device}; 1 torch thread for both libraries",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M')}",
        "",
    ]
    start = time.time()
    if "memory" in only:
        section_memory(lines)
    if "throughput" in only:
        section_throughput(1000 if args.quick else 5000, args.device, lines)
    if "pendulum" in only:
        section_pendulum(seeds, 15000 if args.quick else 30000, args.device, lines)
    if "hopper" in only and (not args.quick or args.hopper):
        section_hopper(
            seeds, 100_000, args.device, lines, ("spinrl", "SB3") if args.lib == "both" else (args.lib,)
        )
    lines.append(f"Total benchmark time: {(time.time() - start) / 60:.1f} minutes.")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / (args.out or ("offpolicy-quick.md" if args.quick else "offpolicy.md"))
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
