"""``fake_algo``: a stand-in with an algorithm's contract (seed, logger_kwargs, resume, status.json,
progress.txt) that takes a fraction of a second, for tests of the launchers rather than of learning.

Grids started by the tests run it in child processes, which import it as ``fake_algos:fake_algo``; so it
lives here, at the top of tests/ with nothing but the logger to import, and tests/ goes on the children's
PYTHONPATH (see ``children_import_tests`` in launch/test_grid.py).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


def fake_algo(
    env_fn="CartPole-v1",
    seed=0,
    epochs=3,
    epoch_seconds=0.0,
    fail=False,
    crash_at_epoch=-1,
    ac_kwargs=None,
    logger_kwargs=None,
    resume=False,
):
    """Log ``epochs`` epochs of a made-up return; checkpoint after each; fail, or crash unless resuming."""
    import torch

    from spinrl.record.logger import EpochLogger

    logger = EpochLogger(**(logger_kwargs or {}), resume=resume, tensorboard=False, quiet=True)
    logger.save_config(dict(algo="fake", env_name=env_fn, seed=seed, epochs=epochs, ac_kwargs=ac_kwargs))
    out = Path(logger.output_dir)
    checkpoint = out / "checkpoint.json"
    start = json.loads(checkpoint.read_text())["epoch"] if resume and checkpoint.exists() else 0
    logger.truncate_to_epochs(start)
    # The status first: tests take a line in launches.jsonl as the sign that a run is under way, status
    # "running" included.
    logger.set_status("running", start, epochs)
    with open(out / "launches.jsonl", "a") as f:  # one line per start: when, and with how many threads
        info = dict(
            start_epoch=start,
            time=time.time(),
            pid=os.getpid(),
            torch_threads=torch.get_num_threads(),
            omp=os.environ.get("OMP_NUM_THREADS"),
        )
        f.write(json.dumps(info) + "\n")
    if fail:
        logger.set_status("failed", start, epochs)
        raise RuntimeError("fake_algo was asked to fail")
    for epoch in range(start, epochs):
        time.sleep(epoch_seconds)
        if epoch == crash_at_epoch and not resume:
            os._exit(3)  # like a killed process: no clean-up, status stays "running"
        logger.log_tabular("Epoch", epoch)
        logger.log_tabular("AverageEpRet", float(seed + epoch))
        logger.log_tabular("TotalEnvInteracts", 100 * (epoch + 1))
        logger.dump_tabular()
        checkpoint.write_text(json.dumps({"epoch": epoch + 1}))
        logger.set_status("running", epoch + 1, epochs)
    logger.finish(epochs)  # marks the run finished and gives up its lock
