"""Speed of two spinrl source trees side by side: did a change (a refactor, say) make training slower?

Each workload is an ordinary call of a public algorithm function (``spinrl.ppo``, ``spinrl.sac``), run in a
fresh Python process with the tree under test first on ``PYTHONPATH``; only the call is timed, not the
imports. The trees take turns, workload by workload and round by round, so that a change in the machine's
load falls on both. Reported: the median env steps per second of each tree and their ratio.

    python benchmarks/compare_trees.py --before /path/to/old/checkout --after . --rounds 3

Writes ``benchmarks/results/<name>.md`` (``--name``, default ``trees-before-after``). Stable-Baselines3 is not
run here: this compares spinrl with itself; bench_onpolicy.py and bench_offpolicy.py hold the comparisons
with SB3.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (algorithm, keyword arguments, env steps the call takes)
WORKLOADS: dict[str, tuple[str, dict, int]] = {
    "PPO CartPole-v1, 1 env copy": (
        "ppo",
        dict(env_fn="CartPole-v1", epochs=5, steps_per_epoch=4000),
        20_000,
    ),
    "PPO CartPole-v1, 8 env copies": (
        "ppo",
        dict(env_fn="CartPole-v1", epochs=5, steps_per_epoch=4000, num_envs=8),
        20_000,
    ),
    "PPO HalfCheetah-v5, 1 env copy": (
        "ppo",
        dict(env_fn="HalfCheetah-v5", epochs=2, steps_per_epoch=4000),
        8_000,
    ),
    "SAC Pendulum-v1 (updates from step 1,000)": (
        "sac",
        dict(
            env_fn="Pendulum-v1",
            epochs=1,
            steps_per_epoch=3000,
            start_steps=1000,
            update_after=1000,
            num_test_episodes=1,
        ),
        3_000,
    ),
}

CHILD = """
import json, sys, time
import spinrl
algo = getattr(spinrl, sys.argv[1])
kwargs = json.loads(sys.argv[2])
kwargs["logger_kwargs"] = dict(output_dir=sys.argv[3], quiet=True)
start = time.perf_counter()
algo(**kwargs)
print(json.dumps(dict(seconds=time.perf_counter() - start, source=spinrl.__file__)))
"""


def time_workload(tree: Path, name: str, work: Path) -> float:
    """Seconds the workload's call took, in a new process importing spinrl from ``tree``."""
    algo, kwargs, _ = WORKLOADS[name]
    out = work / f"{tree.name}-{len(list(work.iterdir()))}"
    env = dict(os.environ, PYTHONPATH=str(tree), SPINRL_NUM_THREADS="1", OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-c", CHILD, algo, json.dumps(kwargs), str(out)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{name} failed in {tree}:\n{result.stderr[-2000:]}")
    reply = json.loads(result.stdout.strip().splitlines()[-1])
    if not reply["source"].startswith(str(tree)):
        raise SystemExit(f"the child imported spinrl from {reply['source']}, not from {tree}")
    return reply["seconds"]


def git_describe(tree: Path) -> str:
    result = subprocess.run(
        ["git", "-C", str(tree), "log", "-1", "--format=%h %s"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip()[:90] or str(tree)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, type=Path, help="the old source tree (a checkout)")
    parser.add_argument("--after", required=True, type=Path, help="the new source tree")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=list(WORKLOADS), help="workload names")
    parser.add_argument("--name", default="trees-before-after", help="results file name, without .md")
    args = parser.parse_args(argv)
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    for label, tree in trees.items():
        if not (tree / "spinrl" / "__init__.py").is_file():
            parser.error(f"--{label} {tree} holds no spinrl package (spinrl/__init__.py)")
    unknown = [w for w in args.only if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload {unknown[0]!r}: choose from {', '.join(map(repr, WORKLOADS))}")

    sys.path.insert(0, str(HERE))
    from mujoco_runs import machine  # the benchmarks' description of this machine

    before_machine = machine()
    seconds: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for r in range(args.rounds):
            for name in args.only:
                order = ("before", "after") if r % 2 == 0 else ("after", "before")
                for label in order:
                    t = time_workload(trees[label], name, work)
                    seconds.setdefault((label, name), []).append(t)
                    print(f"round {r + 1} {label:6s} {name}: {t:.2f} s", flush=True)
    after_machine = machine()

    only = "" if args.only == list(WORKLOADS) else " --only " + " ".join(f"'{w}'" for w in args.only)
    lines = [
        "# Two spinrl trees side by side: env steps per second",
        "",
        f"- Command: `python benchmarks/compare_trees.py --before {args.before} --after {args.after} "
        f"--rounds {args.rounds}{only}`",
        f"- Before: `{git_describe(trees['before'])}`",
        f"- After: `{git_describe(trees['after'])}`",
        f"- Machine: {before_machine['cpu']}, {before_machine['cores']} cores, torch {before_machine['torch']}, "
        f"Python {before_machine['python']}, {before_machine['date']}",
        f"- Load average (1, 5, 15 min) before and after: {before_machine['load']}, {after_machine['load']}",
        "- Each call in a fresh process, one torch thread; only the algorithm call is timed. The trees take",
        "  turns (the order alternates each round); the median of the rounds is shown.",
        "",
        "| workload | env steps | before (steps/s) | after (steps/s) | after / before |",
        "|---|---|---|---|---|",
    ]
    for name in args.only:
        steps = WORKLOADS[name][2]
        rate = {label: steps / statistics.median(seconds[(label, name)]) for label in trees}
        lines.append(
            f"| {name} | {steps:,} | {rate['before']:,.0f} | {rate['after']:,.0f} | "
            f"{rate['after'] / rate['before']:.2f} |"
        )
    lines += ["", "Every round's seconds (before; after):", ""]
    for name in args.only:
        b = ", ".join(f"{t:.2f}" for t in seconds[("before", name)])
        a = ", ".join(f"{t:.2f}" for t in seconds[("after", name)])
        lines.append(f"- {name}: {b}; {a}")
    out = HERE / "results" / f"{args.name}.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
