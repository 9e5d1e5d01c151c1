"""The self-checking exercises: each checker passes its reference solution, fails the untouched template
with a pointer to the TODO, and names the common mistakes; plus the `spinrl exercise` command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from spinrl.exercises.cli import main
from spinrl.exercises.registry import EXERCISES

IDS = list(EXERCISES)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("exercise_id", IDS)
def test_reference_solution_passes(exercise_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, exercise_id, "--solution")
    assert code == 0, out
    assert f"Exercise {exercise_id} passed" in out


@pytest.mark.parametrize("exercise_id", IDS)
def test_untouched_template_fails_with_a_hint(
    exercise_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "init", exercise_id, str(tmp_path))[0] == 0
    code, out, _ = run(capsys, exercise_id, "--file", str(tmp_path / f"{EXERCISES[exercise_id].stem}.py"))
    assert code == 1
    # Templates with TODOs point at the unfinished piece; the find-the-bug template names the first symptom.
    expected = "time limit" if exercise_id == "2.2" else "replace that TODO"
    assert expected in out
    assert "FAIL" in out and "written solution" in out


# Each mistake is planted by editing the reference solution; the checker must name it.
MISTAKES = [
    ("1.1", "+ k * math.log(2 * math.pi)", "", "-k/2 log(2π)"),
    ("1.1", "2 * (log_std", "0 * (log_std", "log σ"),
    ("1.1", "torch.exp(-log_std)", "(1 / log_std)", "exp(log_std)"),
    ("1.1", "squared_z.sum(dim=-1) + log_det", "squared_z + log_det[:, None]", "sum over dim=-1"),
    ("1.2", "return self.v_net(obs).squeeze(-1)", "return self.v_net(obs)", "squeeze"),
    ("1.2", "nn.Parameter(torch.full((act_dim,), -0.5))", "torch.full((act_dim,), -0.5)", "nn.Parameter"),
    ("1.2", "pi.log_prob(act).sum(dim=-1)", "pi.log_prob(act)", "sum over the action dimension"),
    ("1.2", "Normal(self.mu_net(obs), torch.exp(self.log_std))", "Normal(self.mu_net(obs), self.log_std.exp() * 1)", None),
    ("1.3", "for t in reversed(range(len(x))):", "for t in range(len(x)):", "loop backwards"),
    ("1.3", "0.0 if terminated else float(last_val)", "0.0", "time limit"),
    ("1.3", "0.0 if terminated else float(last_val)", "float(last_val)", "no future"),
    ("1.3", "discount_cumsum(deltas, gamma * lam)", "discount_cumsum(deltas, gamma)", "γλ"),
    ("1.4", "-(logp * adv.detach()).mean()", "(logp * adv.detach()).mean()", "sign"),
    ("1.4", "-(logp * adv.detach()).mean()", "-(logp * adv.detach()).sum()", "mean"),
    ("1.4", "-(logp * adv.detach()).mean()", "-(logp * adv).mean()", "adv.detach()"),
    ("2.1", "torch.min(q1_targ(obs2, a2), q2_targ(obs2, a2))", "q1_targ(obs2, a2)", "min(Q1_targ, Q2_targ)"),
    ("2.1", "(1 - terminated)", "(1 - torch.clamp(terminated + truncated, max=1))", "truncated"),
    ("2.1", "with torch.no_grad():", "if True:", "torch.no_grad()"),
    ("2.1", "torch.clamp(torch.randn_like(pi_targ) * target_noise, -noise_clip, noise_clip)",
     "torch.randn_like(pi_targ) * target_noise", "noise_clip"),
    ("2.1", "torch.clamp(pi_targ + epsilon, -act_limit, act_limit)", "pi_targ + epsilon", "act_limit"),
    ("2.2", "p_targ.mul_(polyak)\n            p_targ.add_((1 - polyak) * p)",
     "p_targ.mul_(1 - polyak)\n            p_targ.add_(polyak * p)", "swapped"),
    ("2.2", "    with torch.no_grad():\n        q_pi_targ", "    if True:\n        q_pi_targ", "no_grad"),
]  # fmt: skip


@pytest.mark.parametrize(("exercise_id", "old", "new", "hint"), MISTAKES)
def test_checker_names_the_mistake(
    exercise_id: str, old: str, new: str, hint: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = EXERCISES[exercise_id].solution_path.read_text()
    assert old in source, "the planted mistake no longer matches the solution file"
    path = tmp_path / "mine.py"
    path.write_text(source.replace(old, new))
    code, out, _ = run(capsys, exercise_id, "--file", str(path))
    if hint is None:  # an equivalent rewrite: must still pass
        assert code == 0, out
    else:
        assert code == 1, out
        assert hint in out


def test_crash_in_user_code_is_a_failure_with_its_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ex1_4.py"
    path.write_text("def pg_loss(logp, adv):\n    return logp.no_such_method(adv)\n")
    code, out, _ = run(capsys, "1.4", "--file", str(path))
    assert code == 1
    assert "raised an error" in out and "ex1_4.py" in out and "return logp.no_such_method(adv)" in out


@pytest.mark.parametrize(
    "source",
    [
        "while True:\n    pass\n",  # hangs while importing
        "def pg_loss(logp, adv):\n    while True:\n        try:\n            pass\n        except Exception:\n            pass\n",
    ],
)
def test_an_endless_loop_fails_with_a_hint_instead_of_hanging(
    source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPINRL_EXERCISE_TIME_LIMIT", "0.5")
    path = tmp_path / "ex1_4.py"
    path.write_text(source)
    code, out, _ = run(capsys, "1.4", "--file", str(path))
    assert code == 1
    assert "still running after 0.5 s" in out and "loop" in out


def test_list_shows_every_exercise(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list")
    assert code == 0
    for ex in EXERCISES.values():
        assert ex.id in out and ex.title in out


def test_init_copies_the_template_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target_dir = tmp_path / "new" / "dir"
    code, out, _ = run(capsys, "init", "1.1", str(target_dir))
    assert code == 0
    target = target_dir / "ex1_1.py"
    assert target.read_text() == EXERCISES["1.1"].template_path.read_text()
    assert "TODO" in target.read_text()

    target.write_text("# my work in progress\n")
    code, out, err = run(capsys, "init", "1.1", str(target_dir))
    assert code == 2
    assert err.startswith("spinrl: error: ") and "already exists" in err and err.count("\n") == 1
    assert target.read_text() == "# my work in progress\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["9.9", "--solution"], "valid ids are 1.1"),
        (["init", "3.7", "."], "valid ids are 1.1"),
        (["1.1", "--file", "does/not/exist.py"], "no such file"),
        (["nope"], "unknown exercise 'nope'"),
        (["1.1"], "--file"),
        ([], "missing command"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("spinrl: error: ") and err.count("\n") == 1
    assert message in err
    assert "Traceback" not in out + err


def test_init_into_a_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_a_dir = tmp_path / "notes.txt"
    not_a_dir.write_text("hello\n")
    code, _, err = run(capsys, "init", "1.3", str(not_a_dir))
    assert code == 2
    assert "is a file" in err and err.count("\n") == 1


def test_templates_ship_inside_the_package() -> None:
    for ex in EXERCISES.values():
        assert ex.template_path.is_file() and ex.solution_path.is_file()
        assert "spinrl/exercises" in ex.template_path.as_posix()
