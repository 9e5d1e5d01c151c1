"""spinrl.launch.plan: a variant checked, and held against its run folder, before anything is launched."""

from __future__ import annotations

import pytest

from spinrl.algos.ppo import ppo
from spinrl.common.errors import UserError
from spinrl.launch.plan import PlannedRun, algorithm_kwargs, check_variant, planned_config, skip_on_resume
from spinrl.record.config import ResumeMismatchError
from spinrl.record.folder import RunExistsError
from spinrl.record.logger import EpochLogger


def _planned(tmp_path, **kwargs) -> PlannedRun:
    kwargs = algorithm_kwargs(ppo, dict(kwargs, seed=0, logger_kwargs={"output_dir": str(tmp_path / "r")}))
    return PlannedRun("exp", ppo, kwargs, str(tmp_path / "r"))


def test_spinning_up_env_name_becomes_env_fn(tmp_path):
    r = _planned(tmp_path, env_name="CartPole-v1")
    assert r.kwargs["env_fn"] == "CartPole-v1" and "env_name" not in r.kwargs
    assert r.label == "exp seed 0" and r.log_path.endswith("output.log")


def test_planned_config_is_what_the_algorithm_will_record(tmp_path):
    config = planned_config(_planned(tmp_path, env_fn="CartPole-v1", epochs=3))
    assert config["algo"] == "ppo" and config["epochs"] == 3 and config["gamma"] == 0.99


def test_a_bad_value_names_the_variant(tmp_path):
    with pytest.raises(UserError, match="variant exp seed 0: .*gamma"):
        check_variant(_planned(tmp_path, env_fn="CartPole-v1", gamma=2.0), set())


def test_the_resume_decision(tmp_path):
    r = _planned(tmp_path, env_fn="CartPole-v1", epochs=2)
    assert skip_on_resume(r) is False  # nothing there yet
    logger = EpochLogger(output_dir=str(tmp_path / "r"), quiet=True, tensorboard=False)
    logger.save_config(planned_config(r))
    logger.finish(2)
    with pytest.raises(RunExistsError):
        skip_on_resume(r)
    assert skip_on_resume(_planned(tmp_path, env_fn="CartPole-v1", epochs=2, resume=True)) is True
    assert (
        skip_on_resume(_planned(tmp_path, env_fn="CartPole-v1", epochs=3, resume=True)) is False
    )  # extended
    with pytest.raises(ResumeMismatchError):
        skip_on_resume(_planned(tmp_path, env_fn="CartPole-v1", epochs=2, gamma=0.9, resume=True))
