"""The runs of the MuJoCo campaign (benchmarks/bench_mujoco.py): what a run is, where it lives, where it stands."""

from __future__ import annotations

import datetime as _dt
import inspect
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spinrl.common.errors import UserError  # noqa: E402
from spinrl.record.config import read_config  # noqa: E402
from spinrl.record.folder import write_text_atomically  # noqa: E402
from spinrl.record.lock import lock_holder  # noqa: E402
from spinrl.record.status import FINISHED, RUNNING, read_status, run_state  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
ON_POLICY = ("ppo", "trpo", "vpg")
OFF_POLICY = ("sac", "td3", "ddpg")
MUJOCO_ENVS = ("Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "Ant-v5")
DEFAULT_STEPS = {"on": 1_000_000, "off": 100_000}  # the budgets: 1M on-policy, 100k off-policy
# The algorithms with an SB3 peer. A campaign runs them with RL Zoo's MuJoCo settings, the ones SB3 publishes
# its MuJoCo results with; "defaults" (SB3's constructor defaults) is the other setting a run folder may hold.
SB3_ALGOS = ("ppo", "sac", "td3")
SB3_SETTINGS = ("rl-zoo", "defaults")
CAMPAIGN_SB3_SETTINGS = SB3_SETTINGS[0]
EVAL_EPISODES = 10
EVAL_SEED = 10_000  # evaluation episodes start from seeds 10000..10009, unlike any training episode
FINAL_EPOCHS = 10  # the final training return: the mean of the last 10 logged epochs' AverageEpRet
SB3_LOG_EVERY = 4000  # steps per progress row of an SB3 run: spinrl's default steps_per_epoch
MANIFEST = "campaign.json"
EVAL_FILE = "eval.json"


# ----- what a run is ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """One (algorithm, preset, environment, seed) of the campaign, and where it lives.

    ``algo`` is a spinrl algorithm, or ``sb3-ppo``/``sb3-sac``/``sb3-td3``; an SB3 run's ``preset`` names the
    settings it uses (``rl-zoo`` or ``defaults``), part of its folder name as a spinrl run's preset is.
    """

    algo: str
    preset: str
    env: str
    seed: int
    steps: int
    extra: tuple[str, ...] = ()

    @property
    def sb3(self) -> bool:
        return self.algo.startswith("sb3-")

    @property
    def name(self) -> str:
        return f"{self.algo}-{self.preset}-{self.env}"

    def folder(self, data: Path) -> Path:
        return data / self.name / f"{self.name}_s{self.seed}"


def split_sb3_name(name: str) -> tuple[str, str | None, str]:
    """``sb3-{algo}-{settings}-{env}`` -> (algo, settings, env); settings None for a name of an older
    campaign, ``sb3-{algo}-{env}``, whose last part is then the env."""
    algo, _, rest = name.removeprefix("sb3-").partition("-")
    settings = next((s for s in SB3_SETTINGS if rest.startswith(s + "-")), None)
    return algo, settings, rest[len(settings) + 1 :] if settings else rest


def family(algo: str) -> str:
    return "on" if algo.removeprefix("sb3-") in ON_POLICY else "off"


def has_preset(algo: str, preset: str) -> bool:
    """Whether spinrl ships the named preset for ``algo`` (spinrl/presets/ALGO.toml)."""
    from spinrl.presets import load_presets

    try:
        return preset in load_presets(algo)
    except UserError:  # no preset file for this algorithm
        return False


def _preset_entry(algo: str, preset: str, env: str) -> dict[str, Any] | None:
    """The named preset's entry for ``env``; None where there is none, or no such preset."""
    from spinrl.presets import preset_entry

    try:
        return preset_entry(algo, preset, env)
    except UserError:
        return None


def has_preset_entry(algo: str, preset: str, env: str) -> bool:
    """Whether the named preset of ``algo`` has an entry for ``env``."""
    return _preset_entry(algo, preset, env) is not None


def preset_steps_per_epoch(algo: str, preset: str, env: str) -> int | None:
    """steps_per_epoch of a preset's entry for ``env``; None where the entry does not set it or there is
    no entry (spinrl then uses the algorithm's defaults for that env, and says so)."""
    value = (_preset_entry(algo, preset, env) or {}).get("steps_per_epoch")
    return value if isinstance(value, int) else None


def steps_per_epoch(run: Run, folder: Path) -> int:
    """The run's epoch length: what its config.json recorded, else the flag in ``extra``, else the preset's,
    else the algorithm's default. It is always passed to spinrl, so the budget is what we computed."""
    config = run_config(folder)
    if isinstance(config.get("steps_per_epoch"), int):
        return config["steps_per_epoch"]
    if "--steps_per_epoch" in run.extra:
        return int(run.extra[run.extra.index("--steps_per_epoch") + 1])
    if run.preset != "default" and preset_steps_per_epoch(run.algo, run.preset, run.env):
        return preset_steps_per_epoch(run.algo, run.preset, run.env)
    import spinrl

    return int(inspect.signature(getattr(spinrl, run.algo)).parameters["steps_per_epoch"].default)


def run_config(folder: Path) -> dict[str, Any]:
    try:
        return read_config(folder) or {}
    except UserError:
        return {}


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


# ----- where a run stands -------------------------------------------------------------------------------------
def epochs_needed(run: Run, folder: Path) -> int:
    if run.sb3:
        return math.ceil(run.steps / SB3_LOG_EVERY)
    return math.ceil(run.steps / steps_per_epoch(run, folder))


def busy(folder: Path) -> str | None:
    """Who else is writing the run now (a live process holds its lock, or its status says so), or None."""
    holder = lock_holder(folder) if folder.is_dir() else None
    state = run_state(read_status(folder))
    if holder is not None:
        return holder
    if state == RUNNING or state.startswith("running on "):
        return f"status.json: {state}"
    return None


def trained(run: Run, folder: Path) -> bool:
    """Finished, with at least the epochs the budget asks for."""
    status = read_status(folder) or {}
    return run_state(status) == FINISHED and int(status.get("epoch", 0)) >= epochs_needed(run, folder)


def evaluation(folder: Path) -> dict[str, Any] | None:
    """eval.json when it evaluates the run's final checkpoint (the run may have been extended since)."""
    ev = read_json(folder / EVAL_FILE)
    if ev is None or not isinstance(ev.get("returns"), list):
        return None
    status = read_status(folder) or {}
    return ev if ev.get("epoch") == status.get("epoch") else None


def expand(grid: dict[str, Any], quiet: bool = True) -> list[Run]:
    """Every run a campaign's grid (as recorded in campaign.json) asks for, SB3's included."""
    runs, said = [], set()
    for algo in grid["algos"]:
        steps = grid.get("steps") or DEFAULT_STEPS[family(algo)]
        for preset in grid["presets"]:
            if preset != "default" and not has_preset(algo, preset):
                if not quiet and (algo, preset) not in said:
                    print(f"spinrl has no {preset!r} preset for {algo}: its {preset} runs are skipped")
                said.add((algo, preset))
                continue
            for env in grid["envs"]:
                # A preset without an entry for this env would train it with the defaults: the default
                # runs already are those runs, so none is asked for.
                if preset != "default" and not has_preset_entry(algo, preset, env):
                    if not quiet and (algo, preset, env) not in said:
                        print(
                            f"spinrl's {preset!r} preset for {algo} has no entry for {env}: its runs are skipped"
                        )
                    said.add((algo, preset, env))
                    continue
                for seed in grid["seeds"]:
                    runs.append(Run(algo, preset, env, seed, steps, tuple(grid.get("extra", ()))))
        if grid.get("sb3") and algo in SB3_ALGOS:
            runs += [
                Run(f"sb3-{algo}", CAMPAIGN_SB3_SETTINGS, e, s, steps)
                for e in grid["envs"]
                for s in grid["seeds"]
            ]
    return runs


def machine() -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_grid import cpu_model  # the benchmarks' one reader of the CPU's name

    cpu = cpu_model()
    import torch

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return dict(
        gpu=gpu,
        cpu=cpu, cores=os.cpu_count(), load=[round(x, 2) for x in os.getloadavg()],
        torch=torch.__version__, python=platform.python_version(), host=platform.node(),
        date=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )  # fmt: skip


def write_eval(
    folder: Path, returns: list[float], lengths: list[int], epoch: Any, start: float
) -> dict[str, Any]:
    ev = dict(
        returns=[float(r) for r in returns], lengths=[int(n) for n in lengths], mean=float(np.mean(returns)),
        std=float(np.std(returns)), episodes=len(returns), deterministic=True, first_seed=EVAL_SEED,
        epoch=epoch, seconds=round(time.perf_counter() - start, 1),
        date=_dt.datetime.now().isoformat(timespec="seconds"),
    )  # fmt: skip
    write_text_atomically(folder / EVAL_FILE, json.dumps(ev, indent=2))
    print(
        f"{folder}: evaluation {ev['mean']:.1f} +- {ev['std']:.1f} over {len(returns)} episodes", flush=True
    )
    return ev
