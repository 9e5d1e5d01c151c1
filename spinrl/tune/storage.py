"""The Optuna study of ``spinrl tune`` in its storage: created, joined by other processes, and freed of
the trials of processes that died.

The study lives in ``study.db`` (SQLite) in its folder, unless ``--storage URL`` names another that
several machines share. It records the settings of the search (:func:`recorded_settings`), so every
process that joins it runs the same search. A killed process leaves its trial "running"; the next process
on the same machine sees that the process is gone and records the trial as failed
(:func:`fail_orphaned_trials`), and processes elsewhere do so once its heartbeat has stopped for
:data:`GRACE_SECONDS`.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from spinrl.common.errors import UserError
from spinrl.record.names import STUDY_FILE
from spinrl.tune.space import require_optuna

# A trial's process writes a heartbeat this often; a trial silent for GRACE_SECONDS is stale (failed).
HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120


def recorded_settings(s: dict[str, Any]) -> dict[str, Any]:
    """What a study records of its command line, so every process that joins it runs the same search."""
    from spinrl.launch.spec import encode_value

    return {
        "algo": s["algo"],
        "fixed": encode_value(s["fixed"]),
        "space": {k: str(d) for k, d in s["space"].items()},
        "trial_seeds": s["trial_seeds"],
        "last_epochs": s["last_epochs"],
        "seed": s["fixed"].get("seed", 0),
        "num_cpu": s["num_cpu"],
    }


def storage_url(s: dict[str, Any]) -> str:
    return s["storage"] or f"sqlite:///{os.path.join(s['study_dir'], STUDY_FILE)}"


def open_study(s: dict[str, Any]) -> Any:
    """Create the study (refusing one that exists, unless ``--resume``) or load it with ``--resume``."""
    import warnings

    optuna = require_optuna()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # trials are reported here, in one line each
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    url = storage_url(s)
    if url.startswith("sqlite:///"):
        Path(s["study_dir"]).mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(
        url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS
    )
    names = {st.study_name for st in optuna.get_all_study_summaries(storage)}
    settings = recorded_settings(s)
    if s["name"] in names:
        if not s["resume"]:
            raise UserError(
                f"study {s['name']!r} exists already ({url}): add --resume to continue it or join it, "
                "or give another --exp_name"
            )
        study = optuna.load_study(
            study_name=s["name"], storage=storage, sampler=_sampler(s), pruner=_pruner(s)
        )
        _check_same_search(study, settings)
        return study
    try:
        study = optuna.create_study(
            study_name=s["name"],
            storage=storage,
            direction="maximize",
            sampler=_sampler(s),
            pruner=_pruner(s),
        )
    except optuna.exceptions.DuplicatedStudyError:
        raise UserError(
            f"study {s['name']!r} was just created by another process: join it with --resume"
        ) from None
    study.set_user_attr("settings", settings)
    study.set_user_attr("study_dir", s["study_dir"])
    return study


def _check_same_search(study: Any, settings: dict[str, Any]) -> None:
    recorded = study.user_attrs.get("settings")
    if recorded is None:
        return
    recorded = json.loads(json.dumps(recorded))
    given = json.loads(json.dumps(settings))
    changed = [k for k in given if recorded.get(k) != given[k]]
    if changed:
        diffs = "; ".join(f"{k}: {recorded.get(k)} in the study, {given[k]} now" for k in changed)
        raise UserError(f"--resume with other settings than study {study.study_name!r}: {diffs}")


def _sampler(s: dict[str, Any]) -> Any:
    import optuna

    if s["sampler"] == "random":
        return optuna.samplers.RandomSampler(seed=s["sampler_seed"])
    return optuna.samplers.TPESampler(n_startup_trials=s["startup_trials"], seed=s["sampler_seed"])


def _pruner(s: dict[str, Any]) -> Any:
    import optuna

    if s["pruner"] == "none":
        return optuna.pruners.NopPruner()
    if s["pruner"] == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, s["warmup_epochs"]))
    return optuna.pruners.MedianPruner(
        n_startup_trials=s["startup_trials"], n_warmup_steps=s["warmup_epochs"]
    )


def finished_trials(study: Any) -> int:
    """Trials that count towards ``--n_trials``: completed or pruned (failed ones never do)."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def fail_orphaned_trials(study: Any) -> list[int]:
    """Record as failed the running trials whose search process, on this machine, is gone.

    A process killed outright (SIGKILL, a lost terminal) cannot mark its trial; its record names the
    process, so a later process here sees at once that it is dead. (Elsewhere, Optuna's heartbeat
    does the same after :data:`GRACE_SECONDS`.)
    """
    from optuna.trial import TrialState

    from spinrl.record.lock import process_alive

    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.user_attrs.get("process") or {}
        if owner.get("hostname") != socket.gethostname() or not isinstance(owner.get("pid"), int):
            continue
        if not process_alive(owner["pid"], owner.get("pid_start")):
            study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
            failed.append(t.number)
    return failed
