"""The documentation site builds with --strict, its runnable code blocks run, and it covers what exists.

A code block is runnable when the line before its opening fence is ``<!-- runnable -->``; it must then run
on its own (fresh namespace) in well under a second.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spinrl.exercises.registry import EXERCISES

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RUNNABLE = re.compile(r"<!-- runnable -->\s*\n```python[^\n]*\n(.*?)\n```", re.DOTALL)


def mkdocs_build(config: Path, site_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site_dir)],
        cwd=config.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def runnable_blocks() -> list[tuple[str, int, str]]:
    """(page, line, code) for every runnable block in the docs."""
    blocks = []
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text()
        for match in RUNNABLE.finditer(text):
            line = text[: match.start()].count("\n") + 1
            blocks.append((str(page.relative_to(ROOT)), line, match.group(1)))
    return blocks


def test_strict_build_succeeds(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[docs]')")
    result = mkdocs_build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    site = tmp_path / "site"
    # Math went through arithmatex, code files were included by snippets, the API reference was generated.
    assert "arithmatex" in (site / "intro" / "key-concepts" / "index.html").read_text()
    assert "reward_to_go" in (site / "intro" / "policy-optimization" / "index.html").read_text()
    assert 'id="spinrl.exercises.cli.main"' in (site / "reference" / "exercises" / "index.html").read_text()
    # Display math left as raw "$$" text means arithmatex did not see it (e.g. no blank line around it).
    for page in site.glob("*/*/index.html"):
        text = re.sub(r"<(code|script)\b.*?</\1>", "", page.read_text(), flags=re.DOTALL)
        assert "$$" not in text, f"unrendered display math in {page.relative_to(site)}"


def test_broken_link_fails_the_build(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[docs]')")
    copy = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("docs", "examples", "spinrl"):
        shutil.copytree(ROOT / name, copy / name, ignore=ignore)
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    with (copy / "docs" / "index.md").open("a") as f:
        f.write("\nSee [the missing page](no-such-page.md).\n")
    result = mkdocs_build(copy / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-page.md" in result.stdout + result.stderr


def test_there_are_runnable_blocks() -> None:
    pages = {page for page, _, _ in runnable_blocks()}
    assert len(pages) >= 4, pages


@pytest.mark.parametrize(("page", "line", "code"), runnable_blocks(), ids=lambda v: str(v)[:40])
def test_runnable_block_runs(page: str, line: int, code: str, capsys: pytest.CaptureFixture[str]) -> None:
    compiled = compile(code, f"{page}:{line}", "exec")
    exec(compiled, {"__name__": "__docs__"})


def test_reference_pages_name_importable_objects() -> None:
    """Every ``::: dotted.path`` names a module, or an attribute of one, that imports cleanly."""
    targets = []
    for page in sorted((DOCS / "reference").glob("*.md")):
        targets += re.findall(r"^::: ([\w.]+)", page.read_text(), flags=re.MULTILINE)
    assert targets, "the API reference pages have no ::: directives"
    for target in targets:
        module_name, attr = target, None
        while True:
            try:
                module = importlib.import_module(module_name)
                break
            except ModuleNotFoundError:
                module_name, _, attr_part = module_name.rpartition(".")
                assert module_name, f"{target}: no importable module"
                attr = attr_part if attr is None else f"{attr_part}.{attr}"
        obj = module
        for part in (attr or "").split(".") if attr else []:
            obj = getattr(obj, part)


def test_every_page_is_in_the_nav() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    for page in DOCS.rglob("*.md"):
        rel = page.relative_to(DOCS).as_posix()
        assert rel in config or rel == "benchmarks.md", f"{rel} is not in the nav of mkdocs.yml"


def test_every_exercise_has_a_solution_page() -> None:
    for ex in EXERCISES.values():
        page = ROOT / ex.docs_page
        assert page.is_file(), ex.docs_page
        assert f"spinrl/exercises/solutions/{ex.stem}.py" in page.read_text()
