"""No measured figures in spinrl's comments and docstrings.

A timing in a comment ("12.5 us per call", "1.3x faster on an H200", "on a 2-core machine") goes stale
the day the code or the machine changes, and nobody measures a comment again. Figures live in
benchmarks/results/*.md and the docs; a comment says in words what a trick saves and points there
(benchmarks/results/code-measurements.md holds the small ones that justify code choices).

Every comment and every string literal of the package is read (string literals include the docstrings
and the shared argument texts of spinrl/algos/arguments.py, which become docstrings).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

import spinrl

PACKAGE = Path(spinrl.__file__).resolve().parent

# What a measured figure looks like: a time with its unit, a speed-up factor, a percentage faster or
# slower, a named accelerator or CPU, a core count, a rate per second, or a number right after "measured".
MEASURED_FIGURE = re.compile(
    r"(?<![\w.])\d+(?:\.\d+)?\s?(?:us|µs|μs|ns|ms|s|sec|seconds|minutes)\b"
    r"|(?<![\w.])\d+(?:\.\d+)?x\b"
    r"|\d\s?%\s*(?:slower|faster)"
    r"|\b(?:H100|H200|A100|EPYC|Xeon)\b|\d-core\b|\d\s(?:CPU\s)?cores\b"
    r"|\d\s*(?:env\s+)?(?:steps|frames|updates|it)/s\b"
    r"|\b(?:faster|slower|speed-?up)\s+(?:by\s+)?\d"
    r"|\bmeasured\b[^.\n]{0,60}?\d",
    re.IGNORECASE,
)

# Figures that are not measurements: rules and settings, true on any machine. A line that holds one of
# these passages is not flagged for it.
NOT_MEASUREMENTS = {
    "minutes of play": "an Atari game's length in the evaluation protocol (frames at 60 per second)",
    "game cut after 5 minutes": "the same rule of the protocol, its line broken before 'of play'",
    "60 frames/s": "the Atari console's frame rate",
}
# Figures waiting for a change made elsewhere, as (file, passage): none now. An entry lets a known figure
# stand until the change that removes it lands; the test below makes sure it is dropped then.
PENDING: set[tuple[str, str]] = set()


def comment_and_string_lines(source: str) -> list[tuple[int, str]]:
    """(line number, text) of every comment and every line of every string literal."""
    lines = [
        (tok.start[0], tok.string)
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            lines += [(node.lineno + i, line) for i, line in enumerate(node.value.splitlines())]
    return lines


def measured_figures(path: Path) -> list[str]:
    relative = path.relative_to(PACKAGE.parent).as_posix()
    found = []
    for number, text in comment_and_string_lines(path.read_text()):
        if any(passage in text for passage in NOT_MEASUREMENTS):
            continue
        if any(file == relative and passage in text for file, passage in PENDING):
            continue
        for match in MEASURED_FIGURE.finditer(text):
            found.append(f"{relative}:{number}: {match.group(0)!r} in {text.strip()!r}")
    return found


def test_no_measured_figures_in_comments_or_docstrings():
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) for hit in measured_figures(path)]
    assert not found, (
        "measured figures in spinrl's comments or docstrings: move them to benchmarks/results/*.md or the "
        "docs and say in words what the code gains, pointing there:\n" + "\n".join(found)
    )


def test_every_pending_figure_is_still_there():
    """A PENDING entry whose passage is gone must go too, so that the list cannot hide a new figure."""
    for file, passage in PENDING:
        assert passage in (PACKAGE.parent / file).read_text(), f"{file} no longer holds {passage!r}: drop it"


@pytest.mark.parametrize(
    "text",
    [
        "(measured on CartPole's 64x64 pair: 12.5 us per call, 8.2 us together)",
        "on an H200, SAC ran 1.3x faster compiled",
        "on a 2-core CPU the first update compiles in 5-80 s",
        "about 20 minutes on 2 cores",
        "the compiled update measured 6-26% slower than the eager one",
        "SAC 252 env steps/s compiled against 195 eager",
        "8 ms vs 118 ms for one full-batch PPO step",
        "runs about 25x slower than PyTorch's own",
        "# 1.0-1.4 s, 0.15-0.35 s after gc.freeze",
    ],
)
def test_the_pattern_finds_measured_figures(text):
    assert MEASURED_FIGURE.search(text)


@pytest.mark.parametrize(
    "text",
    [
        "adam_eps: PyTorch's 1e-8 is the default; 1e-5 damps steps",
        "hidden_sizes=(64, 64) on CartPole's 64x64 networks",
        "a horizon of roughly 100 steps; 0.99 is usual",
        "Each row costs 4 bytes per observation and action number (+ 6).",
        "the Atari console's 108,000 frames",
        "the approximate KL is measured against the old policy",
    ],
)
def test_the_pattern_leaves_settings_and_shapes_alone(text):
    assert not MEASURED_FIGURE.search(text)
