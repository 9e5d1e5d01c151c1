"""Kill a run with SIGKILL mid-training, resume it, and check what resuming promises.

The rule: ``--resume`` restores the networks, the optimisers, every random state and the counters
exactly, keeps each epoch of progress.txt and TensorBoard exactly once, and restarts the env copies
freshly seeded from (seed, rank, resumed epoch). Only the episodes running at the kill are lost, so the
resumed run need not match an uninterrupted one after the checkpoint; it must match any other process
resumed from the same checkpoint. Checkpoints themselves change nothing in training.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import torch
from conftest import ROOT, SPINRL

from spinrl.record.checkpoint import load_checkpoint
from spinrl.record.logger import read_progress

EPOCHS = 8


def _args(epochs: int) -> list[str]:
    return [
        "--env",
        "CartPole-v1",
        "--steps_per_epoch",
        "400",
        "--epochs",
        str(epochs),
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
        [*SPINRL, *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


# The run _args describes, through the Python API: argv gives epochs, "resume" or "new", the run directory.
PPO_SCRIPT = """
import sys
from spinrl.algos.ppo import ppo
epochs, resume, out = int(sys.argv[1]), sys.argv[2] == "resume", sys.argv[3]
ppo("CartPole-v1", steps_per_epoch=400, epochs=epochs, save_freq=1, train_pi_iters=5, train_v_iters=5,
    seed=3, resume=resume, logger_kwargs=dict(output_dir=out, quiet=True))
"""


def _ppo_in_new_process(epochs: int, resume: bool, run_dir) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), SPINRL_NUM_THREADS="1")
    argv = [str(epochs), "resume" if resume else "new", str(run_dir)]
    return subprocess.run(
        [sys.executable, "-c", PPO_SCRIPT, *argv], env=env, capture_output=True, text=True, timeout=300
    )


def _rows_without_time(progress) -> dict[str, np.ndarray]:
    return {k: v for k, v in read_progress(progress).items() if k != "Time"}


def _tensorboard_scalars(run_dir, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_sigkill_then_resume_logs_every_epoch_once_and_continues_from_the_checkpoint(tmp_path):
    # Kill a run once it has logged a few epochs.
    proc = _spinrl("ppo", *_args(EPOCHS), "--exp_name", "killed", cwd=tmp_path)
    run = tmp_path / "data/killed/killed_s3"
    progress = run / "progress.txt"
    deadline = time.time() + 240
    while time.time() < deadline:
        if progress.exists() and len(progress.read_text().splitlines()) >= 4:  # header + 3 epochs
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert len(progress.read_text().splitlines()) < 1 + EPOCHS, "the run finished before it could be killed"
    saved = json.loads((run / "checkpoint.json").read_text())["epoch"]
    assert 2 <= saved < EPOCHS

    # The twin: an uninterrupted run that stops (and checkpoints) at the killed run's checkpoint, then
    # a fresh process resumes it. Both runs resume from checkpoints of the same epoch, which must hold
    # the same networks, optimisers, random states and counters. (Through Python: the command line
    # rightly refuses to extend a finished run.)
    resumed = _spinrl("ppo", *_args(EPOCHS), "--exp_name", "killed", "--resume", cwd=tmp_path)
    twin_run = tmp_path / "twin"
    for epochs, resume in ((saved, False), (EPOCHS, True)):
        twin = _ppo_in_new_process(epochs, resume, twin_run)
        assert twin.returncode == 0, twin.stderr[-3000:]
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()

    # Every epoch exactly once, in order, no gap; the step counter continues across the kill.
    cols = read_progress(progress)
    assert cols["Epoch"].tolist() == list(range(EPOCHS))
    assert np.all(np.diff(cols["TotalEnvInteracts"]) == 400)
    assert cols["TotalEnvInteracts"].tolist() == [400 * (e + 1) for e in range(EPOCHS)]
    assert (run / "status.json").read_text().count('"finished"') == 1

    # Rows up to the checkpoint are the uninterrupted run's; rows after it are what any process
    # resumed from that checkpoint logs: both runs agree on every column but Time.
    mine, theirs = _rows_without_time(progress), _rows_without_time(twin_run / "progress.txt")
    assert mine.keys() == theirs.keys()
    for key in mine:
        np.testing.assert_array_equal(mine[key], theirs[key], err_msg=key)

    # And they end with the same networks and optimiser states.
    end, twin_end = load_checkpoint(run), load_checkpoint(twin_run)
    torch.testing.assert_close(end["ac"], twin_end["ac"], rtol=0, atol=0)
    for name in ("pi_optimizer", "vf_optimizer"):
        torch.testing.assert_close(end[name]["state"], twin_end[name]["state"], rtol=0, atol=0)
    assert end["counters"]["t"] == twin_end["counters"]["t"] == 400 * EPOCHS

    # TensorBoard: each epoch once (the killed process's rows after the checkpoint were purged).
    loss_v = _tensorboard_scalars(run, "LossV")
    assert [step for step, _ in loss_v] == cols["TotalEnvInteracts"].tolist()
    np.testing.assert_allclose([v for _, v in loss_v], cols["LossV"], rtol=1e-5)


def test_checkpoints_do_not_change_training(tmp_path):
    """Saving after every epoch or every third one: the same rows (Time aside)."""
    from spinrl.algos.ppo import ppo

    for save_freq in (1, 3):
        ppo(
            "CartPole-v1",
            ac_kwargs=dict(hidden_sizes=(16,)),
            seed=1,
            steps_per_epoch=500,
            epochs=4,
            train_pi_iters=5,
            train_v_iters=5,
            save_freq=save_freq,
            logger_kwargs=dict(output_dir=str(tmp_path / f"every{save_freq}"), quiet=True),
        )
    every1 = _rows_without_time(tmp_path / "every1/progress.txt")
    every3 = _rows_without_time(tmp_path / "every3/progress.txt")
    assert every1["Epoch"].tolist() == [0, 1, 2, 3]
    for key in every1:
        np.testing.assert_array_equal(every1[key], every3[key], err_msg=key)


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
