"""The MuJoCo campaign's results file (benchmarks/results/mujoco.md) and learning-curve figures, from the runs on disk."""

from __future__ import annotations

import shlex
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spinrl.common.errors import UserError  # noqa: E402
from spinrl.record.folder import write_text_atomically  # noqa: E402
from spinrl.record.status import FINISHED, RUNNING  # noqa: E402
from spinrl.results.runs import final_value, read_progress, read_status, run_state  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from mujoco_runs import (  # noqa: E402
    EVAL_EPISODES,
    EVAL_SEED,
    FINAL_EPOCHS,
    MANIFEST,
    MUJOCO_ENVS,
    OFF_POLICY,
    ON_POLICY,
    SB3_LOG_EVERY,
    SB3_SETTINGS,
    Run,
    busy,
    epochs_needed,
    evaluation,
    expand,
    machine,
    read_json,
    run_config,
    split_sb3_name,
    trained,
)

NOTES_FILE = "mujoco-notes.md"  # beside mujoco.md; its text goes into the report as it is


# ----- reading the results ------------------------------------------------------------------------------------
@dataclass
class Result:
    """What the report needs of one run folder."""

    run: Run
    folder: Path
    state: str
    epochs_done: int
    epochs_needed: int
    progress: dict[str, np.ndarray]
    final: float  # mean of the last FINAL_EPOCHS epochs' AverageEpRet
    evaluation: float | None
    seconds: float  # training wall-clock (the Time column of the last row)
    trained: bool  # finished its budget
    done: bool  # trained and evaluated


def discover(data: Path) -> list[Run]:
    """Run folders of the campaign's layout found in DATA, whoever started them."""
    found = []
    for folder in sorted(data.glob("*/*_s*")):
        name, seed = folder.name.rsplit("_s", 1)
        if name != folder.parent.name or not seed.isdigit() or not (folder / "config.json").exists():
            continue
        config = run_config(folder)
        if name.startswith("sb3-"):
            algo, settings, env = split_sb3_name(name)
            if settings is None:  # a folder of an older campaign: bench_mujoco.py renames those first
                continue
            steps = config.get("steps")
            run = Run(f"sb3-{algo}", settings, env, int(seed), int(steps or 0))
        else:
            parts = name.split("-", 2)
            if len(parts) != 3 or parts[0] not in ON_POLICY + OFF_POLICY:
                continue
            spe, epochs = config.get("steps_per_epoch"), config.get("epochs")
            # The budget asked for, as a campaign names it: 489 epochs of 2048 steps were asked as 1M.
            steps = (
                int(float(f"{spe * epochs:.2g}")) if isinstance(spe, int) and isinstance(epochs, int) else 0
            )
            run = Run(parts[0], parts[1], parts[2], int(seed), steps)
        if run.steps:
            found.append(run)
    return found


def read_result(run: Run, data: Path) -> Result:
    folder = run.folder(data)
    try:
        progress = read_progress(folder / "progress.txt")
    except (OSError, UserError):
        progress = {}
    status = read_status(folder) or {}
    state = run_state(status) if status else ("not started" if not folder.exists() else "unknown")
    if busy(folder) is not None:
        state = RUNNING
    ev = evaluation(folder)
    is_trained = trained(run, folder)
    times = progress.get("Time", np.array([]))
    return Result(
        run=run, folder=folder, state=state, epochs_done=int(status.get("epoch", 0) or 0),
        epochs_needed=epochs_needed(run, folder), progress=progress,
        final=final_value(progress, "AverageEpRet", FINAL_EPOCHS), evaluation=ev["mean"] if ev else None,
        seconds=float(times[-1]) if len(times) else float("nan"), trained=is_trained,
        done=is_trained and ev is not None,
    )  # fmt: skip


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value) over seeds."""
    x = np.asarray(values, dtype=float)
    return float(x.mean()), float(x.std(ddof=1)) if len(x) > 1 else 0.0


def env_order(env: str) -> tuple[int, str]:
    """The published tables' order (Hopper, HalfCheetah, Walker2d, Ant), then any other env by name."""
    names = [m.split("-")[0] for m in MUJOCO_ENVS]
    base = env.split("-")[0]
    return (names.index(base) if base in names else len(names), env)


def group_results(results: list[Result]) -> dict[tuple[str, str, str, int], list[Result]]:
    """Results by (env, algo, preset, budget), in the order the tables list them."""
    groups: dict[tuple[str, str, str, int], list[Result]] = {}
    order = ON_POLICY + OFF_POLICY
    for r in sorted(
        results,
        key=lambda r: (
            env_order(r.run.env),
            r.run.sb3,
            order.index(r.run.algo.removeprefix("sb3-")),
            r.run.preset,
            -r.run.steps,
            r.run.seed,
        ),
    ):
        groups.setdefault((r.run.env, r.run.algo, r.run.preset, r.run.steps), []).append(r)
    return groups


# ----- the report ---------------------------------------------------------------------------------------------
# Published mean final returns at 1M steps (the anchors table), checked at each source:
# RL Zoo benchmark.md (one run, deterministic evaluation, -v3); CleanRL's docs (3 seeds, -v4; SAC's page lists
# its figures for -v2); Tianshou examples/mujoco/README.md (10 seeds, best of the seed-mean test curve, -v3);
# Spinning Up's benchmark page (10 seeds, read off its plots, -v3).
SOURCES = {
    "RL Zoo": "[RL Zoo](https://github.com/DLR-RM/rl-baselines3-zoo/blob/master/benchmark.md): one run each, "
    "deterministic evaluation of the final agent, -v3 envs",
    "CleanRL": "[CleanRL](https://docs.cleanrl.dev/rl-algorithms/ppo/) (its PPO, SAC and TD3 pages): 3 seeds, "
    "-v4 envs (its SAC page lists -v2)",
    "Tianshou": "[Tianshou](https://github.com/thu-ml/tianshou/blob/master/examples/mujoco/README.md): 10 seeds, "
    "best value of the seed-mean test curve, -v3 envs",
    "Spinning Up": "[Spinning Up](https://spinningup.openai.com/en/latest/spinningup/bench.html): 10 seeds, "
    "read off its plots (approximate), -v3 envs; VPG from its PyTorch plots, TRPO from its TensorFlow ones",
}
ANCHORS: dict[tuple[str, str], dict[str, float | None]] = {
    ("ppo", "Hopper"): {"RL Zoo": 2410, "CleanRL": 2383, "Tianshou": 2609, "Spinning Up": 1850},
    ("ppo", "HalfCheetah"): {"RL Zoo": 5819, "CleanRL": 1443, "Tianshou": 5784, "Spinning Up": 1670},
    ("ppo", "Walker2d"): {"RL Zoo": 3479, "CleanRL": 2288, "Tianshou": 3589, "Spinning Up": 1230},
    ("ppo", "Ant"): {"RL Zoo": 1327, "CleanRL": None, "Tianshou": 3258, "Spinning Up": 650},
    ("sac", "Hopper"): {"RL Zoo": 2326, "CleanRL": 2310, "Spinning Up": 3150},
    ("sac", "HalfCheetah"): {"RL Zoo": 9535, "CleanRL": 9635, "Spinning Up": 11520},
    ("sac", "Walker2d"): {"RL Zoo": 3863, "CleanRL": 3591, "Spinning Up": 4250},
    ("sac", "Ant"): {"RL Zoo": 4616, "CleanRL": None, "Spinning Up": 3980},
    ("td3", "Hopper"): {"RL Zoo": 3606, "CleanRL": 3135, "Spinning Up": 2860},
    ("td3", "HalfCheetah"): {"RL Zoo": 9656, "CleanRL": 9583, "Spinning Up": 9750},
    ("td3", "Walker2d"): {"RL Zoo": 4718, "CleanRL": 4058, "Spinning Up": 4000},
    ("td3", "Ant"): {"RL Zoo": 5813, "CleanRL": None, "Spinning Up": 3800},
    # VPG from the PyTorch plots, TRPO from the TensorFlow ones (Spinning Up has no PyTorch TRPO): each curve
    # read at 1M steps from the plot's SVG (docs/images/plots/{pyt,tf1}/*_performance.svg in its repository),
    # the pixel coordinates mapped to values through the axes' tick marks.
    ("vpg", "Hopper"): {"Spinning Up": 390},
    ("vpg", "HalfCheetah"): {"Spinning Up": -50},
    ("vpg", "Walker2d"): {"Spinning Up": 290},
    ("vpg", "Ant"): {"Spinning Up": -30},
    ("trpo", "Hopper"): {"Spinning Up": 1160},
    ("trpo", "HalfCheetah"): {"Spinning Up": 720},
    ("trpo", "Walker2d"): {"Spinning Up": 560},
    ("trpo", "Ant"): {"Spinning Up": 85},
}
APPROXIMATE = {"Spinning Up"}  # figures read off plots


def num(x: float | None, spec: str = ",.0f") -> str:
    return "–" if x is None or not np.isfinite(x) else format(x, spec)


def pm(values: list[float]) -> str:
    if not values:
        return "–"
    mean, std = mean_std(values)
    return f"{mean:,.0f} ± {std:,.0f}" if len(values) > 1 else f"{mean:,.0f}"


def budget(steps: int) -> str:
    return f"{steps / 1e6:g}M" if steps >= 1_000_000 else f"{steps / 1e3:g}k"


def label(algo: str, preset: str) -> str:
    if algo.startswith("sb3-"):
        return f"SB3 {algo[4:].upper()} ({'RL Zoo' if preset == 'rl-zoo' else 'defaults'})"
    return f"spinrl {algo.upper()} {preset}"


def duration(seconds: list[float]) -> str:
    """Mean wall-clock over seeds and its range, in seconds below two minutes, else in minutes."""
    x = [s for s in seconds if np.isfinite(s)]
    if not x:
        return "–"
    unit, scale = ("s", 1) if max(x) < 120 else ("min", 60)
    spread = f" ({min(x) / scale:.1f}-{max(x) / scale:.1f})" if len(x) > 1 else ""
    return f"{np.mean(x) / scale:.1f} {unit}{spread}"


def write_report(
    data: Path, results: list[Result], invocations: list[dict[str, Any]], out: Path, figures: list[Path]
) -> str:
    now = machine()
    lines = [
        "# MuJoCo benchmarks: spinrl beside Stable-Baselines3 and the published figures",
        "",
    ]
    lines += [
        "Written by `benchmarks/bench_mujoco.py` from the runs on disk; the commands that made them:",
        "",
    ]
    for inv in invocations:
        m = inv.get("machine", {})
        lines.append(
            f"- `{inv['command']}` (last started {m.get('date', '?')}, load average {', '.join(map(str, m.get('load', [])))})"
        )
    if not invocations:
        lines.append("- none recorded in campaign.json (the runs below were found in the data folder)")
    lines += [
        "",
        f"- Machine: {now['cpu']}, {now['cores']} cores{', GPU ' + now['gpu'] if now.get('gpu') else ''}, "
        f"torch {now['torch']}, Python {now['python']}; report "
        f"written {now['date']} (load average then {', '.join(map(str, now['load']))}).",
        f"- Data: `{data}` (`spinrl ls {data}` lists the runs, `spinrl plot` and `spinrl compare` read them).",
        "- Each run is one process with one torch thread. **Final training return**: the mean of the last "
        f"{FINAL_EPOCHS} epochs' `AverageEpRet` (the training episodes, with exploration; epochs in which no "
        "episode ended are passed over). **Evaluation**: "
        f"{EVAL_EPISODES} episodes of the final policy acting deterministically (mean action), episode seeds "
        f"{EVAL_SEED}-{EVAL_SEED + EVAL_EPISODES - 1}. Both as mean ± standard deviation over seeds (ddof=1).",
        "- **Wall-clock per run**: the training's own clock (`Time` of the last row), mean and range over seeds; "
        "spinrl's off-policy runs include their test episodes at each epoch's end, SB3's runs include no "
        "evaluation. Runs that shared the cores with other jobs are slower: compare rows of one campaign.",
        f"- SB3 ({_sb3_version()}), **RL Zoo** rows: RL Zoo's MuJoCo settings, the ones SB3's published MuJoCo "
        "results use: PPO's tuned per-env entries (hyperparams/ppo.yml, normalised observations and rewards); SAC "
        "and TD3 with SB3's defaults but 10,000 uniformly random steps before learning starts, and TD3 with "
        "Gaussian action noise of standard deviation 0.1 (sac.yml, td3.yml). **defaults** rows: SB3's "
        "constructor defaults (SAC learns after 100 random steps; TD3 would have no action noise). Rows every "
        f"{SB3_LOG_EVERY:,} steps with the mean return of the episodes that ended in them.",
        "- Presets: `default` is Spinning Up's settings (the algorithm's defaults); `tuned` is `--preset tuned`, "
        "the settings in `spinrl/presets/ALGO.toml`, recorded with their values in each run's config.json.",
        "",
        "## Results",
        "",
        "| env | algorithm | budget | seeds done | final training return | evaluation (deterministic) | wall-clock per run |",
        "|---|---|---|---|---|---|---|",
    ]
    groups = group_results(results)
    for (env, algo, preset, steps), rs in groups.items():
        # Training figures over the runs that finished; the evaluation over those evaluated too (the same
        # runs once the campaign has evaluated them; fewer where it has not yet).
        finished = [r for r in rs if r.trained]
        evaluated = [r for r in finished if r.done]
        seeds = ", ".join(str(r.run.seed) for r in finished) or "–"
        evals = pm([r.evaluation for r in evaluated])
        if len(evaluated) < len(finished):
            evals += f" ({len(evaluated)} of {len(finished)} evaluated)"
        lines.append(
            f"| {env} | {label(algo, preset)} | {budget(steps)} | {len(finished)} of {len(rs)} ({seeds}) "
            f"| {pm([r.final for r in finished])} | {evals} | {duration([r.seconds for r in finished])} |"
        )
    if not groups:
        lines.append("| – | no runs yet | | | | | |")
    lines += side_by_side(groups)
    lines += goals(groups)
    lines += missing(results, invocations, data)
    notes = out.with_name(NOTES_FILE)
    if notes.exists():  # written by hand: what was tried where a goal is missed
        lines += ["", f"## Notes (from `{NOTES_FILE}`)", "", notes.read_text().strip()]
    lines += ["", "## Learning curves", ""]
    lines.append(
        "One figure per environment: the training return (`AverageEpRet`) against environment steps, the mean "
        "over seeds with a 95% bootstrap band (seeds resampled), one line per algorithm and preset, SB3 dashed. "
        "Unfinished runs are drawn as far as they got."
    )
    lines.append("")
    lines += [f"- `{f.relative_to(ROOT) if f.is_relative_to(ROOT) else f}`" for f in figures]
    text = "\n".join(lines) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out, text)
    return text


def _sb3_version() -> str:
    try:
        from importlib.metadata import version

        return f"stable-baselines3 {version('stable-baselines3')}"
    except Exception:
        return "stable-baselines3 not installed"


def _ours(groups: dict, env: str, algo: str, preset: str) -> str:
    for (e, a, p, steps), rs in groups.items():
        if e == env and a == algo and p == preset:
            done = [r for r in rs if r.done]
            if done:
                ev, tr = mean_std([r.evaluation for r in done])[0], mean_std([r.final for r in done])[0]
                return f"{ev:,.0f} / {tr:,.0f} ({len(done)}, {budget(steps)})"
    return "–"


def side_by_side(groups: dict) -> list[str]:
    envs = sorted({e for e, *_ in groups}, key=env_order)
    lines = [
        "",
        "## Beside the published figures",
        "",
        "spinrl and SB3 here: evaluation / final training return (seeds done, budget); the published figures are "
        "at 1M steps and each source measures in its own way (below), so compare within a column's protocol.",
        "",
        "| env | algorithm | spinrl default | spinrl tuned | SB3 here | RL Zoo | CleanRL | Tianshou | Spinning Up (≈) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for env in envs:
        for algo in ("ppo", "trpo", "vpg", "sac", "td3", "ddpg"):
            anchor = ANCHORS.get((algo, env.split("-")[0]))
            here = [_ours(groups, env, algo, "default"), _ours(groups, env, algo, "tuned")]
            # SB3 with RL Zoo's settings; with its defaults too where those were run.
            sb3 = [
                cell if settings == "rl-zoo" else f"{cell} with defaults"
                for settings in SB3_SETTINGS
                if (cell := _ours(groups, env, f"sb3-{algo}", settings)) != "–"
            ]
            here.append("; ".join(sb3) or "–")
            if anchor is None and all(h == "–" for h in here):
                continue
            anchor = anchor or {}
            published = [
                num(anchor.get(s)) if s in anchor else "n/a"
                for s in ("RL Zoo", "CleanRL", "Tianshou", "Spinning Up")
            ]
            lines.append(f"| {env} | {algo.upper()} | " + " | ".join(here + published) + " |")
    lines += ["", "Sources:", ""] + [f"- {text}" for text in SOURCES.values()]
    return lines


def goals(groups: dict) -> list[str]:
    """The issue's goals, each judged on the deterministic evaluation (mean over seeds done)."""

    def ev(env: str, algo: str, preset: str) -> tuple[float | None, float | None, int]:
        for (e, a, p, _), rs in groups.items():
            if e == env and a == algo and p == preset:
                done = [r for r in rs if r.done]
                if done:
                    return (
                        mean_std([r.evaluation for r in done])[0],
                        float(np.mean([r.seconds for r in done])),
                        len(done),
                    )
        return None, None, 0

    def verdict(ours: float, target: float) -> str:
        return f"met (+{ours - target:,.0f})" if ours >= target else f"**missed by {target - ours:,.0f}**"

    lines = [
        "",
        "## Goals",
        "",
        "Judged on the deterministic evaluation's mean over the seeds done (at least 3 asked).",
        "",
    ]
    envs = sorted({e for e, *_ in groups}, key=env_order)
    for env in envs:
        base = env.split("-")[0]
        anchor = ANCHORS.get(("ppo", base), {})
        best = max((v for v in anchor.values() if v is not None), default=None)
        tuned, t_secs, n = ev(env, "ppo", "tuned")
        if tuned is not None and best is not None:
            zoo, z_secs, _ = ev(env, "sb3-ppo", "rl-zoo")
            clock = ""
            if z_secs is not None:
                clock = f"; wall-clock {t_secs / 60:.1f} vs SB3 RL Zoo PPO {z_secs / 60:.1f} min: " + (
                    "faster" if t_secs < z_secs else "**slower**"
                )
            lines.append(
                f"- PPO tuned, {env}: {tuned:,.0f} vs best published {best:,.0f}: {verdict(tuned, best)} ({n} seeds){clock}"
            )
        for algo in ON_POLICY:
            ours, _, n = ev(env, algo, "default")
            spinup = ANCHORS.get((algo, base), {}).get("Spinning Up")
            if ours is not None:
                target = (
                    f"Spinning Up ≈{spinup:,.0f}: {verdict(ours, spinup)}"
                    if spinup
                    else "no Spinning Up figure in the table"
                )
                lines.append(f"- {algo.upper()} default, {env}: {ours:,.0f} ({n} seeds); {target}")
        for algo, preset in [(a, p) for a in ("sac", "td3") for p in ("default", "tuned")]:
            ours, secs, n = ev(env, algo, preset)
            for settings in SB3_SETTINGS:  # against SB3 with RL Zoo's settings, and with its defaults
                sb3, sb3_secs, n_sb3 = ev(env, f"sb3-{algo}", settings)
                if ours is not None and sb3 is not None:
                    clock = "faster" if secs < sb3_secs else "**slower**"
                    lines.append(
                        f"- {algo.upper()} {preset}, {env}: {ours:,.0f} vs {label(f'sb3-{algo}', settings)} "
                        f"{sb3:,.0f} here: {verdict(ours, sb3)} ({n} and {n_sb3} seeds); wall-clock "
                        f"{secs / 60:.1f} vs {sb3_secs / 60:.1f} min: {clock}"
                    )
    if lines[-1] == "":
        lines.append("- nothing to judge yet")
    return lines


def continue_commands(todo: list[Result], data: Path) -> list[str]:
    """Campaign commands that bring these runs to their end, one per (algorithm, preset, budget)."""
    groups: dict[tuple[str, str, int], list[Run]] = {}
    for r in todo:
        base, preset = r.run.algo.removeprefix("sb3-"), "default" if r.run.sb3 else r.run.preset
        groups.setdefault((base, preset, r.run.steps), []).append(r.run)
    commands = []
    for (algo, preset, steps), runs in groups.items():
        envs = sorted({run.env for run in runs}, key=env_order)
        seeds = sorted({run.seed for run in runs})
        args = ["--algos", algo, "--presets", preset, "--envs", *envs, "--seeds", *map(str, seeds)]
        args += ["--steps", str(steps), "--data_dir", str(data)] + (
            ["--sb3"] if any(r.sb3 for r in runs) else []
        )
        commands.append(shlex.join(["python", "benchmarks/bench_mujoco.py", *args]))
    return commands


def missing(results: list[Result], invocations: list[dict[str, Any]], data: Path) -> list[str]:
    todo = [r for r in results if not r.done]
    lines = ["", "## Runs not finished", ""]
    if not todo:
        return lines + ["None: every run asked for has finished and been evaluated."]
    lines += ["| run | state | epochs done |", "|---|---|---|"]
    for r in todo:
        state = (
            "finished, not evaluated" if r.state == FINISHED and r.epochs_done >= r.epochs_needed else r.state
        )
        lines.append(f"| `{r.folder}` | {state} | {r.epochs_done} of {r.epochs_needed} |")
    # Only the invocations that still have a run to do: a finished one would only be skipped.
    unfinished = {r.run.folder(data) for r in todo}
    commands = [
        inv["command"]
        for inv in invocations
        if any(run.folder(data) in unfinished for run in expand(inv["grid"]))
    ] or continue_commands(todo, data)
    if any(r.trained and not r.done for r in todo):
        commands.append(
            shlex.join(["python", "benchmarks/bench_mujoco.py", "--eval-only", "--data_dir", str(data)])
        )
    lines += (
        [
            "",
            "Continue them (finished runs are skipped, the others resume; `--eval-only` evaluates the finished ones and trains nothing) with:",
            "",
            "```bash",
        ]
        + commands
        + ["```"]
    )
    return lines


# ----- the learning curves ------------------------------------------------------------------------------------
def bootstrap_band(
    curves: np.ndarray, rng: np.random.Generator, resamples: int = 1000
) -> tuple[np.ndarray, ...]:
    """Mean over seeds (rows) at each point, and the 2.5th and 97.5th percentiles of the mean of seeds drawn
    with replacement; NaN marks a point a run has not reached."""
    n = curves.shape[0]
    # An epoch in which no episode ended has no return (NaN) in any run; the mean is then NaN too, a gap.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(curves, axis=0)
        if n < 2:
            return mean, mean, mean
        picks = curves[rng.integers(0, n, size=(resamples, n))]  # (resamples, seeds, points)
        means = np.nanmean(picks, axis=1)
        return mean, np.nanpercentile(means, 2.5, axis=0), np.nanpercentile(means, 97.5, axis=0)


def carry_forward(y: np.ndarray) -> np.ndarray:
    """Each epoch in which no episode ended (NaN: with 8 env copies of 256 steps, HalfCheetah's 1000-step
    episodes end every fourth epoch) takes the return of the last episodes that did end."""
    last = np.maximum.accumulate(np.where(np.isfinite(y), np.arange(len(y)), 0))
    return y[last]


def draw_curves(results: list[Result], out_dir: Path) -> list[Path]:
    """One SVG per environment; one panel per budget when the env was run at several (1M and 100k)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "path", "svg.hashsalt": "spinrl-mujoco", "font.size": 10})
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    # One colour per spinrl algorithm and preset; an SB3 line takes its spinrl algorithm's colour, dashed.
    colors = {
        "ppo": "C0",
        "ppo-tuned": "C3",
        "trpo": "C2",
        "vpg": "C1",
        "sac": "C4",
        "td3": "C5",
        "ddpg": "C6",
    }
    paths = []
    by_env: dict[str, dict[int, list[Result]]] = {}
    for r in results:
        by_env.setdefault(r.run.env, {}).setdefault(r.run.steps, []).append(r)
    for env, budgets in sorted(by_env.items(), key=lambda item: env_order(item[0])):
        fig, axes = plt.subplots(1, len(budgets), figsize=(6.2 * len(budgets), 4.2), squeeze=False)
        for ax, (steps, rs) in zip(axes[0], sorted(budgets.items(), reverse=True)):
            drawn = 0
            for (_, algo, preset, _), group in group_results(rs).items():
                runs = [r for r in group if len(r.progress.get("AverageEpRet", []))]
                if not runs:
                    continue
                longest = max(runs, key=lambda r: len(r.progress["AverageEpRet"]))
                x = longest.progress["TotalEnvInteracts"]
                curves = np.full((len(runs), len(x)), np.nan)
                for i, r in enumerate(runs):
                    y = carry_forward(r.progress["AverageEpRet"][: len(x)])
                    curves[i, : len(y)] = y
                mean, low, high = bootstrap_band(curves, rng)
                base = algo.removeprefix("sb3-")
                tuned = preset == "tuned"
                color = colors.get(f"{base}-tuned" if tuned else base, "C7")
                unfinished = sum(not r.trained for r in runs)
                note = f", {unfinished} unfinished" if unfinished else ""
                seeds = f"{len(runs)} seed{'s' if len(runs) > 1 else ''}"
                name = f"{label(algo, preset).removeprefix('spinrl ')} ({seeds}{note})"
                ax.fill_between(x / 1e3, low, high, color=color, alpha=0.15, linewidth=0)
                ls = "--" if algo.startswith("sb3-") else "-"
                ax.plot(x / 1e3, mean, color=color, lw=1.6, ls=ls, label=name)
                drawn += 1
            ax.set_title(f"{env}, {budget(steps)} steps")
            ax.set_xlim(0, steps / 1e3)
            ax.set_xlabel("environment steps (thousands)")
            ax.set_ylabel("training return (AverageEpRet)")
            ax.grid(alpha=0.3)
            if drawn:
                ax.legend(fontsize=8, loc="upper left")
            else:
                ax.text(
                    0.5, 0.5, "no runs yet", ha="center", va="center", transform=ax.transAxes, color="0.5"
                )
        fig.tight_layout()
        path = out_dir / f"mujoco-{env}.svg"
        fig.savefig(path, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
        plt.close(fig)
        paths.append(path)
    return paths


def report(data: Path, extra_runs: list[Run], results_dir: Path) -> list[Result]:
    """Rewrite the results file and the figures from what is on disk."""
    invocations = (read_json(data / MANIFEST) or {}).get("invocations", [])
    runs: dict[Path, Run] = {}
    for inv in invocations:
        for run in expand(inv["grid"]):
            runs.setdefault(run.folder(data), run)
    for run in extra_runs + discover(data):
        runs.setdefault(run.folder(data), run)
    results = [read_result(run, data) for run in runs.values()]
    figures = draw_curves(results, results_dir / "curves")
    write_report(data, results, invocations, results_dir / "mujoco.md", figures)
    print(f"wrote {results_dir / 'mujoco.md'} and {len(figures)} figure(s)", flush=True)
    return results
