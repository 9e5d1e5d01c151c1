"""spinrl.results.video: a path refused before anything is loaded, and frames streamed into the file."""

from __future__ import annotations

import gymnasium as gym
import pytest

from spinrl.common.errors import UserError
from spinrl.results.video import prepare_video, record_episodes

pytest.importorskip("imageio_ffmpeg")


def test_paths_that_cannot_take_a_video_are_refused(tmp_path):
    (tmp_path / "there.mp4").write_text("")
    for path, why in (
        (tmp_path / "there.mp4", "already exists"),
        (tmp_path / "clip.avi", "use a .mp4, .webm or .gif"),
        (tmp_path / "missing" / "clip.mp4", "does not exist"),
    ):
        with pytest.raises(UserError, match=why):
            prepare_video(str(path))
    assert prepare_video(str(tmp_path / "clip.gif")) == tmp_path / "clip.gif"


def test_episodes_are_recorded_into_one_file_given_its_name_when_complete(tmp_path):
    out = tmp_path / "clip.gif"
    env = gym.make("CartPole-v1", render_mode="rgb_array")

    def play(stream):
        stream.reset(seed=0)
        for _ in range(3):
            stream.step(0)
        assert list(tmp_path.iterdir()) != [out]  # still under its temporary name
        return stream.frames

    assert record_episodes(env, out, play) == 4  # the reset's frame and one per step
    assert [p.name for p in tmp_path.iterdir()] == ["clip.gif"] and out.stat().st_size > 0


def test_an_env_that_renders_nothing_leaves_no_file(tmp_path):
    env = gym.make("CartPole-v1")  # no render_mode: render() gives None
    with pytest.raises(UserError, match="no video frames"):
        record_episodes(env, tmp_path / "clip.mp4", lambda stream: stream.reset(seed=0))
    assert list(tmp_path.iterdir()) == []
