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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--steps_per_epoch", type=int, default=2000)
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0]
    # The serial grid twice: as it runs by default (torch picks its own thread count) and with one
    # thread, so the table separates the gain of running processes side by side from that of the
    # per-run thread budget alone.
    one_thread = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", SPINRL_NUM_THREADS="1")
    with tempfile.TemporaryDirectory(prefix="bench_grid_") as data_dir:
        serial_cmd = grid_command("serial", data_dir, args.epochs, args.steps_per_epoch, 1)
        serial_1t_cmd = grid_command("serial1t", data_dir, args.epochs, args.steps_per_epoch, 1)
        parallel_cmd = grid_command("parallel", data_dir, args.epochs, args.steps_per_epoch, args.parallel)
        print("serial:  ", shlex.join(serial_cmd), flush=True)
        serial = timed(serial_cmd)
        print(f"  {serial:.1f} s\nserial, 1 thread:", flush=True)
        serial_1t = timed(serial_1t_cmd, env=one_thread)
        print(f"  {serial_1t:.1f} s\nparallel:", shlex.join(parallel_cmd), flush=True)
        parallel = timed(parallel_cmd)
        print(f"  {parallel:.1f} s", flush=True)
        finished = sum(1 for _ in Path(data_dir).rglob("status.json"))

    ratio = parallel / serial
    verdict = "met" if ratio <= GOAL else "missed"
    shown = [c if not c.startswith(tempfile.gettempdir()) else "DATA" for c in parallel_cmd]
    shown[0] = "spinrl"
    lines = [
        "# Grid launching: serial vs parallel",
        "",
        f"A 3-seed x 2-setting PPO grid on CartPole-v1 ({args.epochs} epochs of {args.steps_per_epoch} steps "
        "per run), timed end to end through the command line. Written by `benchmarks/bench_grid.py`.",
        "",
        f"Command (parallel): `{shlex.join(shown)}`; serial: the same without `--parallel`.",
        "",
        f"Machine: {cpu_model()}, {usable_cores()} usable core(s), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; load average {load_before:.1f} at the start.",
        "",
        "| grid | runs | wall-clock (s) | vs serial |",
        "|---|---:|---:|---:|",
        f"| serial, in one process (default torch threads) | 6 | {serial:.1f} | 1.00 |",
        f"| serial, one thread (`OMP_NUM_THREADS=1 SPINRL_NUM_THREADS=1`) | 6 | {serial_1t:.1f} | "
        f"{serial_1t / serial:.2f} |",
        f"| `--parallel {args.parallel}` (one process per run, {usable_cores() // args.parallel or 1} thread(s) each) "
        f"| 6 | {parallel:.1f} | {ratio:.2f} |",
        "",
        f"Goal: parallel <= {GOAL}x serial: **{verdict}** ({ratio:.2f}x; {parallel / serial_1t:.2f}x the one-thread "
        f"serial grid). Runs written: {finished} of 18.",
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
