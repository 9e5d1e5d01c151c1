"""The MuJoCo benchmark campaign: ordinary spinrl runs, resumable, with a results file and learning curves.

    .venv/bin/python benchmarks/bench_mujoco.py --algos ppo trpo vpg --presets default tuned \\
        --envs Hopper-v5 HalfCheetah-v5 Walker2d-v5 Ant-v5 --seeds 0 1 2 --steps 1000000 --parallel 2 --sb3
    .venv/bin/python benchmarks/bench_mujoco.py --algos sac td3 ddpg --envs Hopper-v5 HalfCheetah-v5 --sb3
    .venv/bin/python benchmarks/bench_mujoco.py --report-only      # rewrite the results file and figures only

(The issue asked for ``benchmarks/mujoco.py``; a script in benchmarks/ puts that folder first on the
import path, so a file named mujoco.py there would stand in for the MuJoCo package in every benchmark
script that makes a MuJoCo environment, this one's evaluations included.)

Each (algorithm, preset, environment, seed) is one ``spinrl ALGO`` process (one core: one torch and BLAS
thread), up to ``--parallel`` at once, written where ``spinrl ls``, ``plot`` and ``compare`` read it:
``DATA/{algo}-{preset}-{env}/{algo}-{preset}-{env}_s{seed}``. So the campaign is only a list of commands,
and a stopped campaign (Ctrl-C or ``kill`` stop its runs too) is continued by giving the same command
again: a finished run is skipped, an unfinished one continues with ``--resume`` from its last checkpoint,
and a run that another live process is writing (its status says running and its lock is held) is left
alone. Each run's terminal output goes to ``DATA/logs/{name}_s{seed}.txt``.

When a run has finished, its final policy plays 10 episodes acting deterministically (the mean action),
from episode seeds ``EVAL_SEED`` + 0..9; the returns go to ``eval.json`` in the run folder, so that is done
once. ``--sb3`` adds Stable-Baselines3 beside spinrl on the same machine and budget, with RL Zoo's MuJoCo
settings (tuned per env for PPO; for SAC and TD3 10,000 random steps first, and action noise for TD3), in
``DATA/sb3-{algo}-rl-zoo-{env}/sb3-{algo}-rl-zoo-{env}_s{seed}`` (``defaults`` in place of ``rl-zoo`` for runs
with SB3's own defaults, which earlier campaigns used for SAC and TD3). An SB3 run folder holds a progress.txt
with the same columns, so the report and ``spinrl plot`` read it as they read spinrl's. An SB3 run
cannot resume: one found unfinished is trained again from the start.

Every invocation is recorded in ``DATA/campaign.json``; the report covers every run those invocations asked
for (finished or not) and every run folder of this layout found in DATA. It writes
``benchmarks/results/mujoco.md`` (the commands, the machine, per algorithm, preset and environment the mean
and standard deviation over seeds of the final training return and of the evaluation, the wall-clock per
run, the published figures beside them, the runs still missing) and one learning-curve figure per
environment, ``benchmarks/results/curves/mujoco-<env>.svg``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spinrl.common.errors import UserError, run_main_guarded  # noqa: E402
from spinrl.record.folder import holds_run, write_text_atomically  # noqa: E402
from spinrl.record.status import read_status  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from mujoco_report import discover, report  # noqa: E402
from mujoco_runs import (  # noqa: E402
    EVAL_EPISODES,
    EVAL_SEED,
    MANIFEST,
    MUJOCO_ENVS,
    OFF_POLICY,
    ON_POLICY,
    RESULTS,
    Run,
    busy,
    evaluation,
    expand,
    family,
    machine,
    read_json,
    run_config,
    split_sb3_name,
    steps_per_epoch,
    trained,
    write_eval,
)
from mujoco_sb3 import sb3_command  # noqa: E402

POLL_SECONDS = 0.5
# Called with (run, process) for every running child at every poll; the tests use it to kill a child.
WATCH: Callable[[Run, subprocess.Popen], None] | None = None
ONE_CORE = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "SPINRL_NUM_THREADS": "1",
}


def next_command(run: Run, data: Path) -> tuple[str, list[str]] | None:
    """What the run needs next: ("train", ...), ("resume", ...), ("eval", ...) or ("sb3", ...); None when done."""
    folder = run.folder(data)
    if run.sb3:
        return None if trained(run, folder) and evaluation(folder) else ("sb3", sb3_command(run, folder))
    if not trained(run, folder):
        resume = holds_run(folder)  # no checkpoint yet: spinrl's --resume then starts from scratch
        return ("resume" if resume else "train", spinrl_command(run, data, resume))
    if evaluation(folder) is None:
        return ("eval", [sys.executable, str(Path(__file__).resolve()), "_evaluate", str(folder)])
    return None


def spinrl_command(run: Run, data: Path, resume: bool) -> list[str]:
    """The ``spinrl ALGO`` command of the run; the same one continues it, with --resume."""
    folder = run.folder(data)
    spe = steps_per_epoch(run, folder)
    cmd = [sys.executable, "-m", "spinrl.cli", run.algo, "--env", run.env, "--seed", str(run.seed)]
    cmd += ["--epochs", str(math.ceil(run.steps / spe)), "--steps_per_epoch", str(spe)]
    cmd += ["--exp_name", run.name, "--data_dir", str(data)]
    if run.preset != "default":
        cmd += ["--preset", run.preset]
    config = run_config(folder)
    # Off-policy runs keep their replay buffer in each checkpoint, so a resumed run is the run it would have
    # been; a run started without it (config.json says so) is continued as it was started.
    if family(run.algo) == "off" and config.get("save_buffer", True) and "--save_buffer" not in run.extra:
        cmd += ["--save_buffer"]
    extra = list(run.extra)
    if "--steps_per_epoch" in extra:  # passed above already, from the same value
        i = extra.index("--steps_per_epoch")
        del extra[i : i + 2]
    cmd += extra
    return cmd + (["--resume"] if resume else [])


# ----- the campaign -------------------------------------------------------------------------------------------
def run_campaign(
    runs: list[Run], data: Path, parallel: int, log_dir: Path, train: bool = True
) -> dict[str, list[Run]]:
    """Bring every run to its end, up to ``parallel`` processes at once; returns what happened to each.

    With ``train`` False, only evaluations are run: a run not finished is left as it is.
    """
    outcome: dict[str, list[Run]] = {"done": [], "skipped": [], "failed": [], "busy": [], "left": []}
    pending, running = deque(runs), {}  # running: process -> (run, kind, log file)
    tried: dict[Run, set[str]] = {}
    env = dict(os.environ, **ONE_CORE)
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        while pending or running:
            while pending and len(running) < parallel:
                run = pending.popleft()
                folder = run.folder(data)
                holder = busy(folder)
                if holder is not None:
                    print(f"{folder}: skipped, another process is writing it ({holder})", flush=True)
                    outcome["busy"].append(run)
                    continue
                step = next_command(run, data)
                if step is None:
                    if not tried.get(run):
                        print(f"{folder}: finished and evaluated, skipped", flush=True)
                    outcome["done" if tried.get(run) else "skipped"].append(run)
                    continue
                kind, cmd = step
                if not train and kind != "eval":
                    print(f"{folder}: not finished, left as it is (--eval-only)", flush=True)
                    outcome["left"].append(run)
                    continue
                # A step that ended well but left the run short of its end is not tried twice.
                if kind.replace("resume", "train") in tried.setdefault(run, set()):
                    print(f"{folder}: {kind} ended without finishing the run; see its log", flush=True)
                    outcome["failed"].append(run)
                    continue
                tried[run].add(kind.replace("resume", "train"))
                log = open(log_dir / f"{run.name}_s{run.seed}.txt", "a")
                log.write(f"\n$ {shlex.join(cmd)}\n")
                log.flush()
                print(f"{folder}: {kind} ({len(running) + 1} running)", flush=True)
                running[
                    subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=os.getcwd())
                ] = (run, kind, log)
            time.sleep(POLL_SECONDS)
            for proc, (run, kind, log) in list(running.items()):
                if WATCH is not None and proc.poll() is None:
                    WATCH(run, proc)
                if proc.poll() is None:
                    continue
                log.close()
                del running[proc]
                if proc.returncode == 0:
                    pending.appendleft(run)  # its next step (evaluation), or done
                else:
                    print(
                        f"{run.folder(data)}: {kind} failed (exit {proc.returncode}); see {log.name}",
                        flush=True,
                    )
                    outcome["failed"].append(run)
    except BaseException:
        # Ctrl-C, a kill (see stop_on_sigterm) or any error here: the children are stopped too. A run
        # stopped at any moment is resumable from its last checkpoint (they are written atomically), and
        # the same command continues it. SIGTERM, not SIGINT: a campaign started in the background of a
        # script has SIGINT ignored, and its children inherit that.
        for proc in running:
            proc.terminate()
        for proc in running:
            proc.wait()
        raise
    return outcome


def stop_on_sigterm() -> Any:
    """Let ``kill`` stop the campaign as Ctrl-C does, children included, instead of leaving them running.
    Returns the handler it replaced."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)


def record_invocation(data: Path, grid: dict[str, Any], command: str) -> None:
    """Add this invocation to DATA/campaign.json; one asking for the same runs (another --parallel, say)
    replaces the older record, so the report shows one command per set of runs."""
    path = data / MANIFEST
    manifest = read_json(path) or {"invocations": []}
    kept = [inv for inv in manifest.get("invocations", []) if inv.get("grid") != grid]
    manifest["invocations"] = kept + [dict(command=command, grid=grid, machine=machine())]
    data.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps(manifest, indent=2))


def name_sb3_settings(data: Path) -> None:
    """Give SB3 run folders of older campaigns (``sb3-{algo}-{env}``, before the settings were part of the
    name) the name they have now, ``sb3-{algo}-{settings}-{env}``, with the settings their config.json
    records; one line per folder moved. A name already taken or a run another process is writing is left
    as it is, and said."""
    for group in sorted(data.glob("sb3-*")):
        algo, settings, env = split_sb3_name(group.name)
        if not group.is_dir() or settings is not None:
            continue
        for folder in sorted(group.glob(f"{group.name}_s*")):
            recorded = run_config(folder).get("settings", "")
            # Those campaigns ran PPO with RL Zoo's settings and SAC and TD3 with SB3's defaults.
            settings = "rl-zoo" if "RL Zoo" in recorded or (not recorded and algo == "ppo") else "defaults"
            new_name = f"sb3-{algo}-{settings}-{env}"
            target = data / new_name / folder.name.replace(group.name, new_name, 1)
            if target.exists() or busy(folder) is not None:
                print(f"{folder}: not renamed to {target} (taken, or being written)", flush=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            folder.rename(target)
            config = run_config(target)
            if config:
                config.update(settings=settings, exp_name=new_name)
                write_text_atomically(target / "config.json", json.dumps(config, indent=2))
            log = data / "logs" / f"{folder.name}.txt"
            if log.exists() and not (data / "logs" / f"{target.name}.txt").exists():
                log.rename(data / "logs" / f"{target.name}.txt")
            print(f"{folder}: renamed to {target} (SB3 run folders now name their settings)", flush=True)
        if group.exists() and not any(group.iterdir()):
            group.rmdir()


# ----- evaluation (run in a process of its own) ---------------------------------------------------------------
def evaluate(folder: Path) -> dict[str, Any]:
    """Play the final policy of a finished spinrl run deterministically and write eval.json."""
    from spinrl.common.device import set_thread_budget
    from spinrl.results.policy import load_policy, run_policy

    set_thread_budget(1)
    start = time.perf_counter()
    env, get_action, _ = load_policy(folder, deterministic=True)
    try:
        results = run_policy(
            env, get_action, num_episodes=EVAL_EPISODES, render=False, seed=EVAL_SEED, quiet=True
        )
    finally:
        env.close()
    status = read_status(folder) or {}
    return write_eval(folder, [r for r, _ in results], [n for _, n in results], status.get("epoch"), start)


# ----- the command line ---------------------------------------------------------------------------------------
def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="benchmarks/bench_mujoco.py", description=__doc__.splitlines()[0])
    p.add_argument("--algos", nargs="+", help=f"algorithms (default: {' '.join(ON_POLICY)})")
    p.add_argument(
        "--presets", nargs="+", help="presets: default (Spinning Up's settings), tuned (default: both)"
    )
    p.add_argument("--envs", nargs="+", help=f"environments (default: {' '.join(MUJOCO_ENVS)})")
    p.add_argument("--seeds", nargs="+", type=int, help="seeds (default: 0 1 2)")
    p.add_argument(
        "--steps", type=int, help="env steps per run (default: 1,000,000 on-policy, 100,000 off-policy)"
    )
    p.add_argument("--parallel", type=int, default=2, help="runs at once, one core each (default 2)")
    p.add_argument("--data_dir", default="data/mujoco", help="where the runs go (default data/mujoco)")
    p.add_argument(
        "--sb3", action="store_true", help="also Stable-Baselines3's PPO, SAC and TD3, with RL Zoo's settings"
    )
    p.add_argument(
        "--report-only", action="store_true", help="rewrite the results file and figures, train nothing"
    )
    p.add_argument(
        "--eval-only",
        action="store_true",
        help="evaluate the finished runs that lack an evaluation, then write the report; train nothing",
    )
    p.add_argument(
        "--results", default=str(RESULTS), help="folder of mujoco.md and curves/ (default benchmarks/results)"
    )
    p.add_argument(
        "--extra",
        default="",
        help='more spinrl flags for every run, one string: --extra="--device cpu" (with "=", as it starts with --)',
    )
    args = p.parse_args(argv)
    if args.parallel < 1:
        raise UserError(f"--parallel {args.parallel} is not valid: give 1 or more runs at once")
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps {args.steps} is not valid: give a positive number of env steps")
    known = ON_POLICY + OFF_POLICY
    for algo in args.algos or []:
        if algo not in known:
            raise UserError(f"--algos {algo!r} is not valid: choose from {', '.join(known)}")
    for seed in args.seeds or []:
        if seed < 0:
            raise UserError(f"--seeds {seed} is not valid: seeds are 0 or more")
    for env in args.envs or []:
        check_env_id(env)
    return args


def check_env_id(env: str) -> None:
    """Refuse an environment id Gymnasium does not know, before any run is started with it."""
    import difflib

    import gymnasium as gym

    try:
        gym.spec(env)
    except gym.error.Error:
        close = difflib.get_close_matches(env, list(gym.registry), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UserError(f"--envs {env!r} is not a Gymnasium environment id{hint}") from None


def grid_of(args: argparse.Namespace) -> dict[str, Any]:
    return dict(
        algos=args.algos or list(ON_POLICY), presets=args.presets or ["default", "tuned"],
        envs=args.envs or list(MUJOCO_ENVS), seeds=args.seeds if args.seeds is not None else [0, 1, 2],
        steps=args.steps, extra=shlex.split(args.extra), sb3=args.sb3,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_evaluate"]:
        evaluate(Path(argv[1]))
        return 0
    args = parse_args(argv)
    data, results_dir = Path(args.data_dir), Path(args.results)
    grid = grid_of(args)
    explicit = any(v is not None for v in (args.algos, args.presets, args.envs, args.seeds, args.steps))
    name_sb3_settings(data)
    if args.report_only:
        report(data, expand(grid) if explicit else [], results_dir)
        return 0
    if args.eval_only:  # the runs asked for, or else every run of this layout in DATA
        runs = expand(grid, quiet=False) if explicit else discover(data)
    else:
        runs = expand(grid, quiet=False)
        record_invocation(data, grid, shlex.join(["python", "benchmarks/bench_mujoco.py", *argv]))
    previous = stop_on_sigterm()
    try:
        outcome = run_campaign(runs, data, args.parallel, data / "logs", train=not args.eval_only)
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(
        f"{len(outcome['done'])} run(s) brought to their end, {len(outcome['skipped'])} already done, "
        f"{len(outcome['busy'])} busy elsewhere, {len(outcome['left'])} left unfinished, "
        f"{len(outcome['failed'])} failed",
        flush=True,
    )
    report(data, [], results_dir)
    return 1 if outcome["failed"] else 0


if __name__ == "__main__":
    sys.exit(run_main_guarded(main))
