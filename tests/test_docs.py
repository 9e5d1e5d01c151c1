"""The documentation site builds with --strict, its runnable code blocks run, its commands parse, and it
covers what exists.

A code block is runnable when the line before its opening fence is ``<!-- runnable -->``; it must then run
on its own (fresh namespace) in well under a second.

Every ``spinrl ...`` command line in README.md and docs/ (in code blocks and inline code) goes through the
real command line up to the point where it would start working: an algorithm's through ``spinrl.cli`` until
the grid would launch, another command's until its argparse parser would read the arguments. The pages are
read when the tests run, so a command added to any page is checked. A block preceded by
``<!-- commands not checked -->`` is left out (for a deliberately wrong command).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import spinrl.common.mpi
import spinrl.launch.grid
import spinrl.launch.zygote
import spinrl.tune.show
import spinrl.tune.study
from spinrl import cli
from spinrl.common.errors import UserError
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
    # The algorithms' reference shows the arguments they share (spinrl/algos/arguments.py, added by
    # docs/shared_arguments.py), though their source docstrings leave them out: lam in VPG, TRPO and PPO,
    # compile in the four off-policy algorithms.
    algorithms = " ".join((site / "reference" / "algorithms" / "index.html").read_text().split())
    assert algorithms.count("it trades bias against variance in the advantages") == 3
    assert algorithms.count("Meant for a GPU and long runs") == 4
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


# ----- every documented command line names only what its parser accepts -------------------------------


def pages_with_commands() -> list[Path]:
    """README.md, every page of docs/, and the markdown files those pages include (``--8<-- "x.md"``,
    such as the benchmark tables with their exact commands): what a reader sees."""
    pages = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
    for page in list(pages):
        for included in re.findall(r'^\s*--8<-- "([^"]+\.md)"', page.read_text(), flags=re.MULTILINE):
            if (ROOT / included).is_file() and ROOT / included not in pages:
                pages.append(ROOT / included)
    return pages


FENCE = re.compile(r"^([ \t]*)```(\w*)[^\n]*\n(.*?)^\1```[ \t]*$", re.DOTALL | re.MULTILINE)
SHELL_LANGS = ("", "bash", "sh", "shell", "console", "text")
NOT_CHECKED = "<!-- commands not checked -->"
SHELL_OPERATORS = ("&&", "||", "|", ";", "&")
WRAPPERS = ("$", "srun", "nohup", "time", "exec", "env", "nice")


def _join_continuations(code: str) -> list[tuple[int, str]]:
    """(line offset, logical line): a line ending in a backslash goes on with the next."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for i, line in enumerate(code.split("\n")):
        if not pending:
            start = i
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append((start, pending + line))
        pending = ""
    if pending:
        out.append((start, pending))
    return out


def spinrl_argv(segment: list[str]) -> list[str] | None:
    """The arguments after ``spinrl`` in one shell command, or None if it is not a spinrl command.

    ``python -m spinrl.algos.ppo ...`` is ``spinrl ppo ...`` and ``python -m spinrl.cli ...`` is
    ``spinrl ...``. Leading ``$`` prompts, ``VAR=value`` assignments and wrappers such as ``srun`` are
    skipped; placeholders (``spinrl ALGO --KEY VALUE``) are not commands.
    """
    tokens = list(segment)
    while tokens and (tokens[0] in WRAPPERS or re.fullmatch(r"[A-Za-z_]\w*=\S*", tokens[0])):
        tokens.pop(0)
    if not tokens:
        return None
    if tokens[0] == "spinrl" or tokens[0].endswith("/spinrl"):
        argv = tokens[1:]
    elif re.fullmatch(r"(\S*/)?python3?", tokens[0]) and len(tokens) > 2 and tokens[1] == "-m":
        module = tokens[2]
        if module.startswith("spinrl.algos."):
            argv = [module.rsplit(".", 1)[1], *tokens[3:]]
        elif module == "spinrl.cli":
            argv = tokens[3:]
        else:
            return None
    else:
        return None
    if (
        "..." in argv
        or any(re.fullmatch(r"(--)?[A-Z][A-Z_]*", t) for t in argv[:1])
        or any(re.fullmatch(r"--[A-Z][A-Z_]*", t) for t in argv)
    ):
        return None  # a synopsis: spinrl ALGO ..., spinrl tune ... --resume, spinrl ppo --KEY VALUE
    # Optional parts of a synopsis: [--episodes 10] [--render] become plain flags.
    out, in_option = [], False
    for tok in argv:
        if tok.startswith("[-"):
            tok, in_option = tok[1:], True
        if in_option and tok.endswith("]"):
            tok, in_option = tok[:-1], False
        out.append(tok)
    return out


def split_shell(line: str) -> list[list[str]]:
    """The commands of one shell line: split at ``&&``, ``|``, ``;``, without redirections or comments."""
    segments: list[list[str]] = [[]]
    tokens = shlex.split(line, comments=True)
    skip_next = False
    for tok in tokens:
        if skip_next:
            skip_next = False
        elif tok in SHELL_OPERATORS:
            segments.append([])
        elif re.fullmatch(r"\d?>>?|<", tok):
            skip_next = True  # the redirection's target follows
        elif re.match(r"\d?>>?\S|<\S", tok):
            pass
        else:
            segments[-1].append(tok)
    return [s for s in segments if s]


def _commands_in(line: str, where: str, whole: bool) -> list[tuple[str, list[str], bool]]:
    if not re.search(r"(^|[\s/])spinrl(\s|$)|-m spinrl\.", line):
        return []
    try:
        segments = split_shell(line)
    except ValueError as err:  # unbalanced quotes: a command the shell could not read either
        return [(where, [f"<shell cannot read {line!r}: {err}>"], whole)]
    return [(where, argv, whole) for argv in map(spinrl_argv, segments) if argv is not None]


def documented_commands() -> list[tuple[str, list[str], bool]]:
    """(``page:line``, argv after ``spinrl``, whole) for every spinrl command in README.md and docs/.

    ``whole`` is True for a code block's line, a complete command; inline code may be a fragment
    (``spinrl test_policy --deterministic``), whose flags are checked but not its positional arguments.
    """
    found = []
    for page in pages_with_commands():
        name = page.relative_to(ROOT).as_posix()
        text = page.read_text()
        for match in FENCE.finditer(text):
            if match.group(2) not in SHELL_LANGS:
                continue
            if text[: match.start()].rstrip().endswith(NOT_CHECKED):
                continue
            first = text[: match.start(3)].count("\n") + 1
            is_text = match.group(2) == "text"
            for offset, line in _join_continuations(match.group(3)):
                line = line.strip()
                if is_text and not line.startswith("$ "):
                    continue  # output shown in a text block; only "$ ..." lines are commands
                found += _commands_in(line, f"{name}:{first + offset}", True)
        # Inline code outside the fenced blocks (blanked out, keeping line numbers).
        prose = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
        for match in re.finditer(r"`([^`]+)`", prose):
            span = match.group(1)
            if "\n\n" in span or not re.match(r"(\S+=\S+ )*(\$ )?(\S*/)?(spinrl |python3? -m spinrl)", span):
                continue
            line = prose[: match.start()].count("\n") + 1
            found += _commands_in(span.replace("\n", " "), f"{name}:{line}", False)
    return found


class _Launched(BaseException):
    """Raised where the grid would start its runs (a BaseException: no ``except Exception`` catches it)."""


class _Parsed(BaseException):
    """Raised where a command's argparse parser would read its arguments; carries the parser and argv."""

    def __init__(self, parser: argparse.ArgumentParser, args: list[str] | None) -> None:
        super().__init__()
        self.parser, self.args = parser, args


def _launch(self, *args, **kwargs) -> None:
    raise _Launched()


def _capture(self, args=None, namespace=None):
    raise _Parsed(self, None if args is None else list(args))


def _first_flag_error(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """The first ``-x``/``--name`` token of argv that the parser has no option for."""
    for tok in argv:
        if re.match(r"--?[A-Za-z]", tok):
            flag = tok.split("=", 1)[0]
            if flag not in parser._option_string_actions:
                valid = ", ".join(sorted(s for s in parser._option_string_actions if s.startswith("--")))
                return f"{parser.prog} has no option {flag} (valid: {valid})"
    return None


def check_command(argv: list[str], whole: bool, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """None if ``spinrl ARGV`` gets past its command line's checks, else what is wrong with it."""
    is_algorithm = cli.algorithm_name(argv[0]) in cli.available_algorithms() if argv else False
    if is_algorithm and not whole and not {"--env", "--env_name", "--env_fn"} & set(argv):
        argv = [*argv, "--env", "CartPole-v1"]  # an inline fragment may leave the environment out
    if not whole and len(argv) == 1 and not argv[0].startswith("-"):  # prose naming a command: `spinrl ls`
        known = argv[0] in cli.COMMANDS or is_algorithm
        return None if known else f"no command {argv[0]!r}"
    if argv and argv[0] == "demo":
        return None if len(argv) == 1 else f"spinrl demo takes no arguments: {argv[1:]}"
    monkeypatch.setattr(spinrl.launch.grid.ExperimentGrid, "run", _launch)
    monkeypatch.setattr(spinrl.launch.zygote, "start_early", lambda *a, **k: None)
    # --cpu 32 is refused on a small machine; the docs may show a cluster's command.
    monkeypatch.setattr(
        spinrl.common.mpi, "resolve_num_cpu", lambda n, *a, **k: n if isinstance(n, int) else 1
    )
    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", _capture)
    # spinrl tune: its settings are read and checked, then the search (or --show's study) is not opened.
    monkeypatch.setattr(spinrl.tune.study, "run_search", _launch)
    monkeypatch.setattr(spinrl.tune.show, "find_study", _launch)
    try:
        code = cli.main(argv)
    except _Launched:
        return None
    except _Parsed as parsed:
        monkeypatch.undo()
        if not whole:
            return _first_flag_error(parsed.parser, parsed.args or [])
        try:
            parsed.parser.parse_args(parsed.args)
        except SystemExit as exit_:
            return None if exit_.code == 0 else f"argparse refused it (exit {exit_.code})"
        except UserError as err:
            return str(err)
        return None
    except UserError as err:
        return str(err)
    finally:
        monkeypatch.undo()
    if code == 0 and {"-h", "--help"} & set(argv):
        return None  # printed its help
    return f"exit code {code} without getting to launch or parse"


def test_documented_commands_are_found() -> None:
    """The extraction itself works: it finds the README's quick start and commands on many pages."""
    commands = documented_commands()
    places = {where.split(":")[0] for where, _, _ in commands}
    assert len(commands) >= 50, len(commands)
    assert {"README.md", "docs/user/running.md", "docs/user/atari.md"} <= places, places
    assert any(place.startswith("benchmarks/results/") for place in places), "included pages are read too"
    assert (["plot", "data/cp", "--save", "cp.png"]) in [argv for _, argv, _ in commands]
    dqn = [argv for where, argv, _ in commands if where.startswith("docs/user/atari.md") and "--q_lr" in argv]
    assert dqn and "--save_buffer" in dqn[0], "a command continued over lines with \\ is read whole"


def test_command_checker_catches_wrong_flags(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """Each kind of mistake the docs could make is caught; a right command passes."""
    assert (
        check_command(["ppo", "--env", "CartPole-v1", "--hid", "[32]", "--exp_name", "x"], True, monkeypatch)
        is None
    )
    assert "clip_ration" in check_command(
        ["ppo", "--env", "CartPole-v1", "--clip_ration", "0.1"], True, monkeypatch
    )
    assert "unknown command" in check_command(["ppoo", "--env", "CartPole-v1"], True, monkeypatch)
    assert check_command(["plot", "data/cp", "--smooth", "5"], True, monkeypatch) is None
    assert "--smoth" in check_command(["plot", "data/cp", "--smoth", "5"], False, monkeypatch)
    assert check_command(["plot", "data/cp", "--smoth", "5"], True, monkeypatch) is not None
    assert check_command(["test_policy", "--deterministic"], False, monkeypatch) is None  # a fragment
    assert check_command(["exercise", "1.1", "--solution"], True, monkeypatch) is None
    assert check_command(["exercise", "1.1", "--solutions"], True, monkeypatch) is not None
    assert check_command(["--help"], True, monkeypatch) is None
    assert check_command(["exercise"], False, monkeypatch) is None  # prose naming the command
    assert check_command(["exercises"], False, monkeypatch) is not None
    assert "sac runs in one process" in check_command(
        ["sac", "--env", "Pendulum-v1", "--cpu", "2"], True, monkeypatch
    )
    assert spinrl_argv(shlex.split("MUJOCO_GL=egl .venv/bin/spinrl test_policy d --render")) == [
        "test_policy",
        "d",
        "--render",
    ]
    assert spinrl_argv(shlex.split("python -m spinrl.algos.td3 --env Hopper-v5")) == [
        "td3",
        "--env",
        "Hopper-v5",
    ]
    assert spinrl_argv(shlex.split("spinrl ALGO --help")) is None
    assert spinrl_argv(shlex.split("spinrl test_policy R [--episodes 10] [--render]")) == [
        "test_policy",
        "R",
        "--episodes",
        "10",
        "--render",
    ]
    capsys.readouterr()


@pytest.mark.parametrize(
    ("where", "argv", "whole"), documented_commands(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_documented_command_parses(
    where: str, argv: list[str], whole: bool, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    problem = check_command(argv, whole, monkeypatch)
    out = capsys.readouterr()
    assert problem is None, f"{where}: spinrl {shlex.join(argv)}: {problem}\n{out.err[-500:]}"
