"""MPI data parallelism: identical parameters, statistics over all ranks, loud failure."""

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from conftest import ROOT

from spinrl.checkpoint import load_checkpoint
from spinrl.logx import read_progress
from spinrl.mpi import mpiexec_command


def _mpirun(script: str, cwd, n: int = 2, timeout: float = 240) -> subprocess.CompletedProcess:
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


def test_two_rank_ppo_and_trpo_identical_params_and_global_statistics(tmp_path):
    # One MPI job runs both (one start-up). TRPO also checks its line search: every rank must accept
    # the same step, or the ranks' collective calls fall out of step (MPI_ERR_TRUNCATE) and their
    # parameters drift apart.
    script = """
        import torch
        from spinrl.algos.ppo import ppo
        from spinrl.algos.trpo import trpo
        from spinrl.mpi import proc_id
        ac = ppo("CartPole-v1", steps_per_epoch=800, epochs=2, train_pi_iters=5, train_v_iters=5,
                 logger_kwargs=dict(output_dir="run", quiet=True))
        flat = torch.nn.utils.parameters_to_vector(ac.parameters())
        torch.save(flat, f"params_rank{proc_id()}.pt")
        ac = trpo("CartPole-v1", steps_per_epoch=800, epochs=2, train_v_iters=5,
                  logger_kwargs=dict(output_dir="trpo_run", quiet=True))
        torch.save(torch.nn.utils.parameters_to_vector(ac.parameters()), f"trpo_params_rank{proc_id()}.pt")
    """
    proc = _mpirun(script, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for prefix, run in (("", "run"), ("trpo_", "trpo_run")):
        p0 = torch.load(tmp_path / f"{prefix}params_rank0.pt", weights_only=True)
        p1 = torch.load(tmp_path / f"{prefix}params_rank1.pt", weights_only=True)
        torch.testing.assert_close(p0, p1, rtol=0, atol=0)  # averaged gradients keep ranks in lockstep
        cols = read_progress(tmp_path / run / "progress.txt")
        # 800 steps per epoch in total: 400 from each rank.
        assert cols["TotalEnvInteracts"].tolist() == [800, 1600]


def test_logger_statistics_cover_every_rank(tmp_path):
    script = """
        from spinrl.logx import EpochLogger
        from spinrl.mpi import proc_id
        logger = EpochLogger(output_dir="stats", quiet=True, tensorboard=False)
        # rank 0 stores 1, 2; rank 1 stores 10, 20, 30.
        for r in ([1.0, 2.0] if proc_id() == 0 else [10.0, 20.0, 30.0]):
            logger.store(EpRet=r)
        logger.log_tabular("EpRet", with_min_and_max=True)
        logger.dump_tabular()
    """
    proc = _mpirun(script, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cols = read_progress(tmp_path / "stats/progress.txt")
    values = np.array([1.0, 2.0, 10.0, 20.0, 30.0])
    assert cols["AverageEpRet"][0] == pytest.approx(values.mean())
    assert cols["StdEpRet"][0] == pytest.approx(values.std())
    assert cols["MaxEpRet"][0] == 30.0 and cols["MinEpRet"][0] == 1.0


@pytest.mark.parametrize("how", ["exception", "sigkill"])
def test_a_dying_rank_ends_the_job_loudly(tmp_path, how):
    die = "raise RuntimeError('simulated crash')" if how == "exception" else "os.kill(os.getpid(), 9)"
    script = f"""
        import os
        from spinrl.algos.ppo import ppo
        from spinrl.mpi import proc_id
        from spinrl.onpolicy import TrajectoryCollector
        original = TrajectoryCollector.collect
        calls = []
        def collect(self, *args, **kwargs):
            calls.append(1)
            if proc_id() == 1 and len(calls) == 3:
                {die}
            return original(self, *args, **kwargs)
        TrajectoryCollector.collect = collect
        ppo("CartPole-v1", steps_per_epoch=400, epochs=50, train_pi_iters=3, train_v_iters=3, save_freq=1,
            logger_kwargs=dict(output_dir="run", quiet=True))
    """
    start = time.time()
    proc = _mpirun(script, tmp_path, timeout=120)
    assert proc.returncode != 0
    assert time.time() - start < 90  # no hang
    if how == "exception":
        assert "MPI rank 1 failed with RuntimeError: simulated crash" in proc.stderr
    else:
        assert "rank 1" in proc.stderr + proc.stdout
    # The last checkpoint is intact and usable for --resume.
    assert load_checkpoint(tmp_path / "run")["counters"]["epoch"] >= 1


@pytest.mark.parametrize("algo, epochs", [("vpg", 1), ("trpo", 3), ("ppo", 2)])
def test_cli_cpu_flag_launches_ranks(tmp_data, cli, algo, epochs):
    # --mpi_args reaches mpiexec: the multi-host path (a host list), exercised with this one host.
    proc = cli(
        algo,
        "--env",
        "CartPole-v1",
        "--cpu",
        "2",
        "--mpi_args",
        "--host localhost:2",
        "--steps_per_epoch",
        "200",
        "--epochs",
        str(epochs),
        "--train_v_iters",
        "2",
        *(["--train_pi_iters", "3"] if algo == "ppo" else []),
        "--exp_name",
        "m",
        cwd=tmp_data,
        env={"SPINRL_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_data / "data/m/m_s0"
    cols = read_progress(run / "progress.txt")
    assert cols["Epoch"].tolist() == list(range(epochs))
    assert cols["TotalEnvInteracts"].tolist() == [200 * (e + 1) for e in range(epochs)]
    # The ranks stayed in step to the end: the last checkpoint was written, with finite parameters.
    state = load_checkpoint(run)
    assert state["counters"]["epoch"] == epochs
    assert all(torch.isfinite(p).all() for p in state["ac"].values())


def test_cpu_value_validation():
    from spinrl.errors import UserError
    from spinrl.mpi import resolve_num_cpu

    assert resolve_num_cpu("auto") == len(os.sched_getaffinity(0))
    with pytest.raises(UserError, match="--cpu"):
        resolve_num_cpu("0")
