"""Runs saved by spinrl before the package was regrouped still resume and load.

tests/old_runs holds two tiny runs written by spinrl before the regrouping (commit de2dc17): PPO on
CartPole and SAC on Pendulum, two epochs each, with the network classes recorded under their old
module names (``spinrl.nets.MLPActorCritic``, ``spinrl.q_nets.MLPSquashedGaussianActorCritic``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from spinrl.moved import current_name, same_spinrl_object

OLD_RUNS = Path(__file__).resolve().parent / "old_runs"


def test_recorded_class_names_are_compared_by_what_they_name():
    assert same_spinrl_object("spinrl.nets.MLPActorCritic", "spinrl.nets.actor_critic.MLPActorCritic")
    assert same_spinrl_object("spinrl.q_nets.MLPTwinActorCritic", "spinrl.nets.q_nets.MLPTwinActorCritic")
    assert not same_spinrl_object("spinrl.nets.MLPActorCritic", "spinrl.nets.q_nets.MLPTwinActorCritic")
    assert not same_spinrl_object("mypkg.Net", "mypkg.other.Net")  # not ours: compared as text
    assert current_name("spinrl.q_nets.MLPQNetwork") == "spinrl.nets.q_nets.MLPQNetwork"


def _copy_old_run(name: str, tmp_path: Path) -> Path:
    run_dir = tmp_path / name
    shutil.copytree(OLD_RUNS / name, run_dir)
    return run_dir


def test_an_old_ppo_run_resumes_and_its_policy_loads(tmp_path):
    from spinrl.algos.ppo import ppo
    from spinrl.results.policy import load_policy_and_env

    run_dir = _copy_old_run("ppo-cartpole_s0", tmp_path)
    ppo(
        "CartPole-v1",
        epochs=3,
        steps_per_epoch=200,
        ac_kwargs=dict(hidden_sizes=(8,)),
        train_pi_iters=5,
        train_v_iters=5,
        resume=True,
        logger_kwargs=dict(output_dir=str(run_dir), exp_name="ppo-cartpole"),
    )
    rows = (run_dir / "progress.txt").read_text().splitlines()
    assert [row.split("\t")[0] for row in rows[1:]] == ["0", "1", "2"]  # two old epochs, one new
    assert json.loads((run_dir / "status.json").read_text())["status"] == "finished"
    env, get_action = load_policy_and_env(str(run_dir))
    obs, _ = env.reset(seed=0)
    assert env.action_space.contains(get_action(obs))


def test_an_old_sac_run_resumes_and_its_policy_loads(tmp_path):
    from spinrl.algos.sac import sac
    from spinrl.results.policy import load_policy_and_env

    run_dir = _copy_old_run("sac-pendulum_s0", tmp_path)
    sac(
        "Pendulum-v1",
        epochs=3,
        steps_per_epoch=200,
        start_steps=100,
        update_after=100,
        batch_size=32,
        replay_size=1000,
        max_ep_len=100,
        num_test_episodes=1,
        ac_kwargs=dict(hidden_sizes=(8,)),
        resume=True,
        logger_kwargs=dict(output_dir=str(run_dir), exp_name="sac-pendulum"),
    )
    rows = (run_dir / "progress.txt").read_text().splitlines()
    assert len(rows) == 4  # header and epochs 0, 1, 2
    env, get_action = load_policy_and_env(str(run_dir))
    obs, _ = env.reset(seed=0)
    assert env.action_space.contains(get_action(obs))


def test_resume_accepts_the_old_name_of_the_same_network_and_refuses_another():
    from spinrl.record.config import resume_changes

    recorded = json.loads((OLD_RUNS / "ppo-cartpole_s0" / "config.json").read_text())
    today = dict(recorded, actor_critic="spinrl.nets.actor_critic.MLPActorCritic")
    assert resume_changes(recorded, today) == []
    other = dict(recorded, actor_critic="spinrl.nets.q_nets.MLPTwinActorCritic")
    assert resume_changes(recorded, other) == [
        "actor_critic from spinrl.nets.MLPActorCritic to spinrl.nets.q_nets.MLPTwinActorCritic"
    ]
