"""``--track``: each run's config, every epoch's row and so its learning curve, sent to Weights & Biases.

The logger (:class:`spinrl.record.logger.Logger`, with ``track=True`` in ``logger_kwargs``) opens a
:class:`Tracker` next to its TensorBoard files; this module is the only one that imports ``wandb`` (the
``track`` extra). Names come from the run's own:

- project: ``$WANDB_PROJECT``, else ``spinrl``;
- group: ``$WANDB_RUN_GROUP``, else the experiment name, which the seeds of one grid variant share (W&B
  draws a group as the mean of its runs); a ``spinrl tune`` trial's seeds are one group too;
- run name: the run folder's name (``cp_hid32_s0``); tags: the algorithm and the environment.

The W&B run id is kept in the run folder (``tracking.json``), so ``--resume`` continues the same tracked
run. Epochs are plotted against the ``Epoch`` column rather than W&B's own step counter, which must only
grow: a run resumed from a checkpoint logs the epochs after it again, and they land on their epoch.

Without a network: ``WANDB_MODE=offline`` writes everything under ``<run>/wandb/`` for ``wandb sync``
later, needing no account; an online run that cannot reach W&B falls back to offline with one warning.
"""

from __future__ import annotations

import json
import netrc
import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from spinrl.common.errors import UserError
from spinrl.record.console import warn
from spinrl.record.names import TRACKING_FILE, temporary_name

DEFAULT_PROJECT = "spinrl"
# The modes in which wandb writes only to disk, and so needs no login.
_LOCAL_MODES = ("offline", "disabled", "dryrun")


def check_ready() -> None:
    """Refuse ``--track`` in one line when ``wandb`` is missing or nobody is logged in (before any run starts)."""
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise UserError("--track needs the wandb package: pip install 'spinrl[track]'") from None
    if os.environ.get("WANDB_MODE", "").lower() in _LOCAL_MODES or _logged_in():
        return
    raise UserError(
        "--track needs a Weights & Biases login: set WANDB_API_KEY (or run `wandb login`), "
        "or set WANDB_MODE=offline to track on disk and `wandb sync` later"
    )


def _logged_in() -> bool:
    """An API key in the environment, or in the netrc file that ``wandb login`` writes."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


class Tracker:
    """One run's W&B run. Opened by the logger of rank 0; :meth:`log` once per epoch row."""

    def __init__(self, run_dir: str | os.PathLike, exp_name: str | None, resume: bool):
        check_ready()
        import wandb

        run_dir = Path(run_dir)
        record = _read_record(run_dir) if resume else None
        run_id = record["wandb_id"] if record else uuid.uuid4().hex[:12]
        init = dict(
            project=os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT,
            group=os.environ.get("WANDB_RUN_GROUP") or exp_name or run_dir.parent.name,
            name=run_dir.name,
            id=run_id,
            resume="allow",
            dir=str(run_dir),
            reinit="create_new",  # a grid runs its variants one after another in one process
            settings=wandb.Settings(console="off", silent=True),
        )
        try:
            self.run = wandb.init(**init)
        except Exception as e:  # wandb raises several kinds when it cannot reach its server
            warn(
                f"W&B cannot be reached ({str(e).splitlines()[0] if str(e) else type(e).__name__}): "
                f"tracking offline; send it later with `wandb sync {run_dir / 'wandb'}`"
            )
            self.run = wandb.init(**init, mode="offline")
        self.run.define_metric("Epoch")
        self.run.define_metric("*", step_metric="Epoch")
        if record is None:
            text = json.dumps(
                {"wandb_id": run_id, "project": init["project"], "group": init["group"]}, indent=2
            )
            tmp = run_dir / temporary_name(TRACKING_FILE)
            tmp.write_text(text)
            os.replace(tmp, run_dir / TRACKING_FILE)  # never half a file, even after a kill

    def set_config(self, config: dict[str, Any]) -> None:
        """The run's settings, as config.json has them."""
        self.run.config.update(config, allow_val_change=True)
        tags = [str(config[k]) for k in ("algo", "env_fn") if isinstance(config.get(k), str)]
        if tags:
            self.run.tags = tuple(tags)

    def log(self, row: dict[str, Any]) -> None:
        """One epoch's columns (the numeric ones)."""
        numbers = {k: float(v) for k, v in row.items() if _is_number(v)}
        if numbers:
            self.run.log(numbers)

    def finish(self) -> None:
        self.run.finish()


def _is_number(v: Any) -> bool:
    try:
        return not isinstance(v, bool | str) and float(v) == float(v)
    except (TypeError, ValueError):
        return False


def _read_record(run_dir: Path) -> dict[str, Any] | None:
    """The run's tracking.json, when it has a usable one."""
    try:
        record = json.loads((run_dir / TRACKING_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("wandb_id"), str) else None
