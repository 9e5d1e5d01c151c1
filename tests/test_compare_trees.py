"""benchmarks/compare_trees.py: refuses trees without spinrl and unknown workloads in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "compare_trees.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False)


def test_a_tree_without_spinrl_is_refused(tmp_path):
    result = run("--before", str(tmp_path), "--after", str(ROOT))
    assert result.returncode == 2
    assert f"--before {tmp_path} holds no spinrl package" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_workload_is_refused_with_the_valid_ones(tmp_path):
    result = run("--before", str(ROOT), "--after", str(ROOT), "--only", "PPO Pong")
    assert result.returncode == 2
    assert "unknown workload 'PPO Pong'" in result.stderr and "PPO CartPole-v1, 1 env copy" in result.stderr
