"""ExperimentGrid: Spinning Up's naming rules, parallel runs, failures, resuming, Ctrl-C, the command line.

The runs use ``fake_algo``, a stand-in with an algorithm's contract (seed, logger_kwargs, resume,
status.json, progress.txt) that takes a fraction of a second, so these tests check the launching and
not the learning. Child processes import it from tests/fake_algos.py, so ``tests/`` goes on their PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import ROOT, TESTS_DIR
from fake_algos import fake_algo

from spinrl.common.errors import UserError
from spinrl.launch.grid import ExperimentGrid, valid_str
from spinrl.launch.local import thread_budget
from spinrl.launch.spec import decode_value, encode_value
from spinrl.record.lock import pid_alive


@pytest.fixture
def children_import_tests(monkeypatch):
    """Let child processes import ``fake_algos:fake_algo`` from tests/."""
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", TESTS_DIR + (os.pathsep + path if path else ""))


def progress_rows(run_dir: Path) -> int:
    lines = (run_dir / "progress.txt").read_text().splitlines()
    return len(lines) - 1


def launches(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "launches.jsonl").read_text().splitlines()]


def status(run_dir: Path) -> str:
    return json.loads((run_dir / "status.json").read_text())["status"]


# ----- naming and expansion (Spinning Up's spinup/utils/run_utils.py rules) ---------------------------
def test_issue_example_names_and_order():
    eg = ExperimentGrid(name="ppo-bench")
    eg.add("env_name", ["Hopper-v5"], "", True)
    eg.add("seed", [0, 10, 20])
    eg.add("ac_kwargs:hidden_sizes", [(32,), (64, 64)], "hid")
    variants = eg.variants()
    assert len(variants) == 6
    # The first key added varies slowest.
    assert [(v["seed"], v["ac_kwargs"]["hidden_sizes"]) for v in variants[:3]] == [
        (0, (32,)),
        (0, (64, 64)),
        (10, (32,)),
    ]
    assert variants[1] == {"env_name": "Hopper-v5", "seed": 0, "ac_kwargs": {"hidden_sizes": (64, 64)}}
    names = [eg.variant_name(v) for v in variants]
    assert names[:2] == ["ppo-bench_hopper-v5_hid32", "ppo-bench_hopper-v5_hid64-64"]
    assert len(set(names)) == 2  # seeds share a name


def test_spinning_up_test_eg_names():
    # spinup/utils/run_utils.py: test_eg(), with the names worked out by hand from Spinning Up's rules.
    eg = ExperimentGrid()
    eg.add("test:a", [1, 2, 3], "ta", True)
    eg.add("test:b", [1, 2, 3])
    eg.add("some", [4, 5])
    eg.add("why", [True, False])
    eg.add("huh", 5)
    eg.add("no", 6, in_name=True)
    variants = eg.variants()
    assert len(variants) == 3 * 3 * 2 * 2
    first = variants[0]
    assert first == {"test": {"a": 1, "b": 1}, "some": 4, "why": True, "huh": 5, "no": 6}
    assert eg.variant_name(first) == "ta1_tes-b1_som4_why_no6"
    false_variant = dict(first, why=False)
    assert eg.variant_name(false_variant) == "ta1_tes-b1_som4_no6"  # a False boolean stays out


def test_default_shorthands_and_values():
    eg = ExperimentGrid("x")
    eg.add("ac_kwargs:hidden_sizes", [(8,), (16, 16)])
    eg.add("steps_per_epoch", [100, 200])
    eg.add("pi_lr", [3e-4, 1e-3])
    v = eg.variants()[0]
    assert eg.variant_name(v) == "x_ac-hid8_ste100_pi0-0003"
    assert valid_str("CartPole-v1") == "cartpole-v1"
    assert valid_str(pytest.approx) == "approx"  # callables by name, lower case


def test_add_refuses_mistakes():
    eg = ExperimentGrid("x")
    eg.add("seed", [0])
    with pytest.raises(UserError, match="given twice"):
        eg.add("seed", [1])
    with pytest.raises(UserError, match="shorthand"):
        eg.add("lr", [1], "l/r")
    with pytest.raises(UserError, match="at least one value"):
        eg.add("gamma", [])


def test_print_shows_every_variant(capsys):
    eg = ExperimentGrid("tbl")
    eg.add("seed", [0, 1])
    eg.add("epochs", [1, 2])
    eg.print()
    out = capsys.readouterr().out
    assert "4 variant(s), 2 not counting seeds" in out
    assert out.count("tbl_epo1") == 2 and out.count("tbl_epo2") == 2


def test_json_round_trip_of_callables_and_tuples():
    spec = encode_value({"thunk": fake_algo, "ac_kwargs": {"hidden_sizes": (4, 4)}})
    assert json.loads(json.dumps(spec)) == spec
    back = decode_value(spec)
    assert back["thunk"] is fake_algo and back["ac_kwargs"]["hidden_sizes"] == [4, 4]


def test_run_refuses_bad_launch_options(tmp_path):
    eg = ExperimentGrid("bad")
    eg.add("seed", [0])
    with pytest.raises(UserError, match="--parallel 0"):
        eg.run(fake_algo, data_dir=str(tmp_path), parallel=0)
    with pytest.raises(UserError, match="--backend 'slurm'"):
        eg.run(fake_algo, data_dir=str(tmp_path), backend="slurm")


def test_thunk_named_by_a_grid_key_and_colliding_names(tmp_path):
    eg = ExperimentGrid("th")
    eg.add("algo", [fake_algo], "", True)  # Spinning Up: run(thunk="algo") takes the algorithm from the grid
    eg.add("epochs", 1)
    assert [Path(d).name for d in eg.run("algo", data_dir=str(tmp_path))] == ["th_fake_algo_s0"]
    clash = ExperimentGrid("clash")
    clash.add("epochs", [1, "1"])
    with pytest.raises(UserError, match="two variants would both write to"):
        clash.run(fake_algo, data_dir=str(tmp_path))


# ----- running ----------------------------------------------------------------------------------
def test_serial_run_in_process_and_env_name_becomes_env_fn(tmp_path):
    eg = ExperimentGrid("ser")
    eg.add("env_name", "Acrobot-v1")
    eg.add("seed", [0, 1])
    dirs = eg.run(fake_algo, data_dir=str(tmp_path))
    assert [Path(d).name for d in dirs] == ["ser_s0", "ser_s1"]
    for d in dirs:
        assert progress_rows(Path(d)) == 3 and status(Path(d)) == "finished"
        assert json.loads((Path(d) / "config.json").read_text())["env_name"] == "Acrobot-v1"
    with pytest.raises(UserError, match="already holds a run"):
        eg.run(fake_algo, data_dir=str(tmp_path))


@pytest.mark.parametrize(
    "key, values, message",
    [
        ("gamma", [0.99, 2], r"variant g_gam2 seed 0: gamma=2 is not valid: it must be in \(0, 1\]"),
        (
            "env_kwargs",
            [{}, {"x": 1}],
            r"variant g_env-\S+ seed 0: env_kwargs \{'x': 1\} do not fit CartPole-v1",
        ),
    ],
    ids=["hyperparameter", "env_kwargs"],
)
def test_every_variant_is_checked_before_the_first_starts(tmp_path, key, values, message):
    """Issue 18: `--gamma 0.99 2` trained the whole 0.99 variant, then failed on gamma=2."""
    from spinrl.algos.vpg import vpg

    eg = ExperimentGrid("g")
    eg.add("env_name", "CartPole-v1")
    eg.add(key, values)
    eg.add("epochs", 1)
    eg.add("steps_per_epoch", 50)
    with pytest.raises(UserError, match=message):
        eg.run(vpg, data_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []  # not even the first, valid variant ran


def test_an_env_argument_its_constructor_refuses_is_one_line_before_any_variant_starts(tmp_path):
    from spinrl.algos.vpg import vpg

    eg = ExperimentGrid("ll")
    eg.add("env_name", "LunarLander-v3")
    eg.add("env_kwargs:gravity", [-10.0, 100.0])
    eg.add("epochs", 1)
    message = (
        r"variant ll_env-gra100-0 seed 0: env_kwargs \{'gravity': 100.0\} are refused by LunarLander-v3: Ass"
    )
    with pytest.raises(UserError, match=message):
        eg.run(vpg, data_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_an_atari_option_of_any_variant_is_checked_before_the_first_starts(tmp_path):
    from spinrl.algos.dqn import dqn

    eg = ExperimentGrid("a")
    eg.add("env_name", "ALE/Pong-v5")
    eg.add("env_kwargs:frame_stack", [4, 0])
    eg.add("epochs", 1)
    with pytest.raises(
        UserError, match=r"variant a_env-fra0 seed 0: Atari option frame_stack=0 is not valid"
    ):
        eg.run(dqn, data_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("zygote", [True, False], ids=["forked-from-zygote", "new-processes"])
def test_parallel_two_runs_overlap_with_a_thread_budget(tmp_path, children_import_tests, monkeypatch, zygote):
    if not zygote:
        monkeypatch.setenv("SPINRL_NO_ZYGOTE", "1")
    eg = ExperimentGrid("par")
    eg.add("seed", [0, 1])
    eg.add("epoch_seconds", 0.6)
    dirs = [Path(d) for d in eg.run(fake_algo, data_dir=str(tmp_path), parallel=2)]
    for d in dirs:
        assert progress_rows(d) == 3 and status(d) == "finished"
        assert (d / "variant.json").exists()
        header = (d / "output.log").read_text().splitlines()[0]
        assert ("forked by the grid's zygote" in header) == zygote
    starts = [launches(d)[0] for d in dirs]
    # Both ran at once: each started before the other could have finished (3 epochs of 0.6 s).
    assert abs(starts[0]["time"] - starts[1]["time"]) < 1.5
    assert {s["torch_threads"] for s in starts} == {thread_budget(2)}
    assert {s["omp"] for s in starts} == {str(thread_budget(2))}


def test_failing_variant_does_not_stop_the_other(tmp_path, children_import_tests, capsys):
    eg = ExperimentGrid("fl")
    eg.add("fail", [False, True])
    with pytest.raises(UserError, match="1 of 2 variant"):
        eg.run(fake_algo, data_dir=str(tmp_path), parallel=2)
    good, bad = tmp_path / "fl" / "fl_s0", tmp_path / "fl_fai" / "fl_fai_s0"
    assert status(good) == "finished" and progress_rows(good) == 3
    assert status(bad) == "failed"
    out = capsys.readouterr().out
    assert str(bad / "output.log") in out  # the report names the log...
    assert "fake_algo was asked to fail" in out  # ...and quotes its last lines
    assert "RuntimeError: fake_algo was asked to fail" in (bad / "output.log").read_text()


def test_resume_skips_finished_and_continues_interrupted(tmp_path, children_import_tests):
    eg = ExperimentGrid("rs")
    eg.add("crash_at_epoch", [-1, 1], "crash")
    with pytest.raises(UserError, match="1 of 2"):
        eg.run(fake_algo, data_dir=str(tmp_path), parallel=2)
    ok, crashed = tmp_path / "rs_crash-1" / "rs_crash-1_s0", tmp_path / "rs_crash1" / "rs_crash1_s0"
    assert progress_rows(crashed) == 1 and status(crashed) == "running"  # killed mid-run

    eg2 = ExperimentGrid("rs")
    eg2.add("crash_at_epoch", [-1, 1], "crash")
    eg2.add("resume", True)
    # fake_algo crashes only on its first launch, as a run killed by a lost node would.
    eg2.run(fake_algo, data_dir=str(tmp_path), parallel=2)
    assert len(launches(ok)) == 1  # finished: not launched again
    assert [x["start_epoch"] for x in launches(crashed)] == [0, 1]
    assert status(crashed) == "finished" and progress_rows(crashed) == 3


def test_ctrl_c_stops_every_child(tmp_path):
    script = tmp_path / "grid_script.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {TESTS_DIR!r})
        from spinrl.launch.grid import ExperimentGrid
        from spinrl.cli import run_main_guarded
        from fake_algos import fake_algo

        def main():
            eg = ExperimentGrid("cc")
            eg.add("seed", [0, 1, 2])
            eg.add("epochs", 100)
            eg.add("epoch_seconds", 0.2)
            eg.run(fake_algo, data_dir={str(tmp_path)!r}, parallel=2)
            return 0

        if __name__ == "__main__":
            sys.exit(run_main_guarded(main))
    """)
    )
    # The checkout under test first (the zygote runs with -m, which would put the cwd first), then tests/.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), TESTS_DIR]))
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # As from a terminal, even when the tests themselves run as a background job (SIGINT ignored).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    run_dirs = [tmp_path / "cc" / f"cc_s{s}" for s in (0, 1)]
    deadline = time.time() + 60
    while not all((d / "progress.txt").exists() for d in run_dirs) and time.time() < deadline:
        time.sleep(0.2)
    assert all((d / "progress.txt").exists() for d in run_dirs), "the children never started"
    child_pids = [launches(d)[0]["pid"] for d in run_dirs]
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out
    assert "--resume" in out and "Traceback" not in out
    time.sleep(0.2)
    assert not any(pid_alive(pid) for pid in child_pids)
    assert not (tmp_path / "cc" / "cc_s2").exists()  # the third variant never started


def test_a_second_grid_launching_the_same_runs_writes_nothing_into_them(tmp_path, capsys):
    """Issue 18: two identical grids started at once: the loser's refusal landed in the winner's output.log."""
    from spinrl.record.lock import LaunchClaim

    eg = ExperimentGrid("twin")
    eg.add("seed", [0, 1])
    run_dirs = [str(tmp_path / "twin" / f"twin_s{s}") for s in (0, 1)]
    winner = LaunchClaim(run_dirs)  # the first grid, between its checks and its children's own locks
    try:
        Path(run_dirs[1], "output.log").write_text("the winner's log\n")
        with pytest.raises(UserError, match="2 of 2 variant"):
            eg.run(fake_algo, data_dir=str(tmp_path), parallel=2)
        assert (
            capsys.readouterr().out.count("is being launched by another grid") == 4
        )  # as it fails, at the end
        assert Path(run_dirs[1], "output.log").read_text() == "the winner's log\n"
        assert list(Path(run_dirs[0]).iterdir()) == []
    finally:
        winner.release()
    assert not Path(run_dirs[0]).exists()  # made by the claim, still empty: removed again


def test_sigterm_stops_children_cleanly_when_the_grid_was_started_with_sigint_ignored(tmp_path):
    """Issue 18: a grid started as a background job (`cmd &`) inherits an ignored SIGINT; its children
    then ignored the SIGINT the grid sends on SIGTERM and were killed 10 s later, without their clean-up."""
    script = tmp_path / "grid_script.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {TESTS_DIR!r})
        from spinrl.launch.grid import ExperimentGrid
        from spinrl.cli import run_main_guarded
        from fake_algos import fake_algo

        def main():
            eg = ExperimentGrid("bg")
            eg.add("seed", [0, 1])
            eg.add("epochs", 1000)
            eg.add("epoch_seconds", 0.05)
            eg.run(fake_algo, data_dir={str(tmp_path)!r}, parallel=2)
            return 0

        if __name__ == "__main__":
            sys.exit(run_main_guarded(main))
    """)
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), TESTS_DIR]))
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # as `cmd &` starts a job
    )
    run_dirs = [tmp_path / "bg" / f"bg_s{s}" for s in (0, 1)]
    deadline = time.time() + 60
    while not all((d / "progress.txt").exists() for d in run_dirs) and time.time() < deadline:
        time.sleep(0.1)
    assert all((d / "progress.txt").exists() for d in run_dirs), "the children never started"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, out
    for d in run_dirs:
        # A child that got the SIGINT says so in its log (spinrl.common.errors.run_main_guarded); a killed one cannot.
        assert "spinrl: interrupted" in (d / "output.log").read_text(), d


def test_command_line_grid_with_parallel(tmp_path, children_import_tests, monkeypatch, capsys):
    import spinrl.cli as run_cli

    monkeypatch.setattr(run_cli, "ALGORITHMS", {"fake": "fake_algos:fake_algo"})
    argv = [
        "fake",
        "--env",
        "CartPole-v1",
        "--seed",
        "0",
        "1",
        "--epochs",
        "2",
        "--exp_name",
        "cli",
        "--data_dir",
        str(tmp_path),
        "--parallel",
        "2",
    ]
    assert run_cli.run_main_guarded(run_cli.main, argv) == 0
    for seed in (0, 1):
        assert progress_rows(tmp_path / "cli" / f"cli_s{seed}") == 2
    assert run_cli.run_main_guarded(run_cli.main, argv + ["--resume"]) == 0
    assert "finished already" in capsys.readouterr().out
    assert run_cli.run_main_guarded(run_cli.main, argv[:-1] + ["0"]) == 2
    assert "--parallel 0 is not valid" in capsys.readouterr().err


def test_command_line_starts_the_zygote_early_and_the_grid_uses_it(
    tmp_path, children_import_tests, monkeypatch
):
    import spinrl.cli as run_cli
    import spinrl.launch.zygote as launch_zygote

    events = []
    real_init, real_load = launch_zygote.Zygote.__init__, run_cli._load

    def counting_init(self, modules):
        events.append(f"zygote for {modules[-1]}")
        real_init(self, modules)

    def noting_load(target):
        events.append(f"import {target}")
        return real_load(target)

    monkeypatch.setattr(launch_zygote.Zygote, "__init__", counting_init)
    monkeypatch.setattr(run_cli, "_load", noting_load)
    monkeypatch.setattr(run_cli, "ALGORITHMS", {"fake": "fake_algos:fake_algo"})
    argv = ["fake", "--env", "CartPole-v1", "--seed", "0", "1", "--epochs", "1", "--data_dir", str(tmp_path)]
    assert run_cli.run_main_guarded(run_cli.main, [*argv, "--exp_name", "early", "--parallel", "2"]) == 0
    # One zygote, started before the command line imported the algorithm, and used by the grid.
    assert events == ["zygote for fake_algos", "import fake_algos:fake_algo"]
    assert launch_zygote._early is None
    for seed in (0, 1):
        log = (tmp_path / "early" / f"early_s{seed}" / "output.log").read_text()
        assert "forked by the grid's zygote" in log


@pytest.mark.parametrize(
    "tokens, wanted",
    [
        (["--parallel", "2"], True),
        (["--seed", "0", "1", "--parallel", "4", "--cpu", "1"], True),
        (["--parallel", "1"], False),
        (["--parallel"], False),
        (["--parallel", "2", "--cpu", "2"], False),  # MPI variants start under mpiexec, not from a zygote
        (["--parallel", "2", "--backend", "ray"], False),
        (["--parallel", "2", "--help"], False),
        (["--seed", "0", "1"], False),
    ],
)
def test_which_command_lines_start_a_zygote_early(tokens, wanted):
    from spinrl.launch.zygote import _wants_zygote

    assert _wants_zygote(tokens) == wanted


def test_a_forked_child_ends_without_teardown_but_runs_threads_and_exit_handlers(tmp_path):
    marks = tmp_path / "marks.txt"
    script = textwrap.dedent(f"""
        import atexit, os, threading, time
        from spinrl.launch.zygote import exit_without_teardown

        def mark(text):
            with open({str(marks)!r}, "a") as f:
                f.write(text + "\\n")

        pid = os.fork()
        if pid == 0:
            atexit.register(mark, "exit handler")
            threading.Thread(target=lambda: (time.sleep(0.3), mark("thread"))).start()
            print("buffered output", end="")
            exit_without_teardown(7)
        _, status = os.waitpid(pid, 0)
        mark(f"code {{os.waitstatus_to_exitcode(status)}}")
    """)
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "buffered output"
    assert marks.read_text().splitlines() == ["thread", "exit handler", "code 7"]
