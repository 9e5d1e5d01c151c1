"""Kill an off-policy run mid-training and resume it: every epoch logged once, the same numbers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from conftest import ROOT

from spinrl import sac, td3
from spinrl.logx import read_progress

ARGS = dict(
    steps_per_epoch=300, epochs=5, start_steps=200, update_after=200, update_every=50,
    num_test_episodes=2, max_ep_len=100, ac_kwargs=dict(hidden_sizes=(16,)), device="cpu",
)  # fmt: skip


def _cli_args(exp_name: str) -> list[str]:
    args = ["sac", "--env", "Pendulum-v1", "--exp_name", exp_name, "--save_buffer", "--hid", "[16]"]
    for k, v in ARGS.items():
        if k not in ("ac_kwargs",):
            args += [f"--{k}", str(v)]
    return args


def _same_rows(a: dict, b: dict) -> None:
    assert list(a["Epoch"]) == list(b["Epoch"])
    for k in a:
        if k != "Time":
            assert list(a[k]) == list(b[k]), k


def test_sigkill_then_resume_with_saved_buffer_continues_exactly(tmp_data):
    env = dict(os.environ, PYTHONPATH=str(ROOT), SPINRL_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "spinrl.run", *_cli_args("kr")]
    run_dir = tmp_data / "data/kr/kr_s0"
    proc = subprocess.Popen(cmd, cwd=tmp_data, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
    epochs_done = json.loads((run_dir / "checkpoint.json").read_text())["epoch"]
    assert 2 <= epochs_done < ARGS["epochs"]

    resumed = subprocess.run(
        cmd + ["--resume"], cwd=tmp_data, env=env, capture_output=True, text=True, timeout=180
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"continuing {run_dir} after epoch {epochs_done}" in resumed.stdout
    progress = read_progress(run_dir / "progress.txt")
    assert list(progress["Epoch"]) == list(range(ARGS["epochs"]))  # every epoch exactly once

    # The same run without interruption, in this process, logs the same numbers.
    sac("Pendulum-v1", logger_kwargs=dict(output_dir=str(tmp_data / "whole"), quiet=True), **ARGS)
    _same_rows(progress, read_progress(tmp_data / "whole/progress.txt"))


def test_resume_without_saved_buffer_refills_it(tmp_data, capsys):
    out = str(tmp_data / "nobuf")
    args = dict(ARGS, epochs=2)
    td3("Pendulum-v1", logger_kwargs=dict(output_dir=out), **args)
    td3("Pendulum-v1", logger_kwargs=dict(output_dir=out), resume=True, **dict(args, epochs=3))
    stdout = capsys.readouterr().out
    assert "replay buffer was not saved" in stdout and "random actions for the first 200 steps" in stdout
    assert list(read_progress(os.path.join(out, "progress.txt"))["Epoch"]) == [0, 1, 2]
