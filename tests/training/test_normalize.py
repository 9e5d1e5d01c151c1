"""The learning-quality options: normalisers, minibatch PPO, gradient clipping, annealing, initialisation.

What is checked: the running statistics against NumPy on a known stream and equal across MPI ranks;
the statistics saved in checkpoints, restored on resume and applied by test_policy / load_policy;
checkpoints still change nothing with every option on; minibatch PPO's steps; and a learning test on
a badly scaled task where observation normalisation makes the difference.
"""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import mpirun

from spinrl.algos.ppo import ppo
from spinrl.algos.sac import sac
from spinrl.algos.trpo import trpo
from spinrl.algos.vpg import vpg
from spinrl.common.errors import UserError
from spinrl.nets.actor_critic import MLPActorCritic
from spinrl.record.checkpoint import load_checkpoint
from spinrl.record.logger import read_progress
from spinrl.results.policy import load_policy
from spinrl.training.normalize import ObservationNormalizer, RewardScaler, RunningMeanStd
from spinrl.training.onpolicy import anneal_learning_rate, annealing_epochs, minibatch_steps


def _rows_without_time(path) -> dict[str, np.ndarray]:
    return {k: v for k, v in read_progress(path).items() if k != "Time"}


# ---------------------------------------------------------------- the statistics themselves


def test_running_statistics_equal_numpy_on_a_known_stream():
    rng = np.random.default_rng(0)
    # A large mean and a small spread: the case where a naive sum of squares loses its digits.
    stream = rng.normal(loc=[1e4, -3.0, 0.0], scale=[0.5, 2.0, 1e-3], size=(1000, 3))
    stats = RunningMeanStd((3,))
    for chunk in np.array_split(stream, [1, 7, 100, 101, 640]):  # uneven chunks, one of one row
        stats.observe(chunk)
        assert stats.count == 0 or stats.pending_n > 0  # counting alone does not move the statistics
        stats.update()
    np.testing.assert_allclose(stats.mean, stream.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.var, stream.var(axis=0), rtol=1e-8)
    assert stats.count == 1000


def test_statistics_do_not_move_until_update_and_an_empty_update_changes_nothing():
    stats = RunningMeanStd((2,))
    stats.observe(np.ones((5, 2)))
    np.testing.assert_array_equal(stats.mean, 0.0)
    np.testing.assert_array_equal(stats.var, 1.0)
    stats.update()
    mean, var = stats.mean.copy(), stats.var.copy()
    stats.update()  # nothing counted since
    np.testing.assert_array_equal(stats.mean, mean)
    np.testing.assert_array_equal(stats.var, var)


def test_observation_normaliser_normalises_clips_and_restores_pending_counts():
    norm = ObservationNormalizer((2,), clip=3.0)
    data = np.array([[0.0, 10.0], [2.0, 30.0]], dtype=np.float32)
    norm.observe(data)
    norm.update()  # mean (1, 20), std (1, 10)
    out = norm(np.array([[2.0, 20.0], [100.0, -1000.0]], dtype=np.float32))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0], [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(out[1], [3.0, -3.0])  # clipped to +-3 standard deviations
    tensor_out = norm.normalize_tensor(torch.tensor([[2.0, 20.0]]))
    np.testing.assert_allclose(tensor_out.numpy(), [[1.0, 0.0]], atol=1e-6)

    # A checkpoint taken with observations counted but not merged restores them too.
    norm.observe(np.array([[5.0, 5.0]]))
    copy = ObservationNormalizer.from_state_dict(norm.state_dict())
    norm.update()
    copy.update()
    np.testing.assert_array_equal(copy.stats.mean, norm.stats.mean)
    np.testing.assert_array_equal(copy.stats.var, norm.stats.var)
    assert copy.clip == 3.0


def test_reward_scaler_divides_by_the_spread_of_discounted_returns_and_resets_at_episode_ends():
    scaler = RewardScaler(num_envs=2, gamma=0.5, clip=100.0)
    no, yes = np.array([False, False]), np.array([True, False])
    first = scaler(np.array([2.0, 4.0]), no, no)
    np.testing.assert_array_equal(first, [2.0, 4.0])  # nothing merged yet: scale 1
    scaler(np.array([2.0, 4.0]), yes, no)  # copy 0's episode ends after this step
    scaler(np.array([2.0, 4.0]), no, no)
    # Discounted returns counted: copy 0: 2, 3, then 2 (reset); copy 1: 4, 6, 7.
    returns = np.array([2.0, 4.0, 3.0, 6.0, 2.0, 7.0])
    scaler.update()
    scaled = scaler(np.array([1.0, -1.0]), no, no)
    np.testing.assert_allclose(scaled, np.array([1.0, -1.0]) / math.sqrt(returns.var() + 1e-8), rtol=1e-6)
    # The sign of every reward is kept (scaled, never shifted), and large ones are clipped.
    scaler.clip = 0.1
    np.testing.assert_allclose(scaler(np.array([50.0, -50.0]), no, no), [0.1, -0.1])


def test_statistics_are_equal_across_mpi_ranks_and_pool_every_ranks_data(tmp_path):
    script = """
        import numpy as np
        from spinrl.common.mpi import proc_id
        from spinrl.training.normalize import RunningMeanStd
        rng = np.random.default_rng(proc_id())
        data = rng.normal(size=(50 + 30 * proc_id(), 2)) * (1 + proc_id()) + 5 * proc_id()
        np.save(f"data{proc_id()}.npy", data)
        stats = RunningMeanStd((2,))
        stats.observe(data[:20]); stats.update()
        stats.observe(data[20:]); stats.update()
        np.save(f"stats{proc_id()}.npy", np.concatenate([stats.mean, stats.var, [stats.count]]))
    """
    proc = mpirun(script, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    s0, s1 = np.load(tmp_path / "stats0.npy"), np.load(tmp_path / "stats1.npy")
    np.testing.assert_array_equal(s0, s1)  # one set of statistics for every rank
    pooled = np.concatenate([np.load(tmp_path / "data0.npy"), np.load(tmp_path / "data1.npy")])
    np.testing.assert_allclose(s0[:2], pooled.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(s0[2:4], pooled.var(axis=0), rtol=1e-8)
    assert s0[4] == 130


def test_ppo_with_every_option_on_two_ranks_keeps_the_ranks_in_lockstep(tmp_path):
    script = """
        import torch
        from spinrl.algos.ppo import ppo
        from spinrl.common.mpi import proc_id
        ac = ppo("Pendulum-v1", steps_per_epoch=400, epochs=2, train_pi_iters=2, train_v_iters=2,
                 minibatch_size=100, obs_norm=True, reward_norm=True, value_norm=True, max_grad_norm=0.5,
                 anneal_lr=True, target_kl=None, ac_kwargs=dict(hidden_sizes=(8,), ortho_init=True),
                 logger_kwargs=dict(output_dir="run", quiet=True))
        torch.save(torch.nn.utils.parameters_to_vector(ac.parameters()), f"params{proc_id()}.pt")
    """
    proc = mpirun(script, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    p0 = torch.load(tmp_path / "params0.pt", weights_only=True)
    p1 = torch.load(tmp_path / "params1.pt", weights_only=True)
    torch.testing.assert_close(p0, p1, rtol=0, atol=0)
    saved = load_checkpoint(tmp_path / "run")["obs_normalizer"]
    assert float(saved["count"]) == 800  # 2 epochs x 400 steps, counted over both ranks


# ---------------------------------------------------------------- inside the algorithms

OPTIONS = dict(obs_norm=True, reward_norm=True, value_norm=True)


def test_checkpoints_change_nothing_with_every_option_on(tmp_path):
    kw = dict(
        ac_kwargs=dict(hidden_sizes=(16,), ortho_init=True),
        seed=2,
        steps_per_epoch=400,
        epochs=4,
        train_pi_iters=3,
        train_v_iters=3,
        minibatch_size=100,
        max_grad_norm=0.5,
        anneal_lr=True,
        adam_eps=1e-5,
        ent_coef=0.01,
        target_kl=None,
        **OPTIONS,
    )
    for save_freq in (1, 3):
        ppo(
            "Pendulum-v1",
            save_freq=save_freq,
            logger_kwargs=dict(output_dir=str(tmp_path / f"e{save_freq}"), quiet=True),
            **kw,
        )
    every1, every3 = (
        _rows_without_time(tmp_path / "e1/progress.txt"),
        _rows_without_time(tmp_path / "e3/progress.txt"),
    )
    assert every1["Epoch"].tolist() == [0, 1, 2, 3]
    for key in every1:
        np.testing.assert_array_equal(every1[key], every3[key], err_msg=key)
    state = load_checkpoint(tmp_path / "e1")
    assert {"obs_normalizer", "reward_scaler", "value_normalizer"} <= state.keys()
    assert float(state["obs_normalizer"]["count"]) == 1600


def _ppo_run(out, epochs, resume=False, **extra):
    return ppo(
        "Pendulum-v1",
        ac_kwargs=dict(hidden_sizes=(8,)),
        seed=5,
        steps_per_epoch=300,
        epochs=epochs,
        train_pi_iters=2,
        train_v_iters=2,
        save_freq=1,
        resume=resume,
        logger_kwargs=dict(output_dir=str(out), quiet=True),
        **OPTIONS,
        **extra,
    )


def test_resume_restores_the_statistics_and_continues_them(tmp_path):
    _ppo_run(tmp_path / "a", epochs=2)
    saved = load_checkpoint(tmp_path / "a")
    assert float(saved["obs_normalizer"]["count"]) == 600
    # Two processes resumed from the same checkpoint: the same rows, the same statistics.
    twin = tmp_path / "b"
    twin.mkdir()
    for f in (tmp_path / "a").iterdir():
        if f.is_file():
            (twin / f.name).write_bytes(f.read_bytes())
    _ppo_run(tmp_path / "a", epochs=4, resume=True)
    _ppo_run(twin, epochs=4, resume=True)
    end, twin_end = load_checkpoint(tmp_path / "a"), load_checkpoint(twin)
    for name in ("obs_normalizer", "reward_scaler", "value_normalizer"):
        torch.testing.assert_close(end[name], twin_end[name], rtol=0, atol=0)
    # The resumed run went on from the saved statistics rather than starting them again.
    assert float(end["obs_normalizer"]["count"]) == 1200
    assert float(end["value_normalizer"]["count"]) == 1200
    a, b = _rows_without_time(tmp_path / "a/progress.txt"), _rows_without_time(twin / "progress.txt")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_test_policy_feeds_the_network_what_training_fed_it(tmp_path):
    _ppo_run(tmp_path / "run", epochs=2)
    env, get_action, config = load_policy(tmp_path / "run", deterministic=True)
    obs, _ = env.reset(seed=0)
    state = load_checkpoint(tmp_path / "run")
    norm = ObservationNormalizer.from_state_dict(state["obs_normalizer"])
    ac = MLPActorCritic(env.observation_space, env.action_space, hidden_sizes=(8,))
    ac.load_state_dict(state["ac"])
    want = ac.act(torch.as_tensor(norm(obs)[None]), deterministic=True)[0].numpy()
    raw = ac.act(torch.as_tensor(obs[None]), deterministic=True)[0].numpy()
    got = get_action(obs)
    np.testing.assert_allclose(got, np.clip(want, -2, 2), rtol=1e-6)
    assert not np.allclose(want, raw)  # the statistics matter for this input: the check can fail
    env.close()
    assert config["obs_norm"] is True


def test_vpg_and_trpo_take_the_normalisers_too(tmp_path):
    for algo in (vpg, trpo):
        out = tmp_path / algo.__name__
        algo(
            "Pendulum-v1",
            ac_kwargs=dict(hidden_sizes=(8,)),
            steps_per_epoch=300,
            epochs=2,
            train_v_iters=2,
            logger_kwargs=dict(output_dir=str(out), quiet=True),
            **OPTIONS,
            **(dict(max_grad_norm=0.5, anneal_lr=True, adam_eps=1e-5) if algo is vpg else {}),
        )
        state = load_checkpoint(out)
        assert float(state["obs_normalizer"]["count"]) == 600, algo.__name__
        # VVals stay in the env's units (Pendulum's returns are large and negative), LossV in normalised ones.
        rows = read_progress(out / "progress.txt")
        assert rows["AverageVVals"][-1] < -10, algo.__name__


def test_sac_normalises_what_it_samples_and_saves_the_statistics(tmp_path):
    sac(
        "Pendulum-v1",
        ac_kwargs=dict(hidden_sizes=(16,)),
        steps_per_epoch=200,
        epochs=2,
        start_steps=100,
        update_after=100,
        update_every=50,
        batch_size=32,
        num_test_episodes=1,
        max_ep_len=50,
        obs_norm=True,
        logger_kwargs=dict(output_dir=str(tmp_path / "sac"), quiet=True),
    )
    state = load_checkpoint(tmp_path / "sac")
    stats = ObservationNormalizer.from_state_dict(state["obs_normalizer"]).stats
    assert stats.count == 400  # every env step, merged before each round of updates
    assert np.all(np.abs(stats.mean) < 5) and np.all(stats.var > 0)
    env, get_action, _ = load_policy(tmp_path / "sac", deterministic=True)
    obs, _ = env.reset(seed=1)
    assert env.action_space.contains(get_action(obs))
    env.close()


def test_image_observations_refuse_obs_norm(tmp_path):
    from image_envs import DotEnv

    with pytest.raises(UserError, match="obs_norm=True is for vector observations"):
        ppo(
            DotEnv,
            obs_norm=True,
            epochs=1,
            steps_per_epoch=50,
            logger_kwargs=dict(output_dir=str(tmp_path / "x")),
        )
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(minibatch_size=0), "minibatch_size=0 is not valid"),
        (
            dict(minibatch_size=5000),
            "minibatch_size=5000 is not valid: it must be at most steps_per_epoch=4000",
        ),
        (dict(max_grad_norm=-1.0), "max_grad_norm=-1.0 is not valid"),
        (dict(obs_clip=0), "obs_clip=0 is not valid"),
        (dict(adam_eps=0.0), "adam_eps=0.0 is not valid"),
        (dict(ent_coef=-0.1), "ent_coef=-0.1 is not valid"),
        (dict(obs_norm="yes"), "obs_norm='yes' is not valid: it must be True or False"),
    ],
)
def test_bad_option_values_are_one_line(tmp_path, kwargs, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        ppo("CartPole-v1", logger_kwargs=dict(output_dir=str(tmp_path / "x")), **kwargs)


# ---------------------------------------------------------------- minibatches, schedules, initialisation


def test_minibatch_steps_cover_the_batch_once_per_pass_in_a_seeded_order():
    data = {"ret": torch.arange(10.0), "obs": torch.arange(20.0).reshape(10, 2)}
    torch.manual_seed(0)
    steps = list(minibatch_steps(data, passes=3, minibatch_size=4))
    assert [i for i, _ in steps] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [len(b["ret"]) for _, b in steps[:3]] == [4, 4, 2]
    for p in range(3):
        seen = torch.cat([b["ret"] for i, b in steps if i == p])
        assert sorted(seen.tolist()) == list(range(10))  # every sample once per pass
    for _, b in steps:  # rows stay together
        torch.testing.assert_close(b["obs"][:, 0], 2 * b["ret"])
    torch.manual_seed(0)
    again = list(minibatch_steps(data, passes=3, minibatch_size=4))
    assert all(torch.equal(a["ret"], b["ret"]) for (_, a), (_, b) in zip(steps, again))
    # None: Spinning Up's whole-batch steps, the data itself.
    whole = list(minibatch_steps(data, passes=2, minibatch_size=None))
    assert [i for i, _ in whole] == [0, 1] and all(b is data for _, b in whole)


def test_learning_rate_decays_linearly_to_zero():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    rates = []
    for epoch in range(4):
        anneal_learning_rate(opt, 3e-4, epoch, 4)
        rates.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(rates, [3e-4, 2.25e-4, 1.5e-4, 0.75e-4])


def test_a_longer_annealing_horizon_ends_the_run_at_part_of_the_rate():
    # Tianshou's MuJoCo PPO: 2,048 steps an update, decayed over 3M steps, a 1M-step run (489 updates).
    horizon = annealing_epochs(489, 3_000_000, 2048)
    assert horizon == pytest.approx(1464.84375)
    assert annealing_epochs(489, None, 2048) == 489.0  # the default: the run's own end
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    anneal_learning_rate(opt, 3e-4, 488, horizon)
    assert opt.param_groups[0]["lr"] == pytest.approx(3e-4 * (1 - 488 * 2048 / 3e6))  # about 2/3 left
    # A horizon shorter than the run: the rate stays at 0 after it, never negative.
    anneal_learning_rate(opt, 3e-4, 10, annealing_epochs(20, 5 * 2048, 2048))
    assert opt.param_groups[0]["lr"] == 0.0


def test_ppo_anneals_over_the_horizon_it_is_given_and_refuses_a_bad_one(tmp_path):
    # 2 epochs of 300 steps with a horizon of 1,200 steps (4 epochs): the last update used 3/4 of the rate.
    _ppo_run(tmp_path / "run", 2, anneal_lr=True, anneal_lr_steps=1200, pi_lr=4e-3, vf_lr=2e-3)
    state = load_checkpoint(tmp_path / "run")
    assert state["pi_optimizer"]["param_groups"][0]["lr"] == pytest.approx(3e-3)
    assert state["vf_optimizer"]["param_groups"][0]["lr"] == pytest.approx(1.5e-3)
    for bad in (0, 2.5):
        with pytest.raises(UserError, match=f"anneal_lr_steps={bad}"):
            _ppo_run(tmp_path / f"bad{bad}", 1, anneal_lr=True, anneal_lr_steps=bad)


def test_orthogonal_init_and_log_std_init():
    space = gym.spaces.Box(-1, 1, (6,), np.float32)
    act = gym.spaces.Box(-1, 1, (3,), np.float32)
    ac = MLPActorCritic(space, act, hidden_sizes=(32, 32), ortho_init=True, log_std_init=-2.0)
    first, last = ac.pi.mu_net[0].weight, ac.pi.mu_net[-2].weight
    # Orthogonal rows, scaled by sqrt(2); the last policy layer 0.01; zero biases.
    torch.testing.assert_close(first.T @ first, 2.0 * torch.eye(6), atol=1e-5, rtol=0)  # (32, 6)
    torch.testing.assert_close(last @ last.T, 1e-4 * torch.eye(3), atol=1e-8, rtol=0)
    assert torch.count_nonzero(ac.pi.mu_net[0].bias) == 0
    v_last = ac.v.v_net[-2].weight
    torch.testing.assert_close((v_last @ v_last.T).squeeze(), torch.tensor(1.0), atol=1e-5, rtol=0)
    torch.testing.assert_close(ac.pi.log_std.detach(), torch.full((3,), -2.0))
    # The default keeps PyTorch's initialisation and Spinning Up's -0.5.
    plain = MLPActorCritic(space, act)
    assert plain.pi.log_std.detach().eq(-0.5).all()
    w = plain.pi.mu_net[0].weight
    assert not torch.allclose(w.T @ w, 2.0 * torch.eye(6), atol=1e-2)


def test_minibatch_ppo_without_a_kl_stop_takes_every_pass(tmp_path):
    ppo(
        "CartPole-v1",
        ac_kwargs=dict(hidden_sizes=(16,)),
        steps_per_epoch=256,
        epochs=2,
        train_pi_iters=3,
        train_v_iters=3,
        minibatch_size=64,
        target_kl=None,
        logger_kwargs=dict(output_dir=str(tmp_path / "mb"), quiet=True),
    )
    rows = read_progress(tmp_path / "mb/progress.txt")
    assert rows["StopIter"].tolist() == [3, 3]
    # With a tiny target the KL stop still guards the passes.
    ppo(
        "CartPole-v1",
        ac_kwargs=dict(hidden_sizes=(16,)),
        steps_per_epoch=256,
        epochs=2,
        train_pi_iters=3,
        train_v_iters=3,
        minibatch_size=64,
        target_kl=1e-9,
        pi_lr=1e-2,
        logger_kwargs=dict(output_dir=str(tmp_path / "kl"), quiet=True),
    )
    assert read_progress(tmp_path / "kl/progress.txt")["StopIter"].tolist() == [0, 0]


# ---------------------------------------------------------------- normalisation helps learning

_OFFSET = np.array([500.0, -300.0, 200.0, 800.0], dtype=np.float32)


def _cartpole_far_from_the_origin():
    """CartPole with every observation moved hundreds of units away: tanh units saturate on raw inputs."""
    env = gym.make("CartPole-v1")
    space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    return gym.wrappers.TransformObservation(env, lambda o: (o + _OFFSET).astype(np.float32), space)


def test_observation_normalisation_learns_a_badly_scaled_task_that_raw_inputs_do_not(tmp_path):
    last = {}
    for obs_norm in (False, True):
        out = tmp_path / f"norm{obs_norm}"
        ppo(
            _cartpole_far_from_the_origin,
            ac_kwargs=dict(hidden_sizes=(32,)),
            seed=0,
            steps_per_epoch=1000,
            epochs=12,
            train_pi_iters=20,
            train_v_iters=20,
            obs_norm=obs_norm,
            logger_kwargs=dict(output_dir=str(out), quiet=True),
        )
        last[obs_norm] = read_progress(out / "progress.txt")["AverageEpRet"][-3:].mean()
    # Measured (seed 0): about 23 raw (a random policy gets ~22) and about 58 normalised.
    assert last[True] > 40, last
    assert last[True] > 1.5 * last[False], last


def test_image_runs_take_every_option_but_obs_norm_and_resume_from_them(tmp_path):
    """Image observations: the shared encoder's cached features travel with their minibatches."""
    from image_envs import DotEnv

    kw = dict(
        ac_kwargs=dict(encoder="small", ortho_init=True),
        seed=3,
        steps_per_epoch=200,
        train_pi_iters=2,
        train_v_iters=2,
        minibatch_size=50,
        max_grad_norm=0.5,
        anneal_lr=True,
        target_kl=None,
        reward_norm=True,
        value_norm=True,
        save_freq=1,
    )
    ppo(DotEnv, epochs=2, logger_kwargs=dict(output_dir=str(tmp_path / "img"), quiet=True), **kw)
    ppo(DotEnv, epochs=3, resume=True, logger_kwargs=dict(output_dir=str(tmp_path / "img"), quiet=True), **kw)
    rows = read_progress(tmp_path / "img/progress.txt")
    assert rows["Epoch"].tolist() == [0, 1, 2]
    assert np.all(np.isfinite(rows["LossV"])) and rows["StopIter"].tolist() == [2, 2, 2]
    state = load_checkpoint(tmp_path / "img")
    assert float(state["value_normalizer"]["count"]) == 600  # the resumed run went on counting
