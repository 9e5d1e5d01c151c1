"""Atari games (the Arcade Learning Environment) with the usual deep-RL protocol, and the learning signals.

An Atari id (``ALE/Pong-v5``, or an older one such as ``PongNoFrameskip-v4``) given to any spinrl
algorithm is built by :func:`atari_env` from Gymnasium's own wrappers, in this order:

1. the ALE game itself, made with ``frameskip=1`` (the skipping is done in step 2, which needs every
   frame to take the maximum over the last two) and the id's own sticky actions (v5 ids: with
   probability ``repeat_action_probability=0.25`` the emulator repeats the previous action instead of
   the new one, so that a policy cannot replay a memorised sequence of inputs);
2. ``AtariPreprocessing``: each action held for ``frame_skip=4`` frames, the pixel-wise maximum of the
   last two (sprites in some games flicker between frames), scaled to ``screen_size=84`` x 84 pixels of
   grey, and 1 to ``noop_max=30`` "do nothing" actions after every reset, so episodes start in
   different states; with the ``fire_reset`` option, :class:`PressFire` then serves the ball in games
   that wait for FIRE;
3. ``FrameStackObservation``: the last ``frame_stack=4`` such frames, so that speeds can be seen. The
   observation is ``(4, 84, 84)`` uint8, channels first, as spinrl's image networks expect;
4. :class:`AtariLearningSignals`, which changes nothing the env returns but announces, for the
   algorithm's loop, two rules of the protocol (Mnih et al. 2015, Methods) that concern learning only:
   rewards are clipped to their sign (``clip_rewards``), and a lost life counts as the end of an
   episode for bootstrapping (``terminal_on_life_loss``).

Why the last two are *not* done by the env: the env keeps returning the real score, so that ``EpRet``,
the test episodes and ``spinrl test_policy`` report what a player scored in a full game. Gymnasium's
``AtariPreprocessing(terminal_on_life_loss=True)`` would also reset the whole game at every lost life,
which makes the logged episodes single lives. Instead, the loops of DQN and of VPG/TRPO/PPO pass each
step through :class:`LearningSignals`: the replay buffer and the GAE buffer get the clipped reward and
a terminal flag at each lost life, while the game goes on.

Every default can be changed with ``env_kwargs`` (see :data:`ATARI_OPTIONS`)::

    spinrl dqn --env ALE/Pong-v5 --env_kwargs "{'clip_rewards': False, 'noop_max': 0}"
    dqn("ALE/Pong-v5", env_kwargs=dict(repeat_action_probability=0.0))
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from spinrl.common.errors import UserError

ALE_ENTRY_POINT = "ale_py.env:AtariEnv"

# The key under which AtariLearningSignals announces its rules in the env's metadata. Vector envs
# copy the metadata of their first copy, so the loop reads the rules without touching the copies.
METADATA_KEY = "spinrl_learning_signals"


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def _is_int(lowest: int, highest: int | None = None) -> Callable[[Any], bool]:
    def test(v: Any) -> bool:
        in_range = highest is None or v <= highest
        return isinstance(v, int) and not isinstance(v, bool) and v >= lowest and in_range

    return test


def _is_probability(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and 0.0 <= v <= 1.0


def _is_int_or_none(v: Any) -> bool:
    return v is None or _is_int(0)(v)


# Upper bounds for the options that set how many frames one call plays or keeps: beyond them a reset
# or a step could emulate for hours without returning (a game such as Breakout never ends while no
# one presses FIRE), or a frame stack or screen could fill the memory. Each is far above any
# setting in the literature (noop_max 30, frame_skip 4, frame_stack 4, screen_size 84).
MAX_NOOPS = 10_000  # frames of "do nothing": under 3 minutes of play
MAX_FRAME_SKIP = 60  # frames per agent step: one second of play
MAX_FRAME_STACK = 64
MAX_SCREEN_SIZE = 512  # pixels a side; the ALE's screen is 210 x 160

# Every option of an Atari env: name -> (default, test of a value, what is valid). A default of None
# means "what the id registers" (v5 ids: sticky actions 0.25, the 18-action set only when needed,
# at most 108,000 frames per game; v4 ids: no sticky actions).
ATARI_OPTIONS: dict[str, tuple[Any, Callable[[Any], bool], str]] = {
    # Gymnasium's AtariPreprocessing and FrameStackObservation.
    "frame_skip": (4, _is_int(1, MAX_FRAME_SKIP), f"a whole number from 1 to {MAX_FRAME_SKIP}"),
    "screen_size": (84, _is_int(1, MAX_SCREEN_SIZE), f"a whole number of pixels from 1 to {MAX_SCREEN_SIZE}"),
    "grayscale": (True, _is_bool, "True or False"),
    "noop_max": (30, _is_int(0, MAX_NOOPS), f"a whole number from 0 to {MAX_NOOPS}"),
    "frame_stack": (4, _is_int(1, MAX_FRAME_STACK), f"a whole number from 1 to {MAX_FRAME_STACK}"),
    # The learning signals (the algorithms' loops, through LearningSignals).
    "terminal_on_life_loss": (True, _is_bool, "True or False"),
    "clip_rewards": (True, _is_bool, "True or False"),
    # PressFire: FIRE at the start of each game and after each lost life (off by default).
    "fire_reset": (False, _is_bool, "True or False"),
    # The ALE game itself (gym.make arguments).
    "repeat_action_probability": (None, _is_probability, "a probability in [0, 1]"),
    "full_action_space": (None, _is_bool, "True or False"),
    "max_num_frames_per_episode": (None, _is_int(1), "a whole number >= 1"),
    "mode": (None, _is_int_or_none, "a game mode number, or None"),
    "difficulty": (None, _is_int_or_none, "a difficulty number, or None"),
}
_FROM_REGISTRY = ("repeat_action_probability", "full_action_space", "max_num_frames_per_episode")


def register_atari() -> bool:
    """Register the ALE's ids with Gymnasium, once; False when ale-py is not installed."""
    try:
        import ale_py
    except ImportError:
        return False
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no banner on every game made
    gym.register_envs(ale_py)
    return True


def is_atari_id(env_id: str) -> bool:
    """Whether ``env_id`` is a registered ALE game (registering the ALE's ids first when needed)."""
    if env_id not in gym.registry and not register_atari():
        return False
    spec = gym.registry.get(env_id)
    return spec is not None and spec.entry_point == ALE_ENTRY_POINT


def atari_options(env_id: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """All options of the Atari env ``env_id``: the defaults, overridden by ``options``.

    An unknown name or a bad value is one line naming it and what is valid.
    """
    options = dict(options or {})
    for name, value in options.items():
        if name not in ATARI_OPTIONS:
            close = difflib.get_close_matches(name, list(ATARI_OPTIONS), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            if name == "frameskip":
                hint = "frames are skipped by AtariPreprocessing: use frame_skip; "
            raise UserError(
                f"unknown Atari option {name!r} for {env_id} (env_kwargs); {hint}valid: {', '.join(ATARI_OPTIONS)}"
            )
        _, valid, description = ATARI_OPTIONS[name]
        if not valid(value):
            raise UserError(f"Atari option {name}={value!r} is not valid for {env_id}: give {description}")
    registered = gym.registry[env_id].kwargs
    resolved = {}
    for name, (default, _, _) in ATARI_OPTIONS.items():
        if name in options:
            resolved[name] = options[name]
        elif name in _FROM_REGISTRY:
            resolved[name] = registered.get(name)
        else:
            resolved[name] = default
    _check_game_settings(env_id, resolved)
    return resolved


def _check_game_settings(env_id: str, options: dict[str, Any]) -> None:
    """Refuse a ``mode`` or ``difficulty`` the game does not have, naming those it has, and
    ``fire_reset`` for a game without a FIRE button.

    The ALE would raise a bare RuntimeError when the env is made; asking the game's ROM costs a tenth
    of a second, so it is done only when one of these options is given.
    """
    asked = {k: options[k] for k in ("mode", "difficulty") if options[k] is not None}
    if not asked and not (options["fire_reset"] and not options["full_action_space"]):
        return
    import ale_py
    from ale_py import roms

    game = gym.registry[env_id].kwargs["game"]
    ale = ale_py.ALEInterface()
    ale.loadROM(roms.get_rom_path(game))
    if options["fire_reset"] and not options["full_action_space"]:
        if ale_py.Action.FIRE not in ale.getMinimalActionSet():
            raise UserError(
                f"Atari option fire_reset=True is not valid for {env_id}: the game has no FIRE action"
            )
    valid = dict(mode=ale.getAvailableModes(), difficulty=ale.getAvailableDifficulties())
    for name, value in asked.items():
        if value not in valid[name]:
            listed = ", ".join(map(str, valid[name]))
            plural = {"mode": "modes", "difficulty": "difficulties"}[name]
            raise UserError(
                f"Atari option {name}={value} is not valid for {env_id}: its {plural} are {listed}"
            )


def atari_env(
    env_id: str = "ALE/Pong-v5", render_mode: str | None = None, **options: Any
) -> Callable[[], gym.Env]:
    """A function making the Atari game ``env_id`` with the protocol of the module docstring.

    ``options`` change the defaults of :data:`ATARI_OPTIONS` (``atari_env("ALE/Pong-v5",
    clip_rewards=False)``); ``render_mode="rgb_array"`` renders the real game screen (210 x 160 in
    colour), not the small grey frames the agent sees. The function carries ``env_name`` and
    ``env_kwargs`` (the options given), and ``options`` (all of them, defaults included).
    """
    if not is_atari_id(env_id):
        raise UserError(f"{env_id!r} is not an Atari game id (ALE/...); e.g. ALE/Pong-v5")
    opts = atari_options(env_id, options)

    def env_fn() -> gym.Env:
        register_atari()  # in a subprocess started afresh (spawn, forkserver) the ids are not there yet
        game_kwargs = {k: opts[k] for k in _FROM_REGISTRY if opts[k] is not None}
        game_kwargs.update({k: opts[k] for k in ("mode", "difficulty") if opts[k] is not None})
        env = gym.make(env_id, frameskip=1, render_mode=render_mode, **game_kwargs)
        env = gym.wrappers.AtariPreprocessing(
            env,
            noop_max=opts["noop_max"],
            frame_skip=opts["frame_skip"],
            screen_size=opts["screen_size"],
            terminal_on_life_loss=False,  # it would reset the game; see LearningSignals
            grayscale_obs=opts["grayscale"],
            scale_obs=False,  # uint8 frames: the network scales them
        )
        if opts["fire_reset"]:
            env = PressFire(env)
        env = gym.wrappers.FrameStackObservation(env, opts["frame_stack"])
        if not opts["grayscale"]:
            env = _colour_channels_first(env)
        return AtariLearningSignals(
            env, opts["clip_rewards"], opts["terminal_on_life_loss"], opts["frame_skip"]
        )

    env_fn.env_name = env_id
    env_fn.env_kwargs = options  # as given; the defaults are this module's
    env_fn.options = opts
    return env_fn


def _colour_channels_first(env: gym.Env) -> gym.Env:
    """(stack, H, W, 3) colour frames -> (3 * stack, H, W): one image of 3 * stack channels."""
    stack, height, width, colours = env.observation_space.shape
    space = spaces.Box(0, 255, (stack * colours, height, width), dtype=np.uint8)
    return gym.wrappers.TransformObservation(
        env, lambda o: np.ascontiguousarray(o.transpose(0, 3, 1, 2).reshape(space.shape)), space
    )


class PressFire(gym.Wrapper):
    """Press FIRE once at the start of each game and after each lost life (the ``fire_reset`` option).

    In games such as Breakout nothing happens until FIRE serves the ball: an agent that has not yet
    learned to press it (a fresh greedy policy) plays a game that never ends. Some libraries press it
    at every reset; here the game goes on across lost lives (see :class:`LearningSignals`), so FIRE is
    pressed after each lost life as well. The reward of the FIRE step is added to the step's reward.
    With sticky actions (v5 ids) the emulator may repeat the previous action instead, as for any input.
    Off by default: the standard protocol lets the agent learn to press FIRE itself.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        meanings = env.unwrapped.get_action_meanings()
        self.fire = meanings.index("FIRE")
        self.lives = 0

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(self.fire)
        if terminated or truncated:  # a game over in one step: start again, without the press
            obs, info = self.env.reset(**kwargs)
        self.lives = info["lives"]
        return obs, info

    def step(self, action):
        obs, rew, terminated, truncated, info = self.env.step(action)
        if info["lives"] < self.lives and not (terminated or truncated):
            obs, fire_rew, terminated, truncated, info = self.env.step(self.fire)
            rew += fire_rew
        self.lives = info["lives"]
        return obs, rew, terminated, truncated, info


class AtariLearningSignals(gym.Wrapper):
    """Announces the learning rules of the Atari protocol; observations and rewards pass unchanged.

    The rules go into the env's metadata (:data:`METADATA_KEY`), where :class:`LearningSignals` reads
    them. With ``terminal_on_life_loss``, each step's info also says whether a life was lost in it
    (``info["life_lost"]``, from the ALE's ``info["lives"]``). ``render_fps`` becomes the agent's rate
    (60 frames/s / ``frame_skip``), so that a video of the episodes plays at the game's real speed.
    """

    def __init__(self, env: gym.Env, clip_rewards: bool, terminal_on_life_loss: bool, frame_skip: int = 4):
        super().__init__(env)
        self.metadata = dict(
            env.metadata,
            render_fps=60 / frame_skip,
            **{METADATA_KEY: dict(clip_rewards=clip_rewards, terminal_on_life_loss=terminal_on_life_loss)},
        )
        self.terminal_on_life_loss = terminal_on_life_loss
        self.lives = 0

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.lives = info["lives"]
        return obs, info

    def step(self, action):
        obs, rew, terminated, truncated, info = self.env.step(action)
        if self.terminal_on_life_loss:
            lives = info["lives"]
            info["life_lost"] = bool(lives < self.lives)
            self.lives = lives
        return obs, rew, terminated, truncated, info


# How test games are played, as in Mnih et al. 2015 (Methods): epsilon-greedy with epsilon 0.05, so that a
# greedy policy stuck in a loop (a game waiting for FIRE) still ends, and each game cut after 5 minutes
# of play (18,000 emulator frames at 60 per second).
TEST_EPSILON = 0.05
TEST_GAME_FRAMES = 5 * 60 * 60


def evaluation_settings(env_fn: Callable) -> tuple[float, int] | None:
    """``(epsilon, steps)`` for the test games of the Atari env that ``env_fn`` makes, None for any
    other env: :data:`TEST_EPSILON`, and :data:`TEST_GAME_FRAMES` as agent steps of its ``frame_skip``."""
    options = getattr(env_fn, "options", None)  # only factories made by atari_env carry them
    if not isinstance(options, dict) or "frame_skip" not in options:
        return None
    return TEST_EPSILON, TEST_GAME_FRAMES // options["frame_skip"]


class LearningSignals:
    """What an algorithm learns from: the reward and the terminal flag, after the env's rules.

    ``learn_rew, learn_term = signals(rew, terminated, info)`` after every step of a vector env. For
    an Atari env (see :class:`AtariLearningSignals`) rewards become their sign and a lost life
    becomes a terminal: the target does not bootstrap across it and the GAE path closes with value
    0, while the game (and the episode the logger reports) goes on. For any other env both come back
    unchanged (the same arrays).
    """

    def __init__(self, envs: gym.vector.VectorEnv | gym.Env):
        rules = envs.metadata.get(METADATA_KEY) or {}
        self.clip_rewards = bool(rules.get("clip_rewards", False))
        self.terminal_on_life_loss = bool(rules.get("terminal_on_life_loss", False))

    def __call__(self, rew: np.ndarray, terminated: np.ndarray, info: dict) -> tuple[np.ndarray, np.ndarray]:
        if self.clip_rewards:
            rew = np.sign(rew)  # Mnih et al. 2015: one scale of error for every game
        if self.terminal_on_life_loss:
            # Copies whose game went on report the step in info; those that ended (and were reset
            # in the same step) in info["final_info"]. A game that ended is terminal or truncated
            # anyway; a life lost on a truncated step still ends the learning episode.
            lost = _flag(info, "life_lost")
            final = info.get("final_info")
            if final is not None:
                lost = lost | _flag(final, "life_lost")
            terminated = terminated | lost
        return rew, terminated


def _flag(info: dict, key: str) -> np.ndarray | bool:
    """``info[key]`` where the vector env's mask ``info["_" + key]`` says it was given, else False."""
    if key not in info:
        return False
    return np.asarray(info[key], dtype=bool) & np.asarray(info.get("_" + key, True), dtype=bool)
