"""spinrl plot: curves from a fixture data folder, every output format, and one-line refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from run_folders import assert_warned_about, damage, write_run

from spinrl.cli import run_main_guarded
from spinrl.common.errors import UserError
from spinrl.results.plot import bootstrap_mean_ci, expand_logdirs, main, smooth


@pytest.fixture
def data(tmp_path) -> Path:
    """Two experiments of three seeds each, named like a grid's runs."""
    rng = np.random.default_rng(0)
    for exp, slope in (("bench_hid32", 10.0), ("bench_hid64-64", 20.0)):
        for seed in (0, 10, 20):
            returns = list(slope * np.arange(8) + rng.normal(0, 5, 8))
            write_run(tmp_path / exp / f"{exp}_s{seed}", "ppo", "CartPole-v1", seed, returns)
    return tmp_path


def test_prefix_matching_like_spinning_up(data, monkeypatch):
    assert [p.name for p in expand_logdirs([str(data / "bench")])] == ["bench_hid32", "bench_hid64-64"]
    assert [p.name for p in expand_logdirs([str(data / "bench_hid32") + "/"])] == ["bench_hid32"]
    monkeypatch.chdir(data / "bench_hid32")
    (data / "bench_hid32" / ".hidden").mkdir()
    assert expand_logdirs(["."]) == [Path(".")]  # the folder itself, not its hidden entries


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_writes_a_non_empty_figure(data, tmp_path, suffix, capsys):
    out = tmp_path / f"curve{suffix}"
    argv = [str(data / "bench"), "--value", "AverageEpRet", "StdEpRet", "--smooth", "2", "--save", str(out)]
    assert run_main_guarded(main, argv) == 0
    assert out.stat().st_size > 1000
    assert capsys.readouterr().out.strip() == f"saved {out}"


def test_png_has_the_curves(data, tmp_path):
    import matplotlib.image

    out = tmp_path / "curve.png"
    argv = [str(data / "bench"), "--legend", "small", "big", "--select", "bench_hid", "--save", str(out)]
    assert run_main_guarded(main, argv) == 0
    pixels = matplotlib.image.imread(out)[..., :3]
    # Two curves in the default colours C0 (blue) and C1 (orange) are drawn, not just axes.
    blue, orange = np.array([0.12, 0.47, 0.71]), np.array([1.0, 0.5, 0.05])
    for colour in (blue, orange):
        assert (np.abs(pixels - colour).sum(axis=-1) < 0.1).sum() > 100


@pytest.mark.parametrize(
    "make_argv, message",
    [
        (lambda d: [str(d / "missing")], "does not exist"),
        (lambda d: [str(d / "empty")], "holds no runs"),
        (lambda d: [str(d / "bench"), "--value", "AverageEpReturn"], "no column 'AverageEpReturn'"),
        (lambda d: [str(d / "bench"), "--legend", "one"], "--legend has 1 name(s)"),
        (lambda d: [str(d / "bench"), "--save", str(d / "x.jpg")], "must end in .png, .svg, .pdf"),
        (lambda d: [str(d / "bench"), "--exclude", "bench"], "--select/--exclude leave none of the folders"),
        (lambda d: [str(d / "bench"), "--legend", "a", "b", "--select", "hid64"], "--legend has 2 name(s)"),
    ],
)
def test_refuses_with_one_line(data, capsys, make_argv, message):
    (data / "empty").mkdir()
    assert run_main_guarded(main, make_argv(data)) == 2
    err = capsys.readouterr().err
    assert err.startswith("spinrl: error: ") and message in err
    assert err.count("\n") == 1


def test_command_line_refuses_missing_dir_without_traceback(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "spinrl.cli", "plot", str(tmp_path / "nope")], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert (
        result.stderr
        == f"spinrl: error: {tmp_path / 'nope'} does not exist (and no folder in {tmp_path} starts with 'nope')\n"
    )


def test_damaged_runs_are_skipped_with_a_warning_and_the_rest_is_drawn(data, tmp_path, capsys):
    runs = sorted((data / "bench_hid32").iterdir())
    bad = [damage(runs[0], "binary progress.txt"), damage(runs[1], "config.json not JSON")]
    extra = write_run(data / "bench_hid64-64" / "bench_hid64-64_s30", "ppo", "CartPole-v1", 30, [1.0])
    damage(extra, "config.json a list")
    started = write_run(data / "bench_hid64-64" / "bench_hid64-64_s40", "ppo", "CartPole-v1", 40, [])
    (data / "bench_hid64-64" / "bench_hid64-64_s0" / "checkpoint.json").write_bytes(b"\x00\xff")  # not read
    out = tmp_path / "curve.png"
    assert run_main_guarded(main, [str(data / "bench"), "--save", str(out)]) == 0
    assert out.stat().st_size > 1000
    assert_warned_about(capsys.readouterr().err, [*bad, extra, started])


def test_runs_without_the_column_are_skipped_but_a_misspelt_column_is_an_error(data, tmp_path, capsys):
    odd = data / "bench_hid32" / "bench_hid32_s0"
    (odd / "progress.txt").write_text("Epoch\tTotalEnvInteracts\n0\t1000\n1\t2000\n")
    out = tmp_path / "curve.png"
    assert run_main_guarded(main, [str(data / "bench"), "--value", "StdEpRet", "--save", str(out)]) == 0
    err = capsys.readouterr().err
    assert_warned_about(err, [odd])
    assert "no column StdEpRet" in err
    for run in (data / "bench_hid32").iterdir():
        damage(run, "binary progress.txt")
    for run in (data / "bench_hid64-64").iterdir():
        damage(run, "binary config.json")
    assert run_main_guarded(main, [str(data / "bench"), "--save", str(out)]) == 2  # nothing usable left
    err_lines = capsys.readouterr().err.splitlines()
    assert err_lines[-1].startswith("spinrl: error: no logged epochs")
    assert sum(line.startswith("spinrl: warning: skipping") for line in err_lines) == 6


def test_smooth_and_bootstrap_band():
    assert np.allclose(smooth(np.array([0.0, 3.0, 6.0]), 3), [1.5, 3.0, 4.5])  # edges average fewer points
    ys = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    mean, low, high = bootstrap_mean_ci(ys)
    assert np.allclose(mean, [2.0, 3.0])
    assert np.all(low < mean) and np.all(mean < high) and np.all(low >= 0.0) and np.all(high <= 5.0)
    one = bootstrap_mean_ci(ys[:1])
    assert np.array_equal(one[1], ys[0]) and np.array_equal(one[2], ys[0])


def test_smooth_window_longer_than_the_run():
    y = np.array([1.0, 2.0, 6.0])
    for window in (2, 3):  # where the window fits, the same numbers as numpy's centred convolution
        same = np.convolve(y, np.ones(window), "same") / np.convolve(np.ones(3), np.ones(window), "same")
        assert np.allclose(smooth(y, window), same)
    # Longer than the run: one value per epoch, each the mean of the points its window reaches.
    assert np.allclose(smooth(y, 5), [3.0, 3.0, 3.0])
    assert np.allclose(smooth(y, 4), [1.5, 3.0, 3.0])  # an even window reaches one more point ahead
    assert np.allclose(smooth(y[:1], 5), [1.0])


def test_smooth_longer_than_a_short_run_plots(tmp_path, capsys):
    """The README's ``--smooth 5`` on runs of 2 and 3 epochs: a figure, no IndexError."""
    write_run(tmp_path / "short" / "short_s0", "ppo", "CartPole-v1", 0, [1.0, 2.0])
    write_run(tmp_path / "short" / "short_s1", "ppo", "CartPole-v1", 1, [1.0, 2.0, 4.0])
    out = tmp_path / "short.png"
    argv = [str(tmp_path / "short"), "--value", "AverageEpRet", "--smooth", "5", "--save", str(out)]
    assert run_main_guarded(main, argv) == 0
    assert out.stat().st_size > 0
    assert "Traceback" not in capsys.readouterr().err


def test_estimator_option_median_and_max():
    import numpy as np

    from spinrl.results.plot import bootstrap_mean_ci

    ys = np.array([[0.0, 1.0], [10.0, 2.0], [2.0, 30.0]])
    median, low, high = bootstrap_mean_ci(ys, estimator="median")
    np.testing.assert_allclose(median, [2.0, 2.0])
    assert np.all(low <= median) and np.all(median <= high)
    np.testing.assert_allclose(bootstrap_mean_ci(ys, estimator="max")[0], [10.0, 30.0])


def test_select_and_exclude_keep_whole_folders_and_the_legend_counts_what_is_left(data, tmp_path, capsys):
    """Spinning Up's order: expand the LOGDIRs, keep the folders whose path contains every --select string
    (and none of --exclude), then give one legend name to each folder kept."""
    from spinrl.results.plot import collect_runs

    labelled = collect_runs([str(data / "bench")], legend=["big"], select=["hid64"])
    assert {label for label, _ in labelled} == {"big"}
    assert {run.path.parent.name for _, run in labelled} == {"bench_hid64-64"}
    labelled = collect_runs([str(data / "bench")], legend=["small"], exclude=["64"])
    assert {run.path.parent.name for _, run in labelled} == {"bench_hid32"} and len(labelled) == 3
    # A string that only a run's own folder contains does not select the experiment folder.
    with pytest.raises(UserError, match="leave none of the folders"):
        collect_runs([str(data / "bench")], select=["_s10"])
    out = tmp_path / "one.png"
    argv = [str(data / "bench"), "--select", "hid32", "--legend", "small", "--save", str(out)]
    assert run_main_guarded(main, argv) == 0 and out.stat().st_size > 1000


def test_make_plots_is_spinning_ups_entry_point(data, tmp_path):
    from spinrl.results.plot import make_plots

    out = tmp_path / "panels.png"
    make_plots(
        [str(data / "bench")],
        None,
        "TotalEnvInteracts",
        ["AverageEpRet", "StdEpRet"],
        smooth=2,
        save=str(out),
    )
    assert out.stat().st_size > 1000
    with pytest.raises(UserError, match="--smooth 0"):
        make_plots([str(data / "bench")], smooth=0, save=str(out))
