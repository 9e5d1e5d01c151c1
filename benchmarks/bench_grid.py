"""Benchmark: a 3-seed x 2-setting PPO grid on CartPole, one variant at a time vs ``--parallel 2``.

    python benchmarks/bench_grid.py [--short_epochs 6] [--long_epochs 14] [--repeats 2]

Both grids run through the ``spinrl`` command line in fresh data folders; the wall-clock time of each
command is measured end to end (start-up included), for short runs (~2 s each when run serially) and
longer ones (~5 s). Writes ``benchmarks/results/grid.md``.

Goal (issue 12): the parallel grid takes at most 0.6x the serial time, for both run lengths. Two
processes can never beat 1/cores of the serial time, and on a shared machine they get fewer than 2
cores: the table gives, beside each figure, the cores that two CPU-bound processes actually got just
before and after that grid, and the ratio that those cores would allow.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "grid.md"
GOAL = 0.6
RUNS = 6  # 3 seeds x 2 network sizes


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
    cmd = [spinrl, "ppo", "--env", "CartPole-v1", "--seed", "0", "10", "20", "--hid", "[32]", "[64,64]"]
    cmd += ["--epochs", str(epochs), "--steps_per_epoch", str(steps), "--device", "cpu"]
    cmd += ["--exp_name", exp_name, "--data_dir", data_dir]
    return cmd + (["--parallel", str(parallel)] if parallel > 1 else [])


def timed(cmd: list[str]) -> tuple[float, dict[str, float]]:
    """Run ``cmd``; return its wall-clock time and, for a parallel grid, when its phases ended: the first
    variant started (start-up), the last variant finished; and ``"cpu"``, the CPU seconds the command and
    every process under it used (each is reaped by its parent, so its time adds up to ours)."""
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    phases: dict[str, float] = {}
    tail = []
    for line in proc.stdout:
        now = time.perf_counter() - start
        if line.startswith("start ") and "first start" not in phases:
            phases["first start"] = now
        if line.startswith("done "):
            phases["last done"] = now
        tail = (tail + [line])[-20:]
    proc.wait()
    elapsed = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    phases["cpu"] = sum(getattr(cpu_after, f) - getattr(cpu_before, f) for f in ("ru_utime", "ru_stime"))
    if proc.returncode != 0:
        sys.exit(f"benchmark command failed ({proc.returncode}): {shlex.join(cmd)}\n{''.join(tail)}")
    return elapsed, phases


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
    return min(float(k), k * alone / max(together))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short_epochs", type=int, default=6, help="epochs of the short runs (~2 s)")
    parser.add_argument("--long_epochs", type=int, default=14, help="epochs of the longer runs (~5 s)")
    parser.add_argument("--steps_per_epoch", type=int, default=2000)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument(
        "--repeats", type=int, default=2, help="time each grid this often; report the fastest"
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help=f"the table's file (default {RESULTS.name})"
    )
    args = parser.parse_args(argv)

    cases = [args.short_epochs, args.long_epochs]
    # (epochs, parallel) -> [(seconds, phases, cores before, cores after)]
    results: dict[tuple[int, int], list[tuple[float, dict[str, float], float, float]]] = {}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="bench_grid_") as data_dir:
        for repeat in range(args.repeats):  # interleaved, so a busy spell on the machine hits every setup
            for epochs in cases:
                for parallel in (1, args.parallel):
                    before = effective_cores(args.parallel)
                    name = f"e{epochs}p{parallel}r{repeat}"
                    seconds, phases = timed(
                        grid_command(name, data_dir, epochs, args.steps_per_epoch, parallel)
                    )
                    after = effective_cores(args.parallel)
                    results.setdefault((epochs, parallel), []).append((seconds, phases, before, after))
                    print(
                        f"{seconds:7.1f} s  {epochs} epochs, parallel {parallel}  (cores {before:.2f}, "
                        f"{after:.2f})",
                        flush=True,
                    )
            loads.append(os.getloadavg()[0])
        finished = sum(1 for _ in Path(data_dir).rglob("status.json"))

    lines = [
        "# Grid launching: serial vs parallel",
        "",
        f"A 3-seed x 2-setting PPO grid on CartPole-v1 (`--hid '[32]' '[64,64]'`, {args.steps_per_epoch} "
        "steps per epoch), timed end to end through the command line (process start-up included), for "
        "two run lengths. Written by `benchmarks/bench_grid.py` "
        f"(`--short_epochs {args.short_epochs} --long_epochs {args.long_epochs} --repeats {args.repeats}`).",
        "",
        "Command (parallel, short runs): "
        f"`{shlex.join(['spinrl', *grid_command('bench', 'DATA', args.short_epochs, args.steps_per_epoch, args.parallel)[1:]])}`"
        "; serial: the same without `--parallel`.",
        "",
        f"Machine: {cpu_model()}, {usable_cores()} usable core(s), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}. Load average (1 min) at the start and after each round: "
        f"{', '.join(f'{x:.1f}' for x in loads)}.",
        "",
        f"*Cores got*: how many cores {args.parallel} CPU-bound processes (a pure-Python loop) actually got "
        f"just before and after that grid ({args.parallel} on an idle machine); other work on a shared "
        "machine takes the rest. *Best possible* is 1 / cores got (the mean of the two), the ratio a "
        f"parallel grid with no start-up cost at all would reach. *Run* is the serial grid's time / {RUNS} "
        "(its start-up shared out). For the parallel grid, *start-up* is the time until the first "
        "variant started (the command line's imports and the zygote's, which overlap), and *wind-down* "
        "the time from the last variant's end to the command's exit. *CPU* is the CPU time the command "
        "and all its processes used in that grid: what the parallel grid pays beyond the serial one "
        "(the zygote's imports, the forks), whatever the load.",
        "",
        f"| runs | grid | wall-clock (s), fastest of {args.repeats} | all (s) | CPU (s) | cores got "
        "(before, after) | vs serial | best possible | start-up, wind-down (s) |",
        "|---|---|---:|---|---:|---|---:|---:|---|",
    ]
    verdicts = []
    for epochs in cases:
        serial = min(r[0] for r in results[(epochs, 1)])
        run = f"{epochs} epochs (~{serial / RUNS:.1f} s)"
        for parallel in (1, args.parallel):
            rows = results[(epochs, parallel)]
            best = min(rows, key=lambda r: r[0])
            seconds, phases, before, after = best
            cores = (before + after) / 2
            grid = "serial, in one process" if parallel == 1 else f"`--parallel {parallel}`"
            ratio = seconds / serial
            allowed = f"{1 / cores:.2f}" if parallel > 1 else ""
            phase_text = ""
            if parallel > 1 and "first start" in phases:
                phase_text = f"{phases['first start']:.1f}, {seconds - phases['last done']:.1f}"
            lines.append(
                f"| {run} | {grid} | {seconds:.1f} | {', '.join(f'{r[0]:.1f}' for r in rows)} "
                f"| {phases['cpu']:.1f} | {before:.2f}, {after:.2f} | {ratio:.2f} | {allowed} | {phase_text} |"
            )
            if parallel > 1:
                verdict = "met" if ratio <= GOAL else "missed"
                verdicts.append(
                    f"{run}: {ratio:.2f}x serial, **{verdict}** (best possible with the {cores:.2f} cores got: "
                    f"{1 / cores:.2f}x; the start-up and wind-down beyond it: {ratio - 1 / cores:+.2f})"
                )
    lines += [
        "",
        f"Goal: parallel <= {GOAL}x serial, for both run lengths (on 2 idle cores the limit is 0.5x).",
        "",
        *[f"- {v}" for v in verdicts],
        "",
        f"Runs written: {finished} of {RUNS * 2 * len(cases) * args.repeats}.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
