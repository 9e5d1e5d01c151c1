"""Stable-Baselines3 beside spinrl in the MuJoCo campaign: one SB3 run, logged and evaluated like a spinrl run.

    .venv/bin/python benchmarks/mujoco_sb3.py ALGO SETTINGS ENV SEED STEPS FOLDER   # bench_mujoco.py --sb3 runs it

SETTINGS is ``rl-zoo`` (RL Zoo's MuJoCo settings, what SB3 publishes its MuJoCo results with, and what the
campaign runs) or ``defaults`` (SB3's constructor defaults). The run folder holds what a spinrl run
holds for the report: config.json, progress.txt (a row every ``SB3_LOG_EVERY`` steps: the mean return of the
episodes that ended in it, the steps so far and the training seconds), eval.json (10 deterministic episodes
from the same seeds as spinrl's) and status.json, which says finished only once all of them are written.
SB3 has no exact resume, so a run found unfinished is trained again from the start.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spinrl.common.errors import UserError, run_main_guarded  # noqa: E402
from spinrl.common.seeding import episode_seeds  # noqa: E402
from spinrl.record.folder import write_text_atomically  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from mujoco_runs import (  # noqa: E402
    EVAL_EPISODES,
    EVAL_SEED,
    SB3_LOG_EVERY,
    SB3_SETTINGS,
    Run,
    write_eval,
)

# RL Zoo's tuned PPO settings for MuJoCo (rl-baselines3-zoo, hyperparams/ppo.yml; entries named -v3 when the
# issue was written, -v4 now, with the same values). All use normalize: true (VecNormalize with the run's
# gamma) and one env copy. Envs without an entry use SB3's PPO defaults with normalisation.
_ZOO_NET = dict(
    log_std_init=-2, ortho_init=False, activation_fn="relu", net_arch=dict(pi=[256, 256], vf=[256, 256])
)
RL_ZOO_PPO: dict[str, dict[str, Any]] = {
    "Hopper": dict(
        batch_size=32, n_steps=512, gamma=0.999, learning_rate=9.80828e-05, ent_coef=0.00229519,
        clip_range=0.2, n_epochs=5, gae_lambda=0.99, max_grad_norm=0.7, vf_coef=0.835671, policy_kwargs=_ZOO_NET,
    ),
    "HalfCheetah": dict(
        batch_size=64, n_steps=512, gamma=0.98, learning_rate=2.0633e-05, ent_coef=0.000401762,
        clip_range=0.1, n_epochs=20, gae_lambda=0.92, max_grad_norm=0.8, vf_coef=0.58096, policy_kwargs=_ZOO_NET,
    ),
    "Walker2d": dict(
        batch_size=32, n_steps=512, gamma=0.99, learning_rate=5.05041e-05, ent_coef=0.000585045,
        clip_range=0.1, n_epochs=20, gae_lambda=0.95, max_grad_norm=1.0, vf_coef=0.871923,
    ),
    "Ant": {},
}  # fmt: skip
# RL Zoo's SAC and TD3 entries for the MuJoCo envs (hyperparams/sac.yml, td3.yml) are SB3's defaults but for
# these: 10,000 uniformly random steps before learning, and for TD3 Gaussian action noise (std 0.1, on actions
# scaled to [-1, 1]); without that noise SB3's TD3 explores only through its first random steps.
RL_ZOO_OFF_POLICY: dict[str, dict[str, Any]] = {
    "sac": dict(learning_starts=10_000),
    "td3": dict(learning_starts=10_000, noise_std=0.1),
}


def sb3_command(run: Run, folder: Path) -> list[str]:
    return [
        sys.executable, str(Path(__file__).resolve()), run.algo.removeprefix("sb3-"), run.preset, run.env,
        str(run.seed), str(run.steps), str(folder),
    ]  # fmt: skip


def sb3_settings(algo: str, settings: str, env_id: str) -> dict[str, Any]:
    """The keyword arguments of SB3's ``algo`` (``noise_std``: Gaussian action noise) for the named settings."""
    if settings not in SB3_SETTINGS:
        raise UserError(f"SB3 settings {settings!r} are not known: give one of {', '.join(SB3_SETTINGS)}")
    if settings == "defaults":
        return {}
    if algo == "ppo":
        return dict(RL_ZOO_PPO.get(env_id.split("-")[0], {}))
    return dict(RL_ZOO_OFF_POLICY.get(algo, {}))


def train_sb3(algo: str, settings_name: str, env_id: str, seed: int, steps: int, folder: Path) -> None:
    """Train SB3 ``algo`` on ``env_id`` for ``steps`` steps, logging spinrl-like rows, then evaluate it."""
    import gymnasium as gym
    import stable_baselines3 as sb3
    import torch
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    from spinrl.record.folder import open_run_dir
    from spinrl.record.status import write_status

    torch.set_num_threads(1)
    if (folder / "progress.txt").exists():
        print(f"{folder}: an unfinished SB3 run (SB3 runs cannot resume): training it again from the start")
    lock = open_run_dir(folder, resume=True)  # one writer at a time, like a spinrl run
    settings = sb3_settings(algo, settings_name, env_id)
    normalize = algo == "ppo" and settings_name == "rl-zoo"  # RL Zoo normalises for PPO only
    config = dict(
        algo=f"sb3-{algo}", env_name=env_id, seed=seed, steps=steps, library=f"stable-baselines3 {sb3.__version__}",
        settings=settings_name, normalize=normalize, hyperparameters=settings, exp_name=folder.parent.name,
    )  # fmt: skip
    write_text_atomically(folder / "config.json", json.dumps(config, indent=2))
    epochs = math.ceil(steps / SB3_LOG_EVERY)
    write_status(folder, "running", 0, epochs)
    kwargs = dict(settings)
    if "policy_kwargs" in kwargs:
        kwargs["policy_kwargs"] = dict(kwargs["policy_kwargs"], activation_fn=torch.nn.ReLU)
    if normalize:
        env = VecNormalize(make_vec_env(env_id, n_envs=1, seed=seed), gamma=kwargs.get("gamma", 0.99))
    else:
        env = make_vec_env(env_id, n_envs=1, seed=seed)
    if "noise_std" in kwargs:
        from stable_baselines3.common.noise import NormalActionNoise

        n_actions = env.action_space.shape[0]
        noise_std = kwargs.pop("noise_std")
        kwargs["action_noise"] = NormalActionNoise(np.zeros(n_actions), noise_std * np.ones(n_actions))
    model = getattr(sb3, algo.upper())("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **kwargs)
    progress = open(folder / "progress.txt", "w")
    progress.write("Epoch\tAverageEpRet\tEpLen\tTotalEnvInteracts\tTime\n")
    start = time.perf_counter()

    class Rows(BaseCallback):
        """A progress row every SB3_LOG_EVERY steps: the mean return of the episodes that ended in it."""

        def __init__(self) -> None:
            super().__init__()
            self.rets: list[float] = []
            self.lens: list[int] = []
            self.rows = 0

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:  # Monitor's record: the real, unnormalised return
                    self.rets.append(float(info["episode"]["r"]))
                    self.lens.append(int(info["episode"]["l"]))
            if self.num_timesteps >= (self.rows + 1) * SB3_LOG_EVERY:
                self.write_row()
            return True

        def write_row(self) -> None:
            ret = np.mean(self.rets) if self.rets else float("nan")
            length = np.mean(self.lens) if self.lens else float("nan")
            secs = time.perf_counter() - start
            progress.write(f"{self.rows}\t{ret:.6g}\t{length:.6g}\t{self.num_timesteps}\t{secs:.4g}\n")
            progress.flush()
            self.rets.clear()
            self.lens.clear()
            self.rows += 1
            write_status(folder, "running", self.rows, epochs)

    rows = Rows()
    model.learn(total_timesteps=steps, callback=rows)
    if rows.rows < epochs:  # the budget is not a multiple of SB3_LOG_EVERY: its last, shorter row
        rows.write_row()
    progress.close()

    # The deterministic evaluation, with the observation statistics frozen as they ended.
    t0 = time.perf_counter()
    eval_env = gym.make(env_id)
    returns, lengths = [], []
    for episode_seed in episode_seeds(EVAL_SEED, EVAL_EPISODES):  # the seeds run_policy gives spinrl's runs
        obs, _ = eval_env.reset(seed=episode_seed)
        done, ret, n = False, 0.0, 0
        while not done:
            x = env.normalize_obs(obs) if normalize else obs
            action, _ = model.predict(x, deterministic=True)
            obs, r, terminated, truncated, _ = eval_env.step(action)
            ret, n, done = ret + float(r), n + 1, terminated or truncated
        returns.append(ret)
        lengths.append(n)
    write_eval(folder, returns, lengths, epochs, t0)
    write_status(folder, "finished", epochs, epochs)
    lock.release()


def main(argv: list[str] | None = None) -> int:
    algo, settings, env_id, seed, steps, folder = (sys.argv[1:] if argv is None else argv)[:6]
    train_sb3(algo, settings, env_id, int(seed), int(steps), Path(folder))
    return 0


if __name__ == "__main__":
    sys.exit(run_main_guarded(main))
