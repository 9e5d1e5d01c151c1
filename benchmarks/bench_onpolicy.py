"""On-policy benchmarks: spinrl PPO vs Stable-Baselines3 PPO, MPI scaling, collection throughput.

    .venv/bin/python benchmarks/bench_onpolicy.py            # full: 3 seeds (about 40 minutes on 2 cores)
    .venv/bin/python benchmarks/bench_onpolicy.py --quick    # 1 seed, small budgets (a few minutes)

Each library runs with its own defaults, side by side in the same invocation on the same machine, so
drifting machine speed affects both. Writes benchmarks/results/onpolicy.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PY = sys.executable
SPINRL = [PY, "-m", "spinrl.cli"]


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, Python {platform.python_version()}"


def _last_rows(progress: Path) -> list[dict[str, float]]:
    if not progress.exists():
        return []
    lines = progress.read_text().splitlines()
    if len(lines) < 2:
        return []
    head = lines[0].split("\t")
    rows = []
    for line in lines[1:]:
        cells = line.split("\t")
        if len(cells) == len(head):
            rows.append({h: float(c) for h, c in zip(head, cells)})
    return rows


def spinrl_until(args: list[str], run_dir: Path, threshold: float | None, timeout: float) -> dict:
    """Run ``spinrl ARGS``; stop it as soon as AverageEpRet >= threshold (if given)."""
    proc = subprocess.Popen(
        [*SPINRL, *args],
        cwd=run_dir.parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    progress = run_dir / "progress.txt"
    start = time.time()
    hit = None
    while proc.poll() is None and time.time() - start < timeout:
        rows = _last_rows(progress)
        if threshold is not None:
            hit = next((r for r in rows if r["AverageEpRet"] >= threshold), None)
            if hit:
                proc.terminate()
                break
        time.sleep(0.2)
    if proc.poll() is None:
        proc.terminate()
    proc.wait()
    rows = _last_rows(progress)
    if not rows:
        raise RuntimeError(f"spinrl {' '.join(args)} wrote no progress: {proc.stderr.read()[-2000:]}")
    last = rows[-1]
    return dict(
        time_to=hit["Time"] if hit else None,
        steps_to=hit["TotalEnvInteracts"] if hit else None,
        final=float(np.mean([r["AverageEpRet"] for r in rows[-3:]])),
        steps=last["TotalEnvInteracts"],
        sps=last["TotalEnvInteracts"] / last["Time"],
    )


SB3_WORKER = r"""
import json, sys, time
import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
env_id, seed, budget, threshold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])

class Until(BaseCallback):
    # Mean return of the episodes finished in each rollout, the same measure as spinrl's AverageEpRet.
    def __init__(self):
        super().__init__()
        self.rollout_rets, self.hit, self.history, self.stop = [], None, [], False
    def _on_training_start(self):
        self.t0 = time.time()
    def _on_step(self):
        for info in self.locals["infos"]:
            if "episode" in info:
                self.rollout_rets.append(info["episode"]["r"])
        return not self.stop
    def _on_rollout_end(self):
        if self.rollout_rets:
            mean = float(np.mean(self.rollout_rets))
            self.history.append(mean)
            if threshold > -1e9 and mean >= threshold and self.hit is None:
                self.hit = (time.time() - self.t0, self.num_timesteps)
                self.stop = True
        self.rollout_rets = []

import torch
torch.set_num_threads(1)  # as spinrl does by default: one core per run
model = PPO("MlpPolicy", env_id, seed=seed, device="cpu")
cb = Until()
t0 = time.time()
model.learn(total_timesteps=budget, callback=cb)
elapsed = time.time() - t0
print(json.dumps(dict(time_to=cb.hit[0] if cb.hit else None, steps_to=cb.hit[1] if cb.hit else None,
                      final=float(np.mean(cb.history[-3:])) if cb.history else None,
                      steps=model.num_timesteps, sps=model.num_timesteps / elapsed)))
"""


def sb3_until(env_id: str, seed: int, budget: int, threshold: float | None) -> dict:
    out = subprocess.run(
        [
            PY,
            "-c",
            SB3_WORKER,
            env_id,
            str(seed),
            str(budget),
            str(threshold if threshold is not None else -1e10),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def fmt(v, digits=1):
    return "not reached" if v is None else f"{v:,.{digits}f}"


# A faster spinrl configuration for CartPole (same algorithm, other hyperparameters), reported in
# its own rows: 8 env copies, 2000 steps per epoch, a larger policy learning rate, fewer value steps.
FAST_CARTPOLE = ["--num_envs", "8", "--steps_per_epoch", "2000", "--pi_lr", "1e-3", "--train_v_iters", "40"]


def bench_cartpole(seeds: list[int], budget: int, work: Path) -> tuple[list[str], dict]:
    rows, summary = [], {"spinrl": [], "spinrl-fast": [], "sb3": []}
    data = ["--data_dir", str(work / "data")]
    for seed in seeds:
        runs = {}
        for label, extra, steps_per_epoch in (("spinrl", [], 4000), ("spinrl-fast", FAST_CARTPOLE, 2000)):
            exp = f"{label}{seed}"
            args = [
                "ppo",
                "--env",
                "CartPole-v1",
                "--seed",
                str(seed),
                "--epochs",
                str(budget // steps_per_epoch),
            ]
            runs[label] = spinrl_until(
                [*args, *extra, "--exp_name", exp, *data], work / "data" / exp / f"{exp}_s{seed}", 475, 1800
            )
        runs["sb3"] = sb3_until("CartPole-v1", seed, budget, 475)
        names = {
            "spinrl": "spinrl PPO (defaults)",
            "spinrl-fast": "spinrl PPO (fast config)",
            "sb3": "SB3 PPO",
        }
        for label, r in runs.items():
            summary[label].append(r)
            rows.append(
                f"| {seed} | {names[label]} | {fmt(r['time_to'])} | {fmt(r['steps_to'], 0)} | "
                f"{fmt(r['sps'], 0)} | {fmt(r['final'])} |"
            )
    return rows, summary


def bench_hopper(seeds: list[int], budget: int, work: Path) -> list[str]:
    """spinrl and SB3 side by side: both of a seed's runs at once, one core each, so that they see the
    same machine load."""
    from concurrent.futures import ThreadPoolExecutor

    rows = []
    for seed in seeds:
        exp = f"hop{seed}"
        with ThreadPoolExecutor(2) as pool:
            spinrl_run = pool.submit(
                spinrl_until,
                [
                    "ppo",
                    "--env",
                    "Hopper-v5",
                    "--seed",
                    str(seed),
                    "--epochs",
                    str(budget // 4000),
                    "--exp_name",
                    exp,
                    "--data_dir",
                    str(work / "data"),
                ],
                work / "data" / exp / f"{exp}_s{seed}",
                None,
                5400,
            )
            sb3_run = pool.submit(sb3_until, "Hopper-v5", seed, budget, None)
            r, s = spinrl_run.result(), sb3_run.result()
        rows.append(f"| {seed} | spinrl PPO | {fmt(r['final'])} | {fmt(r['sps'], 0)} |")
        rows.append(f"| {seed} | SB3 PPO | {fmt(s['final'])} | {fmt(s['sps'], 0)} |")
    return rows


def bench_mpi(epochs: int, work: Path) -> list[str]:
    """PPO on HalfCheetah-v5 with 1 and 2 ranks: env steps per second of training time.

    Two figures per run: over the whole run (the last row's TotalEnvInteracts / Time, the headline),
    and over the epochs from the third on (their steps / their time), which leaves out the one-off
    costs of the first two (warm-up, and the TensorBoard import and writer that the first row's
    dump_tabular pays after its Time is taken). Both still depend on how many policy steps PPO's KL
    stop lets each run take, which differs between 1 and 2 ranks (benchmarks/results/onpolicy-mpi.md).
    """
    rows = []
    for cpu in (1, 2):
        exp = f"hc_cpu{cpu}"
        run_dir = work / "data" / exp / f"{exp}_s0"
        r = spinrl_until(
            [
                "ppo",
                "--env",
                "HalfCheetah-v5",
                "--cpu",
                str(cpu),
                "--epochs",
                str(epochs),
                "--exp_name",
                exp,
                "--data_dir",
                str(work / "data"),
            ],
            run_dir,
            None,
            timeout=1800,
        )
        progress = _last_rows(run_dir / "progress.txt")
        first, last = progress[1], progress[-1]  # the Time of row 2 is where epoch 3 starts
        later = (last["TotalEnvInteracts"] - first["TotalEnvInteracts"]) / (last["Time"] - first["Time"])
        rows.append((cpu, r["sps"], later))
    base, base_later = rows[0][1], rows[0][2]
    return [
        f"| --cpu {cpu} | {sps:,.0f} | {sps / base:.2f}x | {later:,.0f} | {later / base_later:.2f}x |"
        for cpu, sps, later in rows
    ]


def ppo_collection_speeds(
    num_envs: int, steps_per_epoch: int, epochs: int, env: str = "CartPole-v1"
) -> list[float]:
    """Env steps per second of each epoch's collection in ``ppo()`` itself, the whole loop of the
    algorithm file as a run executes it (one process, one torch thread).

    An epoch's collection is timed from the end of the previous epoch (the return of
    ``Checkpointer.end_epoch``, or of ``Checkpointer.start`` for the first) to the update's call of
    ``GAEBuffer.get``: acting, stepping, storing, closing paths, the normalisers' update and the VVals
    store. The update itself is cut to one policy and one critic step. The first epoch also pays
    for first calls into torch and NumPy and the env copies' reset: leave it out of comparisons.
    """
    import torch

    import spinrl.algos.ppo as ppo_module
    from spinrl.buffers.gae import GAEBuffer
    from spinrl.record.checkpoint import Checkpointer

    marks, seconds = [], []
    start, end_epoch, get = Checkpointer.start, Checkpointer.end_epoch, GAEBuffer.get

    def marked_start(self, *args, **kwargs):
        progress = start(self, *args, **kwargs)
        marks.append(time.perf_counter())
        return progress

    def marked_end_epoch(self, *args, **kwargs):
        end_epoch(self, *args, **kwargs)
        marks.append(time.perf_counter())

    def marked_get(self, *args, **kwargs):
        seconds.append(time.perf_counter() - marks[-1])
        return get(self, *args, **kwargs)

    Checkpointer.start, Checkpointer.end_epoch, GAEBuffer.get = marked_start, marked_end_epoch, marked_get
    try:
        torch.set_num_threads(1)
        ppo_module.ppo(
            env,
            steps_per_epoch=steps_per_epoch,
            epochs=epochs,
            num_envs=num_envs,
            train_pi_iters=1,
            train_v_iters=1,
            save_freq=10**6,
            logger_kwargs=dict(output_dir=tempfile.mkdtemp(prefix="spinrl-bench-"), quiet=True),
        )
    finally:
        Checkpointer.start, Checkpointer.end_epoch, GAEBuffer.get = start, end_epoch, get
    return [steps_per_epoch / s for s in seconds]


def bench_throughput(num_envs: int, rounds: int = 7) -> list[str]:
    """Collection speed of spinrl's PPO loop, and of SB3's PPO ``collect_rollouts`` with one env, vs the
    raw env with random actions, in the same process. The four are timed in turn, ``rounds`` times, and
    each keeps its fastest round: on a shared machine other work slows some rounds, and the fastest is
    the one it disturbed least, for every row alike."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    env = gym.make("CartPole-v1")
    env.reset(seed=0)

    def raw(n: int = 20_000) -> float:
        t = time.perf_counter()
        for _ in range(n):
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            if term or trunc:
                env.reset()
        return n / (time.perf_counter() - t)

    def spinrl_collection(k: int) -> Callable[[], float]:
        # Each round a short ppo() run: its second epoch's collection is the one timed.
        return lambda: ppo_collection_speeds(k, 16_000, epochs=2)[1]

    model = PPO("MlpPolicy", "CartPole-v1", n_steps=2000, device="cpu", seed=0)  # one env (DummyVecEnv)
    _, callback = model._setup_learn(10**6, None)
    callback.on_training_start(locals(), globals())

    def sb3_collection() -> float:
        t = time.perf_counter()
        model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=model.n_steps)
        return model.n_steps / (time.perf_counter() - t)

    timed = {
        "raw CartPole-v1, random actions, no policy": raw,
        "spinrl PPO collection, --num_envs 1": spinrl_collection(1),
        f"spinrl PPO collection, --num_envs {num_envs}": spinrl_collection(num_envs),
        "SB3 PPO `collect_rollouts`, n_envs 1": sb3_collection,
    }
    for fn in timed.values():  # warm-up: first calls into torch and NumPy
        fn()
    best = dict.fromkeys(timed, 0.0)
    for _ in range(rounds):
        for name, fn in timed.items():
            best[name] = max(best[name], fn())
    raw_sps = best["raw CartPole-v1, random actions, no policy"]
    rows = [f"| {name} | {sps:,.0f} | {sps / raw_sps:.0%} |" for name, sps in best.items()]
    rows.append(
        f"\nFastest of {rounds} rounds, the four timed in turn in each. Load average (1 min) before and "
        f"after: {load_before:.1f}, {os.getloadavg()[0]:.1f} ({len(os.sched_getaffinity(0))} usable cores; "
        "with more runnable processes than cores, other work took turns on this process's core)."
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed and small budgets")
    parser.add_argument("--only", default="cartpole,hopper,mpi,throughput")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 3; 1 with --quick)")
    parser.add_argument("--first_seed", type=int, default=0, help="seeds are first_seed, first_seed + 1, ...")
    args = parser.parse_args()
    only = set(args.only.split(","))
    seeds = [args.first_seed + i for i in range(args.seeds or (1 if args.quick else 3))]
    work = Path(tempfile.mkdtemp(prefix="spinrl-bench-"))
    command = " ".join(["python", *sys.argv])
    out = [
        f"# On-policy benchmark: spinrl vs Stable-Baselines3 {'(quick)' if args.quick else ''}",
        "",
        f"- Command: `{command}`",
        f"- Machine: {machine()}",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M')}",
        "- Each library with its own defaults (spinrl: Spinning Up's PPO defaults, 4000 steps/epoch, "
        "num_envs=1; SB3: PPO('MlpPolicy') defaults). Times are training wall-clock (process start-up "
        "excluded for both). Both use one torch thread (spinrl's default; SB3 is given the same so that "
        "thread contention on a small machine does not slow it down).",
        "",
    ]
    try:
        if "cartpole" in only:
            budget = 200_000 if not args.quick else 120_000
            rows, summary = bench_cartpole(seeds, budget, work)
            out += [
                "## CartPole-v1: wall-clock to average return >= 475",
                "",
                f"Budget {budget:,} steps; return = mean over the episodes finished in the latest epoch "
                "(spinrl) / rollout (SB3).",
                "",
                "| seed | library | seconds to 475 | steps to 475 | env steps/s | final return |",
                "|---|---|---|---|---|---|",
                *rows,
                "",
            ]
            t_sb = [r["time_to"] for r in summary["sb3"] if r["time_to"]]
            for label, name in (("spinrl", "spinrl defaults"), ("spinrl-fast", "spinrl fast config")):
                t_sp = [r["time_to"] for r in summary[label] if r["time_to"]]
                if t_sp and t_sb:
                    out += [
                        f"Median seconds to 475, {name}: {np.median(t_sp):.1f} vs SB3 {np.median(t_sb):.1f}: "
                        f"**{np.median(t_sb) / np.median(t_sp):.2f}x** sooner (goal: 3x).",
                        "",
                    ]
            out += [f"Fast config: `spinrl ppo --env CartPole-v1 {' '.join(FAST_CARTPOLE)}`.", ""]
        if "throughput" in only:
            out += [
                "## Collection throughput on CartPole-v1 (one process, one thread)",
                "",
                "| what | env steps/s | of raw |",
                "|---|---|---|",
                *bench_throughput(64),
                "",
            ]
        if "mpi" in only:
            out += [
                "## MPI scaling: PPO on HalfCheetah-v5",
                "",
                "| ranks | env steps/s | speed-up | env steps/s, epochs 3.. | speed-up, epochs 3.. |",
                "|---|---|---|---|---|",
                *bench_mpi(3 if args.quick else 5, work),
                "",
            ]
        if "hopper" in only:
            budget = 300_000 if not args.quick else 40_000
            out += [
                f"## Hopper-v5, {budget:,} steps: final average return",
                "",
                "| seed | library | final return (last 3 epochs / rollouts) | env steps/s |",
                "|---|---|---|---|",
                *bench_hopper(seeds, budget, work),
                "",
            ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    parts = "" if only == {"cartpole", "hopper", "mpi", "throughput"} else "-" + "-".join(sorted(only))
    name = f"onpolicy{'-quick' if args.quick else ''}{parts}.md"
    (RESULTS / name).write_text("\n".join(out) + "\n")
    print("\n".join(out))
    print(f"written to {RESULTS / name}")


if __name__ == "__main__":
    main()
