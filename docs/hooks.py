"""MkDocs hook: redraw the figures in docs/figures/ before a build when they are out of date.

A figure is out of date when its SVG is missing, or older than docs/figures/make_figures.py or than the
data it is drawn from (the learning curves' CSV files). Then the script runs once, in a subprocess with the
same Python, and the build goes on. A failure of the script fails the build with its message.

A few figures take numbers from the code (an algorithm's defaults); they are redrawn when that file changes.
The SVG files are committed, so a checkout builds without redrawing anything.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError

log = logging.getLogger("mkdocs.hooks.figures")

FIGURES = (
    "agent_env_loop",
    "taxonomy",
    "ppo_clip",
    "sac_squash",
    "learning_curves",
    "terminated_truncated",
    "gae_weights",
    "trpo_step",
    "td3_smoothing",
    "offpolicy_schedule",
    "steps_split",
)
# Figures drawn with numbers read from the code (defaults from a signature, the split of an epoch's
# steps): redrawn when that file is newer too.
CODE_INPUTS = {
    "trpo_step": ["spinrl/algos/trpo.py"],
    "td3_smoothing": ["spinrl/algos/td3.py"],
    "offpolicy_schedule": ["spinrl/algos/dqn.py"],
    "steps_split": ["spinrl/envs/vector.py"],
}


def _stale(figures_dir: Path, repo: Path) -> list[str]:
    script = figures_dir / "make_figures.py"
    curves = sorted((repo / "benchmarks" / "results" / "curves").glob("*.csv"))
    stale = []
    for name in FIGURES:
        svg = figures_dir / f"{name}.svg"
        inputs = [script] + (curves if name == "learning_curves" else [])
        inputs += [repo / path for path in CODE_INPUTS.get(name, [])]
        if not svg.exists() or any(path.stat().st_mtime > svg.stat().st_mtime for path in inputs):
            stale.append(name)
    return stale


def on_pre_build(config, **kwargs) -> None:
    docs_dir = Path(config["docs_dir"])
    figures_dir = docs_dir / "figures"
    script = figures_dir / "make_figures.py"
    if not script.is_file():
        return
    stale = _stale(figures_dir, Path(config["config_file_path"]).resolve().parent)
    if not stale:
        return
    log.info("Drawing figures: %s", ", ".join(stale))
    result = subprocess.run(
        [sys.executable, str(script), *stale], capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        raise PluginError(f"docs/figures/make_figures.py failed:\n{result.stdout}{result.stderr}")
