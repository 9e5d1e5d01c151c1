"""spinrl.results.runs: finding run folders and reading them, a damaged one skipped with a warning."""

from __future__ import annotations

import json
import math

import numpy as np

from spinrl.results.runs import final_value, find_runs, load_run, load_runs, performance_column


def _run(folder, progress="Epoch\tAverageEpRet\n0\t1\n1\t3\n", config=None):
    folder.mkdir(parents=True)
    (folder / "progress.txt").write_text(progress)
    (folder / "config.json").write_text(json.dumps(config or {"algo": "ppo", "env_name": "E", "seed": 0}))
    return folder


def test_find_runs_skips_the_folders_inside_a_run(tmp_path):
    a = _run(tmp_path / "x" / "x_s0")
    (a / "tb").mkdir()
    (a / "tb" / "progress.txt").write_text("")  # inside tb/: never a run
    b = _run(tmp_path / "y" / "y_s1")
    (tmp_path / ".hidden" / "h").mkdir(parents=True)
    (tmp_path / ".hidden" / "h" / "config.json").write_text("{}")
    assert find_runs(tmp_path) == [a, b]


def test_load_run_reads_config_progress_and_status(tmp_path):
    run = load_run(_run(tmp_path / "x" / "x_s0"))
    assert (run.algo, run.env, run.seed, run.exp_name) == ("ppo", "E", "0", "x")
    assert run.num_epochs_logged == 2 and run.state == "unknown"


def test_a_damaged_run_is_skipped_with_one_warning(tmp_path, capsys):
    good = _run(tmp_path / "g")
    bad = _run(tmp_path / "b", progress="Epoch\n\0\n")
    assert [r.path for r in load_runs([good, bad])] == [good]
    assert capsys.readouterr().err.startswith(f"spinrl: warning: skipping {bad}:")


def test_performance_is_the_test_return_when_there_is_one():
    progress = {"AverageEpRet": np.array([1.0, 2.0]), "AverageTestEpRet": np.array([5.0, np.nan, 7.0])}
    assert performance_column(progress) == "AverageTestEpRet"
    assert performance_column({"AverageEpRet": np.array([1.0])}) == "AverageEpRet"
    assert final_value(progress, "AverageTestEpRet", last=2) == 6.0  # NaN left out
    assert math.isnan(final_value(progress, "Missing"))
