"""``spinrl plot``: learning curves averaged over seeds, with bootstrap 95% confidence bands.

    spinrl plot data/ppo-bench data/vpg-bench --value AverageEpRet --save curves.png

Spinning Up's options and rules:

- Each LOGDIR is a folder, or the start of folder names: ``data/ppo-bench`` plots every
  ``data/ppo-bench*`` experiment (``data/ppo-bench_hid32``, ``data/ppo-bench_hid64-64``). End it with
  ``/`` to take exactly that folder.
- Runs are grouped by their ``exp_name`` (from config.json); ``--legend`` names one group per LOGDIR
  instead; ``--count`` draws every run on its own.
- ``--select``/``--exclude`` keep only the folders (LOGDIRs after that expansion) whose path contains
  all/none of the given strings; ``--legend`` then needs one name per folder kept.
- ``--value`` names one or more progress.txt columns, one panel each; "Performance" means
  AverageTestEpRet where the run has it, else AverageEpRet.
- ``--smooth N`` averages each curve over a window of N epochs before averaging across seeds.

A curve is the mean over a group's runs; the band is a 95% percentile-bootstrap interval of that mean
(resampling runs), which says how sure we are of the mean, not how widely runs spread. Runs whose x
values differ are interpolated onto the x values of the shortest run.

A run that cannot be drawn (files that cannot be read, no finished epoch yet, a missing column) is left
out with one warning line on stderr naming it; the others are drawn.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from spinrl.common.errors import UserError
from spinrl.results.runs import Run, find_runs, load_runs, performance_column, warn

FORMATS = (".png", ".svg", ".pdf")
BOOTSTRAP_REPS = 1000


def expand_logdirs(logdirs: list[str]) -> list[Path]:
    """Spinning Up's rule: ``dir/`` is that folder; ``path/prefix`` is every folder in ``path`` starting with
    ``prefix``. Raises a UserError naming the first argument that matches nothing."""
    out: list[Path] = []
    for logdir in logdirs:
        if logdir.endswith(os.sep) or logdir.endswith("/") or os.path.basename(logdir) in (".", ".."):
            if not os.path.isdir(logdir):
                raise UserError(
                    f"{logdir} is not a folder; give a run or experiment folder, e.g. data/ppo-bench"
                )
            out.append(Path(logdir))
            continue
        parent, prefix = os.path.split(os.path.normpath(logdir))
        parent = parent or "."
        matches = (
            sorted(Path(parent, d) for d in os.listdir(parent) if d.startswith(prefix))
            if os.path.isdir(parent)
            else []
        )
        matches = [m for m in matches if m.is_dir()]
        if not matches:
            raise UserError(f"{logdir} does not exist (and no folder in {parent} starts with {prefix!r})")
        out += matches
    return out


def select_logdirs(folders: list[Path], select: list[str] | None, exclude: list[str] | None) -> list[Path]:
    """Spinning Up's selection rules: keep the folders whose path contains every ``select`` string and
    none of the ``exclude`` strings (plain substrings of the path as matched, e.g. ``data/bench_hid32``)."""
    return [
        folder
        for folder in folders
        if all(s in str(folder) for s in select or []) and not any(s in str(folder) for s in exclude or [])
    ]


def collect_runs(
    logdirs: list[str],
    legend: list[str] | None = None,
    select: list[str] | None = None,
    exclude: list[str] | None = None,
) -> list[tuple[str, Run]]:
    """(label, run) for every run with logged epochs below ``logdirs``, after ``select``/``exclude``.

    As in Spinning Up, the LOGDIRs are first expanded to folders, ``select``/``exclude`` then keep or drop
    whole folders, and ``legend`` gives one name to each folder left. The label is the legend entry of
    the folder a run came from, else the run's exp_name. Runs that cannot be read or have no finished
    epoch are skipped, each with a warning.
    """
    matched = expand_logdirs(logdirs)
    folders = select_logdirs(matched, select, exclude)
    if not folders:
        names = ", ".join(str(f) for f in matched)
        raise UserError(f"--select/--exclude leave none of the folders {names}")
    if legend and len(legend) != len(folders):
        names = ", ".join(str(f) for f in folders)
        raise UserError(
            f"--legend has {len(legend)} name(s) but {len(folders)} folder(s) are plotted: {names}"
        )
    out = []
    for i, folder in enumerate(folders):
        paths = find_runs(folder)
        if not paths:
            raise UserError(f"{folder} holds no runs (no progress.txt, config.json or status.json below it)")
        for run in load_runs(paths):
            if run.num_epochs_logged == 0:  # started, but no epoch finished yet
                warn(f"skipping {run.path}: no finished epoch in its progress.txt yet")
                continue
            out.append((legend[i] if legend else run.exp_name, run))
    if not out:
        raise UserError(f"no logged epochs in any run under {', '.join(str(f) for f in folders)}")
    return out


def keep_runs_with(labelled: list[tuple[str, Run]], names: list[str]) -> list[tuple[str, Run]]:
    """The runs that have every column in ``names``; each other run is skipped with a warning.

    A name that no run has is a mistake (a misspelt column): one line with the valid names.
    """
    for name in names:
        if not any(_has_column(run, name) for _, run in labelled):
            column_for(labelled[0][1], name)  # raises, listing the columns
    kept = []
    for label, run in labelled:
        missing = [n for n in names if not _has_column(run, n)]
        if missing:
            warn(f"skipping {run.path}: its progress.txt has no column {', '.join(missing)}")
        else:
            kept.append((label, run))
    return kept


def _has_column(run: Run, name: str) -> bool:
    return (name == "Performance" and performance_column(run.progress) is not None) or name in run.progress


def column_for(run: Run, name: str) -> str:
    """The progress.txt column a --value/--xaxis name refers to in this run."""
    if name == "Performance":
        col = performance_column(run.progress)
        if col is not None:
            return col
    if name not in run.progress:
        valid = ", ".join(run.progress)
        raise UserError(f"{run.path}/progress.txt has no column {name!r}; valid: Performance, {valid}")
    return name


def smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Spinning Up's smoothing: each point becomes the mean of the ``window`` points around it.

    Near the ends, and on a run shorter than the window, a point averages only the points that exist.
    The centred slice of the full convolution is taken by hand: ``np.convolve(..., "same")`` returns
    ``window`` values, not ``len(y)``, when the window is the longer of the two.
    """
    if window <= 1 or len(y) == 0:
        return y
    kernel = np.ones(window)
    start = (window - 1) // 2
    sums = np.convolve(y, kernel, "full")[start : start + len(y)]
    counts = np.convolve(np.ones_like(y), kernel, "full")[start : start + len(y)]
    return sums / counts


ESTIMATORS = {"mean": np.mean, "median": np.median, "min": np.min, "max": np.max}


def bootstrap_mean_ci(
    ys: np.ndarray, level: float = 0.95, reps: int = BOOTSTRAP_REPS, seed: int = 0, estimator: str = "mean"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An estimator over runs (axis 0; the mean unless ``estimator`` says median, min or max, as
    Spinning Up's ``--est``) and a percentile-bootstrap confidence interval for it, at every x.

    With a single run the interval is the curve itself: one run says nothing about the spread.
    """
    est = ESTIMATORS[estimator]
    mean = est(ys, axis=0)
    if len(ys) < 2:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    resampled = est(ys[rng.integers(0, len(ys), size=(reps, len(ys)))], axis=1)  # (reps, T)
    alpha = (1 - level) / 2
    low, high = np.quantile(resampled, [alpha, 1 - alpha], axis=0)
    return mean, low, high


def group_curve(runs: list[Run], xaxis: str, value: str, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Stack the runs' curves on common x values: returns x (T,) and y (runs, T)."""
    curves = []
    for run in runs:
        x = run.progress[column_for(run, xaxis)]
        y = smooth(run.progress[column_for(run, value)], window)
        keep = np.isfinite(x) & np.isfinite(y)
        curves.append((x[keep], y[keep]))
    curves = [c for c in curves if len(c[0])]
    if not curves:
        return np.array([]), np.empty((0, 0))
    x_common = min((c[0] for c in curves), key=lambda x: x[-1])
    ys = np.stack([np.interp(x_common, x, y) for x, y in curves])
    return x_common, ys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spinrl plot", description=__doc__.split("\n\n")[0])
    parser.add_argument("logdir", nargs="+", help="run or experiment folders (or folder-name prefixes)")
    parser.add_argument(
        "--legend", "-l", nargs="*", help="one name per folder plotted (after --select/--exclude)"
    )
    parser.add_argument(
        "--xaxis", "-x", default="TotalEnvInteracts", help="x column (default TotalEnvInteracts)"
    )
    parser.add_argument(
        "--value",
        "-y",
        nargs="*",
        default=["Performance"],
        help="one or more y columns (default Performance), one panel each",
    )
    parser.add_argument("--count", action="store_true", help="draw every run separately instead of the mean")
    parser.add_argument(
        "--est",
        default="mean",
        choices=sorted(ESTIMATORS),
        help="estimator across a group's runs (default mean), with its bootstrap band",
    )
    parser.add_argument("--smooth", "-s", type=int, default=1, help="smoothing window in epochs (default 1)")
    parser.add_argument("--select", nargs="*", help="keep the folders whose path contains all of these")
    parser.add_argument("--exclude", nargs="*", help="drop the folders whose path contains any of these")
    parser.add_argument(
        "--save", help="write the figure to this file (.png, .svg or .pdf) instead of showing it"
    )
    parser.add_argument("--title", help="figure title")
    args = parser.parse_args(argv)
    make_plots(
        args.logdir,
        args.legend,
        args.xaxis,
        args.value,
        args.count,
        smooth=args.smooth,
        select=args.select,
        exclude=args.exclude,
        estimator=args.est,
        save=args.save,
        title=args.title,
    )
    return 0


def make_plots(
    all_logdirs: list[str],
    legend: list[str] | None = None,
    xaxis: str | None = None,
    values: str | list[str] | None = None,
    count: bool = False,
    font_scale: float = 1.5,
    smooth: int = 1,
    select: list[str] | None = None,
    exclude: list[str] | None = None,
    estimator: str = "mean",
    save: str | None = None,
    title: str | None = None,
) -> None:
    """Spinning Up's ``make_plots``: one figure panel per entry of ``values``, shown in a window, or
    written to ``save`` (.png, .svg or .pdf). ``font_scale`` is accepted for Spinning Up's callers and
    not used (the figure keeps matplotlib's font sizes)."""
    xaxis = xaxis or "TotalEnvInteracts"
    values = ["Performance"] if values is None else values if isinstance(values, list) else [values]
    if not values:
        raise UserError("--value needs at least one column name, e.g. --value AverageEpRet")
    if smooth < 1:
        raise UserError(f"--smooth {smooth} is not valid: give a window of 1 epoch or more")
    if estimator not in ESTIMATORS:
        raise UserError(f"--est {estimator!r} is not valid: use one of {', '.join(sorted(ESTIMATORS))}")
    if save and Path(save).suffix.lower() not in FORMATS:
        raise UserError(f"--save {save}: the file must end in {', '.join(FORMATS)}")

    labelled = collect_runs(all_logdirs, legend, select, exclude)
    labelled = keep_runs_with(labelled, [xaxis, *values])  # a misspelt name fails here

    groups: dict[str, list[Run]] = {}
    runs_per_label: dict[str, int] = {}
    for label, run in labelled:
        if count:  # Spinning Up's "condition2": the label plus the run's number within it
            runs_per_label[label] = runs_per_label.get(label, -1) + 1
            label = f"{label}-{runs_per_label[label]}"
        groups.setdefault(label, []).append(run)

    import matplotlib

    if save:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not save and matplotlib.get_backend().lower() in ("agg", "pdf", "svg", "ps", "cairo", "template"):
        raise UserError("there is no display to show the figure on; add --save curves.png (or .svg, .pdf)")

    fig, axes = plt.subplots(1, len(values), figsize=(6.0 * len(values), 4.2), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, value in zip(axes[0], values):
        for i, (label, runs) in enumerate(groups.items()):
            x, ys = group_curve(runs, xaxis, value, smooth)
            if not len(x):
                continue
            mean, low, high = bootstrap_mean_ci(ys, estimator=estimator)
            color = colors[i % len(colors)]
            n = f" (n={len(runs)})" if len(runs) > 1 else ""
            ax.plot(x, mean, color=color, linewidth=1.8, label=label + n)
            ax.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0)
        ax.set_xlabel(xaxis)
        ax.set_ylabel(value)
        ax.grid(True, alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
        if xaxis == "TotalEnvInteracts":
            ax.ticklabel_format(style="sci", axis="x", scilimits=(0, 0))
        ax.legend(loc="best", frameon=False, fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if save:
        os.makedirs(os.path.dirname(os.path.abspath(save)), exist_ok=True)
        fig.savefig(save, dpi=150)
        print(f"saved {save}")
    else:
        plt.show()
    plt.close(fig)


if __name__ == "__main__":
    import sys

    from spinrl.common.errors import run_main_guarded

    sys.exit(run_main_guarded(main))
