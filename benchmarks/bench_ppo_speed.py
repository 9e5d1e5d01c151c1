"""Wall-clock of PPO on MuJoCo: spinrl's `--preset tuned` beside SB3's PPO with RL Zoo's tuned settings.

    .venv/bin/python benchmarks/bench_ppo_speed.py [--steps 50000] [--envs Hopper-v5 ...]

For each env the two trainings run at the same time, one process and one torch thread each, so both see
the same machine and the same load; each is timed by its own clock (the ``Time`` column of its last row,
which leaves out Python's start-up and the final evaluation). The ratio of the two times holds for the
whole 1M-step run as long as a run's cost per step stays flat, which it does for both: their updates
cost the same per batch whatever the returns, and MuJoCo steps cost the same per step; the projection to
1M steps is that ratio scaled, and the campaign's own full runs (results/mujoco.md) give the measured
1M wall-clock of spinrl's runs. Writes results/ppo-mujoco-speed.md.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spinrl.presets import preset_entry  # noqa: E402
from spinrl.record.logger import read_progress  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from mujoco_runs import CAMPAIGN_SB3_SETTINGS, machine  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "ppo-mujoco-speed.md"


def _last_time(progress: Path) -> tuple[float, int]:
    cols = read_progress(progress)
    return float(cols["Time"][-1]), int(cols["TotalEnvInteracts"][-1])


def commands(env_id: str, steps: int, work: Path) -> tuple[list[str], list[str], Path]:
    """The two trainings of one env: spinrl's tuned preset and SB3 with RL Zoo's settings (the campaign's
    SB3 runner, benchmarks/mujoco_sb3.py), and the folder SB3's run writes."""
    spe = int(preset_entry("ppo", "tuned", env_id)["steps_per_epoch"])
    epochs = math.ceil(steps / spe)
    spinrl_cmd = [
        sys.executable, "-m", "spinrl.cli", "ppo", "--env", env_id, "--preset", "tuned", "--epochs", str(epochs),
        "--exp_name", f"spinrl-{env_id}", "--data_dir", str(work), "--save_freq", str(epochs),
    ]  # fmt: skip
    sb3_dir = work / f"sb3-{env_id}" / f"sb3-{env_id}_s0"
    sb3_cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "mujoco_sb3.py"),
        "ppo",
        CAMPAIGN_SB3_SETTINGS,
        env_id,
        "0",
        str(steps),
        str(sb3_dir),
    ]
    return spinrl_cmd, sb3_cmd, sb3_dir


def measure(env_id: str, steps: int, work: Path) -> dict:
    """Train spinrl (tuned preset) and SB3 (RL Zoo settings) side by side on ``env_id``; their clocks."""
    spinrl_cmd, sb3_cmd, sb3_dir = commands(env_id, steps, work)
    env = dict(os.environ, PYTHONPATH=str(ROOT), SPINRL_NUM_THREADS="1")
    load_before = os.getloadavg()[0]
    procs = [
        subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for c in (spinrl_cmd, sb3_cmd)
    ]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(p.args[:6])} failed:\n{err[-2000:]}")
    spinrl_s, spinrl_steps = _last_time(work / f"spinrl-{env_id}" / f"spinrl-{env_id}_s0" / "progress.txt")
    sb3_s, sb3_steps = _last_time(sb3_dir / "progress.txt")
    return dict(
        env=env_id, spinrl_s=spinrl_s, spinrl_steps=spinrl_steps, sb3_s=sb3_s, sb3_steps=sb3_steps,
        load=(load_before, os.getloadavg()[0]),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--envs", nargs="+", default=["Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "Ant-v5"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="spinrl-speed-") as tmp:
        for env_id in args.envs:
            rows.append(measure(env_id, args.steps, Path(tmp)))
            print(rows[-1], flush=True)

    host = machine()
    lines = [
        "# PPO on MuJoCo: wall-clock, spinrl `--preset tuned` beside SB3 with RL Zoo's settings",
        "",
        f"Command: `python benchmarks/bench_ppo_speed.py --steps {args.steps} --envs {' '.join(args.envs)}`",
        "",
        f"Machine: {host['cpu']}, {host['cores']} cores, torch {host['torch']}, Python {host['python']}; "
        f"{host['date']}. Each pair ran at "
        "the same time, one process and one torch thread each, beside whatever else the machine ran (the load "
        "average before and after each pair is listed): compare within a row.",
        "",
        "spinrl: `spinrl ppo --preset tuned`, the entries of spinrl/presets/ppo.toml: on Hopper, Walker2d and "
        "Ant 8 env copies, 2,048-step batches, 10 passes of 64-sample minibatches, 64x64 tanh networks, "
        "observation and value normalisation; on HalfCheetah RL Zoo's own entry, the settings SB3 runs here "
        "(one env copy, 512-step batches, 20 passes of 64 samples, 256x256 ReLU). SB3 2.9: PPO with RL Zoo's "
        "tuned MuJoCo settings (hyperparams/ppo.yml: one env copy, 512-step batches, 5-20 passes of 32-64 "
        "samples, 256x256 ReLU networks for Hopper and HalfCheetah, VecNormalize). Seconds are each library's "
        "training clock over the steps shown.",
        "",
        "| env | steps | spinrl s | SB3 s | spinrl / SB3 time | spinrl 1M projected (min) | SB3 1M projected (min) | load before / after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per_step_spinrl, per_step_sb3 = r["spinrl_s"] / r["spinrl_steps"], r["sb3_s"] / r["sb3_steps"]
        lines.append(
            f"| {r['env']} | {r['spinrl_steps']:,} / {r['sb3_steps']:,} | {r['spinrl_s']:.0f} | {r['sb3_s']:.0f} | "
            f"{per_step_spinrl / per_step_sb3:.2f}x | {per_step_spinrl * 1e6 / 60:.1f} | {per_step_sb3 * 1e6 / 60:.1f} | "
            f"{r['load'][0]:.1f} / {r['load'][1]:.1f} |"
        )
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
