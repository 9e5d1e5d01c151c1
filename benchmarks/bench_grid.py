"""Benchmark: a 3-seed x 2-setting PPO grid on CartPole, one variant at a time vs ``--parallel 2``.

    python benchmarks/bench_grid.py [--epochs 5] [--steps_per_epoch 2000]

Both grids run through the ``spinrl`` command line in fresh data folders; the wall-clock time of each
command is measured end to end (start-up included). Writes ``benchmarks/results/grid.md``.
Goal: the parallel grid takes at most 0.6x the serial time on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "grid.md"
GOAL = 0.6


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def grid_command(exp_name: str, data_dir: str, epochs: int, steps: int, parallel: int) -> list[str]:
    spinrl = str(Path(sys.executable).with_name("spinrl"))
    cmd = [
        spinrl,
        "ppo",
        "--env",
        "CartPole-v1",
        "--seed",
        "0",
        "10",
        "20",
        "--hid",
        "[32]",
        "[64,64]",
        "--epochs",
        str(epochs),
        "--steps_per_epoch",
        str(steps),
        "--device",
        "cpu",
        "--exp_name",
        exp_name,
        "--data_dir",
        data_dir,
    ]
    return cmd + (["--parallel", str(parallel)] if parallel > 1 else [])


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(
            f"benchmark command failed ({result.returncode}): {shlex.join(cmd)}\n{result.stderr[-2000:]}"
        )
    return elapsed


BURN = "import time; t = time.perf_counter(); x = sum(range(30_000_000)); print(time.perf_counter() - t)"


def effective_cores(k: int) -> float:
    """How many cores ``k`` CPU-bound processes actually get right now (k on an idle k-core machine).

    On a shared machine other work takes its share; the parallel grid cannot beat this.
    """
    alone = float(subprocess.run([sys.executable, "-c", BURN], capture_output=True, text=True).stdout)
    procs = [
        subprocess.Popen([sys.executable, "-c", BURN], stdout=subprocess.PIPE, text=True) for _ in range(k)
    ]
    together = [float(p.communicate()[0]) for p in procs]
    return k * alone / max(together)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--steps_per_epoch", type=int, default=2000)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument(
        "--repeats", type=int, default=1, help="time each grid this often; report the fastest"
    )
    args = parser.parse_args(argv)

    # The serial grid twice: as it runs by default (torch picks its own thread count) and with one
    # thread, so the table separates the gain of running processes side by side from that of the
    # per-run thread budget alone.
    one_thread = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", SPINRL_NUM_THREADS="1")
    setups = {
        "serial, in one process (default torch threads)": (1, None),
        "serial, one thread (`OMP_NUM_THREADS=1 SPINRL_NUM_THREADS=1`)": (1, one_thread),
        f"`--parallel {args.parallel}` (one process per run, {max(1, usable_cores() // args.parallel)} "
        "thread(s) each)": (args.parallel, None),
    }
    times: dict[str, list[float]] = {name: [] for name in setups}
    loads = [os.getloadavg()[0]]
    cores = [effective_cores(args.parallel)]
    with tempfile.TemporaryDirectory(prefix="bench_grid_") as data_dir:
        for repeat in range(args.repeats):  # interleaved, so a busy spell on the machine hits every setup
            for i, (name, (parallel, env)) in enumerate(setups.items()):
                cmd = grid_command(f"g{i}r{repeat}", data_dir, args.epochs, args.steps_per_epoch, parallel)
                times[name].append(timed(cmd, env))
                print(f"{times[name][-1]:7.1f} s  {name}", flush=True)
            loads.append(os.getloadavg()[0])
            cores.append(effective_cores(args.parallel))
        finished = sum(1 for _ in Path(data_dir).rglob("status.json"))
        shown = grid_command("bench", "DATA", args.epochs, args.steps_per_epoch, args.parallel)

    serial, serial_1t, parallel = (min(t) for t in times.values())
    ratio = parallel / serial
    verdict = "met" if ratio <= GOAL else "missed"
    shown = ["spinrl", *shown[1:]]
    lines = [
        "# Grid launching: serial vs parallel",
        "",
        f"A 3-seed x 2-setting PPO grid on CartPole-v1 ({args.epochs} epochs of {args.steps_per_epoch} steps "
        "per run), timed end to end through the command line (process start-up included). "
        "Written by `benchmarks/bench_grid.py`.",
        "",
        f"Command (parallel): `{shlex.join(shown)}`; serial: the same without `--parallel`.",
        "",
        f"Machine: {cpu_model()}, {usable_cores()} usable core(s), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}. Load average (1 min) before and after each round: "
        f"{', '.join(f'{x:.1f}' for x in loads)}; a load above the core count means other work shared the "
        "cores and the figures are noisy. "
        f"Cores that {args.parallel} CPU-bound processes actually got (a pure-Python loop, before and after "
        f"each round; {args.parallel} on an idle machine): {', '.join(f'{c:.2f}' for c in cores)}.",
        "",
        f"| grid | runs | wall-clock (s), fastest of {args.repeats} | all (s) | vs serial |",
        "|---|---:|---:|---|---:|",
    ]
    for name, t in times.items():
        lines.append(
            f"| {name} | 6 | {min(t):.1f} | {', '.join(f'{x:.1f}' for x in t)} | {min(t) / serial:.2f} |"
        )
    lines += [
        "",
        f"Goal: parallel <= {GOAL}x serial: **{verdict}** ({ratio:.2f}x the default serial grid, "
        f"{parallel / serial_1t:.2f}x the one-thread serial grid). Runs written: {finished} of "
        f"{18 * args.repeats}.",
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
