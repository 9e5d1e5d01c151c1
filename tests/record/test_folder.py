"""spinrl.record.folder: where runs go, what status.json means, and the one refusal to overwrite a run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from spinrl.common.errors import UserError, run_main_guarded
from spinrl.launch.grid import ExperimentGrid
from spinrl.record import folder as rundir
from spinrl.record import lock as run_lock
from spinrl.record.config import resume_changes
from spinrl.record.folder import (
    RunExistsError,
    check_exp_name,
    default_data_dir,
    holds_run,
    refuse_existing_run,
    setup_logger_kwargs,
)
from spinrl.record.lock import (
    RunInUseError,
    acquire_run_lock,
    lock_holder,
    pid_alive,
    process_alive,
    process_start_time,
)
from spinrl.record.logger import EpochLogger
from spinrl.record.status import read_status, run_state, write_status
from spinrl.results.runs import find_runs, load_run


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid  # reaped: no process has this id now (until the system reuses it)


def test_status_rules():
    assert run_state(None) == "unknown"
    assert run_state({"status": "finished", "pid": dead_pid()}) == "finished"
    assert run_state({"status": "running", "pid": dead_pid(), "hostname": None}) == "interrupted"
    assert run_state({"status": "running", "pid": 1, "hostname": "elsewhere"}) == "running on elsewhere"


def test_written_status_reads_back_and_a_dead_writer_means_interrupted(tmp_path):
    write_status(tmp_path, "running", 3, 10, note="x")
    status = read_status(tmp_path)
    assert status["epoch"] == 3 and status["epochs"] == 10 and status["note"] == "x"
    assert status["pid"] == os.getpid() and status["hostname"] == socket.gethostname()
    assert run_state(status) == "running" and load_run(tmp_path).state == "running"
    # The same file, as a process that has since died would have left it on this machine.
    status["pid"] = dead_pid()
    (tmp_path / "status.json").write_text(json.dumps(status))
    assert run_state(read_status(tmp_path)) == "interrupted"
    write_status(tmp_path, "failed", 3, 10)
    assert run_state(read_status(tmp_path)) == "failed"


def test_unreadable_status_is_unknown(tmp_path):
    assert read_status(tmp_path) is None
    (tmp_path / "status.json").write_text("{half a file")
    assert read_status(tmp_path) is None and run_state(read_status(tmp_path)) == "unknown"
    (tmp_path / "status.json").write_text("[1, 2]")  # valid JSON, but not a status
    assert read_status(tmp_path) is None


def test_pid_alive():
    assert pid_alive(os.getpid())
    assert not pid_alive(dead_pid())


def test_data_dir_is_read_at_call_time(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINRL_DATA_DIR", str(tmp_path / "first"))
    assert default_data_dir() == str(tmp_path / "first")
    monkeypatch.setenv("SPINRL_DATA_DIR", str(tmp_path / "second"))
    assert default_data_dir() == str(tmp_path / "second")
    assert setup_logger_kwargs("cp", 0)["output_dir"] == str(tmp_path / "second" / "cp" / "cp_s0")
    monkeypatch.delenv("SPINRL_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    assert default_data_dir() == str(tmp_path / "data")
    assert not hasattr(rundir, "DEFAULT_DATA_DIR")  # no copy fixed at import time


def test_refusal_is_one_rule_for_logger_and_grid(tmp_path, monkeypatch):
    run_dir = tmp_path / "ref" / "ref_s0"
    assert not holds_run(run_dir)
    refuse_existing_run(run_dir, resume=False)  # nothing there yet: no refusal
    run_dir.mkdir(parents=True)
    (run_dir / "progress.txt").write_text("")
    refuse_existing_run(run_dir, resume=False)  # an empty progress.txt is no run yet
    (run_dir / ".lock").write_text("")
    (run_dir / "output.log").write_text("a launcher's header line\n")
    refuse_existing_run(run_dir, resume=False)  # nor are a lock file and a launcher's log
    (run_dir / "progress.txt").write_text("Epoch\n0\n")
    with pytest.raises(RunExistsError, match="--resume"):
        refuse_existing_run(run_dir, resume=False)
    refuse_existing_run(run_dir, resume=True)
    assert issubclass(RunExistsError, UserError)  # the command line prints it as one line

    # Both paths refuse through that one function, with the same message.
    calls = []

    def spy(path, resume):
        calls.append((str(path), resume))
        raise RunExistsError(f"{path} refused")

    monkeypatch.setattr("spinrl.record.folder.refuse_existing_run", spy)
    with pytest.raises(RunExistsError, match="refused"):
        EpochLogger(output_dir=str(run_dir), quiet=True, tensorboard=False)
    eg = ExperimentGrid("ref")
    eg.add("seed", 0)
    with pytest.raises(RunExistsError, match="refused"):
        eg.run(lambda seed=0, logger_kwargs=None: None, data_dir=str(tmp_path))
    assert calls == [(str(run_dir), False), (str(run_dir), False)]


def test_find_and_load_runs(tmp_path):
    (tmp_path / "a" / "a_s0").mkdir(parents=True)
    write_status(tmp_path / "a" / "a_s0", "finished", 1, 1)
    (tmp_path / "a" / "a_s0" / "tb").mkdir()
    (tmp_path / "a" / "a_s0" / "tb" / "status.json").write_text("{}")  # inside tb/: never a run
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.json").write_text(json.dumps({"algo": "ppo", "seed": 3, "exp_name": "bee"}))
    assert find_runs(tmp_path) == [tmp_path / "a" / "a_s0", tmp_path / "b"]
    b = load_run(tmp_path / "b")
    assert (b.algo, b.seed, b.exp_name, b.env, b.num_epochs_logged, b.state) == (
        "ppo",
        "3",
        "bee",
        "?",
        0,
        "unknown",
    )
    assert load_run(tmp_path / "a" / "a_s0").exp_name == "a"  # no config: the experiment folder's name


def test_process_identity_is_pid_and_start_time():
    me = process_start_time(os.getpid())
    assert isinstance(me, int) and me == process_start_time(os.getpid())
    assert process_alive(os.getpid(), me) and process_alive(os.getpid())  # an old record has no start time
    assert not process_alive(os.getpid(), me + 1)  # the pid of a process that started at another time
    assert process_start_time(dead_pid()) is None and not process_alive(dead_pid(), me)


def test_lock_file_names_the_holder_and_lock_holder_only_reads(tmp_path):
    assert lock_holder(tmp_path) is None and not (tmp_path / ".lock").exists()  # no lock file is created
    lock = acquire_run_lock(tmp_path)
    assert lock_holder(tmp_path) is None  # held by this process, which may take its own run over
    holder = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from spinrl.record.lock import lock_holder; print(lock_holder(sys.argv[1]))",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert holder.stdout.startswith(f"process {os.getpid()} on {socket.gethostname()}, running since ")
    taker = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from spinrl.record.lock import acquire_run_lock; acquire_run_lock(sys.argv[1])",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "RunInUseError" in taker.stderr and f"process {os.getpid()}" in taker.stderr
    lock.release()
    lock.release()  # twice is harmless
    assert not lock.held
    with pytest.raises(RunInUseError, match="another process"):  # a holder that has not written its name yet
        raise run_lock.in_use_error(tmp_path, run_lock._describe_holder(""))


def test_resume_changes_compare_json_values():
    recorded = {
        "algo": "ppo",
        "pi_lr": 0.0003,
        "hid": [64, 64],
        "ac_kwargs": {},
        "epochs": 10,
        "device": "auto",
    }
    assert resume_changes(recorded, dict(recorded, hid=[64, 64], pi_lr=3e-4, epochs=20, device="cuda")) == []
    assert (
        resume_changes(recorded, dict(recorded, ac_kwargs=None)) == []
    )  # None and {} mean no extra arguments
    assert (
        resume_changes(recorded, {"algo": "ppo", "new_option": 1}) == []
    )  # keys one side lacks are not compared
    assert resume_changes(recorded, dict(recorded, algo="vpg", hid=[32])) == [
        "algo from ppo to vpg",
        "hid from [64, 64] to [32]",
    ]
    assert resume_changes(recorded, dict(recorded, epochs=5)) == [
        "epochs from 10 to 5 (a resumed run may only get more epochs)"
    ]


def test_env_kwargs_that_spell_out_the_defaults_are_the_same_run():
    """Issue 18: `--resume --env_kwargs "{'frame_stack': 4}"` on a run made with the defaults was refused."""
    atari = {"algo": "dqn", "env_name": "ALE/Pong-v5", "env_kwargs": {}}
    assert resume_changes(atari, dict(atari, env_kwargs={"frame_stack": 4, "noop_max": 30})) == []
    assert resume_changes(atari, dict(atari, env_kwargs={"frame_stack": 2})) == [
        'env_kwargs from {} to {"frame_stack": 2}'
    ]
    lander = {"algo": "ppo", "env_name": "LunarLander-v3", "env_kwargs": {"gravity": -10.0}}
    assert resume_changes(lander, dict(lander, env_kwargs={"continuous": False})) == []
    assert len(resume_changes(lander, dict(lander, env_kwargs={"continuous": True}))) == 1


def test_exp_name_rules():
    assert (
        check_exp_name("cp") == "cp"
        and check_exp_name(5) == "5"
        and check_exp_name("my-run_2.1") == "my-run_2.1"
    )
    for bad in ("", " ", ".", "..", "../x", "a/b", "/abs", "a\0b", ".hidden", "two\nlines", "a b", "x" * 201):
        with pytest.raises(UserError, match="is not valid"):
            check_exp_name(bad)


def test_a_name_too_long_or_hidden_leaves_no_folder_behind(tmp_path, capsys):
    """Issue 18: a 253-character name was refused only after its experiment folder had been made."""
    from spinrl.cli import main

    data = tmp_path / "data"
    for name in ("n" * 253, ".hidden", "two\nlines"):
        argv = ["vpg", "--env", "CartPole-v1", "--epochs", "1", "--exp_name", name, "--data_dir", str(data)]
        assert run_main_guarded(main, argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--exp_name" in err and "is not valid" in err
    assert not data.exists()


def test_a_tilde_in_the_data_dir_is_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SPINRL_DATA_DIR", "~/runs")
    assert default_data_dir() == str(tmp_path / "runs")
    assert setup_logger_kwargs("cp", 0)["output_dir"] == str(tmp_path / "runs" / "cp" / "cp_s0")
    assert setup_logger_kwargs("cp", 0, "~/other")["output_dir"] == str(tmp_path / "other" / "cp" / "cp_s0")


def test_a_folder_made_anew_is_locked_anew(tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    stale = acquire_run_lock(run_dir)  # e.g. a notebook's run that ended in an exception
    shutil.rmtree(run_dir)
    run_dir.mkdir()
    fresh = acquire_run_lock(run_dir)
    assert not stale.held and fresh.held
    taker = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from spinrl.record.lock import acquire_run_lock; acquire_run_lock(sys.argv[1])",
            str(run_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "RunInUseError" in taker.stderr  # the new folder's lock file is the one held
    fresh.release()


class _BreaksAtStep:
    """CartPole that raises at its ``at``-th step: a bug in a user's env, after the run has started."""

    def __init__(self, at: int):
        self.at = at

    def __call__(self):
        import gymnasium as gym

        at = self.at

        class Breaks(gym.Wrapper):
            steps = 0

            def step(self, action):
                Breaks.steps += 1
                if Breaks.steps == at:
                    raise RuntimeError("the env broke\nsecond line")
                return self.env.step(action)

        return Breaks(gym.make("CartPole-v1"))


def test_a_run_that_raises_in_python_is_marked_failed_at_once(tmp_path):
    """Issue 18: from Python, a run that raised stayed "running" (and locked) while the interpreter lived."""
    from spinrl.algos.vpg import vpg
    from spinrl.record.lock import held_locks

    out = tmp_path / "broken"
    with pytest.raises(RuntimeError, match="the env broke"):
        vpg(_BreaksAtStep(150), steps_per_epoch=100, epochs=3, logger_kwargs=dict(output_dir=str(out)))
    status = read_status(out)
    assert status["status"] == "failed" and status["error"] == "RuntimeError: the env broke"
    assert status["epoch"] == 1 and run_state(status) == "failed"
    assert lock_holder(out) is None and not any(lock.run_dir == out for lock in held_locks())


def test_a_resume_records_the_launch_settings_it_runs_with(tmp_path):
    """Issue 18: resuming with --compile False left "compile": true in config.json."""
    first = EpochLogger(output_dir=str(tmp_path), quiet=True, tensorboard=False)
    first.save_config(dict(algo="td3", gamma=0.99, epochs=2, compile=True, device="cpu", save_freq=1))
    first.close()
    again = EpochLogger(output_dir=str(tmp_path), quiet=True, tensorboard=False, resume=True)
    again.save_config(dict(algo="td3", gamma=0.99, epochs=2, compile=False, device="auto", save_freq=1))
    again.commit_config()  # the resume was accepted (the Checkpointer's call, once the checkpoint fits)
    again.close()
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["compile"] is False and config["device"] == "auto" and config["gamma"] == 0.99


def _run_that_raises(out, error):
    """A stand-in algorithm: opens its run, marks it running, then raises ``error``."""
    from spinrl.record.status import marks_failed_runs

    @marks_failed_runs
    def algo():
        logger = EpochLogger(output_dir=str(out), quiet=True, tensorboard=False)
        logger.set_status("running", 1, 3)
        raise error

    return algo


def test_a_broken_pipe_after_ctrl_c_is_an_interruption_not_a_failure(tmp_path):
    """Issue 18: `--cpu 2` and one Ctrl-C marked a run `failed: BrokenPipeError` (mpiexec, which read the
    rank's output, had gone)."""
    from spinrl.common import errors

    def interrupted_then_broken():
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise BrokenPipeError(32, "Broken pipe") from None

    for i, error in enumerate([BrokenPipeError(32, "Broken pipe"), KeyboardInterrupt()]):
        with pytest.raises(type(error)):
            _run_that_raises(tmp_path / str(i), error)()
        assert read_status(tmp_path / str(i))["status"] == "running"  # resumable, not failed
    with pytest.raises(ValueError):
        _run_that_raises(tmp_path / "real", ValueError("bad"))()
    assert read_status(tmp_path / "real")["status"] == "failed"

    errors.caught_error = None
    assert run_main_guarded(interrupted_then_broken) == 130 and errors.caught_error is None
