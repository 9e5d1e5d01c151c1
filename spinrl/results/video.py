"""Recording a policy's episodes into a video file, headless: MP4, WebM or GIF, chosen by the extension.

:func:`prepare_video` refuses a path that cannot be written before anything is loaded or rendered;
:func:`record_episodes` plays episodes through a :class:`VideoStream`, which sends each frame to ffmpeg as
soon as it is rendered, so memory holds one frame whatever the length (a full Atari game is 27,000
frames, 2.7 GB if kept). The file is written under a temporary name beside its path and given its name
only when complete, never replacing a file. ``spinrl test_policy --video`` uses them
(:func:`spinrl.results.policy.record_video`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from spinrl.common.errors import UserError

# The ffmpeg encoder and output pixel format for each video file type.
VIDEO_CODECS = {".mp4": ("libx264", "yuv420p"), ".webm": ("libvpx-vp9", "yuv420p"), ".gif": ("gif", "rgb8")}


def prepare_video(out_path: str) -> Path:
    """Refuse, in one line, a video path that exists, has another extension or lies in a folder that is
    missing or not writable; set up headless rendering. Called before a policy is loaded or a frame
    rendered, rather than failing as ffmpeg's broken pipe."""
    out = Path(out_path)
    if out.exists():
        raise UserError(f"{out_path} already exists; choose another --video path (nothing is overwritten)")
    if out.suffix.lower() not in VIDEO_CODECS:
        raise UserError(f"--video {out_path!r}: use a .mp4, .webm or .gif file name")
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
        import imageio_ffmpeg  # noqa: F401  (comes with moviepy)
    except ImportError:
        raise UserError("--video needs moviepy: pip install 'spinrl[video]'") from None
    return out


def record_episodes(env: gym.Env, out: Path, play: Callable[[gym.Env], Any]) -> Any:
    """Call ``play`` on ``env`` wrapped in a :class:`VideoStream` writing to ``out``; return what it returns.

    The env (made with ``render_mode="rgb_array"``) is closed at the end. Nothing rendered, or a file that
    appeared at ``out`` meanwhile, is one line, and no file is left behind.
    """
    partial = out.with_name(f".{out.stem}.partial{os.getpid()}{out.suffix}")
    stream = VideoStream(env, partial)
    try:
        results = play(stream)
        stream.close()
        if stream.frames == 0:
            raise UserError(
                "no video frames were recorded: does this environment support render_mode='rgb_array'?"
            )
        _publish(partial, out)
    except FileExistsError:
        raise UserError(
            f"{out} appeared while recording; the video was not written (nothing is overwritten)"
        ) from None
    finally:
        stream.close()
        partial.unlink(missing_ok=True)
    return results


def _publish(partial: Path, out: Path) -> None:
    """Give the finished file its name; FileExistsError if ``out`` appeared meanwhile (never replaced)."""
    try:
        os.link(partial, out)  # unlike a rename, fails when out exists
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links
        if out.exists():
            raise FileExistsError(out) from None
        os.rename(partial, out)


class VideoStream(gym.Wrapper):
    """Renders the env after every reset and step and sends the frame straight to ffmpeg.

    The video plays at the env's ``render_fps`` (30 when it has none). Frames with an odd width or
    height get one black column or row, as the common codecs need even sizes.
    """

    def __init__(self, env: gym.Env, path: Path):
        super().__init__(env)
        self.path, self.frames, self._writer, self._closed = path, 0, None, False

    def reset(self, **kwargs):
        result = self.env.reset(**kwargs)
        self._record()
        return result

    def step(self, action):
        result = self.env.step(action)
        self._record()
        return result

    def _record(self) -> None:
        frame = self.env.render()
        if frame is None:
            return
        frame = np.asarray(frame, dtype=np.uint8)
        pad = ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0))
        frame = np.pad(frame, pad) if any(p[1] for p in pad) else frame
        if self._writer is None:
            import imageio_ffmpeg

            codec, pixels = VIDEO_CODECS[self.path.suffix.lower()]
            height, width = frame.shape[:2]
            fps = float(self.env.metadata.get("render_fps") or 30)
            self._writer = imageio_ffmpeg.write_frames(
                str(self.path), (width, height), fps=fps, codec=codec, pix_fmt_out=pixels,
                macro_block_size=1, quality=None if codec == "gif" else 5,
            )  # fmt: skip
            self._writer.send(None)  # start ffmpeg
        self._writer.send(np.ascontiguousarray(frame))
        self.frames += 1

    def close(self) -> None:
        """Finish the file (ffmpeg writes its index) and close the env; safe to call twice."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        if not self._closed:
            self._closed = True
            self.env.close()
