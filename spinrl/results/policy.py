"""``spinrl test_policy RUN_DIR``: load a run's last checkpoint and watch, measure or record its policy.

spinrl test_policy data/cp/cp_s0 --episodes 10 --deterministic
spinrl test_policy data/cp/cp_s0 --video cartpole.mp4 --episodes 3
spinrl test_policy data/hop/hop_s0 --render          # a window, when there is a display

Spinning Up's flags work too: ``-l/--len`` (longest episode), ``-n/--episodes``, ``-nr/--norender``,
``-i/--itr`` (a numbered snapshot) and ``-d/--deterministic``; from Python, ``load_policy_and_env`` and
``run_policy`` take Spinning Up's arguments.

This module finds what a run saved (config.json, the checkpoint or snapshot, the environment) and plays
episodes with it; rebuilding the network is :mod:`spinrl.results.saved_network`, recording a video
:mod:`spinrl.results.video`.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from gymnasium import spaces

from spinrl.common.errors import UserError
from spinrl.common.seeding import episode_seeds
from spinrl.record.checkpoint import has_checkpoint, load_checkpoint
from spinrl.record.console import format_epoch_table
from spinrl.record.names import CHECKPOINT_META, CONFIG_FILE, SNAPSHOTS_DIR
from spinrl.results.saved_network import build_network, refuse_non_finite_weights
from spinrl.results.video import prepare_video, record_episodes
from spinrl.training.normalize import ObservationNormalizer


def _read_config(run_dir: Path) -> dict:
    """The run's config.json as a dict; a missing or damaged one is one line."""
    path = run_dir / CONFIG_FILE
    if not path.exists():
        if has_checkpoint(run_dir) or saved_snapshots(run_dir):
            return {}  # a hand-written loop that saved its network but no config
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
        for key, types in (
            ("env_name", str),
            ("env_kwargs", dict),
            ("actor_critic", str),
            ("ac_kwargs", dict),
            ("max_ep_len", int),
        )
        if config.get(key) is not None and not isinstance(config[key], types)
    ]
    if bad:
        raise UserError(f"{path} is damaged: {', '.join(bad)} cannot be what the run used")
    return config


def saved_snapshots(run_dir: str | os.PathLike) -> list[int]:
    """The numbered snapshots that ``save_state(..., itr=N)`` kept in ``<run>/snapshots/N/``, sorted."""
    folder = Path(run_dir) / SNAPSHOTS_DIR
    if not folder.is_dir():
        return []
    return sorted(
        int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / CHECKPOINT_META).exists()
    )


def load_saved(run_dir: str | os.PathLike, itr: int | str = "last", device: str = "cpu") -> dict:
    """The checkpoint to load, by Spinning Up's ``itr`` rule.

    ``"last"``: the highest numbered snapshot when the run has any, else the run's checkpoint (all an
    algorithm's run has). ``N``: snapshot N, or the run's checkpoint when it was saved at epoch (or
    ``save_state`` call) N. Anything else is one line naming what there is.
    """
    run_dir = Path(run_dir)
    if itr != "last" and (isinstance(itr, bool) or not isinstance(itr, int) or itr < 0):
        raise UserError(f"itr={itr!r} is not valid: give 'last' or a snapshot number (0 or more)")
    snapshots = saved_snapshots(run_dir)
    if itr == "last" and snapshots:
        itr = snapshots[-1]
    if itr == "last":
        return load_checkpoint(run_dir, map_location=device)
    if itr in snapshots:
        return load_checkpoint(run_dir / SNAPSHOTS_DIR / str(itr), map_location=device)
    try:
        epoch = json.loads((run_dir / CHECKPOINT_META).read_text()).get("epoch")
    except (OSError, ValueError, AttributeError):
        epoch = None
    if epoch == itr:
        return load_checkpoint(run_dir, map_location=device)
    have = [f"snapshot {n}" for n in snapshots] + (
        [f"its checkpoint numbered {epoch}"] if epoch is not None else []
    )
    raise UserError(
        f"the run in {str(run_dir)!r} has no snapshot {itr}; it has {', '.join(have) or 'none'} "
        "(an algorithm keeps only its last checkpoint)"
    )


def env_maker(
    config: dict, state: dict, run_dir: Path, env_fn: Callable | str | None, render_mode: str | None
):
    """The function that makes the run's environment: ``env_fn`` when given, else the Gymnasium id in
    config.json (``env_name``), else the id and arguments recorded for an env made by a function
    (``env_spec``, in config.json or in a ``save_state`` checkpoint). Nothing recorded is one line."""
    from spinrl.envs.make import make_env_fn, resolve_env_fn

    if env_fn is not None:
        return resolve_env_fn(env_fn)
    render = {"render_mode": render_mode} if render_mode else {}
    if config.get("env_name"):
        # env_kwargs as recorded (for Atari, every option of the protocol), so the env is the run's.
        return make_env_fn(config["env_name"], **(config.get("env_kwargs") or {}), **render)
    spec = config.get("env_spec") or state.get("env_spec")
    if spec is None:
        raise UserError(
            f"the run in {str(run_dir)!r} made its environment with a function and recorded no Gymnasium id; "
            "pass env_fn= to load_policy or load_policy_and_env"
        )
    if (
        not isinstance(spec, dict)
        or not isinstance(spec.get("id"), str)
        or not isinstance(spec.get("kwargs", {}), dict)
    ):
        raise UserError(f"the environment recorded for the run in {str(run_dir)!r} is damaged: {spec!r}")
    if spec.get("wrappers") or spec.get("unrecorded_kwargs"):
        extra = spec.get("wrappers") or spec.get("unrecorded_kwargs")
        what = "wrapped it in" if spec.get("wrappers") else "gave it arguments that are not plain values:"
        raise UserError(
            f"the run's env function made {spec['id']} and {what} {', '.join(map(str, extra))}, which a file "
            "cannot rebuild; pass env_fn= to load_policy or load_policy_and_env"
        )
    limit = (
        {"max_episode_steps": spec["max_episode_steps"]}
        if isinstance(spec.get("max_episode_steps"), int)
        else {}
    )
    return make_env_fn(spec["id"], **spec.get("kwargs", {}), **limit, **render)


def load_policy(
    run_dir: str | os.PathLike,
    actor_critic: Callable | None = None,
    deterministic: bool = False,
    render_mode: str | None = None,
    device: str = "cpu",
    env_fn: Callable | str | None = None,
    itr: int | str = "last",
):
    """Rebuild a run's environment and policy from ``config.json`` and its last checkpoint.

    Returns ``(env, get_action, config)`` where ``get_action(obs) -> action`` for one observation.
    ``env_fn`` (a function that makes the env, or a Gymnasium id) replaces the recorded environment;
    it is needed when the run's env came from a function whose env could not be recorded.
    ``itr`` picks a numbered snapshot (see :func:`load_saved`).
    """
    from spinrl.envs.make import default_max_ep_len, make_env

    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(
            f"{str(run_dir)!r} is a file, not a run directory; give the run's folder, e.g. data/cp/cp_s0"
        )
    if not run_dir.is_dir():
        raise UserError(f"run directory {str(run_dir)!r} does not exist")
    config = _read_config(run_dir)
    state = load_saved(run_dir, itr, device)
    if not isinstance(state.get("ac"), dict):
        raise UserError(f"the checkpoint in {str(run_dir)!r} holds no network weights (no 'ac' entry)")
    refuse_non_finite_weights(state["ac"], run_dir)

    from spinrl.nets.custom import as_spinrl_actor_critic

    base_fn = env_maker(config, state, run_dir, env_fn, render_mode)
    max_ep_len = config.get("max_ep_len")
    if "max_ep_len" in config and max_ep_len is None:  # the algorithm's default: 1000, or a full Atari game
        max_ep_len = default_max_ep_len(base_fn, None)
    env = make_env(base_fn, max_ep_len)
    try:
        ac = build_network(actor_critic, config, env, state, run_dir)
        # A network written to Spinning Up's core.py interface acts through spinrl's (spinrl.nets.custom).
        ac = as_spinrl_actor_critic(ac, env.observation_space, env.action_space, str(config.get("algo", "")))
    except BaseException:
        env.close()
        raise
    ac.to(device).eval()
    act_space, obs_dtype = env.action_space, env.observation_space.dtype
    # A run trained with obs_norm saved its statistics beside the network: the policy gets its inputs
    # normalised as in training, with the statistics frozen (spinrl.training.normalize).
    obs_normalizer = (
        ObservationNormalizer.from_state_dict(state["obs_normalizer"])
        if isinstance(state.get("obs_normalizer"), dict)
        else None
    )

    def get_action(obs: np.ndarray):
        # float32 vectors, uint8 frames: the dtype of the prepared env's observations, as in training.
        obs = np.asarray(obs, dtype=obs_dtype)
        if obs_normalizer is not None:
            obs = obs_normalizer(obs)
        obs_t = torch.as_tensor(obs[None], device=device)
        a = ac.act(obs_t, deterministic=deterministic)[0].cpu().numpy()
        if isinstance(act_space, spaces.Box):
            return np.clip(a, act_space.low, act_space.high)
        return int(a)

    return env, get_action, config


def load_policy_and_env(
    fpath: str | os.PathLike,
    itr: int | str = "last",
    deterministic: bool = False,
    env_fn: Callable | None = None,
) -> tuple:
    """Spinning Up's loader: ``(env, get_action)`` for the run in ``fpath``.

    ``itr`` is ``"last"`` or a snapshot number (:func:`load_saved`); ``deterministic`` acts with the mean
    or most likely action. Where Spinning Up unpickled the env from ``vars.pkl``, spinrl makes it again
    from its recorded Gymnasium id; ``env_fn`` makes it instead when nothing recorded can.
    """
    env, get_action, _ = load_policy(fpath, deterministic=deterministic, env_fn=env_fn, itr=itr)
    return env, get_action


def run_policy(
    env,
    get_action: Callable,
    max_ep_len: int | None = None,
    num_episodes: int = 100,
    render: bool = True,
    *,
    seed: int = 0,
    quiet: bool = False,
    episodes: int | None = None,
) -> list[tuple[float, int]]:
    """Play ``num_episodes`` episodes (``episodes`` is the same) and return (return, length) of each.

    Spinning Up's arguments and output: a line per episode, then the table of AverageEpRet, StdEpRet,
    MaxEpRet, MinEpRet and EpLen. An episode ends when the env terminates or truncates it, or after
    ``max_ep_len`` steps (None or 0: no limit of our own). Episode ``i`` starts from
    ``env.reset(seed=seed + i)`` (:func:`spinrl.common.seeding.episode_seeds`). Gymnasium envs draw
    themselves when made with ``render_mode="human"`` (``load_policy(..., render_mode="human")``), so
    ``render`` has nothing left to do.
    """
    if env is None:
        raise UserError("run_policy has no environment: pass env_fn= to load_policy_and_env to make one")
    num_episodes = num_episodes if episodes is None else episodes
    if num_episodes < 1:
        raise UserError(f"num_episodes={num_episodes} is not valid: give a positive integer")
    results = []
    for ep, episode_seed in enumerate(episode_seeds(seed, num_episodes)):
        obs, _ = env.reset(seed=episode_seed)
        done, ep_ret, ep_len = False, 0.0, 0
        while not done:
            obs, rew, terminated, truncated, _ = env.step(get_action(obs))
            ep_ret += float(rew)
            ep_len += 1
            done = terminated or truncated or ep_len == max_ep_len
        results.append((ep_ret, ep_len))
        if not quiet:
            print(f"Episode {ep} \t EpRet {ep_ret:.3f} \t EpLen {ep_len}", flush=True)
    if not quiet:
        rets, lens = np.array([r for r, _ in results]), np.array([n for _, n in results])
        table = dict(AverageEpRet=rets.mean(), StdEpRet=rets.std(), MaxEpRet=rets.max(), MinEpRet=rets.min())
        print(format_epoch_table(dict(table, EpLen=lens.mean())), flush=True)
    return results


def record_video(
    run_dir: str,
    out_path: str,
    episodes: int,
    deterministic: bool,
    seed: int,
    itr: int | str = "last",
    max_ep_len: int | None = None,
) -> list[tuple[float, int]]:
    """Record ``episodes`` episodes headless into one video file (MP4, WebM, or GIF by extension).

    The path is checked before the policy is loaded; frames are streamed to the encoder and the file is
    given its name only when complete (:mod:`spinrl.results.video`).
    """
    out = prepare_video(out_path)
    env, get_action, _ = load_policy(run_dir, deterministic=deterministic, render_mode="rgb_array", itr=itr)
    results = record_episodes(
        env, out, lambda stream: run_policy(stream, get_action, max_ep_len, episodes, render=False, seed=seed)
    )
    print(f"Video of {episodes} episode(s) written to {out}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spinrl test_policy", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a run directory, e.g. data/cp/cp_s0")
    parser.add_argument("--episodes", "-n", type=int, default=10, help="number of episodes (default 10)")
    parser.add_argument(
        "--deterministic", "-d", action="store_true", help="act with the mean / most likely action"
    )
    parser.add_argument(
        "--len", "-l", type=int, default=0, help="end an episode after this many steps (default 0: no limit)"
    )
    parser.add_argument(
        "--itr",
        "-i",
        type=int,
        default=-1,
        help="the snapshot saved by save_state(..., itr=N) (default: the last)",
    )
    parser.add_argument("--render", action="store_true", help="show a window (needs a display)")
    parser.add_argument(
        "--norender", "-nr", action="store_true", help="no window (the default; Spinning Up's flag)"
    )
    parser.add_argument("--video", metavar="OUT.mp4", help="record the episodes headless into this file")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode (default 0)")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        raise UserError(f"--episodes {args.episodes} is not valid: give a positive integer")
    if args.len < 0:
        raise UserError(f"--len {args.len} is not valid: give a number of steps, or 0 for no limit")
    if args.itr < -1:
        raise UserError(f"--itr {args.itr} is not valid: give a snapshot number, or -1 for the last")
    if args.render and args.norender:
        raise UserError("--render and --norender contradict each other; give one of them")
    itr = "last" if args.itr == -1 else args.itr
    max_ep_len = args.len or None
    if args.video:
        record_video(args.run_dir, args.video, args.episodes, args.deterministic, args.seed, itr, max_ep_len)
        return 0
    if args.render and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UserError("--render needs a display; record a file instead with --video out.mp4")
    env, get_action, _ = load_policy(
        args.run_dir, deterministic=args.deterministic, render_mode="human" if args.render else None, itr=itr
    )
    try:
        run_policy(env, get_action, max_ep_len, args.episodes, render=args.render, seed=args.seed)
    finally:
        env.close()
    return 0
