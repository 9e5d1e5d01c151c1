"""spinrl.record.progress: the progress table, its file, and cutting it back on resume."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spinrl.record.progress import DamagedRunError, ProgressTable, read_progress


def _row(table: ProgressTable, **values) -> None:
    for key, val in values.items():
        table.set(key, val)
    table.add_missing_columns()
    table.append(table.current_row())
    table.next_row()


def test_the_first_row_fixes_the_columns_and_writes_the_header(tmp_path):
    table = ProgressTable(tmp_path / "progress.txt")
    _row(table, Epoch=0, Loss=0.5, Name="a")
    table.set("Epoch", 1)  # Loss and Name left out: empty cells
    _row(table)
    assert (tmp_path / "progress.txt").read_text() == "Epoch\tLoss\tName\n0\t0.5\ta\n1\t\t\n"
    with pytest.raises(KeyError, match="new column 'Extra'"):
        table.set("Extra", 1)
    table.set("Loss", 1.0)
    with pytest.raises(KeyError, match="logged twice"):
        table.set("Loss", 2.0)


def test_floats_keep_eight_significant_digits(tmp_path):
    table = ProgressTable(tmp_path / "progress.txt")
    _row(table, A=1 / 3, B=np.float32(2.5), C=7)
    assert (tmp_path / "progress.txt").read_text().splitlines()[1] == "0.33333333\t2.5\t7"


def test_truncation_keeps_rows_by_their_epoch_and_a_copy_of_a_damaged_file(tmp_path, capsys):
    path = tmp_path / "progress.txt"
    path.write_text("Epoch\tX\n0\t1\n0\t9\n2\t3\ncut")
    table = ProgressTable(path)
    table.truncate_to_epochs(3)  # epoch 1 has no row: the file as it was is kept beside it
    assert path.read_text() == "Epoch\tX\n0\t1\n2\t3\n"
    assert (tmp_path / "progress.txt.damaged").read_text() == "Epoch\tX\n0\t1\n0\t9\n2\t3\ncut"
    assert "no readable row for epoch 1;" in capsys.readouterr().out
    table.truncate_to_epochs(3)
    assert (tmp_path / "progress.txt.damaged-2").exists()  # never overwriting the first copy


def test_a_resumed_run_may_add_a_column_the_file_lacked(tmp_path, capsys):
    path = tmp_path / "progress.txt"
    path.write_text("Epoch\tX\n0\t1\n")
    table = ProgressTable(path)
    table.truncate_to_epochs(1)
    _row(table, Epoch=1, X=2, New=5)
    assert path.read_text() == "Epoch\tX\tNew\n0\t1\t\n1\t2\t5\n"
    assert "had no column New" in capsys.readouterr().out
    with pytest.raises(KeyError):  # only in the first row after the resume
        table.set("Later", 1)


def test_read_progress_gives_columns_of_floats(tmp_path):
    path = tmp_path / "progress.txt"
    path.write_text("Epoch\tName\n0\tx\n1\t2.5\nhalf")
    cols = read_progress(path)
    assert cols["Epoch"].tolist() == [0.0, 1.0]
    assert math.isnan(cols["Name"][0]) and cols["Name"][1] == 2.5
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DamagedRunError):
        read_progress(path)
