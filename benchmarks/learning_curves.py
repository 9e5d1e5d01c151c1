"""Learning curves for the docs: each of the seven algorithms, three seeds, on a small task.

    .venv/bin/python benchmarks/learning_curves.py                 # all seven (about 20 minutes on 2 cores)
    .venv/bin/python benchmarks/learning_curves.py --algos ppo sac # only these

Every run trains through the public Python API (``from spinrl import ppo``) into a temporary folder, with
budgets small enough for a laptop: CartPole-v1 for vpg, trpo, ppo and dqn, Pendulum-v1 for ddpg, td3 and
sac. The settings of each algorithm are in ``RUNS`` below; anything not named there is the function's
default. These are quick demonstrations that each algorithm learns, not tuned benchmarks.

For each algorithm it writes ``benchmarks/results/curves/<algo>.csv``: one row per epoch with the number
of environment steps, and the mean, minimum and maximum over the seeds of the return (the training
episodes' ``AverageEpRet`` for the on-policy algorithms, the deterministic test episodes'
``AverageTestEpRet`` for the off-policy ones). ``docs/figures/make_figures.py`` draws the figure from
these files; it never trains anything itself.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CURVES = ROOT / "benchmarks" / "results" / "curves"
SEEDS = (0, 1, 2)

import spinrl  # noqa: E402
from spinrl.results.runs import read_progress  # noqa: E402

# Off-policy runs on Pendulum share these: 1000 random steps to fill the buffer, smaller networks than the
# defaults (faster updates on a CPU), five test episodes after every 1000-step epoch.
_PENDULUM = dict(
    steps_per_epoch=1000,
    epochs=12,
    start_steps=1000,
    update_after=500,
    num_test_episodes=5,
    ac_kwargs=dict(hidden_sizes=(64, 64)),
)

# algo -> (environment, the column plotted, keyword arguments of the algorithm function)
RUNS: dict[str, tuple[str, str, dict]] = {
    "vpg": ("CartPole-v1", "AverageEpRet", dict(steps_per_epoch=2000, epochs=25, pi_lr=1e-2, num_envs=4)),
    "trpo": ("CartPole-v1", "AverageEpRet", dict(steps_per_epoch=2000, epochs=25, delta=0.02, num_envs=4)),
    "ppo": ("CartPole-v1", "AverageEpRet", dict(steps_per_epoch=2000, epochs=25, pi_lr=1e-3, num_envs=4)),
    "dqn": (
        "CartPole-v1",
        "AverageTestEpRet",
        dict(
            steps_per_epoch=2000,
            epochs=15,
            start_steps=1000,
            update_after=1000,
            epsilon_decay_steps=5000,
            num_test_episodes=5,
            q_lr=1e-3,
            ac_kwargs=dict(hidden_sizes=(64, 64)),
        ),
    ),
    "ddpg": ("Pendulum-v1", "AverageTestEpRet", dict(_PENDULUM)),
    "td3": ("Pendulum-v1", "AverageTestEpRet", dict(_PENDULUM)),
    "sac": ("Pendulum-v1", "AverageTestEpRet", dict(_PENDULUM)),
}


def train(algo: str, seed: int, out_dir: Path) -> dict[str, np.ndarray]:
    """One run of ``algo`` with ``seed`` into ``out_dir``; returns its progress.txt columns."""
    env_id, _, kwargs = RUNS[algo]
    logger_kwargs = dict(output_dir=str(out_dir), exp_name=f"{algo}_curve", quiet=True, tensorboard=False)
    getattr(spinrl, algo)(env_id, seed=seed, device="cpu", logger_kwargs=logger_kwargs, **kwargs)
    return read_progress(out_dir / "progress.txt")


def curve(algo: str, workdir: Path) -> Path:
    """Train every seed of ``algo`` and write the per-epoch mean, min and max over seeds as a CSV."""
    env_id, column, _ = RUNS[algo]
    steps, values = None, []
    for seed in SEEDS:
        start = time.time()
        progress = train(algo, seed, workdir / f"{algo}_s{seed}")
        print(
            f"{algo} seed {seed}: {time.time() - start:.0f} s, final {column} {progress[column][-1]:.1f}",
            flush=True,
        )
        steps = progress["TotalEnvInteracts"]
        values.append(progress[column])
    runs = np.stack(values)  # (seeds, epochs)
    CURVES.mkdir(parents=True, exist_ok=True)
    path = CURVES / f"{algo}.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["algo", "env", "value", "epoch", "env_steps", "mean", "min", "max", "seeds"])
        for epoch in range(runs.shape[1]):
            column_values = runs[:, epoch]
            writer.writerow(
                [
                    algo,
                    env_id,
                    column,
                    epoch,
                    int(steps[epoch]),
                    f"{column_values.mean():.2f}",
                    f"{column_values.min():.2f}",
                    f"{column_values.max():.2f}",
                    len(SEEDS),
                ]
            )
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="+", choices=list(RUNS), default=list(RUNS), help="which algorithms")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="spinrl-curves-") as tmp:
        for algo in args.algos:
            print(f"wrote {curve(algo, Path(tmp)).relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
