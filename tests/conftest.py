"""Shared test fixtures and helpers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# This folder: child processes that import a helper module of the tests (fake_algos) need it on PYTHONPATH.
TESTS_DIR = str(Path(__file__).resolve().parent)
SPINRL = [sys.executable, "-m", "spinrl.cli"]


def run_cli(*args: str, cwd: str | os.PathLike | None = None, timeout: float = 300, env: dict | None = None):
    """Run ``spinrl ARGS`` in a subprocess and return the CompletedProcess (text mode)."""
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run(
        [*SPINRL, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env
    )


def mpirun(script: str, cwd, n: int = 2, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run the Python ``script`` on ``n`` MPI ranks with this checkout's spinrl; return the CompletedProcess."""
    from spinrl.common.mpi import mpiexec_command

    cmd, env = mpiexec_command(n)
    env = dict(env, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [*cmd, sys.executable, "-c", textwrap.dedent(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def tmp_data(tmp_path, monkeypatch):
    """A scratch working directory whose ./data receives runs."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def cli():
    """``cli("ppo", "--env", ...)`` runs the spinrl command line in a subprocess."""
    return run_cli
