"""spinrl.record.status: status.json, and marking a run failed by the process that ran it."""

from __future__ import annotations

import os

from spinrl.common import errors
from spinrl.record.status import (
    FAILED,
    INTERRUPTED,
    RUNNING,
    mark_failed,
    mark_failed_at_exit,
    read_status,
    run_state,
    write_status,
)


def test_write_and_read_status(tmp_path):
    write_status(tmp_path, RUNNING, 2, 5, note="x")
    status = read_status(tmp_path)
    assert (status["status"], status["epoch"], status["epochs"], status["note"]) == (RUNNING, 2, 5, "x")
    assert status["pid"] == os.getpid() and run_state(status) == RUNNING
    assert run_state(dict(status, pid_start=-1)) == INTERRUPTED  # the pid now names another process
    assert read_status(tmp_path / "none") is None


def test_only_this_processs_running_run_is_marked_failed(tmp_path):
    write_status(tmp_path, "finished", 5, 5)
    assert mark_failed(tmp_path, ValueError("boom")) is None
    write_status(tmp_path, RUNNING, 2, 5)
    assert mark_failed(tmp_path, ValueError("boom\nmore")) == dict(status=FAILED, epoch=2, epochs=5)
    assert read_status(tmp_path)["error"] == "ValueError: boom"


def test_at_exit_the_error_that_ended_the_process_fails_the_run(tmp_path, monkeypatch):
    write_status(tmp_path, RUNNING, 1, 3)
    monkeypatch.setattr(errors, "caught_error", None)
    assert mark_failed_at_exit(tmp_path) is None  # a clean exit, or Ctrl-C: left running
    monkeypatch.setattr(errors, "caught_error", errors.UserError("bad --epochs"))
    assert mark_failed_at_exit(tmp_path)["status"] == FAILED
    assert read_status(tmp_path)["error"] == "UserError: bad --epochs"
