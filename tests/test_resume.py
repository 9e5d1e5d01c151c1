"""Kill a run with SIGKILL mid-training, resume it, and check nothing is lost or repeated."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
from conftest import ROOT

from spinrl.logx import read_progress

ARGS = [
    "--env",
    "CartPole-v1",
    "--steps_per_epoch",
    "400",
    "--epochs",
    "8",
    "--save_freq",
    "1",
    "--train_pi_iters",
    "5",
    "--train_v_iters",
    "5",
    "--seed",
    "3",
]


def _spinrl(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT), SPINRL_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-m", "spinrl.run", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_then_resume_logs_every_epoch_once_and_matches(tmp_path):
    # Reference: the same run, uninterrupted.
    ref = _spinrl("ppo", *ARGS, "--exp_name", "ref", cwd=tmp_path)
    assert ref.wait(timeout=300) == 0, ref.stderr.read()

    # Kill the run once it has logged a few epochs.
    proc = _spinrl("ppo", *ARGS, "--exp_name", "killed", cwd=tmp_path)
    progress = tmp_path / "data/killed/killed_s3/progress.txt"
    deadline = time.time() + 240
    while time.time() < deadline:
        if progress.exists() and len(progress.read_text().splitlines()) >= 4:  # header + 3 epochs
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert len(progress.read_text().splitlines()) < 9, "the run finished before it could be killed"

    resumed = _spinrl("ppo", *ARGS, "--exp_name", "killed", "--resume", cwd=tmp_path)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()

    cols = read_progress(progress)
    assert cols["Epoch"].tolist() == list(range(8))  # every epoch exactly once, in order, no gap
    assert np.all(np.diff(cols["TotalEnvInteracts"]) == 400)
    # Same seed and restored RNG states: the resumed run continues exactly like the uninterrupted one.
    ref_cols = read_progress(tmp_path / "data/ref/ref_s3/progress.txt")
    np.testing.assert_allclose(cols["AverageEpRet"], ref_cols["AverageEpRet"])
    np.testing.assert_allclose(cols["LossV"], ref_cols["LossV"], rtol=1e-5)
    assert (tmp_path / "data/killed/killed_s3/status.json").read_text().count('"finished"') == 1


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    from spinrl.algos.vpg import vpg

    out = tmp_path / "run"
    vpg(
        "CartPole-v1",
        steps_per_epoch=100,
        epochs=2,
        resume=True,
        logger_kwargs=dict(output_dir=str(out), quiet=True),
    )
    assert read_progress(out / "progress.txt")["Epoch"].tolist() == [0, 1]
