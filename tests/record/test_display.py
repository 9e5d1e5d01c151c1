"""spinrl.record.display: the epoch table, and the live bar only on a terminal."""

from __future__ import annotations

from spinrl.record.display import LiveDisplay


def test_the_table_is_printed_plainly_when_not_on_a_terminal(capsys):
    display = LiveDisplay("run")
    display.update("running", 0, 3)  # stdout is captured, not a terminal: no bar
    display.show_row({"Epoch": 0, "Loss": 0.5})
    out = capsys.readouterr().out
    assert "|           Epoch |             0 |" in out and "Loss" in out
    display.stop()


def test_quiet_shows_nothing(capsys):
    display = LiveDisplay("run", quiet=True)
    display.update("running", 0, 3)
    display.show_row({"Epoch": 0})
    assert capsys.readouterr().out == ""


def test_the_bar_follows_the_status_on_a_terminal(monkeypatch):
    monkeypatch.setattr("spinrl.record.display.live_terminal", lambda: True)
    display = LiveDisplay("run")
    display.update("running", 1, 4)
    assert display._progress is not None
    display.update("running", 2, 4)
    display.update("finished", 4, 4)
    assert display._progress is None
