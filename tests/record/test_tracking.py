"""--track: Weights & Biases in offline mode (no network here), resumed runs, and the one-line refusals."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from spinrl.cli import main as cli_main
from spinrl.common.errors import UserError
from spinrl.record.tracking import TRACKING_FILE, check_ready

TINY = dict(steps_per_epoch=200, ac_kwargs=dict(hidden_sizes=(8,)), train_pi_iters=5, train_v_iters=5)


@pytest.fixture
def offline(monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_PROJECT", "spinrl-tests")


def offline_runs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "wandb").glob("offline-run-*"))


def test_track_offline_writes_the_run_and_a_resumed_run_continues_it(tmp_path, offline):
    from spinrl.algos.ppo import ppo

    run_dir = tmp_path / "cp" / "cp_s0"
    logger_kwargs = dict(output_dir=str(run_dir), exp_name="cp", track=True)
    ppo("CartPole-v1", epochs=2, logger_kwargs=logger_kwargs, **TINY)
    import wandb

    wandb.teardown()  # W&B's service process writes the offline file: wait until it has ended

    record = json.loads((run_dir / TRACKING_FILE).read_text())
    assert record["project"] == "spinrl-tests" and record["group"] == "cp"
    first = offline_runs(run_dir)
    assert len(first) == 1 and first[0].name.endswith("-" + record["wandb_id"])
    data = next(first[0].glob("run-*.wandb")).read_bytes()
    for text in (b"AverageEpRet", b"LossPi", b"clip_ratio", b"cp_s0"):  # a column, the config, the run name
        assert text in data
    assert (run_dir / "tb").is_dir()  # TensorBoard as before

    ppo("CartPole-v1", epochs=3, resume=True, logger_kwargs=logger_kwargs, **TINY)
    runs = offline_runs(run_dir)
    assert len(runs) == 2
    # The same W&B run, continued. W&B names a run's folder by the second it started, and adds "-1" when
    # the resumed run starts within the same second as the first.
    same_run = re.compile(rf"offline-run-\d{{8}}_\d{{6}}-{record['wandb_id']}(-\d+)?")
    assert all(same_run.fullmatch(r.name) for r in runs), [r.name for r in runs]
    assert json.loads((run_dir / TRACKING_FILE).read_text()) == record


def test_a_missing_login_is_one_line_naming_the_variable(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    for var in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "netrc").write_text("")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    with pytest.raises(UserError, match="set WANDB_API_KEY .* or set WANDB_MODE=offline"):
        cli_main(["ppo", "--env", "CartPole-v1", "--track", "--data_dir", str(tmp_path)])
    assert not list(tmp_path.glob("cmd_ppo*"))  # refused before any run started
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    check_ready()  # a key is enough to go on


def test_a_missing_wandb_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb now raises ImportError
    with pytest.raises(UserError, match=r"pip install 'spinrl\[track\]'"):
        check_ready()
