"""Kill an off-policy run mid-training and resume it.

The rule: a resumed run continues from the last checkpoint with the same networks, optimisers, random
generators, counters and (with --save_buffer) replay buffer; its env copies restart, freshly seeded
for the resumed epoch, so only the episodes running at the kill are lost. Rows up to the checkpoint
are the uninterrupted run's; later rows may differ from it only through that restart, so resuming
twice from the same checkpoint gives the same rows.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import torch
from conftest import ROOT

from spinrl import sac, td3
from spinrl.record.checkpoint import load_checkpoint
from spinrl.record.logger import read_progress

# Two env copies with 100-step episodes and 150 steps per copy and epoch: streams are open at every
# checkpoint, so the saved buffer must close them.
ARGS = dict(
    steps_per_epoch=300, epochs=5, start_steps=200, update_after=200, update_every=50, num_envs=2,
    num_test_episodes=2, max_ep_len=100, ac_kwargs=dict(hidden_sizes=(16,)), device="cpu", save_buffer=True,
)  # fmt: skip


def _cli_args(exp_name: str) -> list[str]:
    args = ["sac", "--env", "Pendulum-v1", "--exp_name", exp_name, "--save_buffer", "--hid", "[16]"]
    for k, v in ARGS.items():
        if k not in ("ac_kwargs", "save_buffer"):
            args += [f"--{k}", str(v)]
    return args


def _same_rows(a: dict, b: dict, epochs: slice) -> None:
    """The same columns and values (NaN equal to NaN) in ``epochs``, the Time column aside."""
    assert a.keys() == b.keys()
    for k in a:
        if k != "Time":
            np.testing.assert_array_equal(a[k][epochs], b[k][epochs], err_msg=k)


def _assert_same(a, b, where: str = "") -> None:
    """Nested checkpoint contents are equal: tensors bit for bit, everything else with ==."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif torch.is_tensor(a):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


def _kill_after_two_checkpoints(cmd, cwd, env, run_dir) -> int:
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:  # kill once two epochs are checkpointed, mid-way through the third
            meta = run_dir / "checkpoint.json"
            if meta.exists() and json.loads(meta.read_text())["epoch"] >= 2:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    return json.loads((run_dir / "checkpoint.json").read_text())["epoch"]


def test_sigkill_then_resume_with_saved_buffer_continues_from_the_checkpoint(tmp_data):
    env = dict(os.environ, PYTHONPATH=str(ROOT), SPINRL_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "spinrl.cli", *_cli_args("kr")]
    run_dir = tmp_data / "data/kr/kr_s0"
    epochs_done = _kill_after_two_checkpoints(cmd, tmp_data, env, run_dir)
    assert 2 <= epochs_done < ARGS["epochs"]
    twin = tmp_data / "twin"
    shutil.copytree(run_dir, twin)  # the same checkpoint, to resume a second time below

    # The checkpoint holds exactly what the uninterrupted run had after those epochs: weights,
    # optimisers, temperature, RNG states, counters and the replay buffer (with its open streams
    # closed, in the saved copy only). A run of epochs_done epochs shows it.
    upto = tmp_data / "upto"
    sac("Pendulum-v1", logger_kwargs=dict(output_dir=str(upto), quiet=True), **dict(ARGS, epochs=epochs_done))
    killed, reference = load_checkpoint(run_dir), load_checkpoint(upto)
    assert killed["counters"]["epoch"] == reference["counters"]["epoch"] == epochs_done
    assert killed["counters"]["t"] == reference["counters"]["t"] == 300 * epochs_done
    for name in ("ac", "ac_targ", "pi_optimizer", "q_optimizer", "temperature", "alpha_optimizer"):
        _assert_same(killed[name], reference[name], name)
    _assert_same(killed["replay_buffer"], reference["replay_buffer"], "replay_buffer")
    _assert_same(killed["rng_per_rank"], reference["rng_per_rank"], "rng_per_rank")
    assert killed["replay_buffer"]["steps_stored"] == 300 * epochs_done

    resumed = subprocess.run(
        cmd + ["--resume"], cwd=tmp_data, env=env, capture_output=True, text=True, timeout=180
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"continuing {run_dir} after epoch {epochs_done}" in resumed.stdout
    progress = read_progress(run_dir / "progress.txt")
    assert list(progress["Epoch"]) == list(range(ARGS["epochs"]))  # every epoch exactly once
    assert list(progress["TotalEnvInteracts"]) == [300 * (e + 1) for e in range(ARGS["epochs"])]
    # Up to the checkpoint: the uninterrupted run's rows.
    done = slice(0, epochs_done)
    _same_rows(progress, read_progress(upto / "progress.txt"), done)
    assert all(np.isfinite(progress["LossQ"]))

    # After it: a function of the checkpoint alone. Resuming the copy (in this process) gives the
    # same rows, so nothing came from the killed process but what its checkpoint holds.
    sac("Pendulum-v1", logger_kwargs=dict(output_dir=str(twin), quiet=True), resume=True, **ARGS)
    _same_rows(read_progress(twin / "progress.txt"), progress, slice(None))


def test_resume_without_saved_buffer_refills_it(tmp_data, capsys):
    out = str(tmp_data / "nobuf")
    args = dict(ARGS, epochs=2, save_buffer=False)
    td3("Pendulum-v1", logger_kwargs=dict(output_dir=out), **args)
    td3("Pendulum-v1", logger_kwargs=dict(output_dir=out), resume=True, **dict(args, epochs=3))
    stdout = capsys.readouterr().out
    assert "replay buffer was not saved" in stdout
    assert "updates wait until it holds update_after=200 transitions again" in stdout
    progress = read_progress(os.path.join(out, "progress.txt"))
    assert list(progress["Epoch"]) == [0, 1, 2]
    assert list(progress["TotalEnvInteracts"]) == [300, 600, 900]  # the step counter continues
