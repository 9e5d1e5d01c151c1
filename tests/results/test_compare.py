"""spinrl compare: the statistics of Agarwal et al. (2021) against hand computations, and the table."""

from __future__ import annotations

import numpy as np
import pytest
from run_folders import assert_warned_about, damage, write_run

from spinrl.cli import run_main_guarded
from spinrl.results.compare import (
    interquartile_mean,
    main,
    optimality_gap,
    probability_of_improvement,
    stratified_bootstrap_ci,
)

SCORES = np.array([7.0, 1.0, 100.0, 3.0, 5.0, 2.0, 8.0, 4.0, 6.0, -50.0, 9.0, 10.0])


def test_iqm_by_hand():
    # 12 runs: drop the 3 lowest (-50, 1, 2) and the 3 highest (9, 10, 100); mean of 3..8 = 5.5.
    assert interquartile_mean(SCORES) == pytest.approx(5.5)
    # 10 runs: floor(10 / 4) = 2 dropped at each end (scipy.stats.trim_mean(x, 0.25) agrees):
    # 1..9 and 1000 without 1, 2, 9, 1000 -> mean of 3..8 = 5.5.
    assert interquartile_mean(np.array([1000.0, *range(1, 10)])) == pytest.approx(5.5)
    # 5 runs: floor(5 / 4) = 1 dropped at each end: 1 and 300 go -> mean of 2, 4, 5 = 11 / 3.
    assert interquartile_mean(np.array([5.0, 1.0, 4.0, 2.0, 300.0])) == pytest.approx(11 / 3)


def test_optimality_gap_and_probability_of_improvement_by_hand():
    # Target 6: shortfalls of 1..8 are 5, 4, 3, 2, 1, 0, 0, 0 -> 15 / 8.
    assert optimality_gap(np.arange(1.0, 9.0), target=6.0) == pytest.approx(15 / 8)
    # x = [1, 3], y = [2, 3]: pairs (1,2) lose, (1,3) lose, (3,2) win, (3,3) tie -> (1 + 0.5) / 4.
    task1 = probability_of_improvement([np.array([1.0, 3.0])], [np.array([2.0, 3.0])])
    assert task1 == pytest.approx(0.375)
    # Averaged over tasks: a second task where x always wins gives (0.375 + 1) / 2.
    both = probability_of_improvement(
        [np.array([1.0, 3.0]), np.array([9.0])], [np.array([2.0, 3.0]), np.array([0.0, 1.0])]
    )
    assert both == pytest.approx(0.6875)


def test_stratified_bootstrap_keeps_tasks_apart():
    # Task means 0 and 100 with no spread within tasks: every stratified resample has mean 50 exactly,
    # while a bootstrap that mixed tasks would not.
    tasks = [np.zeros(4), np.full(4, 100.0)]
    point, low, high = stratified_bootstrap_ci(lambda t: float(np.concatenate(t).mean()), tasks, reps=200)
    assert point == low == high == 50.0
    spread = [np.array([0.0, 10.0, 20.0, 30.0])]
    point, low, high = stratified_bootstrap_ci(lambda t: float(t[0].mean()), spread, reps=500)
    assert point == 15.0 and 0.0 <= low < 15.0 < high <= 30.0


@pytest.fixture
def two_algos(tmp_path):
    for seed, (a, b) in enumerate([(400.0, 100.0), (450.0, 150.0), (500.0, 200.0), (480.0, 90.0)]):
        write_run(tmp_path / "ppo-cp" / f"ppo-cp_s{seed}", "ppo", "CartPole-v1", seed, [10.0, a])
        write_run(tmp_path / "vpg-cp" / f"vpg-cp_s{seed}", "vpg", "CartPole-v1", seed, [10.0, b])
    return tmp_path


def test_table_and_figure(two_algos, tmp_path, capsys):
    out = tmp_path / "cmp.svg"
    argv = [str(two_algos / "ppo-cp"), str(two_algos / "vpg-cp"), "--reps", "300", "--save", str(out)]
    assert run_main_guarded(main, argv) == 0
    text = capsys.readouterr().out
    assert "CartPole-v1: optimality gap to 475 (reward threshold)" in text
    ppo_row = next(line for line in text.splitlines() if line.startswith("ppo "))
    # ppo's final returns 400, 450, 500, 480: mean 457.5, median 465, IQM (drop 400 and 500) 465,
    # gap to 475: (75 + 25 + 0 + 0) / 4 = 25.
    assert ppo_row.split()[1:3] == ["4", "457.5"]
    assert "465 [" in ppo_row and ppo_row.count("465 [") == 2 and "25 [" in ppo_row
    assert "P(ppo > vpg)  1 [1, 1]" in text
    assert out.stat().st_size > 1000


def test_unusable_runs_are_named_not_dropped_silently(two_algos, capsys):
    broken = damage(
        write_run(two_algos / "ppo-cp" / "ppo-cp_s8", "ppo", "CartPole-v1", 8, [1.0]), "binary config.json"
    )
    diverged = write_run(two_algos / "vpg-cp" / "vpg-cp_s8", "vpg", "CartPole-v1", 8, [float("nan")] * 2)
    no_column = write_run(two_algos / "vpg-cp" / "vpg-cp_s9", "vpg", "CartPole-v1", 9, [10.0])
    (no_column / "progress.txt").write_text("Epoch\tTotalEnvInteracts\n0\t1000\n")
    argv = [str(two_algos / "ppo-cp"), str(two_algos / "vpg-cp"), "--reps", "200"]
    assert run_main_guarded(main, argv) == 0
    out, err = capsys.readouterr()
    assert_warned_about(err, [broken, diverged, no_column])
    assert "no finite AverageEpRet" in err and "no column Performance" in err
    rows = {
        line.split()[0]: line.split()[1] for line in out.splitlines() if line.startswith(("ppo ", "vpg "))
    }
    assert rows == {"ppo": "4", "vpg": "4"}  # the usable runs, all of them


def test_legend_and_target_and_refusals(two_algos, capsys):
    argv = [
        str(two_algos / "ppo-cp"),
        str(two_algos / "vpg-cp"),
        "-l",
        "a",
        "b",
        "--target",
        "CartPole-v1=500",
    ]
    assert run_main_guarded(main, argv + ["--reps", "200"]) == 0
    text = capsys.readouterr().out
    assert "optimality gap to 500 (--target)" in text and "P(a > b)" in text
    assert run_main_guarded(main, [str(two_algos / "ppo-cp"), "--target", "lots"]) == 2
    assert "--target 'lots' is not valid" in capsys.readouterr().err
    assert run_main_guarded(main, [str(two_algos / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err
