"""spinrl.tune.storage: the study in its storage, created once and joined with --resume."""

from __future__ import annotations

import pytest

from spinrl.common.errors import UserError

optuna = pytest.importorskip("optuna")

from spinrl.tune.storage import finished_trials, open_study, storage_url  # noqa: E402


def _settings(tmp_path, **overrides):
    s = dict(
        name="s", study_dir=str(tmp_path / "s"), storage=None, resume=False, sampler="random", sampler_seed=0,
        pruner="none", startup_trials=1, warmup_epochs=0, algo="ppo", fixed={"epochs": 2}, space={},
        trial_seeds=1, last_epochs=1, num_cpu=1,
    )  # fmt: skip
    return dict(s, **overrides)


def test_a_study_is_created_once_and_joined_with_resume(tmp_path):
    s = _settings(tmp_path)
    assert storage_url(s) == f"sqlite:///{tmp_path / 's' / 'study.db'}"
    study = open_study(s)
    assert finished_trials(study) == 0 and study.user_attrs["study_dir"] == s["study_dir"]
    with pytest.raises(UserError, match="exists already"):
        open_study(s)
    open_study(dict(s, resume=True))
    with pytest.raises(UserError, match="other settings"):
        open_study(dict(s, resume=True, trial_seeds=2))
