"""Every seed a run derives from its one ``seed`` comes from spinrl.common.seeding: the values are pinned
(a changed derivation would silently change every run's episodes), the old import paths still answer, and
no other module of the package derives a seed of its own."""

import ast
import importlib
from pathlib import Path

import numpy as np

from spinrl.common import seeding
from spinrl.common.seeding import (
    env_seeds,
    episode_seeds,
    rank_seed,
    seeds_for_test_episodes,
    trial_seeds,
)

PACKAGE = Path(seeding.__file__).resolve().parents[1]


def test_rank_seeds_are_ten_thousand_apart():
    assert [rank_seed(5, r) for r in range(3)] == [5, 10005, 20005]


def test_env_seeds_keep_their_values():
    # The values of the version before the seeds moved here: runs stay the same bit for bit.
    assert env_seeds(0, 0, 0, 3) == [2968811710, 3677149159, 745650761]
    assert env_seeds(7, 1, 4, 2) == [3443324636, 3834610989]
    expected = np.random.SeedSequence([3, 2, 1]).generate_state(4, dtype=np.uint32)
    assert env_seeds(3, 2, 1, 4) == [int(s) for s in expected]


def test_env_seeds_differ_across_copies_ranks_and_epochs():
    a = env_seeds(0, rank=0, epoch=0, num_envs=4)
    assert len(set(a)) == 4 and a == env_seeds(0, 0, 0, 4)
    assert set(a).isdisjoint(env_seeds(0, rank=1, epoch=0, num_envs=4))
    assert set(a).isdisjoint(env_seeds(0, rank=0, epoch=1, num_envs=4))


def test_test_episode_seeds_keep_their_values_and_stay_apart_from_training():
    assert seeds_for_test_episodes(0, 3, 3) == [3345244660, 894059314, 2959601811]
    seeds = seeds_for_test_episodes(0, epoch=3, num_episodes=4)
    assert not set(seeds) & set(env_seeds(0, 0, 3, 4))
    assert seeds != seeds_for_test_episodes(0, 4, 4)


def test_episode_and_trial_seeds_count_up_from_the_first():
    assert episode_seeds(10_000, 3) == [10_000, 10_001, 10_002]
    assert episode_seeds(4, 0) == []
    assert trial_seeds(3, 3) == [3, 13, 23]


def test_old_import_paths_give_the_same_functions():
    import spinrl.envs
    import spinrl.envs.vector
    import spinrl.training.offpolicy
    import spinrl.tune.trial

    assert spinrl.envs.vector.env_seeds is env_seeds
    assert spinrl.envs.env_seeds is env_seeds
    assert importlib.import_module("spinrl.rng").env_seeds is env_seeds  # the module's name before 19
    assert spinrl.training.offpolicy.seeds_for_test_episodes is seeds_for_test_episodes
    assert spinrl.tune.trial.trial_seeds is trial_seeds


def _names_a_seed(node: ast.AST) -> bool:
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return "seed" in name.lower()


def seed_derivations(tree: ast.AST) -> list[int]:
    """Line numbers of code that derives a seed: a SeedSequence, or arithmetic on a name holding a seed."""
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and _names_a_seed(node.func)
            and "SeedSequence" in ast.unparse(node.func)
        ):
            lines.append(node.lineno)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mult | ast.Sub):
            if _names_a_seed(node.left) or _names_a_seed(node.right):
                lines.append(node.lineno)
        elif isinstance(node, ast.AugAssign) and _names_a_seed(node.target):
            lines.append(node.lineno)
    return lines


def test_the_check_for_seed_arithmetic_finds_it():
    code = "seed += 10000 * proc_id()\nx = np.random.SeedSequence([seed, 1])\ny = base_seed + 10 * i\n"
    assert seed_derivations(ast.parse(code)) == [1, 2, 3]


def test_no_other_module_derives_a_seed():
    """Seed arithmetic (``seed + 10000 * rank``, a SeedSequence, ``seed + i``) outside seeding.py would be a
    second place for a rule that must hold everywhere."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "seeding.py" and path.parent.name == "common":
            continue
        source = path.read_text()
        for number in seed_derivations(ast.parse(source)):
            found.append(
                f"{path.relative_to(PACKAGE.parent)}:{number}: {source.splitlines()[number - 1].strip()}"
            )
    assert not found, "seeds derived outside spinrl/common/seeding.py:\n" + "\n".join(found)
