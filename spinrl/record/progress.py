"""progress.txt: Spinning Up's table of diagnostics, one tab-separated row per finished epoch.

:class:`ProgressTable` holds the row being filled (its columns are fixed by the first row), appends each
finished row to the file, and on ``--resume`` cuts the file back to the epochs the checkpoint covers
(:meth:`ProgressTable.truncate_to_epochs`), keeping a damaged file as it was beside it. :func:`read_progress`
reads a file back into columns, for the commands that read runs (:mod:`spinrl.results.runs`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from spinrl.common.errors import UserError
from spinrl.record.console import print_line
from spinrl.record.folder import write_text_atomically
from spinrl.record.names import PROGRESS_FILE, damaged_copy_name


class DamagedRunError(UserError):
    """A file of a run cannot be read: binary, cut short in a way no kill leaves, or of the wrong shape."""


def read_progress(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a progress.txt into columns of floats (cells that are not numbers become NaN).

    A row with the wrong number of cells (the last one, half written when a run was killed) is skipped.
    A file that is not text (binary, or holding NUL bytes) raises :class:`DamagedRunError`.
    """
    try:
        text = Path(path).read_text()
    except UnicodeDecodeError:
        raise DamagedRunError(f"{path} is not text (binary or damaged)") from None
    if "\0" in text:
        raise DamagedRunError(f"{path} holds NUL bytes (damaged)")
    lines = text.splitlines()
    if not lines:
        return {}
    headers = lines[0].split("\t")
    columns: dict[str, list[float]] = {h: [] for h in headers}
    for line in lines[1:]:
        cells = line.split("\t")
        if len(cells) != len(headers):
            continue
        for h, c in zip(headers, cells):
            try:
                columns[h].append(float(c))
            except ValueError:
                columns[h].append(float("nan"))
    return {h: np.asarray(v) for h, v in columns.items()}


class ProgressTable:
    """The row being filled and the file its finished rows go to.

    The first row fixes the columns (:meth:`set` refuses a new one later) and writes the header. After a
    resume kept rows of the file, the columns are the file's until the next row is written: a column the
    run logs that the file lacks is then added (:meth:`add_missing_columns`).
    """

    def __init__(self, path: Path):
        self.path = path
        self.headers: list[str] = []
        self.row: dict[str, Any] = {}
        self.first_row = True
        # After a resume kept rows of progress.txt: its columns, until the next row is written.
        self._columns_from_file = self._columns_added = False

    def set(self, key: str, val: Any) -> None:
        """Set the value of column ``key`` in this row (each column once per row; the first row fixes them)."""
        if self.first_row:
            self.headers.append(key)
        elif key not in self.headers:
            if not self._columns_from_file:
                raise KeyError(f"new column {key!r} after the first epoch; columns are fixed by then")
            # The first row after a resume, and the file lacked this column: it is added (add_missing_columns).
            self.headers.append(key)
            self._columns_added = True
        if key in self.row:
            raise KeyError(f"column {key!r} logged twice in one epoch")
        self.row[key] = val

    def current_row(self) -> dict[str, Any]:
        """This row in column order, an empty cell for a column not given."""
        return {k: self.row.get(k, "") for k in self.headers}

    def append(self, row: dict[str, Any]) -> None:
        """Append ``row`` to the file (the header first on the first row), flushed to disk."""
        header = "" if not self.first_row else "\t".join(self.headers) + "\n"
        with open(self.path, "a") as f:
            f.write(header + "\t".join(_fmt_cell(row[k]) for k in self.headers) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def next_row(self) -> None:
        """Start the next row: the columns are fixed from now on."""
        self.row.clear()
        self.first_row = False
        self._columns_from_file = self._columns_added = False

    # ----- resuming ----------------------------------------------------------------------------------------
    def truncate_to_epochs(self, num_epochs: int) -> None:
        """Keep the rows of progress.txt for epochs ``0 .. num_epochs - 1`` (for ``--resume``).

        Rows are kept by their ``Epoch`` value, not by their position, so a duplicated, missing or
        half-written row cannot shift what is kept: each epoch below ``num_epochs`` keeps its first
        complete row (a last row that only lacks its newline counts), everything else goes (it is
        logged again, once, when training repeats it). A file without an ``Epoch`` column keeps its
        first ``num_epochs`` rows. When an epoch below ``num_epochs`` has no readable row (a row cut
        in the middle, random bytes, an empty file), the file as it was is kept beside it as
        ``progress.txt.damaged`` (never overwriting one) and one line names the missing epochs.
        """
        if not self.path.exists():
            return
        raw = self.path.read_bytes()
        lines = raw.decode("utf-8", errors="replace").splitlines(keepends=True)
        headers = lines[0].rstrip("\n").split("\t") if lines and lines[0].endswith("\n") else []
        kept: dict[float, str] = {}
        if headers and _readable(headers):
            column = headers.index("Epoch") if "Epoch" in headers else None
            for line in lines[1:]:
                cells = line.rstrip("\n").split("\t")
                if len(cells) != len(headers) or not _readable(cells):
                    continue  # cut short by a kill or damage, or not a row of this table
                if column is None:
                    epoch = float(len(kept))
                else:
                    try:
                        epoch = float(cells[column])
                    except ValueError:
                        continue  # e.g. a second header row
                if 0 <= epoch < num_epochs and epoch not in kept:
                    kept[epoch] = line if line.endswith("\n") else line + "\n"
        missing = [e for e in range(num_epochs) if float(e) not in kept]
        if missing:
            self._report_damaged(raw, missing)
        if kept:
            self.headers, self.first_row = headers, False
            self._columns_from_file = True  # a column this run logs may be missing: see set
            write_text_atomically(self.path, lines[0] + "".join(kept.values()))
        else:  # no epoch survives: start the file afresh, header included
            self.headers, self.first_row = [], True
            write_text_atomically(self.path, "")

    def _report_damaged(self, raw: bytes, missing: list[int]) -> None:
        """Say in one line which epochs a damaged progress.txt lost, keeping the file as it was."""
        kept_as = f", and the file as it was in {self._keep_copy(raw)}" if raw else ""
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        print_line(
            f"resume: {PROGRESS_FILE} is damaged: no readable row for epoch{'s' if len(missing) > 1 else ''} "
            f"{shown}; kept the rows that could be read{kept_as}"
        )

    def _keep_copy(self, raw: bytes) -> str:
        """Write ``raw`` (the file as it was) to the first free ``progress.txt.damaged[-N]``; return the name."""
        n = 1
        while (backup := self.path.with_name(damaged_copy_name(self.path.name, n))).exists():
            n += 1
        backup.write_bytes(raw)
        return backup.name

    def add_missing_columns(self) -> None:
        """After a resume: rewrite the file with the columns this run logs that it lacked (their cells in
        the old rows empty), keeping the file as it was as ``progress.txt.damaged``."""
        if not self._columns_added:
            return
        raw = self.path.read_bytes() if self.path.exists() else b""
        lines = raw.decode("utf-8", errors="replace").splitlines()
        old = lines[0].split("\t") if lines else []
        rows = [dict(zip(old, line.split("\t"), strict=False)) for line in lines[1:]]
        added = ", ".join(k for k in self.headers if k not in old)
        print_line(
            f"resume: {PROGRESS_FILE} had no column {added}: added, empty in its earlier rows, and the file "
            f"as it was kept in {self._keep_copy(raw)}"
        )
        text = "\t".join(self.headers) + "\n"
        text += "".join("\t".join(r.get(k, "") for k in self.headers) + "\n" for r in rows)
        write_text_atomically(self.path, text)


def _fmt_cell(v: Any) -> str:
    if isinstance(v, float | np.floating):
        return f"{float(v):.8g}"
    return str(v)


def _readable(cells: list[str]) -> bool:
    """Whether cells read from progress.txt are text a run wrote (not random bytes decoded)."""
    return all(cell.isprintable() and "\ufffd" not in cell for cell in cells)
