"""Every seed a run derives from its one ``seed`` comes from spinrl.common.seeding: the values are pinned
(a changed derivation would silently change every run's episodes), the old import paths still answer, and
no other module of the package derives a seed of its own."""

import re
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
    import spinrl.envs.make
    import spinrl.rng
    import spinrl.training.offpolicy
    import spinrl.tune.trial

    assert spinrl.envs.make.env_seeds is env_seeds
    assert spinrl.envs.env_seeds is env_seeds
    assert spinrl.rng.env_seeds is env_seeds
    assert spinrl.training.offpolicy.seeds_for_test_episodes is seeds_for_test_episodes
    assert spinrl.tune.trial.trial_seeds is trial_seeds


def test_no_other_module_derives_a_seed():
    """Seed arithmetic (``seed + 10000 * rank``, a SeedSequence, ``seed + i``) outside seeding.py would be a
    second place for a rule that must hold everywhere."""
    arithmetic = re.compile(r"SeedSequence|\bseed\s*(\+|\*|\+=)|(\+|\*)\s*seed\b")
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "seeding.py" and path.parent.name == "common":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if arithmetic.search(code) and "``" not in code:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert not found, "seeds derived outside spinrl/common/seeding.py:\n" + "\n".join(found)
