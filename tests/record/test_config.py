"""spinrl.record.config: what config.json records, and when a resume may write it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spinrl.record.config import ConfigFile, ResumeMismatchError, convert_json, resume_changes


def test_convert_json_makes_values_json_safe():
    config = convert_json({"fn": np.mean, "cls": ConfigFile, "x": np.float32(0.5), "t": (1, [2])})
    assert config["cls"] == "spinrl.record.config.ConfigFile"
    assert config["x"] == 0.5 and config["t"] == [1, [2]]
    json.dumps(config)


def test_a_new_run_writes_its_config_at_once(tmp_path):
    written = []
    config = ConfigFile(tmp_path, resume=False, exp_name="e", preset="tuned", on_write=written.append)
    config.save({"lr": 0.1, "epochs": 3})
    on_disk = json.loads((tmp_path / "config.json").read_text())
    assert on_disk == {"lr": 0.1, "epochs": 3, "exp_name": "e", "preset": "tuned"} == config.settings
    assert written == [on_disk]
    assert (tmp_path / "config.json").read_text().startswith('{\n    "epochs":\t3,')


def test_a_resume_writes_only_once_accepted_and_refuses_another_run(tmp_path):
    ConfigFile(tmp_path, resume=False).save({"lr": 0.1, "epochs": 3})
    before = (tmp_path / "config.json").read_text()
    resumed = ConfigFile(tmp_path, resume=True)
    resumed.save({"lr": 0.1, "epochs": 5})
    assert (tmp_path / "config.json").read_text() == before  # held back until commit
    resumed.commit()
    assert json.loads((tmp_path / "config.json").read_text())["epochs"] == 5
    with pytest.raises(ResumeMismatchError, match="would change lr from 0.1 to 0.2"):
        ConfigFile(tmp_path, resume=True).save({"lr": 0.2, "epochs": 5})


def test_a_checkpoints_settings_stand_in_for_a_lost_config(tmp_path):
    resumed = ConfigFile(tmp_path, resume=True)
    resumed.save({"lr": 0.1, "epochs": 5})  # no config.json: nothing to compare yet
    resumed.check_checkpoint({"lr": 0.1, "epochs": 3, "seed": 0})
    resumed.commit()
    assert json.loads((tmp_path / "config.json").read_text()) == {"lr": 0.1, "epochs": 5, "seed": 0}
    with pytest.raises(ResumeMismatchError, match="lr from 0.3 to 0.1"):
        resumed.check_checkpoint({"lr": 0.3, "epochs": 5})


def test_resume_changes_lists_what_would_change():
    assert resume_changes({"algo": "ppo", "lr": 1, "epochs": 5}, {"algo": "ppo", "lr": 2, "epochs": 4}) == [
        "lr from 1 to 2",
        "epochs from 5 to 4 (a resumed run may only get more epochs)",
    ]
