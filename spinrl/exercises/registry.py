"""The list of exercises: where each one's template, solution, checker and solution page live."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from spinrl.common.errors import UserError
from spinrl.exercises.checking import Report

# Files ship inside the package (templates/ and solutions/ are packages), so the same paths work for an
# editable install, a wheel, and a source checkout.
PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
SOLUTIONS_DIR = PACKAGE_DIR / "solutions"


@dataclass(frozen=True)
class Exercise:
    id: str  # "1.1": problem set 1, exercise 1
    title: str
    what_you_write: str
    # What to do with the copied template, as `spinrl exercise init` says it.
    first_step: str = "Fill in the TODOs"

    @property
    def stem(self) -> str:
        """File and module name: "1.1" -> "ex1_1"."""
        return "ex" + self.id.replace(".", "_")

    @property
    def template_path(self) -> Path:
        return TEMPLATES_DIR / f"{self.stem}.py"

    @property
    def solution_path(self) -> Path:
        return SOLUTIONS_DIR / f"{self.stem}.py"

    @property
    def docs_page(self) -> str:
        return f"docs/exercises/{self.stem}.md"

    def checker(self) -> Callable[[ModuleType, Report], None]:
        return importlib.import_module(f"spinrl.exercises.checks.{self.stem}").check


EXERCISES: dict[str, Exercise] = {
    ex.id: ex
    for ex in [
        Exercise("1.1", "Diagonal Gaussian log-likelihood", "gaussian_likelihood(x, mu, log_std)"),
        Exercise("1.2", "PPO actor-critic networks", "mlp, categorical and Gaussian actors, critic"),
        Exercise("1.3", "Reward-to-go and GAE-λ", "discount_cumsum, finish_path (with bootstrapping)"),
        Exercise("1.4", "The policy-gradient loss", "pg_loss(logp, adv)"),
        Exercise("2.1", "The TD3 target", "td3_target(...): clipped double-Q, smoothing, masking"),
        Exercise(
            "2.2",
            "Find the bugs in a DDPG update",
            "fix compute_target and polyak_update",
            first_step="The file runs as it is and has no TODOs: find and fix its three bugs",
        ),
    ]
}


def get_exercise(exercise_id: str) -> Exercise:
    """The exercise with this id; a UserError that lists the valid ids otherwise."""
    if exercise_id in EXERCISES:
        return EXERCISES[exercise_id]
    valid = ", ".join(EXERCISES)
    close = difflib.get_close_matches(exercise_id, list(EXERCISES), n=1)
    suggestion = f"did you mean {close[0]}? " if close else ""
    raise UserError(f"unknown exercise {exercise_id!r}: {suggestion}valid ids are {valid}")
