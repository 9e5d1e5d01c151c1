"""spinrl.record.names: every file and folder name of a run folder is written in that one module."""

from __future__ import annotations

import ast
from pathlib import Path

from spinrl.record import names

PACKAGE = Path(__file__).resolve().parents[2] / "spinrl"
# The names whose spelling must not appear anywhere else in the package's code (docstrings aside).
ONE_PLACE = {
    names.PROGRESS_FILE, names.CONFIG_FILE, names.STATUS_FILE, names.LOCK_FILE, names.TRACKING_FILE,
    names.CHECKPOINT_META, names.LEGACY_CHECKPOINT_FILE, names.SNAPSHOTS_DIR, names.SPEC_FILE,
    names.LOG_FILE, names.STUDY_FILE, names.PLOTS_DIR, names.TENSORBOARD_DIR,
}  # fmt: skip


def _strings_in_code(path: Path) -> list[tuple[int, str]]:
    """String constants of a module, leaving out docstrings (and the text parts of f-strings count)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_the_names_module_imports_nothing_of_spinrl():
    source = Path(names.__file__).read_text()
    assert "import spinrl" not in source and "from spinrl" not in source


def test_no_other_module_spells_a_file_name_of_a_run():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == Path(names.__file__).resolve():
            continue
        for line, text in _strings_in_code(path):
            if text in ONE_PLACE or text.endswith((".pt", "/" + names.PROGRESS_FILE)):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {text!r}")
    assert found == [], "file names belong in spinrl/record/names.py"


def test_checkpoint_names_follow_their_pattern():
    for name in (names.checkpoint_file(3), names.checkpoint_file(3, unique=17), names.LEGACY_CHECKPOINT_FILE):
        assert names.CHECKPOINT_FILE_PATTERN.fullmatch(name)
    assert not names.CHECKPOINT_FILE_PATTERN.fullmatch("../checkpoint-3.pt")
    assert names.temporary_name(names.CHECKPOINT_META) == ".checkpoint.json.tmp"


def test_damaged_copies_are_numbered_from_the_second():
    assert [names.damaged_copy_name("progress.txt", n) for n in (1, 2, 3)] == [
        "progress.txt.damaged",
        "progress.txt.damaged-2",
        "progress.txt.damaged-3",
    ]
