"""``spinrl ls DIR ...``: list runs with their algorithm, env, seed, progress, latest return and status.

    $ spinrl ls data
    run                              algo  env          seed  epoch   return  status
    cp/cp_s0                         ppo   CartPole-v1     0  50/50    500.0  finished
    cp/cp_s10                        ppo   CartPole-v1    10  31/50    212.4  interrupted

A run is any folder holding a ``progress.txt``, ``config.json`` or ``status.json``. Its status is
:func:`spinrl.record.status.run_state`: a run marked "running" whose process no longer exists on this machine
was interrupted (killed, crashed, or the machine went down); continue it with ``--resume``. A run whose
files cannot be read (binary, not JSON) is left out with one warning line on stderr naming it.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from spinrl.common.errors import UserError
from spinrl.record.folder import default_data_dir
from spinrl.results.runs import final_value, find_runs, load_runs, performance_column


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spinrl ls", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "dirs", nargs="*", help="folders to search for runs (default ./data or $SPINRL_DATA_DIR)"
    )
    parser.add_argument("--status", help="show only runs with this status, e.g. interrupted")
    args = parser.parse_args(argv)

    roots = args.dirs or [default_data_dir()]
    rows = []
    for root in roots:
        if not os.path.isdir(root):
            raise UserError(f"{root} is not a folder; give the data folder that holds your runs, e.g. data/")
        for run in load_runs(find_runs(root)):
            path, status = run.path, run.state
            if args.status and status != args.status:
                continue
            col = performance_column(run.progress)
            ret = final_value(run.progress, col) if col else float("nan")
            epochs = _count((run.status or {}).get("epochs", run.config.get("epochs")))
            epoch = _count((run.status or {}).get("epoch", run.num_epochs_logged))
            rel = os.path.relpath(path, root)
            rows.append(
                [
                    rel if rel != "." else str(path),
                    run.algo,
                    run.env,
                    run.seed,
                    f"{epoch}/{epochs}",
                    "-" if np.isnan(ret) else f"{ret:.1f}",
                    status,
                ]
            )
    if not rows:
        where = ", ".join(roots)
        print(f"no runs found under {where}" + (f" with status {args.status}" if args.status else ""))
        return 0
    print(
        format_table(
            ["run", "algo", "env", "seed", "epoch", "return", "status"],
            rows,
            right_aligned={"seed", "epoch", "return"},
        )
    )
    return 0


def _count(value: object) -> str:
    """An epoch count as a cell: a whole number, or "?" for anything a damaged file holds instead."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "?"


def printable(text: object) -> str:
    """``text`` with every control character (newline, tab, terminal escape) shown as ``?``: a cell read
    from a run's files must not break the table or command the terminal."""
    return "".join(c if c.isprintable() else "?" for c in str(text))


def format_table(headers: list[str], rows: list[list[str]], right_aligned: set[str] = frozenset()) -> str:
    """A plain-text table: columns padded to their widest cell, two spaces apart."""
    rows = [[printable(c) for c in row] for row in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    lines = []
    for row in [headers, *rows]:
        cells = [
            str(c).rjust(w) if h in right_aligned else str(c).ljust(w)
            for c, w, h in zip(row, widths, headers)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    from spinrl.common.errors import run_main_guarded

    sys.exit(run_main_guarded(main))
