"""MPI data parallelism: identical parameters, statistics over all ranks, loud failure."""

import json
import os
import time

import numpy as np
import pytest
import torch
from conftest import mpirun

from spinrl.record.checkpoint import load_checkpoint
from spinrl.record.logger import read_progress


def test_two_rank_ppo_and_trpo_identical_params_and_global_statistics(tmp_path):
    # One MPI job runs both (one start-up). TRPO also checks its line search: every rank must accept
    # the same step, or the ranks' collective calls fall out of step (MPI_ERR_TRUNCATE) and their
    # parameters drift apart.
    script = """
        import torch
        from spinrl.algos.ppo import ppo
        from spinrl.algos.trpo import trpo
        from spinrl.common.mpi import proc_id
        ac = ppo("CartPole-v1", steps_per_epoch=800, epochs=2, train_pi_iters=5, train_v_iters=5,
                 logger_kwargs=dict(output_dir="run", quiet=True))
        flat = torch.nn.utils.parameters_to_vector(ac.parameters())
        torch.save(flat, f"params_rank{proc_id()}.pt")
        ac = trpo("CartPole-v1", steps_per_epoch=800, epochs=2, train_v_iters=5,
                  logger_kwargs=dict(output_dir="trpo_run", quiet=True))
        torch.save(torch.nn.utils.parameters_to_vector(ac.parameters()), f"trpo_params_rank{proc_id()}.pt")
    """
    proc = mpirun(script, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for prefix, run in (("", "run"), ("trpo_", "trpo_run")):
        p0 = torch.load(tmp_path / f"{prefix}params_rank0.pt", weights_only=True)
        p1 = torch.load(tmp_path / f"{prefix}params_rank1.pt", weights_only=True)
        torch.testing.assert_close(p0, p1, rtol=0, atol=0)  # averaged gradients keep ranks in lockstep
        cols = read_progress(tmp_path / run / "progress.txt")
        # 800 steps per epoch in total: 400 from each rank.
        assert cols["TotalEnvInteracts"].tolist() == [800, 1600]


def test_logger_statistics_cover_every_rank(tmp_path):
    # One launch checks three things under two ranks: the logger's statistics cover both ranks; the
    # row's statistics, gathered for all columns at dump_tabular, equal those of one reduction per
    # statistic and column, exactly; and mpi_avg_grads (a reused float32 buffer) equals the float64 average.
    script = """
        import json
        import numpy as np
        import torch
        from spinrl.record.logger import EpochLogger
        from mpi4py import MPI
        from spinrl.common.mpi import mpi_avg_grads, proc_id
        comm, rank = MPI.COMM_WORLD, proc_id()

        def per_column(x, with_min_and_max):
            # Statistics of one column as the logger computed them before batching: two SUM
            # reductions, then a MIN and a MAX.
            x = np.asarray(x, dtype=np.float64).ravel()
            total, n = comm.allreduce(x.sum()), comm.allreduce(float(len(x)))
            mean = total / n if n > 0 else np.nan
            std = np.sqrt(comm.allreduce(((x - mean) ** 2).sum()) / n) if n > 0 else np.nan
            if not with_min_and_max:
                return mean, std
            low = comm.allreduce(x.min() if len(x) else np.inf, op=MPI.MIN)
            high = comm.allreduce(x.max() if len(x) else -np.inf, op=MPI.MAX)
            return (mean, std, low, high) if n > 0 else (mean, std, np.nan, np.nan)

        logger = EpochLogger(output_dir="stats", quiet=True, tensorboard=False)
        # rank 0 stores 1, 2; rank 1 stores 10, 20, 30.
        for r in ([1.0, 2.0] if rank == 0 else [10.0, 20.0, 30.0]):
            logger.store(EpRet=r)
        rng = np.random.default_rng(rank)
        logger.store(VVals=rng.normal(size=(7, 3)), LossPi=rng.normal(), Wide=rng.normal(size=5) * 1e6)
        if rank == 0:
            logger.store(OnlyRank0=[3.0, -4.0])  # rank 1 has none: its count is 0 there
        columns = [("EpRet", True, False), ("VVals", True, False), ("LossPi", False, True),
                   ("Wide", True, True), ("OnlyRank0", True, False), ("Never", False, False)]
        expected = {}
        for key, mm, avg_only in columns:
            values = logger.epoch_dict.get(key, [])
            flat = np.concatenate([np.ravel(v) for v in values]) if values else np.array([])
            stats = per_column(flat, mm)
            names = [key if avg_only else "Average" + key] + ([] if avg_only else ["Std" + key])
            picked = [stats[0]] + ([] if avg_only else [stats[1]])
            if mm:
                names, picked = names + ["Max" + key, "Min" + key], picked + [stats[3], stats[2]]
            expected.update({n: float(v) for n, v in zip(names, picked)})
        logger.log_tabular("Epoch", 0)
        for key, mm, avg_only in columns:
            logger.log_tabular(key, with_min_and_max=mm, average_only=avg_only)
        row = logger.dump_tabular()

        torch.manual_seed(rank)
        net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
        grads_by_call = []
        for _ in range(2):  # the second call reuses the first one's buffer
            net.zero_grad()
            net(torch.randn(9, 5)).pow(2).mean().backward()
            mine = [p.grad.clone() for p in net.parameters()]
            mpi_avg_grads(net)
            grads_by_call.append(([g.tolist() for g in mine], [p.grad.tolist() for p in net.parameters()]))
        # A value averaged along with the gradients: exactly the float64 mean, and the gradients too.
        net.zero_grad()
        net(torch.randn(9, 5)).pow(2).mean().backward()
        mine = [p.grad.clone() for p in net.parameters()]
        kl = mpi_avg_grads(net, 0.1 + rank / 3)
        grads_by_call.append(([g.tolist() for g in mine], [p.grad.tolist() for p in net.parameters()]))
        assert kl == (0.1 + 0.0 + (0.1 + 1 / 3)) / 2, kl
        json.dump(dict(row={k: float(v) for k, v in row.items()}, expected=expected, grads=grads_by_call),
                  open(f"stats_rank{rank}.json", "w"))
    """
    proc = mpirun(script, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cols = read_progress(tmp_path / "stats/progress.txt")
    values = np.array([1.0, 2.0, 10.0, 20.0, 30.0])
    assert cols["AverageEpRet"][0] == pytest.approx(values.mean())
    assert cols["StdEpRet"][0] == pytest.approx(values.std())
    assert cols["MaxEpRet"][0] == 30.0 and cols["MinEpRet"][0] == 1.0
    assert cols["AverageOnlyRank0"][0] == -0.5 and cols["MinOnlyRank0"][0] == -4.0
    ranks = [json.loads((tmp_path / f"stats_rank{r}.json").read_text()) for r in (0, 1)]
    for got in ranks:
        # Bit for bit, NaN (the column nobody stored) included; and the same row on both ranks.
        assert list(got["row"]) == ["Epoch", *got["expected"]]
        np.testing.assert_array_equal(
            [got["row"][k] for k in got["expected"]], list(got["expected"].values())
        )
        assert np.isnan(got["row"]["AverageNever"]) and np.isnan(got["row"]["StdNever"])
    np.testing.assert_array_equal(list(ranks[0]["row"].values()), list(ranks[1]["row"].values()))
    for call in range(3):
        for i, (g0, g1) in enumerate(zip(ranks[0]["grads"][call][0], ranks[1]["grads"][call][0])):
            # The float64 average, rounded to float32: what mpi_avg_grads did before its float32 buffer.
            reference = ((np.array(g0, np.float64) + np.array(g1, np.float64)) / 2).astype(np.float32)
            for got in ranks:
                np.testing.assert_array_equal(np.array(got["grads"][call][1][i], np.float32), reference)


@pytest.mark.parametrize("how", ["exception", "sigkill"])
def test_a_dying_rank_ends_the_job_loudly(tmp_path, how):
    die = "raise RuntimeError('simulated crash')" if how == "exception" else "os.kill(os.getpid(), 9)"
    script = f"""
        import os
        from spinrl.algos.ppo import ppo
        from spinrl.common.mpi import proc_id
        from spinrl.buffers.gae import GAEBuffer
        original = GAEBuffer.get
        calls = []
        def get(self, *args, **kwargs):  # once per epoch, after its collection
            calls.append(1)
            if proc_id() == 1 and len(calls) == 3:
                {die}
            return original(self, *args, **kwargs)
        GAEBuffer.get = get
        ppo("CartPole-v1", steps_per_epoch=400, epochs=50, train_pi_iters=3, train_v_iters=3, save_freq=1,
            logger_kwargs=dict(output_dir="run", quiet=True))
    """
    start = time.time()
    proc = mpirun(script, tmp_path, timeout=120)
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
    from spinrl.common.errors import UserError
    from spinrl.common.mpi import resolve_num_cpu

    assert resolve_num_cpu("auto") == len(os.sched_getaffinity(0))
    with pytest.raises(UserError, match="--cpu"):
        resolve_num_cpu("0")


def test_statistics_of_several_columns_equal_those_of_each_column():
    # Without MPI; the two-rank case is in test_logger_statistics_cover_every_rank.
    from spinrl.common.mpi import mpi_statistics_columns, mpi_statistics_scalar

    rng = np.random.default_rng(0)
    columns = [rng.normal(size=50), np.array([]), [3.0], rng.normal(size=(4, 3)).astype(np.float32)]
    flags = [True, True, False, True]
    batched = mpi_statistics_columns(columns, flags)
    for x, mm, got in zip(columns, flags, batched):
        want = mpi_statistics_scalar(x, with_min_and_max=mm)
        assert len(got) == len(want) == (4 if mm else 2)
        np.testing.assert_array_equal(np.array(got, dtype=float), np.array(want, dtype=float))
    x = columns[0]
    assert batched[0] == pytest.approx((x.mean(), x.std(), x.min(), x.max()))
    assert all(np.isnan(v) for v in batched[1])
    assert [len(t) for t in mpi_statistics_columns(columns, False)] == [2, 2, 2, 2]
    with pytest.raises(ValueError, match="flags"):
        mpi_statistics_columns(columns, [True])


def test_gradient_averaging_is_a_no_op_in_one_process():
    from spinrl.common.mpi import mpi_avg_grads

    net = torch.nn.Linear(3, 2)
    net(torch.ones(1, 3)).sum().backward()
    before = [p.grad.clone() for p in net.parameters()]
    assert mpi_avg_grads(net) is None and mpi_avg_grads(net, 0.25) == 0.25
    for b, p in zip(before, net.parameters()):
        assert torch.equal(b, p.grad)
