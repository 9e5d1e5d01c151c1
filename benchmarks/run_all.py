"""``make bench``: every benchmark, one after another, each writing its table to benchmarks/results/.

.venv/bin/python benchmarks/run_all.py            # full runs (long: an hour or more on 2 cores)
.venv/bin/python benchmarks/run_all.py --quick    # small budgets, one seed (a few minutes each)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# learning_curves.py trains all seven algorithms (3 seeds each) for the learning-curve figure in the docs.
# bench_atari_memory.py measures replay-buffer memory for Atari frames against SB3's buffers; bench_atari.py
# env stepping and DQN/PPO training speed on Pong against SB3; bench_ppo_speed.py PPO's wall-clock on MuJoCo
# against SB3 with RL Zoo's settings. The MuJoCo learning campaign (bench_mujoco.py, hours) runs on its own.
SCRIPTS = [
    "bench_onpolicy.py",
    "bench_offpolicy.py",
    "bench_atari.py",
    "bench_grid.py",
    "bench_atari_memory.py",
    "learning_curves.py",
    "bench_ppo_speed.py",
]
TAKES_QUICK = {"bench_onpolicy.py", "bench_offpolicy.py", "bench_atari.py"}  # the others are small already


def main() -> int:
    extra = sys.argv[1:]
    failed = []
    for script in SCRIPTS:
        path = HERE / script
        if not path.exists():
            continue
        args = extra if script in TAKES_QUICK else [a for a in extra if a != "--quick"]
        print(f"=== {script} {' '.join(args)}", flush=True)
        if subprocess.call([sys.executable, str(path), *args]) != 0:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"tables written to {HERE / 'results'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
