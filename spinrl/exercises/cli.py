"""``spinrl exercise``: list the exercises, copy a template, and check a solution.

    spinrl exercise list
    spinrl exercise init 1.1 my_dir/          # writes my_dir/ex1_1.py, never overwrites
    spinrl exercise 1.1 --file my_dir/ex1_1.py
    spinrl exercise 1.1 --solution            # the reference solution, through the same checker

Exit status: 0 when the check passes, 1 when it fails (with a hint), 2 for a usage error such as an
unknown exercise id or a missing file (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from spinrl.common.errors import UserError
from spinrl.exercises.checking import CheckFailed, load_module, time_limit
from spinrl.exercises.registry import EXERCISES, Exercise, get_exercise

USAGE = "spinrl exercise {list | init ID [DIR] | ID --file PATH | ID --solution}"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake becomes a UserError (one line, exit 2) instead of usage + exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{message} (usage: {USAGE})")


def list_exercises() -> int:
    table = Table(title="spinrl exercises")
    table.add_column("id", style="bold")
    table.add_column("exercise")
    table.add_column("you write")
    for ex in EXERCISES.values():
        table.add_row(ex.id, ex.title, ex.what_you_write)
    Console().print(table)
    print(
        "Start one with:  spinrl exercise init 1.1 my_dir/   then   spinrl exercise 1.1 --file my_dir/ex1_1.py"
    )
    return 0


def init_exercise(ex: Exercise, directory: Path) -> int:
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory} is a file; give a directory for the exercise file to go into")
    target = directory / f"{ex.stem}.py"
    if target.exists():
        raise UserError(f"{target} already exists; not overwriting it (delete it or pick another directory)")
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ex.template_path, target)
    print(f"Wrote {target}. {ex.first_step}, then run:  spinrl exercise {ex.id} --file {target}")
    return 0


def check_exercise(ex: Exercise, path: Path, is_solution: bool = False) -> int:
    def report(step: str) -> None:
        print(f"  ok  {step}")

    try:
        with time_limit():  # an endless loop in the reader's code is a failure, not a hang
            module = load_module(path)  # a missing file is a UserError, raised before anything is printed
            who = "the reference solution" if is_solution else str(path)
            print(f"Exercise {ex.id} ({ex.title}): checking {who}")
            ex.checker()(module, report)
    except CheckFailed as failure:
        print(f"  FAIL  {failure}")
        print(f"Exercise {ex.id} not passed yet. The written solution is in {ex.docs_page}.")
        return 1
    print(f"Exercise {ex.id} passed.")
    return 0


def _run(argv: list[str]) -> int:
    if not argv:
        raise UserError(f"missing command (usage: {USAGE}); `spinrl exercise list` shows the exercises")
    if argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv[0] == "list":
        _Parser(prog="spinrl exercise list").parse_args(argv[1:])
        return list_exercises()
    if argv[0] == "init":
        parser = _Parser(prog="spinrl exercise init")
        parser.add_argument("id")
        parser.add_argument("directory", nargs="?", default=".", type=Path)
        args = parser.parse_args(argv[1:])
        return init_exercise(get_exercise(args.id), args.directory)

    ex = get_exercise(argv[0])  # an unknown id is the first thing to report
    parser = _Parser(prog=f"spinrl exercise {ex.id}")
    parser.add_argument("id")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", type=Path, help="your solution file, made with `spinrl exercise init`")
    source.add_argument("--solution", action="store_true", help="check the reference solution instead")
    args = parser.parse_args(argv)
    if args.solution:
        return check_exercise(ex, ex.solution_path, is_solution=True)
    return check_exercise(ex, args.file)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``spinrl exercise``; returns the exit status instead of exiting."""
    try:
        return _run(sys.argv[1:] if argv is None else list(argv))
    except UserError as err:
        print(f"spinrl: error: {err}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # argparse's --help
        return exit_.code if isinstance(exit_.code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
