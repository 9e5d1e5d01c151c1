"""What a run prints: Spinning Up's epoch table, colours, whether a live display may be drawn, and the
one-line warnings of the commands.

Only rank 0 of an MPI job prints (:func:`print_line`).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from spinrl.common.mpi import PLAIN_OUTPUT_ENV, proc_id

COLORS = dict(gray=30, red=31, green=32, yellow=33, blue=34, magenta=35, cyan=36, white=37, crimson=38)


def colorize(text: str, color: str, bold: bool = False, highlight: bool = False) -> str:
    """``text`` wrapped in the ANSI codes for ``color`` (a background colour with ``highlight``)."""
    codes = [str(COLORS[color] + (10 if highlight else 0))] + (["1"] if bold else [])
    return f"\x1b[{';'.join(codes)}m{text}\x1b[0m"


def live_terminal() -> bool:
    """Whether a live progress bar and colours may be drawn: stdout is a terminal, and the launcher did
    not ask for plain text (under ``mpiexec`` a rank sees a pseudo-terminal even when the job's output
    goes to a pipe or a file, so the launcher tells the ranks what it sees, see :mod:`spinrl.common.mpi`)."""
    if os.environ.get(PLAIN_OUTPUT_ENV) == "1" or os.environ.get("TERM") == "dumb":
        return False
    return sys.stdout.isatty()


def format_epoch_table(row: dict[str, Any]) -> str:
    """Spinning Up's epoch table: one line per column, key on the left, value on the right."""
    key_width = max([len(k) for k in row] + [15])
    line = "-" * (key_width + 18)
    out = [line]
    for k, v in row.items():
        cell = f"{float(v):8.3g}" if isinstance(v, float | np.floating) else str(v)
        out.append(f"| {k:>{key_width}} | {cell:>13} |")
    out.append(line)
    return "\n".join(out)


def print_line(msg: str) -> None:
    """Print from rank 0 only."""
    if proc_id() == 0:
        print(msg, file=sys.stdout, flush=True)


def warn(message: str) -> None:
    """One warning line on stderr, for something skipped or left out while the work went on."""
    print(f"spinrl: warning: {message}", file=sys.stderr, flush=True)
