"""An environment of the user's own, named ``module:EnvId`` as Gymnasium does: trained from the command
line, in a grid, under MPI, resumed and watched; Gymnasium's env checker run on it once; every mistake
one line. The worked example is docs/user/own-env.md's, examples/own_env/reach.py."""

from __future__ import annotations

import shutil
import sys
import textwrap

import gymnasium as gym
import pytest
from conftest import ROOT

from spinrl.common.errors import UserError
from spinrl.envs.make import CHECKED_ENVS_VAR, make_env_fn
from spinrl.record.logger import read_progress

EXAMPLE = ROOT / "examples" / "own_env"


@pytest.fixture
def example(tmp_path, monkeypatch):
    """A copy of the docs' example folder as the working folder; runs go to its data/."""
    folder = tmp_path / "own_env"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__", "data"))
    monkeypatch.chdir(folder)
    return folder


def test_the_docs_example_trains_in_a_grid_resumes_and_plays_from_the_command_line(example, cli):
    # Two grid variants at once: each forked child imports the env's module itself.
    grid = cli("ppo", "--env", "reach:Reach-v0", "--seed", "0", "1", "--parallel", "2", "--epochs", "1",
               "--steps_per_epoch", "400", "--exp_name", "reach", cwd=example)  # fmt: skip
    assert grid.returncode == 0, grid.stdout[-2000:] + grid.stderr[-2000:]
    for seed in (0, 1):
        assert read_progress(example / f"data/reach/reach_s{seed}/progress.txt")["Epoch"].tolist() == [0]
    resumed = cli("ppo", "--env", "reach:Reach-v0", "--seed", "0", "--epochs", "2", "--steps_per_epoch",
                  "400", "--exp_name", "reach", "--resume", cwd=example)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    run = example / "data/reach/reach_s0"
    assert read_progress(run / "progress.txt")["Epoch"].tolist() == [0, 1]
    played = cli("test_policy", str(run), "--episodes", "2", "--deterministic", cwd=example)
    assert played.returncode == 0, played.stderr[-2000:]
    assert "AverageEpRet" in played.stdout


def test_the_example_trains_under_mpi(example, cli):
    proc = cli("ppo", "--env", "reach:Reach-v0", "--cpu", "2", "--epochs", "1", "--steps_per_epoch", "200",
               "--train_pi_iters", "2", "--train_v_iters", "2", "--exp_name", "m", cwd=example,
               env={"SPINRL_NUM_THREADS": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_progress(example / "data/m/m_s0/progress.txt")["TotalEnvInteracts"].tolist() == [200]


def test_the_module_is_found_in_the_working_folder_without_it_on_sys_path(example, monkeypatch):
    """The ``spinrl`` command, unlike ``python -m``, does not put the working folder on sys.path."""
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(example))])
    monkeypatch.delitem(sys.modules, "reach", raising=False)
    monkeypatch.setenv(CHECKED_ENVS_VAR, "reach:Reach-v0")
    env = make_env_fn("reach:Reach-v0")()
    assert env.spec.id == "Reach-v0" and env.action_space == gym.spaces.Discrete(3, start=-1)


def _module(tmp_path, monkeypatch, name: str, source: str) -> None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)


ENV_CLASS = textwrap.dedent("""
    import gymnasium as gym
    import numpy as np

    class Walk(gym.Env):
        observation_space = gym.spaces.Box(-1, 1, (1,), np.float32)
        action_space = gym.spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return np.array([np.random.uniform(-1, 1)], np.float32), {}  # ignores the seed

        def step(self, action):
            return np.zeros(1, np.float32), 0.0, False, False, {}
""")


@pytest.mark.parametrize(
    "env_id, source, expected",
    [
        ("nosuchmod:Walk-v0", None, "module 'nosuchmod' cannot be found; run from the folder that holds"),
        ("needsdep:Walk-v0", "import not_installed_pkg\n", "needs the module 'not_installed_pkg'"),
        ("broken:Walk-v0", "x = 1 / 0\n", "importing broken failed at "),
        ("quiet:Walk-v0", "VALUE = 1\n", "importing quiet registers no environment 'Walk-v0'"),
        ("typo:Wakl-v0", ENV_CLASS + "gym.register('TypoWalk-v0', Walk)\n", "did you mean typo:"),
        ("a:b:c", None, "give EnvId or module:EnvId"),
    ],
)
def test_a_bad_module_env_id_is_one_line(tmp_path, monkeypatch, env_id, source, expected):
    monkeypatch.chdir(tmp_path)
    if source is not None:
        _module(tmp_path, monkeypatch, env_id.split(":")[0], source)
    with pytest.raises(UserError, match=expected) as e:
        make_env_fn(env_id)
    assert "\n" not in str(e.value) and env_id in str(e.value)


def test_the_env_checker_runs_once_and_reports_its_findings_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(CHECKED_ENVS_VAR, raising=False)
    _module(tmp_path, monkeypatch, "unseeded", ENV_CLASS + "gym.register('UnseededWalk-v0', Walk)\n")
    env_fn = make_env_fn("unseeded:UnseededWalk-v0")
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("note: Gymnasium's env checker on unseeded:UnseededWalk-v0: ")
    assert "non-deterministic" in out[0]
    # Training goes on, and a second factory (a grid variant, an MPI rank) does not say it again.
    assert env_fn().reset(seed=0)[0].shape == (1,)
    make_env_fn("unseeded:UnseededWalk-v0")
    assert capsys.readouterr().out == ""


def test_an_env_that_fails_to_step_is_refused_in_one_line_naming_where(tmp_path, monkeypatch):
    monkeypatch.delenv(CHECKED_ENVS_VAR, raising=False)
    source = ENV_CLASS.replace("return np.zeros(1, np.float32), 0.0", "return self.missing, 0.0")
    _module(tmp_path, monkeypatch, "crashes", source + "gym.register('CrashWalk-v0', Walk)\n")
    with pytest.raises(
        UserError, match=r"fails Gymnasium's env checker at .*crashes\.py:\d+: AttributeError"
    ):
        make_env_fn("crashes:CrashWalk-v0")
