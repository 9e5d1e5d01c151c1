"""Pieces of DDPG, TD3, SAC and DQN checked by hand: targets, scaling, Polyak, log-probabilities, alpha."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import nn

from spinrl.cli import main
from spinrl.common.errors import UserError, run_main_guarded
from spinrl.envs.actions import ActionMap
from spinrl.envs.vector import env_seeds
from spinrl.nets.q_nets import (
    MLPDeterministicActorCritic,
    MLPQEnsemble,
    MLPQNetwork,
    MLPSquashedGaussianActorCritic,
    MLPTwinActorCritic,
    SquashedGaussianMLPActor,
    Temperature,
)
from spinrl.training.offpolicy import (
    polyak_update,
    random_actions,
    run_test_episodes,
    seeds_for_test_episodes,
)

ASYMMETRIC = spaces.Box(
    low=np.array([0.0, -3.0], dtype=np.float32), high=np.array([1.0, 5.0], dtype=np.float32)
)


def test_action_map_onto_asymmetric_bounds_for_numpy_and_torch():
    to_env = ActionMap(ASYMMETRIC)
    low, high = ASYMMETRIC.low, ASYMMETRIC.high
    a = np.array([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.5]], dtype=np.float32)
    expected = [low, high, [0.5, 1.0], [0.5, 3.0]]
    out = to_env(a)
    assert out.dtype == ASYMMETRIC.dtype and np.allclose(out, expected)
    t = to_env(torch.as_tensor(a))
    assert torch.is_tensor(t) and np.allclose(t.numpy(), expected)
    # The NumPy path computes in float64 and returns the space's dtype; both stay inside the bounds.
    many = np.random.default_rng(0).uniform(-1, 1, (1000, 2)).astype(np.float32)
    for out in (to_env(many), to_env(torch.as_tensor(many)).numpy()):
        assert (out >= low).all() and (out <= high).all()


def test_action_map_for_discrete_adds_the_start():
    to_env = ActionMap(spaces.Discrete(4, start=2))
    assert to_env(np.array([0, 3])).tolist() == [2, 5]
    assert to_env(torch.tensor([1])).tolist() == [3]
    assert ActionMap(spaces.Discrete(3))(np.array([2])).tolist() == [2]


def test_networks_act_through_the_same_action_map():
    low, high = ASYMMETRIC.low, ASYMMETRIC.high
    obs_space = spaces.Box(-1, 1, (3,), np.float32)
    obs = torch.randn(256, 3) * 100  # large inputs saturate tanh: actions reach the bounds
    for cls in (MLPDeterministicActorCritic, MLPTwinActorCritic, MLPSquashedGaussianActorCritic):
        ac = cls(obs_space, ASYMMETRIC, hidden_sizes=(16,))
        assert isinstance(ac.action_map, ActionMap)
        for deterministic in (True, False):
            a = ac.act(obs, deterministic=deterministic).numpy()
            assert a.shape == (256, 2)
            assert (a >= low - 1e-5).all() and (a <= high + 1e-5).all()
        # The tanh output's extremes map onto the env's own extremes, not onto [-1, 1] or +-high.
        ends = ac.action_map(torch.tensor([[-1.0, -1.0], [1.0, 1.0]])).numpy()
        assert np.allclose(ends, [low, high])
        # act() is the normalised policy output, mapped: what the training loop sends to the env.
        if cls is not MLPSquashedGaussianActorCritic:
            with torch.no_grad():
                assert np.allclose(ac.act(obs[:5]).numpy(), ActionMap(ASYMMETRIC)(ac.pi(obs[:5]).numpy()))


def test_random_actions_use_numpys_global_generator():
    np.random.seed(3)
    a = random_actions(ASYMMETRIC, 500)
    assert a.shape == (500, 2) and a.dtype == np.float32
    assert (a >= -1).all() and (a <= 1).all() and a.min() < -0.9 and a.max() > 0.9  # normalised, not bounds
    np.random.seed(3)
    assert np.array_equal(random_actions(ASYMMETRIC, 500), a)  # checkpoints capture this generator
    idx = random_actions(spaces.Discrete(4, start=2), 500)
    assert idx.shape == (500,) and set(idx.tolist()) == {0, 1, 2, 3}  # indices; ActionMap adds start


def test_polyak_update_math():
    torch.manual_seed(0)
    targ = [torch.randn(3, 4), torch.randn(4)]
    src = [torch.randn(3, 4), torch.randn(4)]
    expected = [0.995 * t + 0.005 * s for t, s in zip(targ, src)]
    polyak_update(targ, src, 0.995)
    for t, e in zip(targ, expected):
        assert torch.allclose(t, e, atol=1e-7)


class SeededLengthEnv(gym.Env):
    """Reward 1 per step; an episode lasts 2 + (reset seed % 5) steps, so test copies end at different times."""

    observation_space = spaces.Box(-1, 1, (1,), np.float32)
    action_space = ASYMMETRIC

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.length, self.t = 2 + (seed or 0) % 5, 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action, dtype=np.float32)), action
        self.t += 1
        return np.zeros(1, np.float32), 1.0, self.t >= self.length, False, {}


def test_test_episodes_count_each_copys_first_episode_only(tmp_path):
    from spinrl.envs.vector import make_vector_env
    from spinrl.record.logger import EpochLogger

    test_envs = make_vector_env(SeededLengthEnv, 4, max_ep_len=100)
    ac = MLPDeterministicActorCritic(SeededLengthEnv.observation_space, ASYMMETRIC, hidden_sizes=(8,))
    logger = EpochLogger(output_dir=str(tmp_path), quiet=True, tensorboard=False)
    seeds = seeds_for_test_episodes(seed=0, epoch=3, num_episodes=4)
    run_test_episodes(test_envs, ac, logger, seeds, "cpu")
    lengths = [2 + s % 5 for s in seeds]
    # Copies that finish early are reset by the vector env and keep stepping: none of it counts.
    assert logger.epoch_dict["TestEpLen"][0].tolist() == lengths
    assert logger.epoch_dict["TestEpRet"][0].tolist() == lengths
    # Seeds: the same for the same (seed, epoch), new each epoch, apart from the training envs' seeds.
    assert seeds == seeds_for_test_episodes(0, 3, 4) and seeds != seeds_for_test_episodes(0, 4, 4)
    assert not set(seeds) & set(env_seeds(0, 0, 3, 4))


class ActionsSeen(gym.Env):
    """Discrete(4, start=10); records every action it gets; episodes of 50 steps."""

    observation_space = spaces.Box(-1, 1, (1,), np.float32)
    action_space = spaces.Discrete(4, start=10)
    seen: list[int] = []

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        ActionsSeen.seen.append(int(action))
        self.t += 1
        return np.zeros(1, np.float32), 0.0, self.t >= 50, False, {}


class AlwaysEleven(nn.Module):
    def act(self, obs, deterministic=False):
        return torch.full((len(obs),), 11)


@pytest.mark.parametrize("epsilon", [0.0, 0.3])
def test_test_episodes_take_random_actions_with_test_epsilon(tmp_path, epsilon):
    """Issue 18: DQN's Atari test games act epsilon-greedily (0.05 by default) rather than purely greedily."""
    from spinrl.envs.vector import make_vector_env
    from spinrl.record.logger import EpochLogger

    logger = EpochLogger(output_dir=str(tmp_path), quiet=True, tensorboard=False)
    test_envs = make_vector_env(ActionsSeen, 2, max_ep_len=100)
    draws = []
    for _ in range(2):
        ActionsSeen.seen = []
        state = np.random.get_state()[1].copy()
        run_test_episodes(test_envs, AlwaysEleven(), logger, [1, 2], "cpu", epsilon=epsilon)
        assert np.array_equal(np.random.get_state()[1], state)  # the training's generator is untouched
        draws.append(list(ActionsSeen.seen))
    seen = np.array(draws[0])
    assert len(seen) == 100 and set(seen) <= {10, 11, 12, 13}
    random_share = np.mean(seen != 11) * 4 / 3  # a random action is 11 a quarter of the time
    assert random_share == 0 if epsilon == 0 else 0.15 < random_share < 0.45
    assert draws[0] == draws[1]  # the same seeds, the same test games


def test_q_ensemble_equals_separate_networks_and_one_optimizer_updates_every_member():
    torch.manual_seed(0)
    q = MLPQEnsemble(obs_dim=3, act_dim=2, hidden_sizes=(8, 8), activation=nn.ReLU, num_members=2)
    obs, act = torch.randn(5, 3), torch.randn(5, 2)
    out = q(obs, act)
    assert out.shape == (2, 5)
    # Member k computed on its own, layer by layer, from its slice of the stacked weights.
    x = torch.cat([obs, act], -1)
    for k in range(2):
        h = x
        layers = [m for m in q.net if hasattr(m, "weight")]
        for i, layer in enumerate(layers):
            h = h @ layer.weight[k] + layer.bias[k]
            if i < len(layers) - 1:
                h = torch.relu(h)
        assert torch.allclose(out[k], h.squeeze(-1), atol=1e-6)
    assert torch.allclose(q.first(obs, act), out[0], atol=1e-6)  # TD3's policy loss uses Q1 alone
    # One optimiser over q.parameters() updates both Q-functions (Spinning Up once chained two
    # parameter iterators into a list that an earlier use had already exhausted).
    before = [p.detach().clone() for p in q.parameters()]
    opt = torch.optim.Adam(q.parameters(), lr=1e-2, fused=True)
    loss = ((q(obs, act) - 1.0) ** 2).mean(-1).sum()
    loss.backward()
    # Member 0's loss gives no gradient to member 1's weights and vice versa.
    g0 = torch.autograd.grad(q(obs, act)[0].sum(), list(q.parameters()))
    assert all(float(g[1].abs().sum()) == 0 for g in g0)
    opt.step()
    for b, p in zip(before, q.parameters()):
        for k in range(2):
            assert not torch.equal(b[k], p[k]), "a Q-function was not updated"


def test_squashed_gaussian_log_prob_matches_change_of_variables():
    torch.manual_seed(0)
    actor = SquashedGaussianMLPActor(obs_dim=4, act_dim=3, hidden_sizes=(16,), activation=nn.ReLU)
    obs = torch.randn(64, 4)
    torch.manual_seed(1)
    a, logp = actor(obs)
    # Recompute directly: u = mu + std * eps with the same noise, then
    # log pi(a|s) = sum_i [log N(u_i; mu_i, std_i) - log(1 - tanh(u_i)^2)].
    h = actor.net(obs)
    mu, log_std = actor.mu_layer(h), actor.log_std_layer(h).clamp(-20, 2)
    torch.manual_seed(1)
    u = mu + log_std.exp() * torch.randn_like(mu)
    direct = torch.distributions.Normal(mu, log_std.exp()).log_prob(u).sum(-1)
    direct = direct - torch.log(1 - torch.tanh(u) ** 2).sum(-1)
    assert torch.allclose(a, torch.tanh(u), atol=1e-6)
    assert torch.allclose(logp, direct, atol=1e-4)
    # Deterministic: the action is tanh(mu).
    a_det, _ = actor(obs, deterministic=True)
    assert torch.allclose(a_det, torch.tanh(mu), atol=1e-6)


@pytest.mark.parametrize("entropy, alpha_should", [(-3.0, "grow"), (0.5, "shrink")])
def test_auto_alpha_gradient_sign(entropy, alpha_should):
    target_entropy = -1.0
    temp = Temperature(1.0, learned=True)
    logp = torch.full((32,), -entropy)  # the policy's entropy estimate is -E[log pi]
    temp.loss(logp, target_entropy).backward()
    grad = float(temp.log_alpha.grad)
    # J(alpha) = E[-alpha (log pi + target)]: entropy below target -> negative gradient -> alpha grows.
    assert (grad < 0) == (alpha_should == "grow")
    assert grad == pytest.approx(-(-entropy + target_entropy))
    torch.optim.SGD(temp.parameters(), lr=0.1).step()
    assert (float(temp.alpha) > 1.0) == (alpha_should == "grow")
    assert Temperature(0.2).alpha == 0.2 and not Temperature(0.2).log_alpha.requires_grad


def test_dqn_network_acts_greedily_with_action_offset():
    obs_space = spaces.Box(-1, 1, (3,), np.float32)
    net = MLPQNetwork(obs_space, spaces.Discrete(4, start=2), hidden_sizes=(8,))
    obs = torch.randn(10, 3)
    q = net.q(obs)
    assert q.shape == (1, 10, 4)
    assert torch.equal(net.act(obs), q[0].argmax(-1) + 2)  # through its ActionMap
    with pytest.raises(UserError, match="Discrete"):
        MLPQNetwork(obs_space, ASYMMETRIC)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["sac", "--env", "CartPole-v1"], "sac cannot handle the action space Discrete(2)"),
        (["td3", "--env", "CartPole-v1"], "needs a Box action space"),
        (["ddpg", "--env", "CartPole-v1"], "ddpg cannot handle"),
        (["dqn", "--env", "Pendulum-v1"], "dqn cannot handle the action space Box"),
        (["sac", "--env", "Pendulum-v1", "--alpha", "-1"], "alpha=-1"),
        (["sac", "--env", "Pendulum-v1", "--alpha", "autoo"], "alpha='autoo'"),
        (["td3", "--env", "Pendulum-v1", "--polyak", "1.0"], "polyak=1.0"),
        (["dqn", "--env", "CartPole-v1", "--epsilon_end", "2"], "epsilon_end=2"),
        (["td3", "--env", "Pendulum-v1", "--policy_delay", "0"], "policy_delay=0"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(tmp_data, capsys, argv, expected):
    assert run_main_guarded(main, [*argv, "--epochs", "1", "--steps_per_epoch", "10"]) == 2
    err_lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err_lines) == 1 and err_lines[0].startswith("spinrl: error:"), err_lines
    assert expected in err_lines[0]


def test_help_comes_from_signature_and_docstring(capsys):
    for algo, names in {
        "sac": ("alpha", "save_buffer", "replay_size", "num_envs"),
        "td3": ("policy_delay", "target_noise", "noise_clip", "act_noise"),
        "ddpg": ("pi_lr", "q_lr", "polyak"),
        "dqn": ("epsilon_decay_steps", "epsilon_end"),
    }.items():
        assert main([algo, "--help"]) == 0
        out = capsys.readouterr().out
        for name in names:
            line = out.split(f"--{name} ")[1].split("\n--")[0]
            assert len(line.split("\n")) > 1 and line.split("\n")[1].strip(), f"{algo} --{name} has no help"


def test_spinning_up_defaults():
    import inspect

    from spinrl import ddpg, dqn, sac, td3
    from spinrl.envs.make import default_max_ep_len

    expected = dict(
        replay_size=int(1e6), gamma=0.99, polyak=0.995, batch_size=100, start_steps=10000, update_after=1000,
        update_every=50, num_test_episodes=10, steps_per_epoch=4000, epochs=100, save_freq=1,
    )  # fmt: skip
    for fn in (ddpg, td3, sac, dqn):
        params = inspect.signature(fn).parameters
        for k, v in expected.items():
            assert params[k].default == v, (fn.__name__, k)
        # max_ep_len's default is None: Spinning Up's 1000 steps for every env but Atari games, which
        # keep their own end so that a logged episode is a whole game.
        assert params["max_ep_len"].default is None, fn.__name__
    assert default_max_ep_len("Pendulum-v1", None) == 1000
    assert default_max_ep_len("ALE/Pong-v5", None) is None
    assert default_max_ep_len("Pendulum-v1", 200) == 200
    assert inspect.signature(td3).parameters["policy_delay"].default == 2
    assert inspect.signature(sac).parameters["alpha"].default == 0.2
    assert inspect.signature(ddpg).parameters["act_noise"].default == 0.1


def test_test_policy_loads_an_off_policy_run(tmp_path):
    from spinrl import sac
    from spinrl.record.logger import read_progress
    from spinrl.results.policy import load_policy, run_policy

    out = tmp_path / "run"
    sac("Pendulum-v1", steps_per_epoch=300, epochs=1, start_steps=100, update_after=200, update_every=50,
        num_test_episodes=1, ac_kwargs=dict(hidden_sizes=(8,)), logger_kwargs=dict(output_dir=str(out), quiet=True),
        max_ep_len=50, device="cpu", num_envs=2, alpha="auto")  # fmt: skip
    env, get_action, config = load_policy(out, deterministic=True)
    assert config["actor_critic"] == "spinrl.nets.q_nets.MLPSquashedGaussianActorCritic"
    progress = read_progress(out / "progress.txt")
    assert progress["TotalEnvInteracts"][-1] == 300  # 150 steps x 2 copies
    assert 0 < progress["Alpha"][-1] < 1  # learned, starting from 1
    ((ret, length),) = run_policy(env, get_action, episodes=1, quiet=True)
    assert length == 50 and math.isfinite(ret)


@pytest.mark.parametrize("update_every", [1, 3])
def test_td3_policy_delay_counts_critic_steps_across_update_rounds_and_a_resume(tmp_path, update_every):
    """With update_every 1 each round has one critic step: a counter that restarts every round would move
    the actor on every step. The actor moves on every policy_delay-th critic step of the whole run."""
    from spinrl.algos.td3 import td3
    from spinrl.record.checkpoint import load_checkpoint

    def steps(run, name):
        return int(load_checkpoint(run)[name]["state"][0]["step"])

    run = tmp_path / "run"
    kw = dict(
        steps_per_epoch=20, start_steps=5, update_after=5, update_every=update_every, policy_delay=2,
        batch_size=4, num_test_episodes=1, max_ep_len=10, ac_kwargs=dict(hidden_sizes=(8,)),
        logger_kwargs=dict(output_dir=str(run), quiet=True),
    )  # fmt: skip
    td3(SeededLengthEnv, epochs=1, **kw)
    q_steps = steps(run, "q_optimizer")
    assert q_steps >= 15 and steps(run, "pi_optimizer") == (q_steps + 1) // 2
    td3(SeededLengthEnv, epochs=2, resume=True, **kw)  # goes on counting from the checkpoint
    q_steps = steps(run, "q_optimizer")
    assert q_steps >= 30 and steps(run, "pi_optimizer") == (q_steps + 1) // 2
