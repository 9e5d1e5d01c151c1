"""--resume and what a run folder records: the checkpoint carries the settings the same-run rule
compares (config.json may be gone), a damaged progress.txt loses no row that can be read and is kept
as it was, and a refused resume changes nothing."""

from __future__ import annotations

import json
import shutil

import pytest

from spinrl.algos.ppo import ppo
from spinrl.record.checkpoint import CheckpointError, checkpoint_path
from spinrl.record.config import ResumeMismatchError
from spinrl.record.logger import read_progress

SETTINGS = dict(steps_per_epoch=200, train_pi_iters=1, train_v_iters=1, max_ep_len=50)


def _train(run, epochs: int, resume: bool = False, **changes):
    ppo("CartPole-v1", epochs=epochs, resume=resume, logger_kwargs=dict(output_dir=str(run), quiet=True),
        **dict(SETTINGS, **changes))  # fmt: skip


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    """A finished 2-epoch run with its checkpoint after epoch 2; tests change copies of it."""
    run = tmp_path_factory.mktemp("base") / "run"
    _train(run, 2)
    return run


@pytest.fixture
def run(two_epochs, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(two_epochs, copy)
    return copy


def _epochs(run) -> list[int]:
    return read_progress(run / "progress.txt")["Epoch"].astype(int).tolist()


def _backups(run) -> list:
    return sorted(p for p in run.iterdir() if p.name.startswith("progress.txt.damaged"))


# ----- item 4: the checkpoint carries the run's settings ---------------------------------------------------
def test_resume_without_config_json_refuses_other_settings_and_writes_nothing(run):
    (run / "config.json").unlink()
    before = (run / "progress.txt").read_bytes()
    with pytest.raises(ResumeMismatchError, match="gamma from 0.99 to 0.5 and pi_lr from 0.0003 to 0.01"):
        _train(run, 3, resume=True, pi_lr=0.01, gamma=0.5)
    assert not (run / "config.json").exists() and (run / "progress.txt").read_bytes() == before


def test_resume_without_config_json_and_the_same_settings_records_the_run_again(run, two_epochs):
    (run / "config.json").unlink()
    _train(run, 3, resume=True)
    assert _epochs(run) == [0, 1, 2]
    original = json.loads((two_epochs / "config.json").read_text())
    assert json.loads((run / "config.json").read_text()) == dict(original, epochs=3)


def test_a_refused_resume_leaves_config_json_as_it_was(run):
    before = (run / "config.json").read_bytes()
    checkpoint = checkpoint_path(run)
    checkpoint.write_bytes(checkpoint.read_bytes()[:-100])  # damaged: its digest no longer matches
    with pytest.raises(CheckpointError):
        _train(run, 3, resume=True)
    assert (run / "config.json").read_bytes() == before


# ----- item 5: a damaged progress.txt -----------------------------------------------------------------------
def test_a_last_row_without_its_newline_is_kept(run):
    progress = run / "progress.txt"
    progress.write_bytes(progress.read_bytes().rstrip(b"\n"))
    _train(run, 3, resume=True)
    assert _epochs(run) == [0, 1, 2] and _backups(run) == []


@pytest.mark.parametrize(
    "damage, kept",
    [
        (lambda lines: lines[:2] + [lines[2][: len(lines[2]) // 2]], [0]),  # epoch 1's row cut in the middle
        (lambda lines: [bytes(range(256)) * 4], []),  # random bytes
        (lambda lines: [], []),  # an empty file
    ],
    ids=["row-cut", "random-bytes", "empty"],
)
def test_a_damaged_progress_txt_keeps_what_can_be_read_and_the_file_as_it_was(run, capsys, damage, kept):
    progress = run / "progress.txt"
    damaged = b"".join(damage(progress.read_bytes().splitlines(keepends=True)))
    progress.write_bytes(damaged)
    _train(run, 3, resume=True)
    assert _epochs(run) == [*kept, 2]
    missing = [e for e in (0, 1) if e not in kept]
    said = [
        line for line in capsys.readouterr().out.splitlines() if "progress.txt" in line and "damaged" in line
    ]
    assert (
        len(said) == 1 and f"epoch{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))}" in said[0]
    )
    if damaged:  # nothing the user had is lost: the file as it was sits next to the new one
        assert [b.read_bytes() for b in _backups(run)] == [damaged]


def test_a_progress_txt_without_a_column_is_completed_not_a_traceback(run):
    progress = run / "progress.txt"
    rows = [line.split("\t") for line in progress.read_text().splitlines()]
    drop = rows[0].index("KL")
    progress.write_text("".join("\t".join(r[:drop] + r[drop + 1 :]) + "\n" for r in rows))
    _train(run, 3, resume=True)
    cols = read_progress(progress)
    assert cols["Epoch"].astype(int).tolist() == [0, 1, 2] and "KL" in cols
    assert len(_backups(run)) == 1
