"""spinrl ls: every run with its algorithm, env, seed, progress, latest return and status."""

from __future__ import annotations

import subprocess
import sys

from run_folders import assert_warned_about, damage, write_run

from spinrl.cli import run_main_guarded
from spinrl.results.ls import main


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid  # reaped: no process has this id now (until the system reuses it)


def test_lists_runs_with_status(tmp_path, capsys):
    write_run(tmp_path / "cp" / "cp_s0", "ppo", "CartPole-v1", 0, [10.0, 20.0, 500.0])
    write_run(
        tmp_path / "cp" / "cp_s10", "ppo", "CartPole-v1", 10, [10.0, 212.4], status="running", pid=dead_pid()
    )
    write_run(
        tmp_path / "cp" / "cp_s20", "ppo", "CartPole-v1", 20, [10.0], status="running"
    )  # pid: this process
    write_run(tmp_path / "hop" / "hop_s0", "sac", "Hopper-v5", 0, [1.0], status="failed")
    (tmp_path / "cp" / "cp_s0" / "tb").mkdir()  # TensorBoard folders are not runs
    assert run_main_guarded(main, [str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["run", "algo", "env", "seed", "epoch", "return", "status"]
    rows = [line.split() for line in lines[1:]]
    assert rows == [
        ["cp/cp_s0", "ppo", "CartPole-v1", "0", "3/3", "500.0", "finished"],
        ["cp/cp_s10", "ppo", "CartPole-v1", "10", "2/2", "212.4", "interrupted"],
        ["cp/cp_s20", "ppo", "CartPole-v1", "20", "1/1", "10.0", "running"],
        ["hop/hop_s0", "sac", "Hopper-v5", "0", "1/1", "1.0", "failed"],
    ]
    assert run_main_guarded(main, [str(tmp_path), "--status", "interrupted"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == ["cp/cp_s10"]


# The status rules themselves (unknown, finished, interrupted, running elsewhere) are tested in
# record/test_folder.py, beside spinrl.record.folder.run_state, which ls uses.


def test_a_damaged_run_is_one_warning_and_the_others_are_listed(tmp_path, capsys):
    good = write_run(tmp_path / "cp" / "cp_s0", "ppo", "CartPole-v1", 0, [10.0, 20.0])
    bad = [
        damage(write_run(tmp_path / "cp" / f"cp_s{seed}", "ppo", "CartPole-v1", seed, [1.0]), how)
        for seed, how in ((1, "binary progress.txt"), (2, "config.json not JSON"), (3, "config.json a list"))
    ]
    (good / "checkpoint.json").write_bytes(b"\x00\xffnot a pointer")  # ls does not need it
    (good / "status.json").write_bytes(b"\xff\xfe")  # unreadable status: unknown, not an error
    assert run_main_guarded(main, [str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["cp/cp_s0"]
    assert out.splitlines()[1].split()[-1] == "unknown"
    assert_warned_about(err, bad)


def test_missing_folder_is_one_line(tmp_path, capsys):
    assert run_main_guarded(main, [str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spinrl: error: ") and "is not a folder" in err and err.count("\n") == 1
    (tmp_path / "empty").mkdir()
    assert run_main_guarded(main, [str(tmp_path / "empty")]) == 0
    assert "no runs found" in capsys.readouterr().out


def test_default_folder_follows_the_data_dir_variable(tmp_path, monkeypatch, capsys):
    write_run(tmp_path / "elsewhere" / "x" / "x_s0", "ppo", "CartPole-v1", 0, [5.0])
    monkeypatch.setenv("SPINRL_DATA_DIR", str(tmp_path / "elsewhere"))
    assert run_main_guarded(main, []) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[0] == "x/x_s0"


def test_junk_in_a_status_json_is_not_printed_as_it_is(tmp_path, capsys):
    """Issue 18: ls printed whatever a damaged status.json held: newlines, terminal escapes, any value."""
    import json

    run = write_run(tmp_path / "cp" / "cp_s0", "ppo", "CartPole-v1", 0, [10.0, 20.0])
    junk = {"status": "\x1b[2Jowned\nfake row", "epoch": "1\n2", "epochs": [3]}
    (run / "status.json").write_text(json.dumps(junk))
    (run / "config.json").write_text(json.dumps({"algo": "ppo\tx", "env_name": "Cart\nPole", "seed": 0}))
    assert run_main_guarded(main, [str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "\x1b" not in lines[1]
    assert lines[1].split() == ["cp/cp_s0", "ppo?x", "Cart?Pole", "0", "?/?", "20.0", "unknown"]
