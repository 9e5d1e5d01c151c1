"""Where a PPO epoch's time goes on each MPI rank: collection, the update's parts, the logger.

    .venv/bin/python benchmarks/profile_mpi_epoch.py --cpu 1
    .venv/bin/python benchmarks/profile_mpi_epoch.py --cpu 2

Trains PPO on HalfCheetah-v5 (seed 0, 4000 steps per epoch over all ranks, 3 epochs, defaults
otherwise) with a stopwatch around each building block an epoch calls, and prints one table row per
rank: seconds per epoch (mean over the epochs after the first, which pays one-off costs) in

- collect: the loop of ``ppo()`` that gathers the epoch's experience (from its call of
  ``fast_policy_step`` to the update's first call), the policy acting and the env stepping;
- get: :meth:`GAEBuffer.get`, the advantage statistics over all ranks and the tensors;
- backward: ``loss.backward()`` of the policy and the critic;
- adam: the optimisers' steps;
- grad wait / grad allreduce: in ``mpi_avg_grads``, the time spent waiting for the slower rank (a
  barrier placed just before the call, so the two are told apart) and the reduction itself;
- kl wait / kl allreduce: the same for PPO's KL average before each policy step (0 once the KL is
  averaged in the gradients' reduction);
- forward+python: the rest of the update (forward passes, losses, ``.item()``, the loop);
- log: ``log_tabular``/``dump_tabular`` (statistics over all ranks, writing the row);
- iters: policy steps taken + critic steps per epoch.

With one rank the barriers and reductions are no-ops, so their columns read 0. The barrier adds a
few microseconds per call to a two-rank run; the totals are meant to compare phases, not to be
quoted as the run's speed (``bench_onpolicy.py --only mpi`` measures that).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PHASES = (
    "collect",
    "get",
    "backward",
    "adam",
    "grad wait",
    "grad allreduce",
    "kl wait",
    "kl allreduce",
    "forward+python",
    "log",
    "epoch",
)


def profile(epochs: int, steps_per_epoch: int) -> None:
    import torch

    import spinrl.algos.ppo as ppo_module
    from spinrl.buffers.gae import GAEBuffer
    from spinrl.common.mpi import _comm, gather_object, num_procs, proc_id
    from spinrl.record.logger import EpochLogger

    spent: dict[str, float] = defaultdict(float)  # seconds per phase in the current epoch
    counts: dict[str, int] = defaultdict(int)
    per_epoch: list[dict[str, float]] = []
    marks = {"epoch_start": None, "collect_start": None, "in_log": False}
    comm = _comm()

    def timed(name, fn, wait_name=None):
        def wrapper(*args, **kwargs):
            if wait_name is not None and comm is not None and comm.Get_size() > 1:
                t = time.perf_counter()
                comm.Barrier()
                spent[wait_name] += time.perf_counter() - t
            t = time.perf_counter()
            out = fn(*args, **kwargs)
            spent[name] += time.perf_counter() - t
            counts[name] += 1
            return out

        return wrapper

    fast_policy_step = ppo_module.fast_policy_step

    def timed_policy_step(*args, **kwargs):  # made once per epoch, as its collection starts
        marks["epoch_start"] = marks["collect_start"] = time.perf_counter()
        return fast_policy_step(*args, **kwargs)

    get = GAEBuffer.get

    def timed_get(self, *args, **kwargs):  # the update's first call: the collection is over
        t = time.perf_counter()
        spent["collect"] += t - marks["collect_start"]
        out = get(self, *args, **kwargs)
        spent["get"] += time.perf_counter() - t
        return out

    log_tabular, dump_tabular = EpochLogger.log_tabular, EpochLogger.dump_tabular

    def timed_log(self, *args, **kwargs):
        t = time.perf_counter()
        out = log_tabular(self, *args, **kwargs)
        spent["log"] += time.perf_counter() - t
        return out

    def timed_dump(self, *args, **kwargs):
        t = time.perf_counter()
        out = dump_tabular(self, *args, **kwargs)
        now = time.perf_counter()
        spent["log"] += now - t
        # An epoch runs from the start of one collection to the end of its row.
        spent["epoch"] = now - marks["epoch_start"]
        update = spent["epoch"] - spent["collect"] - spent["log"]
        known = sum(spent[k] for k in PHASES[1:8])
        spent["forward+python"] = update - known
        per_epoch.append(dict(spent, iters=counts["mpi_avg_grads"]))
        spent.clear()
        counts.clear()
        marks["epoch_start"] = None
        return out

    ppo_module.fast_policy_step = timed_policy_step
    EpochLogger.log_tabular, EpochLogger.dump_tabular = timed_log, timed_dump
    GAEBuffer.get = timed_get
    torch.Tensor.backward = timed("backward", torch.Tensor.backward)
    torch.optim.Adam.step = timed("adam", torch.optim.Adam.step)
    ppo_module.mpi_avg_grads = timed("grad allreduce", ppo_module.mpi_avg_grads, "grad wait")
    if hasattr(ppo_module, "mpi_avg"):  # before the KL rode along with the gradient
        ppo_module.mpi_avg = timed("kl allreduce", ppo_module.mpi_avg, "kl wait")
    counted = ppo_module.mpi_avg_grads

    def count_grads(*args):
        counts["mpi_avg_grads"] += 1
        return counted(*args)

    ppo_module.mpi_avg_grads = count_grads

    out_dir = tempfile.mkdtemp(prefix="spinrl-profile-")
    ppo_module.ppo(
        "HalfCheetah-v5",
        seed=0,
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        logger_kwargs=dict(output_dir=os.path.join(out_dir, "run"), quiet=True),
    )
    rows = gather_object(per_epoch)
    if proc_id() != 0:
        return
    print(f"PPO HalfCheetah-v5, {num_procs()} rank(s), {steps_per_epoch} steps/epoch, {epochs} epochs")
    print("seconds per epoch, mean over epochs 2..; in brackets: epoch 1")
    print("| rank | " + " | ".join(PHASES) + " | iters |")
    print("|---" * (len(PHASES) + 2) + "|")
    for rank, epochs_of_rank in enumerate(rows):
        later = epochs_of_rank[1:] or epochs_of_rank
        cells = []
        for phase in PHASES:
            mean = sum(e.get(phase, 0.0) for e in later) / len(later)
            cells.append(f"{mean:.3f} ({epochs_of_rank[0].get(phase, 0.0):.3f})")
        iters = sum(e["iters"] for e in later) / len(later)
        print(f"| {rank} | " + " | ".join(cells) + f" | {iters:.0f} |")


def _avg_grads_float64(module) -> None:
    """mpi_avg_grads as it was before the reused float32 buffer: a float64 copy out and back."""
    import numpy as np
    import torch
    from mpi4py import MPI

    from spinrl.common.mpi import _comm

    comm = _comm()
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads]).cpu().numpy().astype(np.float64)
    out = np.zeros_like(flat)
    comm.Allreduce(flat, out, op=MPI.SUM)
    out /= comm.Get_size()
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(torch.as_tensor(out[offset : offset + n], dtype=g.dtype).view_as(g))
        offset += n


def time_grad_averaging(calls: int = 3000) -> None:
    """Microseconds per gradient average of PPO's HalfCheetah policy: the float64 copy vs the reused buffer."""
    import gymnasium as gym
    import torch

    from spinrl.common.mpi import _comm, mpi_avg_grads, proc_id
    from spinrl.nets.actor_critic import MLPActorCritic

    torch.set_num_threads(1)
    env = gym.make("HalfCheetah-v5")
    torch.manual_seed(0)
    ac = MLPActorCritic(env.observation_space, env.action_space)
    obs = torch.randn(2000, env.observation_space.shape[0])
    act = torch.randn(2000, env.action_space.shape[0])
    results = {}
    for name, fn in (
        ("float64 copy (before)", _avg_grads_float64),
        ("float32 buffer (after)", mpi_avg_grads),
    ):
        ac.zero_grad()
        (ac.pi(obs, act)[1].mean() + ac.v(obs).pow(2).mean()).backward()
        for _ in range(100):  # warm-up
            fn(ac.pi)
        _comm().Barrier()
        t = time.perf_counter()
        for _ in range(calls):
            fn(ac.pi)
        results[name] = (time.perf_counter() - t) / calls * 1e6
    if proc_id() == 0:
        for name, us in results.items():
            print(f"{name}: {us:.1f} us per mpi_avg_grads(ac.pi) call")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps_per_epoch", type=int, default=4000)
    parser.add_argument(
        "--grads", action="store_true", help="time only the gradient averaging (needs --cpu 2)"
    )
    args = parser.parse_args()
    from spinrl.common.mpi import mpi_fork

    os.environ.setdefault("SPINRL_PLAIN_OUTPUT", "1")
    mpi_fork(args.cpu)  # re-launches this script under mpiexec when --cpu > 1
    if args.grads:
        time_grad_averaging()
    else:
        profile(args.epochs, args.steps_per_epoch)


if __name__ == "__main__":
    main()
