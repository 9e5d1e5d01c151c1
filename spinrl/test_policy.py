"""``spinrl test_policy RUN_DIR``: load a run's last checkpoint and watch, measure or record its policy.

spinrl test_policy data/cp/cp_s0 --episodes 10 --deterministic
spinrl test_policy data/cp/cp_s0 --video cartpole.mp4 --episodes 3
spinrl test_policy data/hop/hop_s0 --render          # a window, when there is a display
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from gymnasium import spaces

from spinrl.checkpoint import load_checkpoint
from spinrl.errors import UserError

# Network classes that moved or were renamed since runs recorded them in config.json: old -> new.
RENAMED_CLASSES = {
    "spinrl.offpolicy_nets.MLPActorCritic": "spinrl.q_nets.MLPDeterministicActorCritic",
    "spinrl.offpolicy_nets.MLPTwinActorCritic": "spinrl.q_nets.MLPTwinActorCritic",
    "spinrl.offpolicy_nets.MLPSquashedGaussianActorCritic": "spinrl.q_nets.MLPSquashedGaussianActorCritic",
    "spinrl.offpolicy_nets.MLPQNetwork": "spinrl.q_nets.MLPQNetwork",
}


def _import_builtin(dotted: str):
    """Import a network class named in config.json, only from spinrl itself (nothing else runs).

    Runs saved before a class moved name it by its old place; :data:`RENAMED_CLASSES` maps it.
    """
    dotted = RENAMED_CLASSES.get(dotted, dotted)
    module, _, name = dotted.rpartition(".")
    if not module.startswith("spinrl."):
        raise UserError(
            f"the run used a custom actor-critic {dotted!r}; load it from Python with "
            "load_policy(run_dir, actor_critic=YourClass)"
        )
    try:
        cls = getattr(importlib.import_module(module), name, None)
    except ImportError:
        cls = None
    if not callable(cls):
        raise UserError(
            f"the run's config.json names the network {dotted!r}, which this spinrl does not have"
        )
    return cls


def _read_config(run_dir: Path) -> dict:
    """The run's config.json as a dict; a missing or damaged one is one line."""
    path = run_dir / "config.json"
    if not path.exists():
        raise UserError(f"{str(run_dir)!r} is not a spinrl run: it has no config.json")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is damaged: not valid JSON ({e.msg} at line {e.lineno})") from None
    except (UnicodeDecodeError, OSError) as e:
        raise UserError(f"{path} cannot be read ({type(e).__name__})") from None
    if not isinstance(config, dict):
        raise UserError(f"{path} is damaged: it holds a {type(config).__name__}, not the run's settings")
    bad = [
        f"{key}={config[key]!r}"
        for key, types in (("env_name", str), ("actor_critic", str), ("ac_kwargs", dict), ("max_ep_len", int))
        if config.get(key) is not None and not isinstance(config[key], types)
    ]
    if bad:
        raise UserError(f"{path} is damaged: {', '.join(bad)} cannot be what the run used")
    return config


def _build_network(actor_critic: Callable | None, config: dict, env, weights: dict, run_dir: Path):
    """The network config.json describes, holding the checkpoint's weights; a mismatch is one line."""
    cls = actor_critic or _import_builtin(config.get("actor_critic", "spinrl.nets.MLPActorCritic"))
    ac_kwargs = config.get("ac_kwargs") or {}
    try:
        ac = cls(env.observation_space, env.action_space, **ac_kwargs)
    except TypeError as e:
        raise UserError(
            f"ac_kwargs={ac_kwargs!r} in {run_dir / 'config.json'} do not fit {cls.__name__}: {e}"
        ) from None
    try:
        ac.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        # torch lists every mismatch after a header line; the first one is enough to see the cause.
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        detail = (lines[1] if len(lines) > 1 else lines[0] if lines else type(e).__name__)[:200]
        raise UserError(
            f"the checkpoint in {str(run_dir)!r} does not fit the network that config.json describes "
            f"(ac_kwargs={ac_kwargs!r}): {detail}"
        ) from None
    return ac


def load_policy(
    run_dir: str | os.PathLike,
    actor_critic: Callable | None = None,
    deterministic: bool = False,
    render_mode: str | None = None,
    device: str = "cpu",
):
    """Rebuild a run's environment and policy from ``config.json`` and its last checkpoint.

    Returns ``(env, get_action, config)`` where ``get_action(obs) -> action`` for one observation.
    """
    from spinrl.envs import make_env

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory {str(run_dir)!r} does not exist")
    config = _read_config(run_dir)
    env_name = config.get("env_name")
    if not env_name:
        raise UserError(f"the run in {str(run_dir)!r} used a custom env_fn; rebuild it from Python instead")
    state = load_checkpoint(run_dir, map_location=device)
    if not isinstance(state.get("ac"), dict):
        raise UserError(f"the checkpoint in {str(run_dir)!r} holds no network weights (no 'ac' entry)")

    from spinrl.custom_ac import as_spinrl_actor_critic
    from spinrl.envs import make_env_fn

    base_fn = make_env_fn(env_name, render_mode=render_mode) if render_mode else make_env_fn(env_name)
    env = make_env(base_fn, config.get("max_ep_len"))
    try:
        ac = _build_network(actor_critic, config, env, state["ac"], run_dir)
        # A network written to Spinning Up's core.py interface acts through spinrl's (spinrl.custom_ac).
        ac = as_spinrl_actor_critic(ac, env.observation_space, env.action_space, str(config.get("algo", "")))
    except BaseException:
        env.close()
        raise
    ac.to(device).eval()
    act_space = env.action_space

    def get_action(obs: np.ndarray):
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32)[None], device=device)
        a = ac.act(obs_t, deterministic=deterministic)[0].cpu().numpy()
        if isinstance(act_space, spaces.Box):
            return np.clip(a, act_space.low, act_space.high)
        return int(a)

    return env, get_action, config


def run_policy(
    env, get_action: Callable, episodes: int, seed: int = 0, quiet: bool = False
) -> list[tuple[float, int]]:
    """Play ``episodes`` episodes; return (return, length) of each."""
    results = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        done, ep_ret, ep_len = False, 0.0, 0
        while not done:
            obs, rew, terminated, truncated, _ = env.step(get_action(obs))
            ep_ret += float(rew)
            ep_len += 1
            done = terminated or truncated
        results.append((ep_ret, ep_len))
        if not quiet:
            print(f"Episode {ep} \t EpRet {ep_ret:.3f} \t EpLen {ep_len}", flush=True)
    return results


def record_video(
    run_dir: str, out_path: str, episodes: int, deterministic: bool, seed: int
) -> list[tuple[float, int]]:
    """Record ``episodes`` episodes headless into one video file (MP4, or GIF by extension)."""
    from gymnasium.wrappers import RecordVideo

    out = Path(out_path)
    if out.exists():
        raise UserError(f"{out_path} already exists; choose another --video path (nothing is overwritten)")
    if out.suffix.lower() not in (".mp4", ".gif", ".webm"):
        raise UserError(f"--video {out_path!r}: use a .mp4, .webm or .gif file name")
    # Refused now, before a policy is loaded or a frame rendered, rather than as ffmpeg's broken pipe.
    folder = out.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise UserError(
            f"--video {out_path!r}: the folder {str(folder)!r} {what}; create it or choose another path"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(
            f"--video {out_path!r}: the folder {str(folder)!r} is not writable; choose another path"
        )
    os.environ.setdefault("MUJOCO_GL", "egl")  # headless MuJoCo rendering
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless pygame (classic control, Box2D)
    try:
        import moviepy  # noqa: F401
    except ImportError:
        raise UserError("--video needs moviepy: pip install 'spinrl[video]'") from None
    env, get_action, _ = load_policy(run_dir, deterministic=deterministic, render_mode="rgb_array")
    tmp = Path(tempfile.mkdtemp(prefix="spinrl-video-"))
    try:
        env = RecordVideo(
            env, str(tmp / "episodes"), episode_trigger=lambda _: True, name_prefix="ep", disable_logger=True
        )
        results = run_policy(env, get_action, episodes, seed)
        env.close()
        clips = sorted(
            (tmp / "episodes").glob("ep-episode-*.mp4"), key=lambda p: int(p.stem.rsplit("-", 1)[-1])
        )
        if not clips:
            raise UserError(
                "no video frames were recorded: does this environment support render_mode='rgb_array'?"
            )
        _concatenate(clips, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"Video of {episodes} episode(s) written to {out}")
    return results


def _concatenate(clips: list[Path], out: Path) -> None:
    from moviepy import VideoFileClip, concatenate_videoclips

    videos = [VideoFileClip(str(c)) for c in clips]
    try:
        joined = concatenate_videoclips(videos)
        if out.suffix.lower() == ".gif":
            joined.write_gif(str(out), logger=None)
        else:
            joined.write_videofile(str(out), logger=None, audio=False)
    finally:
        for v in videos:
            v.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spinrl test_policy", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a run directory, e.g. data/cp/cp_s0")
    parser.add_argument("--episodes", "-n", type=int, default=10, help="number of episodes (default 10)")
    parser.add_argument(
        "--deterministic", "-d", action="store_true", help="act with the mean / most likely action"
    )
    parser.add_argument("--render", action="store_true", help="show a window (needs a display)")
    parser.add_argument("--video", metavar="OUT.mp4", help="record the episodes headless into this file")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode (default 0)")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        raise UserError(f"--episodes {args.episodes} is not valid: give a positive integer")
    if args.video:
        results = record_video(args.run_dir, args.video, args.episodes, args.deterministic, args.seed)
    else:
        if args.render and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise UserError("--render needs a display; record a file instead with --video out.mp4")
        env, get_action, _ = load_policy(
            args.run_dir, deterministic=args.deterministic, render_mode="human" if args.render else None
        )
        results = run_policy(env, get_action, args.episodes, args.seed)
        env.close()
    rets = np.array([r for r, _ in results])
    lens = np.array([n for _, n in results])
    print(f"AverageEpRet {rets.mean():.3f} \t StdEpRet {rets.std():.3f} \t AverageEpLen {lens.mean():.1f}")
    return 0
