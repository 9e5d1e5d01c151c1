"""The MuJoCo benchmark campaign (benchmarks/bench_mujoco.py): resumable, never repeating a run, and its report.

The campaign runs real ``spinrl ppo`` processes on Pendulum-v1 with a budget of a few thousand steps and an
8-unit network, so a test takes seconds; the report is checked on run folders written by hand, whose
means and standard deviations are known.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from spinrl.common.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_mujoco", ROOT / "benchmarks" / "bench_mujoco.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def campaign_args(data: Path, results: Path, seeds: tuple[int, ...] = (0, 1)) -> list[str]:
    # 10 epochs of 200 steps: long enough that a kill after the first checkpoint lands mid-run.
    extra = "--steps_per_epoch 200 --save_freq 1 --ac_kwargs:hidden_sizes (8,)"
    return [
        "--algos", "ppo", "--presets", "default", "--envs", "Pendulum-v1", "--seeds", *map(str, seeds),
        "--steps", "2000", "--parallel", "2", "--data_dir", str(data), "--results", str(results), "--extra", extra,
    ]  # fmt: skip


def epochs_logged(folder: Path) -> list[int]:
    rows = (folder / "progress.txt").read_text().splitlines()[1:]
    return [int(float(row.split("\t")[0])) for row in rows]


def test_a_killed_campaign_continues_where_it_stopped_and_repeats_no_run(
    bench, tmp_path, monkeypatch, capsys
):
    data, results = tmp_path / "data", tmp_path / "results"
    s0 = data / "ppo-default-Pendulum-v1" / "ppo-default-Pendulum-v1_s0"
    s1 = data / "ppo-default-Pendulum-v1" / "ppo-default-Pendulum-v1_s1"
    killed_at = []

    def kill_seed0_after_its_first_checkpoint(run, proc):
        meta = bench.read_json(run.folder(data) / "checkpoint.json") or {}
        if run.seed == 0 and not killed_at and meta.get("epoch", 0) >= 1:
            proc.kill()
            proc.wait()
            killed_at.append(meta["epoch"])

    monkeypatch.setattr(bench, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(bench, "WATCH", kill_seed0_after_its_first_checkpoint)
    assert bench.main(campaign_args(data, results)) == 1  # the killed run counts as failed
    status0 = json.loads((s0 / "status.json").read_text())
    assert killed_at and status0["status"] == "running" and status0["epoch"] < 10, "the kill missed the run"
    assert not (s0 / "eval.json").exists()
    assert json.loads((s1 / "status.json").read_text())["status"] == "finished"
    assert json.loads((s1 / "eval.json").read_text())["episodes"] == 10
    report = (results / "mujoco.md").read_text()
    assert "| Pendulum-v1 | spinrl PPO default | 2k | 1 of 2 (1) |" in report
    missing = report.split("## Runs not finished")[1]
    assert f"`{s0}` | interrupted |" in missing
    assert "python benchmarks/bench_mujoco.py --algos ppo" in missing  # the command that continues it

    kept = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (s1 / "progress.txt", s1 / "eval.json")}
    monkeypatch.setattr(bench, "WATCH", None)
    # --eval-only trains nothing: the interrupted run is left as it is.
    capsys.readouterr()
    assert bench.main(["--eval-only", "--data_dir", str(data), "--results", str(results)]) == 0
    assert f"{s0}: not finished, left as it is (--eval-only)" in capsys.readouterr().out
    assert json.loads((s0 / "status.json").read_text()) == status0
    assert bench.main(campaign_args(data, results)) == 0
    out = capsys.readouterr().out
    assert f"{s1}: finished and evaluated, skipped" in out
    assert f"{s0}: resume" in out and f"{s0}: train" not in out
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in kept} == kept  # seed 1 untouched
    assert epochs_logged(s0) == list(range(10))  # every epoch once: continued, not started over
    assert json.loads((s0 / "eval.json").read_text())["epoch"] == 10
    report = (results / "mujoco.md").read_text()
    assert "| Pendulum-v1 | spinrl PPO default | 2k | 2 of 2 (0, 1) |" in report
    assert "None: every run asked for has finished and been evaluated." in report
    assert (results / "curves" / "mujoco-Pendulum-v1.svg").stat().st_size > 0


def test_a_run_another_process_is_writing_is_left_alone(bench, tmp_path, capsys):
    """A run whose status says running and whose lock a live process holds is skipped, not resumed."""
    data, results = tmp_path / "data", tmp_path / "results"
    folder = data / "ppo-default-Pendulum-v1" / "ppo-default-Pendulum-v1_s0"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(dict(algo="ppo", env_name="Pendulum-v1", seed=0, epochs=10, steps_per_epoch=200)))  # fmt: skip
    (folder / "progress.txt").write_text("Epoch\tAverageEpRet\tTotalEnvInteracts\tTime\n0\t-1200\t200\t1.0\n")
    writer = textwrap.dedent(f"""
        import sys
        from spinrl.record.lock import acquire_run_lock
        from spinrl.record.status import write_status
        lock = acquire_run_lock({str(folder)!r})
        write_status({str(folder)!r}, "running", 1, 10)
        print("ready", flush=True)
        sys.stdin.read()
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", writer], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        before = (folder / "progress.txt").read_bytes()
        assert bench.main(campaign_args(data, results, seeds=(0,))) == 0
        out = capsys.readouterr().out
        assert f"{folder}: skipped, another process is writing it (process {proc.pid}" in out
        assert (folder / "progress.txt").read_bytes() == before
        assert not (data / "logs" / "ppo-default-Pendulum-v1_s0.txt").exists()  # nothing was launched
        assert f"`{folder}` | running | 1 of 10 |" in (results / "mujoco.md").read_text()
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


# ----- the report, from run folders written by hand -----------------------------------------------------------
def fake_run(
    folder: Path, returns: list[float], evals: list[float], seconds: float, config: dict, status="finished"
):
    folder.mkdir(parents=True)
    epochs = len(returns)
    (folder / "config.json").write_text(json.dumps(config))
    rows = ["Epoch\tAverageEpRet\tTotalEnvInteracts\tTime"]
    step = 4000
    rows += [f"{i}\t{r}\t{(i + 1) * step}\t{seconds * (i + 1) / epochs}" for i, r in enumerate(returns)]
    (folder / "progress.txt").write_text("\n".join(rows) + "\n")
    (folder / "status.json").write_text(json.dumps(dict(status=status, epoch=epochs, epochs=epochs)))
    if evals:
        ev = dict(returns=evals, mean=float(np.mean(evals)), epoch=epochs)
        (folder / "eval.json").write_text(json.dumps(ev))


def test_report_only_gives_the_means_and_standard_deviations_over_seeds(bench, tmp_path):
    data, results = tmp_path / "data", tmp_path / "results"
    rng = np.random.default_rng(1)
    finals, evals, secs = [], [], []
    for seed in range(3):
        returns = list(np.round(rng.uniform(500, 3000, size=15), 3))  # 15 epochs: the last 10 count
        episode_returns = list(np.round(rng.uniform(1000, 3500, size=10), 3))
        seconds = 200.0 + 37 * seed
        name = "ppo-default-Hopper-v5"
        config = dict(algo="ppo", env_name="Hopper-v5", seed=seed, epochs=15, steps_per_epoch=4000)
        fake_run(data / name / f"{name}_s{seed}", returns, episode_returns, seconds, config)
        finals.append(np.mean(returns[-10:]))
        evals.append(np.mean(episode_returns))
        secs.append(seconds)
    # A seed that failed half way is listed as missing, and counts in no mean.
    config = dict(algo="ppo", env_name="Hopper-v5", seed=3, epochs=15, steps_per_epoch=4000)
    fake_run(data / name / f"{name}_s3", [100.0] * 5, [], 50.0, config, status="failed")
    # An SB3 run beside them.
    sb3 = "sb3-ppo-rl-zoo-Hopper-v5"
    fake_run(data / sb3 / f"{sb3}_s0", [900.0] * 15, [1500.0] * 10, 900.0, dict(algo="sb3-ppo", env_name="Hopper-v5", seed=0, steps=60000))  # fmt: skip

    results.mkdir()
    (results / "mujoco-notes.md").write_text("Tried a larger learning rate: no better.\n")
    assert bench.main(["--report-only", "--data_dir", str(data), "--results", str(results)]) == 0
    report = (results / "mujoco.md").read_text()
    assert "## Notes (from `mujoco-notes.md`)\n\nTried a larger learning rate: no better.\n" in report

    def pm(values):
        return f"{np.mean(values):,.0f} ± {np.std(values, ddof=1):,.0f}"

    minutes = f"{np.mean(secs) / 60:.1f} min ({min(secs) / 60:.1f}-{max(secs) / 60:.1f})"
    row = f"| Hopper-v5 | spinrl PPO default | 60k | 3 of 4 (0, 1, 2) | {pm(finals)} | {pm(evals)} | {minutes} |"
    assert row in report, report
    assert "| Hopper-v5 | SB3 PPO (RL Zoo) | 60k | 1 of 1 (0) | 900 | 1,500 | 15.0 min |" in report
    # Beside the published figures: ours (evaluation / training), SB3 here, then RL Zoo, CleanRL, Tianshou,
    # Spinning Up at 1M steps.
    side = re.search(r"\| Hopper-v5 \| PPO \|(.*)\|", report.split("## Beside the published figures")[1])
    cells = [c.strip() for c in side.group(1).split("|")]
    assert cells[0] == f"{np.mean(evals):,.0f} / {np.mean(finals):,.0f} (3, 60k)"
    assert cells[2] == "1,500 / 900 (1, 60k)"
    assert cells[3:] == ["2,410", "2,383", "2,609", "1,850"]
    assert "`" + str(data / name / f"{name}_s3") + "` | failed | 5 of 15 |" in report
    assert (results / "curves" / "mujoco-Hopper-v5.svg").stat().st_size > 0
    assert not (data / "logs").exists()  # --report-only trains and evaluates nothing


def test_the_report_repeats_only_the_commands_that_still_have_runs_to_do(bench, tmp_path):
    data, results = tmp_path / "data", tmp_path / "results"
    for algo, returns, status in (("ppo", [1000.0] * 15, "finished"), ("trpo", [500.0] * 5, "failed")):
        name = f"{algo}-default-Hopper-v5"
        config = dict(algo=algo, env_name="Hopper-v5", seed=0, epochs=15, steps_per_epoch=4000)
        evals = [1200.0] * 10 if status == "finished" else []
        fake_run(data / name / f"{name}_s0", returns, evals, 300.0, config, status=status)
    grid = dict(presets=["default"], envs=["Hopper-v5"], seeds=[0], steps=60000, extra=[], sb3=False)
    invocations = [
        dict(command=f"python benchmarks/bench_mujoco.py --algos {algo}", grid=dict(grid, algos=[algo]))
        for algo in ("ppo", "trpo")
    ]
    (data / "campaign.json").write_text(json.dumps(dict(invocations=invocations)))

    assert bench.main(["--report-only", "--data_dir", str(data), "--results", str(results)]) == 0
    report = (results / "mujoco.md").read_text()
    to_do = report.split("## Runs not finished")[1].split("## Notes")[0]
    assert "trpo-default-Hopper-v5_s0` | failed | 5 of 15 |" in to_do
    assert "```bash\npython benchmarks/bench_mujoco.py --algos trpo\n```" in to_do
    assert "--algos ppo" not in to_do  # every run it asked for is done: nothing to continue
    # The commands that made the results are all still listed at the top.
    assert "`python benchmarks/bench_mujoco.py --algos ppo`" in report.split("## Results")[0]


def test_bad_arguments_are_one_line_each(bench, tmp_path):
    with pytest.raises(UserError, match="--parallel 0 is not valid"):
        bench.main(["--parallel", "0", "--data_dir", str(tmp_path)])
    with pytest.raises(
        UserError, match="--algos 'dqn' is not valid: choose from ppo, trpo, vpg, sac, td3, ddpg"
    ):
        bench.main(["--algos", "dqn", "--data_dir", str(tmp_path)])
    with pytest.raises(
        UserError, match="--envs 'Hoper-v5' is not a Gymnasium environment id; did you mean 'Hopper-v5'"
    ):
        bench.main(["--envs", "Hoper-v5", "--data_dir", str(tmp_path)])
    assert not tmp_path.joinpath("campaign.json").exists()  # refused before anything was recorded


@pytest.mark.parametrize("settings", ["defaults", "rl-zoo"])
def test_an_sb3_run_is_logged_like_a_spinrl_run_and_then_skipped(bench, tmp_path, settings):
    data, results = tmp_path / "data", tmp_path / "results"
    run = bench.Run("sb3-td3", settings, "Pendulum-v1", 0, 300)
    folder = run.folder(data)
    assert folder.parent.name == f"sb3-td3-{settings}-Pendulum-v1"
    assert bench.next_command(run, data)[0] == "sb3"
    subprocess.run(bench.sb3_command(run, folder), check=True, capture_output=True, timeout=600)
    config = json.loads((folder / "config.json").read_text())
    # RL Zoo's TD3 for MuJoCo: 10,000 random steps first, Gaussian action noise; SB3's defaults: neither.
    zoo = dict(learning_starts=10_000, noise_std=0.1)
    assert config["settings"] == settings and config["hyperparameters"] == (
        zoo if settings == "rl-zoo" else {}
    )
    progress = (folder / "progress.txt").read_text().splitlines()
    assert progress[0].split("\t") == ["Epoch", "AverageEpRet", "EpLen", "TotalEnvInteracts", "Time"]
    row = dict(zip(progress[0].split("\t"), progress[1].split("\t")))
    assert len(progress) == 2 and row["TotalEnvInteracts"] == "300" and row["EpLen"] == "200"  # one episode
    ev = json.loads((folder / "eval.json").read_text())
    assert ev["episodes"] == 10 and ev["lengths"] == [200] * 10 and ev["first_seed"] == bench.EVAL_SEED
    assert json.loads((folder / "status.json").read_text())["status"] == "finished"
    assert bench.next_command(run, data) is None  # a campaign skips it from now on
    assert bench.main(["--report-only", "--data_dir", str(data), "--results", str(results)]) == 0
    report = (results / "mujoco.md").read_text()
    name = "RL Zoo" if settings == "rl-zoo" else "defaults"
    expected = f"| Pendulum-v1 | SB3 TD3 ({name}) | 0.3k | 1 of 1 (0) | {float(row['AverageEpRet']):,.0f} | {ev['mean']:,.0f} |"
    assert expected in report


def test_sb3_folders_of_older_campaigns_are_renamed_to_name_their_settings(bench, tmp_path, capsys):
    data, results = tmp_path / "data", tmp_path / "results"
    config = dict(algo="sb3-sac", env_name="Hopper-v5", seed=0, steps=60000, settings="SB3's defaults")
    fake_run(data / "sb3-sac-Hopper-v5" / "sb3-sac-Hopper-v5_s0", [600.0] * 15, [700.0] * 10, 900.0, config)
    config = dict(
        algo="sb3-ppo", env_name="Hopper-v5", seed=1, steps=60000, settings="RL Zoo's tuned MuJoCo settings"
    )
    fake_run(data / "sb3-ppo-Hopper-v5" / "sb3-ppo-Hopper-v5_s1", [900.0] * 15, [1500.0] * 10, 900.0, config)
    (data / "logs").mkdir()
    (data / "logs" / "sb3-sac-Hopper-v5_s0.txt").write_text("the run's output\n")
    # A seed whose new name is already taken stays where it is: nothing is overwritten.
    fake_run(data / "sb3-sac-Hopper-v5" / "sb3-sac-Hopper-v5_s2", [1.0] * 15, [1.0] * 10, 900.0, dict(config, algo="sb3-sac", settings="SB3's defaults"))  # fmt: skip
    taken = data / "sb3-sac-defaults-Hopper-v5" / "sb3-sac-defaults-Hopper-v5_s2"
    taken.mkdir(parents=True)
    (taken / "keep.txt").write_text("mine")

    sac = "sac-default-Hopper-v5"
    config = dict(algo="sac", env_name="Hopper-v5", seed=0, epochs=15, steps_per_epoch=4000)
    fake_run(data / sac / f"{sac}_s0", [800.0] * 15, [1000.0] * 10, 600.0, config)
    sac_tuned = "sac-tuned-Hopper-v5"
    fake_run(data / sac_tuned / f"{sac_tuned}_s0", [500.0] * 15, [650.0] * 10, 1200.0, config)

    assert bench.main(["--report-only", "--data_dir", str(data), "--results", str(results)]) == 0
    moved = data / "sb3-sac-defaults-Hopper-v5" / "sb3-sac-defaults-Hopper-v5_s0"
    assert json.loads((moved / "eval.json").read_text())["mean"] == 700.0
    assert json.loads((moved / "config.json").read_text())["exp_name"] == "sb3-sac-defaults-Hopper-v5"
    assert (data / "logs" / "sb3-sac-defaults-Hopper-v5_s0.txt").read_text() == "the run's output\n"
    assert (data / "sb3-ppo-rl-zoo-Hopper-v5" / "sb3-ppo-rl-zoo-Hopper-v5_s1" / "progress.txt").exists()
    assert not (data / "sb3-ppo-Hopper-v5").exists()  # emptied, so removed
    assert (taken / "keep.txt").read_text() == "mine"
    assert (data / "sb3-sac-Hopper-v5" / "sb3-sac-Hopper-v5_s2" / "eval.json").exists()
    out = capsys.readouterr().out
    assert f"{data / 'sb3-sac-Hopper-v5' / 'sb3-sac-Hopper-v5_s2'}: not renamed to {taken}" in out
    # The report reads them under their settings, and the goals compare against each.
    report = (results / "mujoco.md").read_text()
    assert "| Hopper-v5 | SB3 SAC (defaults) | 60k | 1 of 1 (0) | 600 | 700 | 15.0 min |" in report
    assert "| Hopper-v5 | SB3 PPO (RL Zoo) | 60k | 1 of 1 (1) | 900 | 1,500 | 15.0 min |" in report
    assert (
        "- SAC default, Hopper-v5: 1,000 vs SB3 SAC (defaults) 700 here: met (+300) (1 and 1 seeds); "
        "wall-clock 10.0 vs 15.0 min: faster" in report
    )
    assert (  # every preset is judged, each against each of SB3's settings
        "- SAC tuned, Hopper-v5: 650 vs SB3 SAC (defaults) 700 here: **missed by 50** (1 and 1 seeds); "
        "wall-clock 20.0 vs 15.0 min: **slower**" in report
    )
    side = re.search(r"\| Hopper-v5 \| SAC \|(.*)\|", report.split("## Beside the published figures")[1])
    assert side.group(1).split("|")[2].strip() == "700 / 600 (1, 60k) with defaults"


def test_a_preset_asks_only_for_the_envs_it_has_an_entry_for(bench, monkeypatch, tmp_path, capsys):
    """TD3's tuned preset covers Hopper only: a grid of two envs asks for no tuned HalfCheetah run (it
    would train with the defaults, which the default runs already are) and says so once."""
    import spinrl.presets as presets

    (tmp_path / "td3.toml").write_text('[tuned."Hopper-v5"]\nupdate_after = 10000\n')
    monkeypatch.setattr(presets, "PRESET_DIR", tmp_path)
    runs_module = sys.modules[bench.expand.__module__]
    grid = dict(
        algos=["td3"], presets=["default", "tuned"], envs=["Hopper-v5", "HalfCheetah-v5"], seeds=[0, 1]
    )
    runs = runs_module.expand(grid, quiet=False)
    asked = sorted({(r.preset, r.env) for r in runs})
    assert asked == [("default", "HalfCheetah-v5"), ("default", "Hopper-v5"), ("tuned", "Hopper-v5")]
    assert len(runs) == 6
    said = capsys.readouterr().out
    assert said.count("has no entry for HalfCheetah-v5") == 1


def test_the_ppo_speed_benchmark_calls_the_sb3_runner_with_its_arguments(monkeypatch, tmp_path):
    """bench_ppo_speed.py starts benchmarks/mujoco_sb3.py, whose arguments are algo, settings, env, seed,
    steps and folder: the command it builds must give them in that order (a missing one broke it once)."""

    def load(name):
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    speed, runner = load("bench_ppo_speed"), load("mujoco_sb3")
    spinrl_cmd, sb3_cmd, sb3_dir = speed.commands("HalfCheetah-v5", 3000, tmp_path)
    assert sb3_cmd[1].endswith("mujoco_sb3.py")
    seen = {}
    monkeypatch.setattr(runner, "train_sb3", lambda *args: seen.update(args=args))
    assert runner.main(sb3_cmd[2:]) == 0
    assert seen["args"] == ("ppo", runner.SB3_SETTINGS[0], "HalfCheetah-v5", 0, 3000, sb3_dir)
    # spinrl's side: the tuned preset, its epochs from the entry's steps_per_epoch (512 on HalfCheetah).
    assert spinrl_cmd[spinrl_cmd.index("--preset") + 1] == "tuned"
    assert spinrl_cmd[spinrl_cmd.index("--epochs") + 1] == str(math.ceil(3000 / 512))
