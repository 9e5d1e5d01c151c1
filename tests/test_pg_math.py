"""The policy-gradient-from-scratch examples learn CartPole, and their pieces compute what they claim.

Budget: 20 epochs of 1000 steps each. Measured on seed 0 (torch 2.13 CPU), the best of the last five
epochs is 94-146 for the three files, against about 22 for a random policy; we ask for 50.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

PG_MATH = Path(__file__).resolve().parents[1] / "examples" / "pg_math"
FILES = ["1_simple_pg.py", "2_rtg_pg.py", "3_baseline_pg.py"]
RANDOM_POLICY_RETURN = 22.0


def load(filename: str) -> ModuleType:
    # The file names start with a digit, so they are loaded by path rather than imported.
    spec = importlib.util.spec_from_file_location(filename.removesuffix(".py"), PG_MATH / filename)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """These tiny networks run fastest on one thread, and a second thread only fights other processes."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("filename", FILES)
def test_learns_cartpole(filename: str, capsys: pytest.CaptureFixture[str]) -> None:
    returns = load(filename).train(epochs=20, batch_size=1000, seed=0)
    assert len(returns) == 20
    assert returns[0] < 40, "the first epoch should look like a random policy"
    assert max(returns[-5:]) >= 50 > RANDOM_POLICY_RETURN
    assert "epoch  19" in capsys.readouterr().out


def test_same_seed_same_returns() -> None:
    module = load("1_simple_pg.py")
    assert module.train(epochs=2, batch_size=300, seed=3) == module.train(epochs=2, batch_size=300, seed=3)


def test_reward_to_go() -> None:
    assert load("2_rtg_pg.py").reward_to_go([1.0, 2.0, 3.0]) == [6.0, 5.0, 3.0]
    baseline = load("3_baseline_pg.py")
    assert baseline.reward_to_go([1.0, 2.0, 3.0]) == [6.0, 5.0, 3.0]
    # A truncated episode carries on past its last step: V(s_T) is added to every reward-to-go.
    assert baseline.reward_to_go([1.0, 2.0, 3.0], last_value=10.0) == [16.0, 15.0, 13.0]


def test_command_line() -> None:
    result = subprocess.run(
        [sys.executable, str(PG_MATH / "2_rtg_pg.py"), "--epochs", "1", "--batch_size", "200", "--seed", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "epoch   0" in result.stdout and "mean return" in result.stdout
