"""A run directory you can trust: one writer per run, a resume that continues the same run, a grid that
dies with its parent, and the launch limits, each checked by causing the fault on purpose.

Concurrency is tested with two real processes (one holds the lock, the other must be refused), and
deaths with real signals; nothing here waits a fixed time and hopes. Grids use ``fake_algos.fake_algo``,
which has an algorithm's contract and takes a fraction of a second per epoch.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, TESTS_DIR

from spinrl.cli import main, run_main_guarded
from spinrl.common.errors import UserError
from spinrl.launch.grid import ExperimentGrid
from spinrl.record.config import ResumeMismatchError
from spinrl.record.folder import RunExistsError
from spinrl.record.lock import RunInUseError, acquire_run_lock, process_start_time
from spinrl.record.logger import EpochLogger, read_progress
from spinrl.record.status import read_status, run_state, write_status

TINY_PPO = [
    "--env",
    "CartPole-v1",
    "--steps_per_epoch",
    "100",
    "--train_pi_iters",
    "2",
    "--train_v_iters",
    "2",
]


def snapshot(run_dir: Path) -> dict[str, bytes]:
    """Every file below ``run_dir`` with its bytes: "nothing changed" means equal snapshots."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("spinrl: error: "), err
    return lines[0]


def cli_in_process(capsys, *argv: str) -> tuple[int, str, str]:
    rc = run_main_guarded(main, list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def alive(pid: int) -> bool:
    """A live process with this pid (a zombie, dead but not yet reaped, counts as gone)."""
    return process_start_time(pid) is not None


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` in the process tree, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


# ----- 1. one writer per run -----------------------------------------------------------------------------
HOLDER = """
import sys
from spinrl.record.logger import EpochLogger
logger = EpochLogger(output_dir=sys.argv[1], resume=True, quiet=True, tensorboard=False)
print("holding", flush=True)
sys.stdin.read()  # hold the run until the test closes our stdin (or kills us)
"""


def _start_holder(run_dir: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout.readline().strip() == "holding"
    return proc


def test_a_second_writer_is_refused_naming_the_first_and_a_kill_frees_the_run(tmp_path):
    run_dir = tmp_path / "run"
    holder = _start_holder(run_dir)
    try:
        before = snapshot(run_dir)
        with pytest.raises(RunInUseError) as refused:
            EpochLogger(output_dir=str(run_dir), resume=True, quiet=True, tensorboard=False)
        message = str(refused.value)
        assert f"process {holder.pid} on {socket.gethostname()}" in message and "\n" not in message
        with pytest.raises(RunInUseError):  # a new run is refused the same way
            EpochLogger(output_dir=str(run_dir), quiet=True, tensorboard=False)
        assert snapshot(run_dir) == before
    finally:
        holder.kill()  # SIGKILL: no clean-up runs, the kernel drops the lock
        holder.wait()
    logger = EpochLogger(output_dir=str(run_dir), resume=True, quiet=True, tensorboard=False)
    logger.close()


def test_the_lock_is_held_until_close_and_taken_again_within_one_process(tmp_path):
    run_dir = tmp_path / "run"
    first = EpochLogger(output_dir=str(run_dir), quiet=True, tensorboard=False)
    lock_text = json.loads((run_dir / ".lock").read_text())
    assert lock_text["pid"] == os.getpid() and lock_text["pid_start"] == process_start_time(os.getpid())
    # The same process may open the run again (an earlier run that ended in an exception never closed
    # its logger); the newer logger holds the lock, and the older one's close does not free it.
    second = EpochLogger(output_dir=str(run_dir), resume=True, quiet=True, tensorboard=False)
    first.close()
    holder = subprocess.run(
        [sys.executable, "-c", HOLDER, str(run_dir)],
        input="",
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=60,
    )
    assert holder.returncode != 0 and f"process {os.getpid()}" in holder.stderr
    second.close()
    freed = subprocess.run(
        [sys.executable, "-c", HOLDER, str(run_dir)],
        input="",
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=60,
    )
    assert freed.returncode == 0, freed.stderr


def test_two_resumes_at_once_the_second_is_refused_and_changes_nothing(tmp_data, cli):
    # The case: two --resume of one run both trained to the end, every epoch twice in progress.txt.
    args = ("ppo", *TINY_PPO, "--epochs", "1", "--exp_name", "two")
    assert cli(*args, cwd=tmp_data).returncode == 0
    run_dir = tmp_data / "data/two/two_s0"
    lock = acquire_run_lock(run_dir)  # this test process plays the first --resume, still training
    try:
        before = snapshot(run_dir)
        proc = cli(*args[:-4], "--epochs", "2", "--exp_name", "two", "--resume", cwd=tmp_data)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        line = one_error_line(proc.stderr)
        assert f"process {os.getpid()} on {socket.gethostname()}" in line and "in use" in line
        assert snapshot(run_dir) == before  # progress.txt, status, config, checkpoint, TensorBoard: untouched
    finally:
        lock.release()
    proc = cli(*args[:-4], "--epochs", "2", "--exp_name", "two", "--resume", cwd=tmp_data)
    assert proc.returncode == 0, proc.stderr
    progress = read_progress(run_dir / "progress.txt")
    assert progress["Epoch"].tolist() == [0, 1]  # one header, each epoch once
    assert len(list((run_dir / "tb").glob("events.out.tfevents.*"))) == 2  # one per process, no more


def test_a_grid_refuses_before_launching_when_one_variant_is_in_use(tmp_path, capsys):
    from fake_algos import fake_algo

    eg = ExperimentGrid("busy")
    eg.add("seed", [0, 1])
    eg.add("resume", True)
    eg.run(fake_algo, data_dir=str(tmp_path))
    busy = _start_holder(tmp_path / "busy" / "busy_s1")
    try:
        before = {s: snapshot(tmp_path / "busy" / f"busy_s{s}") for s in (0, 1)}
        eg2 = ExperimentGrid("busy")
        eg2.add("seed", [0, 1])
        eg2.add("epochs", 5)  # would extend both runs
        eg2.add("resume", True)
        with pytest.raises(RunInUseError, match=f"process {busy.pid}"):
            eg2.run(fake_algo, data_dir=str(tmp_path), parallel=2)
        assert {s: snapshot(tmp_path / "busy" / f"busy_s{s}") for s in (0, 1)} == before
    finally:
        busy.kill()
        busy.wait()


# ----- 2. a pid is a process only with its start time ----------------------------------------------------
def test_running_status_of_a_live_but_unrelated_pid_is_interrupted(tmp_path, capsys):
    write_status(tmp_path, "running", 1, 3)
    status = read_status(tmp_path)
    assert status["pid_start"] == process_start_time(os.getpid()) and run_state(status) == "running"
    # The same pid, alive, but a process that started at another time: the writer is gone.
    status["pid_start"] += 12345
    assert run_state(status) == "interrupted"
    status["pid"] = os.getppid()  # a live, unrelated process...
    status["pid_start"] = process_start_time(os.getppid()) + 1  # ...that did not write this status
    assert run_state(status) == "interrupted"

    # The grid's resume decision uses it: such a run is continued, not skipped as "still running".
    from fake_algos import fake_algo

    run_dir = tmp_path / "reused" / "reused_s0"
    logger = EpochLogger(output_dir=str(run_dir), quiet=True, tensorboard=False)
    logger.save_config(dict(algo="fake", env_name="CartPole-v1", seed=0, epochs=3, ac_kwargs=None))
    logger.close()
    (run_dir / "status.json").write_text(json.dumps(dict(status, epoch=0, epochs=3)))
    eg2 = ExperimentGrid("reused")
    eg2.add("resume", True)
    eg2.run(fake_algo, data_dir=str(tmp_path))
    assert "still running" not in capsys.readouterr().out
    assert read_status(run_dir)["status"] == "finished"
    assert read_progress(run_dir / "progress.txt")["Epoch"].tolist() == [0, 1, 2]


# ----- 3. a resumed run is the same run ----------------------------------------------------------------
def test_resume_with_other_settings_or_another_algorithm_is_refused_in_one_line(tmp_data, capsys):
    tail = ["--epochs", "1", "--exp_name", "same", "--resume"]
    rc, _, err = cli_in_process(capsys, "ppo", *TINY_PPO, *tail[:-1])
    assert rc == 0, err
    run_dir = tmp_data / "data/same/same_s0"
    before = snapshot(run_dir)
    vpg_args = ["--env", "CartPole-v1", "--steps_per_epoch", "100", "--train_v_iters", "2"]
    cases = [
        (["ppo", *TINY_PPO, "--pi_lr", "0.001"], ["pi_lr from 0.0003 to 0.001"]),
        (
            ["ppo", *TINY_PPO, "--pi_lr", "0.001", "--hid", "[8]"],
            ["pi_lr from", 'ac_kwargs from {} to {"hidden_sizes": [8]}'],
        ),
        (["ppo", *TINY_PPO[2:], "--env", "Acrobot-v1"], ["env_fn from CartPole-v1 to Acrobot-v1"]),
        (["vpg", *vpg_args], ["algo from ppo to vpg"]),  # it would have continued as VPG
        (["trpo", *vpg_args], ["algo from ppo to trpo"]),  # it would have died with a KeyError
    ]
    for argv, expected in cases:
        rc, _, err = cli_in_process(capsys, *argv, *tail)
        assert rc == 2, (argv, err)
        line = one_error_line(err)
        assert line.startswith("spinrl: error: --resume would change ") and "another --exp_name" in line
        for text in expected:
            assert text in line, (text, line)
        assert snapshot(run_dir) == before, argv


def test_the_logger_refuses_a_changed_resume_for_every_algorithm(tmp_path):
    # The rule lives in EpochLogger.save_config, which every algorithm calls before restoring anything.
    run_dir = tmp_path / "run"
    config = dict(algo="ppo", env_name="CartPole-v1", pi_lr=3e-4, hidden=(64, 64), epochs=5, device="auto")
    logger = EpochLogger(output_dir=str(run_dir), quiet=True, tensorboard=False)
    logger.save_config(config)
    logger.close()
    before = snapshot(run_dir)
    resumed = EpochLogger(output_dir=str(run_dir), resume=True, quiet=True, tensorboard=False)
    with pytest.raises(ResumeMismatchError) as refused:
        resumed.save_config(dict(config, algo="vpg", pi_lr=1e-3))
    assert "would change algo from ppo to vpg and pi_lr from 0.0003 to 0.001" in str(refused.value)
    with pytest.raises(ResumeMismatchError, match="epochs from 5 to 4"):
        resumed.save_config(dict(config, epochs=4))  # fewer epochs: not the same run
    assert snapshot(run_dir) == before
    # Tuples and lists, like 0.0003 and 3e-4, are the same value; device and more epochs may change, and
    # config.json then records how the run runs now (issue 18: a resume's --compile False left "true").
    resumed.save_config(dict(config, hidden=[64, 64], pi_lr=0.0003, device="cpu", epochs=8))
    assert snapshot(run_dir) == before  # held back until the resume is accepted (a checkpoint loaded)
    resumed.commit_config()
    recorded = json.loads((run_dir / "config.json").read_text())
    assert recorded["epochs"] == 8 and recorded["device"] == "cpu" and recorded["pi_lr"] == 3e-4
    resumed.close()


def test_a_damaged_config_json_refuses_a_resume(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_bytes(b"\x00\xff not json")
    resumed = EpochLogger(output_dir=str(run_dir), resume=True, quiet=True, tensorboard=False)
    with pytest.raises(ResumeMismatchError, match="config.json cannot be read"):
        resumed.save_config(dict(algo="ppo"))
    resumed.close()


def test_more_epochs_extend_a_finished_run_and_the_same_epochs_skip_it(tmp_data, capsys):
    base = ["ppo", *TINY_PPO, "--exp_name", "ext"]
    assert cli_in_process(capsys, *base, "--epochs", "1")[0] == 0
    run_dir = tmp_data / "data/ext/ext_s0"
    # More epochs, and a launch setting (the device) that does not change the algorithm.
    rc, out, err = cli_in_process(capsys, *base, "--epochs", "2", "--device", "cpu", "--resume")
    assert rc == 0, err
    assert "finished after 1 epochs, continuing to 2" in out
    assert read_progress(run_dir / "progress.txt")["Epoch"].tolist() == [0, 1]
    assert json.loads((run_dir / "config.json").read_text())["epochs"] == 2
    status = read_status(run_dir)
    assert (status["status"], status["epoch"], status["epochs"]) == ("finished", 2, 2)
    for epochs in ("2", "1"):  # as many or fewer epochs than it has: nothing to do
        rc, out, _ = cli_in_process(capsys, *base, "--epochs", epochs, "--resume")
        assert rc == 0 and "finished already" in out


# ----- 4. launch limits ---------------------------------------------------------------------------------
def test_cpu_above_the_cores_is_refused_before_anything_starts(tmp_data, capsys, monkeypatch):
    import spinrl.launch.local

    def never(*args, **kwargs):
        raise AssertionError("nothing may be launched")

    monkeypatch.setattr(spinrl.launch.local.subprocess, "Popen", never)
    monkeypatch.setattr(spinrl.launch.local.subprocess, "call", never)
    start = time.monotonic()
    rc, _, err = cli_in_process(capsys, "ppo", "--env", "CartPole-v1", "--cpu", "999")
    assert rc == 2 and time.monotonic() - start < 10
    line = one_error_line(err)
    assert "--cpu 999" in line and "core" in line and "--oversubscribe" in line
    assert not (tmp_data / "data").exists()


def test_oversubscription_only_when_asked(monkeypatch):
    import spinrl.common.mpi
    from spinrl.common.mpi import mpiexec_command, resolve_num_cpu

    monkeypatch.setattr(spinrl.common.mpi, "available_cores", lambda: 2)
    for var in ("SLURM_JOB_ID", "PBS_NODEFILE", "LSB_JOBID"):
        monkeypatch.delenv(var, raising=False)
    assert resolve_num_cpu("auto") == 2 and resolve_num_cpu(2) == 2 and resolve_num_cpu(2.0) == 2
    with pytest.raises(UserError, match="--cpu 3 is more than the 2 core"):
        resolve_num_cpu(3)
    assert resolve_num_cpu(3, oversubscribe=True) == 3  # --oversubscribe
    assert resolve_num_cpu(3, mpi_args="--oversubscribe") == 3
    assert resolve_num_cpu(8, mpi_args="--hostfile hosts.txt") == 8  # ranks on other machines
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert resolve_num_cpu(8) == 8  # inside a batch allocation
    for bad in ("0", "-1", "many", True):
        with pytest.raises(UserError, match="positive integer or 'auto'"):
            resolve_num_cpu(bad)
    cmd, _ = mpiexec_command(3, "--oversubscribe --bind-to none")
    assert cmd.count("--oversubscribe") == 1


def test_cli_oversubscribe_flag_reaches_the_limit(tmp_data, capsys, monkeypatch):
    import spinrl.common.mpi
    import spinrl.launch.grid

    monkeypatch.setattr(spinrl.common.mpi, "available_cores", lambda: 1)
    launched = []
    monkeypatch.setattr(spinrl.launch.grid, "run_with_mpi", lambda spec, n, args: launched.append(n) or 0)
    argv = ["ppo", "--env", "CartPole-v1", "--cpu", "2", "--epochs", "1"]
    assert cli_in_process(capsys, *argv)[0] == 2 and launched == []
    assert cli_in_process(capsys, *argv, "--oversubscribe")[0] == 0 and launched == [2]


# ----- 5. a grid dies with its parent --------------------------------------------------------------------
GRID_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from spinrl.launch.grid import ExperimentGrid
from spinrl.common.errors import run_main_guarded
from fake_algos import fake_algo

def main():
    eg = ExperimentGrid("die")
    eg.add("seed", [0, 1, 2])
    eg.add("epochs", 60)
    eg.add("epoch_seconds", float(sys.argv[1]))
    eg.add("resume", True)
    eg.run(fake_algo, data_dir={data!r}, parallel=2)
    return 0

sys.exit(run_main_guarded(main))
"""


@pytest.mark.parametrize("zygote", [True, False], ids=["zygote", "new-processes"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killing_a_parallel_grid_ends_every_child_and_resume_finishes_it(tmp_path, sig, zygote):
    script = tmp_path / "grid.py"
    script.write_text(GRID_SCRIPT.format(tests=TESTS_DIR, data=str(tmp_path)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), TESTS_DIR]))  # children import fake_algos
    if not zygote:
        env["SPINRL_NO_ZYGOTE"] = "1"
    grid = subprocess.Popen(
        [sys.executable, str(script), "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    runs = [tmp_path / "die" / f"die_s{s}" for s in range(3)]
    try:
        wait_until(
            lambda: all((d / "launches.jsonl").exists() for d in runs[:2]), 120, "two variants to start"
        )
        tree = descendants(grid.pid)
        trainers = {json.loads((d / "launches.jsonl").read_text().splitlines()[0])["pid"] for d in runs[:2]}
        assert trainers <= tree and len(tree) >= 2  # (the zygote too, when there is one)
        grid.send_signal(sig)
        grid.wait(timeout=60)
    finally:
        if grid.poll() is None:
            grid.kill()
        output = grid.communicate()[0]
    wait_until(lambda: not any(alive(pid) for pid in tree), 30, f"the grid's processes {sorted(tree)} to end")
    if sig == signal.SIGTERM:
        assert grid.returncode == 128 + signal.SIGTERM, output
        assert "--resume" in output and "Traceback" not in output
    assert not runs[2].exists()  # the third variant never started
    for d in runs[:2]:
        assert (
            run_state(read_status(d)) in ("interrupted", "running") and read_status(d)["status"] == "running"
        )
        assert run_state(read_status(d)) == "interrupted"

    # The same command again picks the grid up where it stopped.
    rerun = subprocess.run(
        [sys.executable, str(script), "0.0"], env=env, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    for d in runs:
        assert read_status(d)["status"] == "finished"
        assert read_progress(d / "progress.txt")["Epoch"].tolist() == list(range(60))


# ----- 6. an experiment name is a name -----------------------------------------------------------------
@pytest.mark.parametrize("name", ["../../escaped", "a/b", "/tmp/absolute-run", "..", ".", ""])
def test_exp_name_is_a_name_not_a_path(tmp_data, capsys, name):
    rc, _, err = cli_in_process(capsys, "ppo", "--env", "CartPole-v1", "--epochs", "1", "--exp_name", name)
    assert rc == 2
    line = one_error_line(err)
    assert f"--exp_name {name!r} is not valid" in line and "--data_dir" in line
    assert sorted(p.name for p in tmp_data.iterdir()) == []  # nothing created, here or above
    assert not Path("/tmp/absolute-run").exists() and not (tmp_data.parent.parent / "escaped").exists()
    from spinrl.record.folder import setup_logger_kwargs

    with pytest.raises(UserError, match="is not valid"):
        setup_logger_kwargs(name, 0, str(tmp_data))


# ----- 7. a checkpoint or a config.json is a run -------------------------------------------------------
@pytest.mark.parametrize("progress", ["missing", "empty"])
def test_a_fresh_run_never_overwrites_a_checkpoint(tmp_path, progress):
    import torch

    from spinrl.record.checkpoint import save_checkpoint

    run_dir = tmp_path / "run"
    save_checkpoint(run_dir, {"weights": torch.ones(3)}, epoch=4)
    if progress == "empty":
        (run_dir / "progress.txt").write_text("")
    before = snapshot(run_dir)
    with pytest.raises(RunExistsError, match="--resume"):
        EpochLogger(output_dir=str(run_dir), quiet=True, tensorboard=False)
    assert snapshot(run_dir) == before

    only_config = tmp_path / "config-only"
    only_config.mkdir()
    (only_config / "config.json").write_text("{}")
    with pytest.raises(RunExistsError):
        EpochLogger(output_dir=str(only_config), quiet=True, tensorboard=False)


# ----- 9. smaller ones -------------------------------------------------------------------------------
def test_whole_number_floats_from_the_command_line(tmp_data, capsys):
    from spinrl.algos.sac import sac
    from spinrl.cli import parse_grid_args, whole_numbers_as_int

    args = parse_grid_args(["--epochs", "2.0", "--replay_size", "1e6", "--polyak", "0.995", "--seed", "1.5"])
    whole_numbers_as_int(sac, args)
    assert args == {"epochs": [2], "replay_size": [1000000], "polyak": [0.995], "seed": [1.5]}
    assert isinstance(args["epochs"][0], int) and isinstance(args["replay_size"][0], int)

    rc, _, err = cli_in_process(capsys, "ppo", *TINY_PPO, "--epochs", "2.0", "--exp_name", "f")
    assert rc == 0, err
    assert json.loads((tmp_data / "data/f/f_s0/config.json").read_text())["epochs"] == 2
    for value, expected in [("2.5", "epochs=2.5 is not valid"), ("inf", "epochs='inf'")]:
        rc, _, err = cli_in_process(capsys, "ppo", "--env", "CartPole-v1", "--epochs", value)
        assert rc == 2 and expected in one_error_line(err)
    rc, _, err = cli_in_process(capsys, "ppo", "--env", "CartPole-v1", "--seed", "99999999999999999999")
    assert rc == 2 and "seed=99999999999999999999 is not valid" in one_error_line(err)


def test_output_through_mpi_into_a_pipe_is_plain_text(tmp_data, cli):
    proc = cli("ppo", *TINY_PPO, "--epochs", "2", "--cpu", "2", "--exp_name", "plain", cwd=tmp_data)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout + proc.stderr
    assert "AverageEpRet" in text  # the epoch table is there...
    assert "\x1b" not in text and "[bold]" not in text and "\r" not in text  # ...without codes or markup


NAN_IN_EPOCH_1 = """
import sys
import spinrl.algos.ppo as ppo_module
from spinrl.common.checks import TrainingDiverged
from spinrl.common.errors import run_main_guarded

def diverge_in_epoch_1(epoch, **losses):
    if epoch == 1:
        raise TrainingDiverged("LossPi became nan in epoch 1: training stopped")

ppo_module.check_finite = diverge_in_epoch_1
sys.exit(run_main_guarded(lambda: ppo_module.ppo(
    "CartPole-v1", ac_kwargs=dict(hidden_sizes=(8,)), steps_per_epoch=100, epochs=3, train_pi_iters=2,
    train_v_iters=2, device="cpu", logger_kwargs=dict(output_dir=sys.argv[1], quiet=True)) and 0))
"""


def test_a_one_line_error_mid_run_marks_the_run_failed(tmp_path):
    # The command line catches the error to print one line; status.json must still say what happened.
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", NAN_IN_EPOCH_1, str(run)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("spinrl: error: LossPi became nan in epoch 1")
    assert "Traceback" not in proc.stderr
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed" and status["epoch"] == 1
    assert status["error"] == "TrainingDiverged: LossPi became nan in epoch 1: training stopped"
