"""Where a SAC update's time goes, eager and with ``--compile``, on this machine's CPU.

    .venv/bin/python benchmarks/profile_compile.py            # about two minutes on 2 cores

Runs spinrl's own ``sac()`` (not a copy of it) in the equal configuration of bench_offpolicy.py
(Pendulum-v1, 256x256 networks, batch 256, one update per env step, lr 3e-4), once eager and once
with ``compile=True``, and profiles ``--updates`` of its updates after a warm-up with
``torch.profiler`` (paused between updates); TorchInductor's kernels are named in the profile
(``cpp.enable_kernel_profile``).
The self time of every operator is put in one of four groups: matrix products, TorchInductor's
generated C++ kernels, other ATen kernels, and the rest (autograd, optimiser and Python overhead).
A second table times the kernel that the compiled backward pass needs for every ReLU: the mask
``x <= 0``. Writes benchmarks/results/profile-compile.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_onpolicy import machine  # noqa: E402

import spinrl.algos.sac as sac_module  # noqa: E402

MATMULS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}


def group_of(name: str) -> str:
    if name in MATMULS:
        return "matrix products (oneDNN/MKL)"
    if name.startswith("graph_"):
        return "TorchInductor's generated C++ kernels"
    if name.startswith("aten::"):
        return "other ATen kernels (element-wise, reductions, copies)"
    return "autograd engine, optimiser, dispatch and Python"


class ProfiledWindow:
    """Wraps an update: ``warmup`` calls untimed, then ``count`` calls under torch.profiler, which
    pauses between them (acting, the env step and sampling the batch are left out)."""

    def __init__(self, update, warmup: int, count: int) -> None:
        self.update, self.warmup, self.count, self.calls = update, warmup, count, 0
        self.cpu = [torch.profiler.ProfilerActivity.CPU]
        self.profiler = torch.profiler.profile(activities=self.cpu)
        self.wall = 0.0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if not self.warmup < self.calls <= self.warmup + self.count:
            return self.update(*args, **kwargs)
        if self.calls == self.warmup + 1:
            self.profiler.__enter__()
        else:
            self.profiler.toggle_collection_dynamic(True, self.cpu)
        start = time.perf_counter()
        self.update(*args, **kwargs)
        self.wall += time.perf_counter() - start
        if self.calls == self.warmup + self.count:
            self.profiler.__exit__(None, None, None)
        else:
            self.profiler.toggle_collection_dynamic(False, self.cpu)
        return None


def profile_sac(compile: bool, updates: int) -> tuple[dict[str, float], list[tuple[str, float]], float]:
    real, windows = sac_module.compile_update, []

    def wrapped(*args, **kwargs):
        windows.append(ProfiledWindow(real(*args, **kwargs), warmup=50, count=updates))
        return windows[-1]

    sac_module.compile_update = wrapped
    try:
        sac_module.sac(
            "Pendulum-v1", seed=0, steps_per_epoch=1100 + updates, epochs=1, start_steps=1000, update_after=1000,
            update_every=1, batch_size=256, lr=3e-4, num_test_episodes=1, device="cpu", compile=compile,
            logger_kwargs=dict(output_dir=tempfile.mkdtemp(prefix="profile-compile-"), quiet=True),
        )  # fmt: skip
    finally:
        sac_module.compile_update = real
    window = windows[0]
    groups: dict[str, float] = defaultdict(float)
    top = []
    for event in window.profiler.key_averages():
        seconds = event.self_cpu_time_total / 1e6
        groups[group_of(event.key)] += seconds
        top.append((event.key, seconds))
    covered = sum(groups.values())
    # What the profiler's operators leave uncovered is Python between them.
    groups["autograd engine, optimiser, dispatch and Python"] += max(0.0, window.wall - covered)
    per_update = {k: v / updates * 1e3 for k, v in groups.items()}
    top = sorted(((k, v / updates * 1e3) for k, v in top), key=lambda kv: -kv[1])[:8]
    return per_update, top, window.wall / updates * 1e3


def mask_kernel_micro() -> list[str]:
    """``x <= 0`` and ``relu(x)`` on a (2, 256, 256) tensor (the twin critics' hidden layer), eager and
    compiled, in microseconds per call."""
    x = torch.randn(2, 256, 256)
    rows = []
    for label, fn in (
        ("relu(x)", torch.relu),
        ("x <= 0 (the ReLU mask the backward pass keeps)", lambda x: x <= 0),
    ):
        compiled = torch.compile(fn)
        times = []
        for f in (fn, compiled):
            for _ in range(5):
                f(x)
            best = float("inf")
            for _ in range(5):
                start = time.perf_counter()
                for _ in range(100):
                    f(x)
                best = min(best, (time.perf_counter() - start) / 100 * 1e6)
            times.append(best)
        rows.append(f"| {label} | {times[0]:.0f} | {times[1]:.0f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=200, help="updates profiled in each mode")
    parser.add_argument("--out", default="profile-compile.md", help="file name under benchmarks/results/")
    args = parser.parse_args()
    os.environ.setdefault("SPINRL_NUM_THREADS", "1")
    torch._inductor.config.cpp.enable_kernel_profile = True
    load_before = os.getloadavg()
    # Eager and compiled take turns, twice: on a shared machine the load drifts between runs, and the
    # pairs show how much. The second compiled run finds its code compiled already.
    runs = [profile_sac(compile, args.updates) for compile in (False, True, False, True)]
    micro = mask_kernel_micro()
    load_after = os.getloadavg()
    names = [
        "matrix products (oneDNN/MKL)",
        "TorchInductor's generated C++ kernels",
        "other ATen kernels (element-wise, reductions, copies)",
        "autograd engine, optimiser, dispatch and Python",
    ]
    out = [
        "# SAC's update on the CPU, eager and with --compile",
        "",
        f"- Command: `python {' '.join(sys.argv)}`",
        f"- Machine: {machine()}; {len(os.sched_getaffinity(0))} usable cores; one torch thread",
        f"- Load average (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in load_before)} before, "
        f"{', '.join(f'{x:.1f}' for x in load_after)} after (a shared machine: compare the columns, "
        "not the absolute figures, with other files)",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        f"spinrl's `sac()`, Pendulum-v1, 256x256 networks, batch 256, one update per env step; {args.updates} "
        "updates profiled after 50 untimed ones (and after compiling). Milliseconds per update, by operator "
        "self time; the last row also holds the wall-clock the profiler's operators leave uncovered.",
        "",
        "| where the time goes | eager ms | --compile ms | eager ms (again) | --compile ms (again) |",
        "|---|---|---|---|---|",
        *(f"| {n} | " + " | ".join(f"{r[0].get(n, 0.0):.2f}" for r in runs) + " |" for n in names),
        "| **update, wall-clock (under the profiler)** | "
        + " | ".join(f"**{r[2]:.2f}**" for r in runs)
        + " |",
        "",
        "Largest operators in the first pair (ms per update):",
        "",
        "| eager | ms | --compile | ms |",
        "|---|---|---|---|",
        *(
            f"| `{a[0][:60]}` | {a[1]:.2f} | `{b[0][:60]}` | {b[1]:.2f} |"
            for a, b in zip(runs[0][1], runs[1][1])
        ),
        "",
        "## One kernel in microseconds: (2, 256, 256) float32",
        "",
        "| kernel | eager us | compiled us |",
        "|---|---|---|",
        *micro,
        "",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / args.out
    path.write_text("\n".join(out) + "\n")
    print("\n".join(out))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
