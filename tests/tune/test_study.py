"""spinrl tune: the distributions' syntax, a study that prunes, a kill in the middle of a trial, two processes.

The runs are tiny (CartPole, 200 steps per epoch, hidden size 8). What a trial reaches is made certain by
the search space rather than by luck: CartPole pays 1 per step and cannot fail in fewer than 8 steps, so
``max_ep_len`` 5 returns exactly 5 while 200 returns more, and the settings of each trial are queued in
the study beforehand (Optuna's ``enqueue_trial``), so the order of good and bad trials is known.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import TESTS_DIR

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

optuna = pytest.importorskip("optuna")

from optuna.trial import TrialState  # noqa: E402
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402

from spinrl.cli import parse_grid  # noqa: E402
from spinrl.common.errors import UserError  # noqa: E402
from spinrl.tune.space import Distribution, parse_distribution, split_space, suggest  # noqa: E402
from spinrl.tune.study import main, open_study, parse_command_line, search  # noqa: E402

TINY = ["--env", "CartPole-v1", "--steps_per_epoch", "200", "--hid", "[8]", "--train_pi_iters", "5",
        "--train_v_iters", "5", "--startup_trials", "1", "--warmup_epochs", "0"]  # fmt: skip


def study_argv(tmp_path: Path, name: str, *extra: str) -> list[str]:
    return ["ppo", *TINY, "--data_dir", str(tmp_path), "--exp_name", name, *extra]


def wait_for(condition, proc: subprocess.Popen, seconds: float = 300) -> None:
    """Poll ``condition`` while ``proc`` runs; if it ends first or time runs out, kill it and fail with its output."""
    deadline = time.monotonic() + seconds
    while not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()  # its search processes and runs end with it
            pytest.fail(f"the condition never held; the search's output:\n{proc.communicate()[0]}")
        time.sleep(0.05)


def load(tmp_path: Path, name: str):
    url = f"sqlite:///{tmp_path / name / 'study.db'}"
    return optuna.load_study(study_name=name, storage=url)


# ----- the distributions ---------------------------------------------------------------------------------
def test_distributions_are_read_from_the_command_line_syntax():
    assert parse_distribution("pi_lr", "loguniform(1e-5, 1e-2)") == Distribution("loguniform", 1e-5, 1e-2)
    assert parse_distribution("clip_ratio", " uniform(0.1,0.3) ") == Distribution("uniform", 0.1, 0.3)
    assert parse_distribution("epochs", "int(2, 9)") == Distribution("int", 2, 9)
    hid = parse_distribution("hid", "choice([64,64], [256,256])")
    assert hid.choices == ([64, 64], [256, 256])
    act = parse_distribution("act", "choice(torch.nn.Tanh, torch.nn.ReLU)")
    assert act.choices == ("torch.nn.Tanh", "torch.nn.ReLU")  # names, as the grid reads them
    # Several plain values after a flag are a choice; one value is fixed.
    space, fixed = split_space({"gamma": [0.99, 0.999], "lam": ["uniform(0.9, 1)"], "epochs": [3]})
    assert space == {
        "gamma": Distribution("choice", choices=(0.99, 0.999)),
        "lam": Distribution("uniform", 0.9, 1),
    }
    assert fixed == {"epochs": 3}


@pytest.mark.parametrize(
    "text, words",
    [
        ("lognormal(1, 2)", "did you mean loguniform"),
        ("uniform(0.3, 0.1)", "low (0.3) must be below high (0.1)"),
        ("loguniform(0, 1e-2)", "needs low > 0"),
        ("int(1.5, 4)", "whole numbers"),
        ("uniform(1)", "takes two numbers"),
        ("choice(64)", "at least two values"),
        ("uniform(0.1, 0.3", "not a valid distribution"),
    ],
)
def test_bad_distributions_are_refused_in_one_line(text, words):
    with pytest.raises(UserError, match=words.replace("(", r"\(").replace(")", r"\)")) as e:
        parse_distribution("pi_lr", text)
    assert "--pi_lr" in str(e.value) and "\n" not in str(e.value)


def test_command_line_refusals(tmp_path):
    with pytest.raises(UserError, match="--pi_lr 'loguniform\\(0, 1\\)': loguniform needs low > 0"):
        main(study_argv(tmp_path, "bad", "--pi_lr", "loguniform(0, 1)"))
    with pytest.raises(UserError, match="either one distribution"):
        main(study_argv(tmp_path, "bad", "--gamma", "0.9", "uniform(0.9, 1)"))
    with pytest.raises(UserError, match="--sampler 'grid' is not valid"):
        main(study_argv(tmp_path, "bad", "--sampler", "grid"))
    with pytest.raises(UserError, match="unknown hyperparameter --pi_lrr"):
        main(study_argv(tmp_path, "bad", "--pi_lrr", "uniform(0, 1)"))
    assert not (tmp_path / "bad").exists()  # refused before anything was written


def test_a_missing_optuna_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now raises ImportError
    with pytest.raises(UserError, match=r"pip install 'spinrl\[tune\]'"):
        main(study_argv(tmp_path, "no-optuna", "--gamma", "uniform(0.9, 0.99)"))


def test_a_choice_of_lists_goes_through_optunas_storage_and_back():
    dist = parse_distribution("ac_kwargs:hidden_sizes", "choice([64, 64], [8])")
    trial = optuna.trial.FixedTrial({"ac_kwargs:hidden_sizes": "[8]"})
    assert suggest(trial, "ac_kwargs:hidden_sizes", dist) == [8]


def test_no_distribution_searches_the_built_in_space(tmp_path):
    s = parse_command_line(study_argv(tmp_path, "b", "--epochs", "2", "--gamma", "0.99"))
    assert {"pi_lr", "clip_ratio", "lam"} <= set(s["space"]) and "gamma" not in s["space"]
    assert s["fixed"]["gamma"] == 0.99


def test_a_search_whose_trials_all_fail_stops_after_three_naming_the_error(tmp_path):
    argv = study_argv(
        tmp_path, "fail", "--epochs", "1", "--steps_per_epoch", "choice(-1, -2)", "--n_trials", "5"
    )
    argv.remove("--steps_per_epoch"), argv.remove("200")
    with pytest.raises(UserError, match="3 trials failed in a row; the last one: .*steps_per_epoch"):
        main(argv)
    states = [t.state for t in load(tmp_path, "fail").trials]
    assert states == [TrialState.FAIL] * 3  # recorded as failed: none counts towards --n_trials


# ----- a study ------------------------------------------------------------------------------------------
def test_a_small_study_prunes_a_trial_that_is_behind_and_shows_its_best(tmp_path, capsys):
    argv = study_argv(tmp_path, "prune", "--epochs", "2", "--max_ep_len", "choice(5, 200)", "--n_trials", "2")
    study = open_study(parse_command_line(argv))
    for max_ep_len in (200, 5):
        study.enqueue_trial({"max_ep_len": max_ep_len})
    assert main([*argv, "--resume"]) == 0

    trials = load(tmp_path, "prune").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED]
    assert trials[1].intermediate_values[0] == 5.0  # its mean return at epoch 0: the cap of 5 steps
    assert trials[0].value > 5 and trials[0].user_attrs["column"] == "AverageEpRet"
    # Every seed of every trial is an ordinary run folder under the study's folder.
    for t in trials:
        for run in t.user_attrs["runs"]:
            assert Path(run).parent.parent == tmp_path / "prune"
            assert json.loads(Path(run, "config.json").read_text())["max_ep_len"] == t.params["max_ep_len"]
    finished = json.loads(Path(trials[0].user_attrs["runs"][0], "status.json").read_text())
    assert finished["status"] == "finished" and finished["epoch"] == 2

    # --show: the best trial, the command that reruns it, the table, the plots; then a preset entry.
    show = ["--show", str(tmp_path / "prune")]
    assert main(show) == 0
    out = capsys.readouterr().out
    assert "best: trial 0" in out and "1 pruned" in out and "AverageEpRet" in out
    rerun = next(line for line in out.splitlines() if line.strip().startswith("spinrl ppo"))
    args, _ = parse_grid(shlex.split(rerun)[2:])
    assert args["max_ep_len"] == [200] and args["ac_kwargs:hidden_sizes"] == [[8]] and args["seed"] == [0]
    assert (tmp_path / "prune" / "plots" / "optimization_history.png").stat().st_size > 1000
    preset_file = tmp_path / "mine.toml"
    preset_file.write_text('# my presets\n[old."Hopper-v5"]\ngamma = 0.99\n')
    assert main([*show, "--save-preset", "tuned", "--preset_file", str(preset_file)]) == 0
    presets = tomllib.loads(preset_file.read_text())
    assert presets["old"] == {"Hopper-v5": {"gamma": 0.99}}  # what was there stays
    entry = presets["tuned"]["CartPole-v1"]
    assert entry["max_ep_len"] == 200 and entry["ac_kwargs"] == {"hidden_sizes": [8]}
    assert "epochs" not in entry and "env_fn" not in entry and "seed" not in entry
    with pytest.raises(UserError, match='has a \\[tuned."CartPole-v1"\\] entry already'):
        main([*show, "--save-preset", "tuned", "--preset_file", str(preset_file)])


def test_a_study_killed_in_the_middle_of_a_trial_resumes_without_losing_or_recounting_one(tmp_path):
    # Trial 1 takes 20,000 steps per epoch: long enough to be killed in its first epoch.
    argv = study_argv(
        tmp_path, "kill", "--epochs", "2", "--steps_per_epoch", "choice(200, 20000)", "--n_trials", "2"
    )
    argv.remove("--steps_per_epoch"), argv.remove("200")  # the fixed one of TINY
    study = open_study(parse_command_line(argv))
    for steps in (200, 20000, 200, 200):
        study.enqueue_trial({"steps_per_epoch": steps})
    proc = subprocess.Popen(
        [sys.executable, "-m", "spinrl.cli", "tune", *argv, "--resume"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    slow_run = tmp_path / "kill" / "kill_t001" / "kill_t001_s0" / "status.json"
    wait_for(lambda: slow_run.exists() and json.loads(slow_run.read_text())["status"] == "running", proc)
    os.kill(proc.pid, signal.SIGKILL)  # no clean-up at all: trial 1 stays "running" in the storage
    proc.wait()
    before = load(tmp_path, "kill").trials
    assert [t.state for t in before] == [
        TrialState.COMPLETE,
        TrialState.RUNNING,
        TrialState.WAITING,
        TrialState.WAITING,
    ]

    assert main([*argv, "--resume"]) == 0
    after = load(tmp_path, "kill").trials
    assert [t.state for t in after[:3]] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert after[0].value == before[0].value  # the finished trial is kept as it was, not run again
    assert len({t.number for t in after}) == len(after)
    assert slow_run.exists()  # the killed trial's runs are still there to look at


# Started with every Python process of the next test (a sitecustomize module on PYTHONPATH): registers a
# CartPole whose reset waits until a gate file exists, so a trial cannot end before the test opens the gate.
GATED_ENV = """
import os, time
import gymnasium as gym

class GatedCartPole(gym.Wrapper):
    def __init__(self):
        super().__init__(gym.make("CartPole-v1"))

    def reset(self, **kwargs):
        while not os.path.exists(os.environ["SPINRL_TEST_GATE"]):
            time.sleep(0.02)
        return self.env.reset(**kwargs)

gym.register("GatedCartPole-v0", entry_point=GatedCartPole)
"""


def test_two_search_processes_share_one_study(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(GATED_ENV)
    gate = tmp_path / "gate"
    env = dict(os.environ, SPINRL_TEST_GATE=str(gate))
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    argv = study_argv(
        tmp_path, "two", "--epochs", "1", "--gamma", "choice(0.9, 0.99)", "--n_trials", "2", "--parallel", "2"
    )
    argv[argv.index("CartPole-v1")] = "GatedCartPole-v0"
    proc = subprocess.Popen(
        [sys.executable, "-m", "spinrl.cli", "tune", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )

    # Both processes hold a running trial at once before any trial can finish: the study is shared.
    def both_running() -> bool:
        try:
            running = load(tmp_path, "two").get_trials(states=(TrialState.RUNNING,))
        except (KeyError, SQLAlchemyError):  # the study (or its folder, or its tables) is not created yet
            return False
        return len({t.user_attrs.get("process", {}).get("pid") for t in running} - {None}) == 2

    wait_for(both_running, proc)
    gate.touch()
    wait_for(lambda: proc.poll() is not None, proc)
    out = proc.communicate()[0]
    assert proc.returncode == 0, out
    trials = load(tmp_path, "two").trials
    # Two trials asked for; the first process to finish one may start a third before the other finishes.
    assert 2 <= len(trials) <= 3 and all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["process"]["pid"] for t in trials}) == 2
    assert "search process 2 of 2" in out and (tmp_path / "two" / "worker1.log").exists()


class TenStepEnv(gym.Env):
    """A custom environment: 1 per step, always 10 steps, so every policy's return is exactly 10."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        return np.zeros(2, dtype=np.float32), 1.0, self.t == 10, False, {}


def make_ten_step_env() -> gym.Env:
    return TenStepEnv()


def test_a_custom_environment_from_python(tmp_path, monkeypatch):
    # The runs' processes import this test module (tune.test_study, from tests/) to make the env, as they
    # would a user's module.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([TESTS_DIR, os.environ.get("PYTHONPATH", "")]))
    study = search(
        "ppo", make_ten_step_env, {"gamma": [0.9, 0.99]}, n_trials=1, epochs=2, steps_per_epoch=100,
        ac_kwargs={"hidden_sizes": [8]}, train_pi_iters=2, train_v_iters=2, data_dir=str(tmp_path),
        exp_name="custom",
    )  # fmt: skip
    (trial,) = study.trials
    assert trial.state == TrialState.COMPLETE and trial.value == 10.0
