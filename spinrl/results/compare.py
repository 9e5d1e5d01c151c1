"""``spinrl compare``: final performance per algorithm and env, with honest uncertainty.

    spinrl compare data/ppo-bench data/vpg-bench [--save compare.png]

For every env, and for every algorithm with runs on it, the table gives the mean, median, interquartile
mean (IQM) and optimality gap of the runs' final returns, each with a 95% stratified-bootstrap confidence
interval; then the probability that one algorithm improves on another. These are the recommendations of
Agarwal et al., 2021, "Deep Reinforcement Learning at the Edge of the Statistical Precipice" (NeurIPS),
https://arxiv.org/abs/2108.13264 :

- IQM: the mean of the middle 50% of runs (sorted, the lowest and highest 25% dropped) -- robust to
  outlier runs like the median, yet uses more runs, so its interval is tighter.
- Optimality gap: how far runs fall short of a target score on average, ``mean(max(0, target - score))``;
  runs above the target earn nothing extra. The target is ``--target``, else the env's Gymnasium
  ``reward_threshold`` (the score at which it counts as solved), else the best final score of any run.
- Probability of improvement ``P(X > Y)``: the chance that a run of X beats a run of Y on the same env
  (ties count half; the Mann-Whitney U statistic over ``len(x) * len(y)``), averaged over envs.
- Stratified bootstrap: resample runs with replacement within each env, independently, recompute the
  statistic, and take the 2.5th and 97.5th percentiles over the resamples.

With several envs a last block aggregates each algorithm over all of them, on scores normalised per env
(0 = the worst final score of any run on that env, 1 = the target).

A run that cannot be scored (files that cannot be read, no finished epoch, no finite final value of
the column) is left out with one warning line on stderr naming it and why.

The definitions follow the paper's library, rliable (https://github.com/google-research/rliable); it is
not used directly because its dependency ``arch`` fails to import with current pandas.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np

from spinrl.common.errors import UserError
from spinrl.results.ls import format_table
from spinrl.results.plot import FORMATS, collect_runs, keep_runs_with
from spinrl.results.runs import final_value, performance_column, warn

BOOTSTRAP_REPS = 2000
LEVEL = 0.95


# ----- the statistics (Agarwal et al., 2021, Section 4; rliable's `metrics` module) ----------------------
def interquartile_mean(scores: np.ndarray) -> float:
    """Mean of the middle 50%: sort, drop ``floor(n/4)`` runs at each end (as scipy.stats.trim_mean(x, 0.25))."""
    scores = np.sort(np.ravel(scores))
    cut = int(0.25 * len(scores))
    return float(scores[cut : len(scores) - cut].mean())


def optimality_gap(scores: np.ndarray, target: float = 1.0) -> float:
    """Average shortfall below ``target``: ``target - mean(min(score, target))``."""
    return float(target - np.minimum(np.ravel(scores), target).mean())


def probability_of_improvement(x_per_task: list[np.ndarray], y_per_task: list[np.ndarray]) -> float:
    """P(X > Y): per task, the fraction of (x, y) run pairs where x wins (ties count half); averaged over tasks."""
    per_task = []
    for x, y in zip(x_per_task, y_per_task):
        wins = (x[:, None] > y[None, :]).sum() + 0.5 * (x[:, None] == y[None, :]).sum()
        per_task.append(wins / (len(x) * len(y)))
    return float(np.mean(per_task))


def stratified_bootstrap_ci(
    statistic: Callable[..., float],
    *score_sets: list[np.ndarray],
    reps: int = BOOTSTRAP_REPS,
    level: float = LEVEL,
    seed: int = 0,
) -> tuple[float, float, float]:
    """The statistic and its percentile-bootstrap interval, resampling runs within each task.

    Each score set is a list with one array of run scores per task (env); ``statistic`` takes the
    score sets and returns a number. Every task's runs are resampled with replacement independently,
    so each resample keeps every task and its number of runs.
    """
    point = statistic(*score_sets)
    rng = np.random.default_rng(seed)
    boot = np.empty(reps)
    for b in range(reps):
        resampled = [[t[rng.integers(0, len(t), len(t))] for t in tasks] for tasks in score_sets]
        boot[b] = statistic(*resampled)
    alpha = (1 - level) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha])
    return point, float(low), float(high)


def aggregate_metrics(target: float) -> dict[str, Callable[[list[np.ndarray]], float]]:
    """The four aggregate metrics over all runs of all tasks, as functions of per-task score lists."""
    return {
        "mean": lambda tasks: float(np.concatenate(tasks).mean()),
        "median": lambda tasks: float(np.median(np.concatenate(tasks))),
        "IQM": lambda tasks: interquartile_mean(np.concatenate(tasks)),
        "optimality gap": lambda tasks: optimality_gap(np.concatenate(tasks), target),
    }


# ----- from runs to scores ----------------------------------------------------------------------------
def env_target(
    env: str, scores: np.ndarray, targets: dict[str, float], default: float | None
) -> tuple[float, str]:
    """The optimality-gap target of an env and where it came from."""
    if env in targets:
        return targets[env], "--target"
    if default is not None:
        return default, "--target"
    try:
        import gymnasium as gym

        threshold = gym.spec(env).reward_threshold
    except Exception:  # not a registered id (or gymnasium missing): fall back to the data
        threshold = None
    if threshold is not None:
        return float(threshold), "reward threshold"
    return float(scores.max()), "best run"


def parse_targets(items: list[str]) -> tuple[dict[str, float], float | None]:
    """``--target 475`` (every env) or ``--target CartPole-v1=475 Acrobot-v1=-100``."""
    per_env: dict[str, float] = {}
    default = None
    for item in items:
        env, _, value = item.rpartition("=")
        try:
            number = float(value)
        except ValueError:
            raise UserError(f"--target {item!r} is not valid: give a number or ENV=NUMBER") from None
        if env:
            per_env[env] = number
        else:
            default = number
    return per_env, default


def fmt_ci(point: float, low: float, high: float) -> str:
    return f"{point:.4g} [{low:.4g}, {high:.4g}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spinrl compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("logdir", nargs="+", help="experiment folders (or folder-name prefixes), as for plot")
    parser.add_argument(
        "--legend", "-l", nargs="*", help="an algorithm name per matched folder (default: algo)"
    )
    parser.add_argument(
        "--value", "-y", default="Performance", help="progress.txt column (default Performance)"
    )
    parser.add_argument(
        "--last", type=int, default=1, help="average the value over the last N epochs (default 1)"
    )
    parser.add_argument(
        "--target", nargs="*", default=[], help="optimality-gap target: NUMBER or ENV=NUMBER ..."
    )
    parser.add_argument("--select", nargs="*", help="keep runs whose path contains all of these")
    parser.add_argument("--exclude", nargs="*", help="drop runs whose path contains any of these")
    parser.add_argument("--reps", type=int, default=BOOTSTRAP_REPS, help="bootstrap resamples (default 2000)")
    parser.add_argument("--save", help="also draw the intervals to this file (.png, .svg or .pdf)")
    args = parser.parse_args(argv)
    if args.last < 1:
        raise UserError(f"--last {args.last} is not valid: give 1 or more epochs")
    if args.reps < 100:
        raise UserError(f"--reps {args.reps} is too few for a 95% interval: give 100 or more (default 2000)")
    if args.save and not args.save.lower().endswith(FORMATS):
        raise UserError(f"--save {args.save}: the file must end in {', '.join(FORMATS)}")
    targets, default_target = parse_targets(args.target)

    # scores[env][algo]: final values of that algorithm's runs on that env.
    scores: dict[str, dict[str, list[float]]] = {}
    columns_used: set[str] = set()
    labelled = collect_runs(args.logdir, args.legend, args.select, args.exclude)
    for label, run in keep_runs_with(labelled, [args.value]):  # a misspelt column fails here
        column = performance_column(run.progress) if args.value == "Performance" else args.value
        value = final_value(run.progress, column, args.last)
        algo = label if args.legend else (run.algo if run.algo != "?" else run.exp_name)
        if not np.isfinite(value):
            warn(f"skipping {run.path}: no finite {column} in its last {args.last} epoch(s)")
            continue
        columns_used.add(str(column))
        scores.setdefault(run.env, {}).setdefault(algo, []).append(value)
    if not scores:
        raise UserError(f"no run under {', '.join(args.logdir)} has a finite {args.value}")

    print(
        f"Final {' / '.join(sorted(columns_used))} (mean of the last {args.last} epoch(s) per run); "
        f"[{LEVEL:.0%} stratified-bootstrap interval, {args.reps} resamples]. Agarwal et al., 2021.\n"
    )
    normalised: dict[
        str, dict[str, np.ndarray]
    ] = {}  # algo -> env -> scores in [worst run, target] -> [0, 1]
    intervals: dict[str, dict[str, dict[str, tuple[float, float, float]]]] = {}  # env -> algo -> metric
    for env in sorted(scores):
        all_runs = np.concatenate([np.asarray(v) for v in scores[env].values()])
        target, source = env_target(env, all_runs, targets, default_target)
        worst = all_runs.min()
        rows = []
        for algo in sorted(scores[env]):
            runs = np.asarray(scores[env][algo])
            found = {
                name: stratified_bootstrap_ci(fn, [runs], reps=args.reps)
                for name, fn in aggregate_metrics(target).items()
            }
            intervals.setdefault(env, {})[algo] = found
            rows.append([algo, str(len(runs)), *(fmt_ci(*v) for v in found.values())])
            normalised.setdefault(algo, {})[env] = (runs - worst) / (
                target - worst if target > worst else 1.0
            )
        print(f"{env}: optimality gap to {target:g} ({source})")
        print(format_table(["algo", "runs", *aggregate_metrics(target)], rows, right_aligned={"runs"}) + "\n")

    envs = sorted(scores)
    if len(envs) > 1:
        complete = [a for a in sorted(normalised) if set(normalised[a]) == set(envs)]
        rows = []
        for algo in complete:
            tasks = [normalised[algo][env] for env in envs]
            found = {
                name: stratified_bootstrap_ci(fn, tasks, reps=args.reps)
                for name, fn in aggregate_metrics(1.0).items()
            }
            intervals.setdefault("all", {})[algo] = found
            rows.append([algo, str(sum(len(t) for t in tasks)), *(fmt_ci(*v) for v in found.values())])
        print(
            f"All {len(envs)} envs, normalised per env (0 = worst run, 1 = target)"
            + ("" if len(complete) == len(normalised) else "; only algorithms with runs on every env")
        )
        print(format_table(["algo", "runs", *aggregate_metrics(1.0)], rows, right_aligned={"runs"}) + "\n")

    algos = sorted(normalised)
    pairs = [(x, y) for i, x in enumerate(algos) for y in algos[i + 1 :]]
    if pairs:
        rows = []
        for x, y in pairs:
            shared = [env for env in envs if x in scores[env] and y in scores[env]]
            if not shared:
                continue
            xs = [np.asarray(scores[env][x]) for env in shared]
            ys = [np.asarray(scores[env][y]) for env in shared]
            p = stratified_bootstrap_ci(probability_of_improvement, xs, ys, reps=args.reps)
            rows.append([f"P({x} > {y})", fmt_ci(*p), str(len(shared))])
        print("Probability of improvement")
        print(format_table(["", "probability", "envs"], rows, right_aligned={"envs"}))

    if args.save:
        if len(envs) > 1:
            save_interval_figure(intervals.get("all", {}), args.save, "score normalised per env")
        else:
            save_interval_figure(intervals[envs[0]], args.save, f"{envs[0]}: final {args.value}")
    return 0


def save_interval_figure(
    intervals: dict[str, dict[str, tuple[float, float, float]]], path: str, xlabel: str
) -> None:
    """rliable's interval plot: one panel per metric, one row per algorithm, a bar for the interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not intervals:
        raise UserError("nothing to draw: no algorithm has runs on every env (use --select to pick envs)")
    algos = list(intervals)
    metrics = list(next(iter(intervals.values())))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(3.2 * len(metrics), 0.5 * len(algos) + 1.4), squeeze=False
    )
    for ax, metric in zip(axes[0], metrics):
        for i, algo in enumerate(algos):
            point, low, high = intervals[algo][metric]
            color = colors[i % len(colors)]
            ax.barh(i, high - low, left=low, height=0.6, color=color, alpha=0.6)
            ax.vlines(point, i - 0.3, i + 0.3, color="black", linewidth=1.5)
        ax.set_yticks(range(len(algos)), algos if ax is axes[0][0] else [""] * len(algos))
        ax.tick_params(axis="y", length=0)
        ax.set_title(metric)
        ax.set_xlabel(xlabel, fontsize="small")
        ax.grid(True, axis="x", alpha=0.3)
        ax.spines[["top", "right", "left"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    print(f"saved {path}")


if __name__ == "__main__":
    import sys

    from spinrl.common.errors import run_main_guarded

    sys.exit(run_main_guarded(main))
