"""Image encoders and the image paths of the default networks."""

import copy

import numpy as np
import pytest
import torch
from gymnasium import spaces

from spinrl.common.errors import UserError
from spinrl.envs.spaces import image_chw, image_layout, is_image_space
from spinrl.nets.actor_critic import MLPActorCritic, count_vars, shared_encoder_features
from spinrl.nets.encoders import NatureCNN, SmallCNN, make_encoder
from spinrl.nets.fast_act import numpy_policy
from spinrl.nets.q_nets import (
    MLPDeterministicActorCritic,
    MLPQNetwork,
    MLPSquashedGaussianActorCritic,
    MLPTwinActorCritic,
)

ATARI = spaces.Box(0, 255, (4, 84, 84), dtype=np.uint8)
SMALL = spaces.Box(0, 255, (1, 12, 12), dtype=np.uint8)


def frames(space, batch=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, *space.shape), dtype=torch.uint8, generator=g)


def test_what_counts_as_an_image():
    assert is_image_space(ATARI) and image_layout(ATARI) == "CHW"
    assert image_layout(spaces.Box(0, 255, (96, 96, 3), dtype=np.uint8)) == "HWC"
    assert image_layout(spaces.Box(0, 255, (84, 84), dtype=np.uint8)) == "HW"
    assert image_chw(spaces.Box(0, 255, (96, 80, 3), dtype=np.uint8)) == (3, 96, 80)
    assert not is_image_space(spaces.Box(0, 1, (4, 84, 84), dtype=np.float32))  # float: not pixels
    assert not is_image_space(spaces.Box(0, 255, (8,), dtype=np.uint8))
    assert not is_image_space(spaces.Discrete(3))


def test_nature_cnn_sizes_for_84x84():
    enc = NatureCNN(ATARI)
    assert enc.linear.in_features == 64 * 7 * 7  # 84 -> 20 -> 9 -> 7 pixels a side
    assert enc(frames(ATARI)).shape == (3, 512)
    assert NatureCNN(ATARI, features_dim=64)(frames(ATARI)).shape == (3, 64)
    # The Nature DQN's three convolutions and its 512-unit layer: 1,684,128 numbers.
    assert count_vars(enc) == (4 * 32 * 64 + 32) + (32 * 64 * 16 + 64) + (64 * 64 * 9 + 64) + (
        3136 * 512 + 512
    )


def test_nature_cnn_refuses_small_images_and_names_the_size():
    with pytest.raises(UserError, match=r"at least 36x36 pixels, got 12x12.*encoder='small'"):
        NatureCNN(SMALL)
    assert NatureCNN(spaces.Box(0, 255, (1, 36, 36), dtype=np.uint8))(
        frames(spaces.Box(0, 255, (1, 36, 36), np.uint8))
    ).shape == (3, 512)


def test_small_cnn_on_12x12():
    enc = make_encoder(SMALL, "small", features_dim=16)
    assert isinstance(enc, SmallCNN) and enc.features_dim == 16
    assert enc(frames(SMALL)).shape == (3, 16)


def test_pixels_are_scaled_by_1_over_255_inside_and_any_dtype_gives_the_same_features():
    enc = make_encoder(SMALL, "small")
    x = frames(SMALL)
    scaled = enc.pixels(x)
    assert scaled.dtype == torch.float32 and float(scaled.max()) <= 1.0
    torch.testing.assert_close(scaled, x.float() / 255)
    as_float = x.float()
    torch.testing.assert_close(enc(x), enc(as_float))
    assert torch.equal(as_float, x.float())  # the caller's float tensor is not scaled in place


def test_layouts_give_the_same_features():
    chw = spaces.Box(0, 255, (3, 40, 40), dtype=np.uint8)
    hwc = spaces.Box(0, 255, (40, 40, 3), dtype=np.uint8)
    torch.manual_seed(0)
    a = NatureCNN(chw)
    torch.manual_seed(0)
    b = NatureCNN(hwc)
    x = frames(chw)
    torch.testing.assert_close(a(x), b(x.permute(0, 2, 3, 1)))
    hw = spaces.Box(0, 255, (40, 40), dtype=np.uint8)
    assert NatureCNN(hw)(x[:, 0]).shape == (3, 512)


def test_bad_encoder_settings_are_one_line():
    with pytest.raises(UserError, match="encoder 'resnet' is not valid: use one of nature, small"):
        make_encoder(ATARI, "resnet")
    with pytest.raises(UserError, match="features_dim=0 is not valid"):
        make_encoder(ATARI, "nature", features_dim=0)


def test_a_custom_encoder_gets_its_width_measured():
    class Flat(torch.nn.Module):
        def __init__(self, observation_space):
            super().__init__()
            self.lin = torch.nn.Linear(int(np.prod(observation_space.shape)), 7)

        def forward(self, obs):
            return self.lin(obs.flatten(1).float() / 255)

    enc = make_encoder(SMALL, Flat)
    assert enc.features_dim == 7
    ac = MLPActorCritic(SMALL, spaces.Discrete(3), encoder=Flat)
    assert ac.step(frames(SMALL))[0].shape == (3,)


def test_actor_critic_on_images_shares_one_encoder_owned_by_the_policy():
    ac = MLPActorCritic(ATARI, spaces.Discrete(6))
    x = frames(ATARI)
    a, v, logp = ac.step(x)
    assert a.shape == (3,) and v.shape == (3,) and logp.shape == (3,)
    enc_params = {id(p) for p in ac.encoder.parameters()}
    assert enc_params <= {id(p) for p in ac.pi.parameters()}
    assert not enc_params & {id(p) for p in ac.v.parameters()}  # v's optimiser cannot move the policy
    assert count_vars(ac) == count_vars(ac.pi) + count_vars(ac.v)  # each parameter once
    # The value loss leaves no gradient in the encoder; the policy loss does.
    ac.v(x).sum().backward()
    assert all(p.grad is None for p in ac.encoder.parameters())
    ac.pi(x, a.clone())[1].sum().backward()
    assert all(p.grad is not None for p in ac.encoder.parameters())
    # The Nature head: the encoder's 512 features straight to the outputs.
    assert ac.pi.logits_net[1][0].in_features == 512 and len(ac.pi.logits_net[1]) == 2


@pytest.mark.parametrize("act_space", [spaces.Discrete(4), spaces.Box(-1, 1, (2,))], ids=["discrete", "box"])
def test_step_runs_the_shared_encoder_once_with_the_numbers_of_two_passes(act_space):
    ac = MLPActorCritic(SMALL, act_space, encoder="small")
    x = frames(SMALL, 5)
    torch.manual_seed(3)
    with torch.no_grad():
        a_ref, logp_ref = ac.pi.sample(x)
        v_ref = ac.v(x)
    calls = []
    ac.encoder.register_forward_hook(lambda *args: calls.append(1))
    torch.manual_seed(3)
    a, v, logp = ac.step(x)
    assert len(calls) == 1
    assert torch.equal(a, a_ref) and torch.equal(v, v_ref) and torch.equal(logp, logp_ref)


def test_critic_steps_reuse_the_shared_features_with_the_same_numbers_and_gradients():
    ac = MLPActorCritic(SMALL, spaces.Discrete(3), encoder="small", hidden_sizes=(8,))
    x, ret = frames(SMALL, 6), torch.arange(6.0)
    calls = []
    ac.encoder.register_forward_hook(lambda *args: calls.append(1))
    features = shared_encoder_features(ac, x)
    assert len(calls) == 1 and not features.requires_grad
    # The head on the cached features is V(x) itself, and its gradients are those of a full pass.
    grads = []
    for v in (ac.v(x), ac.v(x, features)):
        ac.zero_grad()
        ((v - ret) ** 2).mean().backward()
        grads.append([p.grad.clone() for p in ac.v.parameters()])
    assert torch.equal(ac.v(x), ac.v(x, features))
    assert all(torch.equal(a, b) for a, b in zip(*grads))
    assert all(p.grad is None for p in ac.encoder.parameters())
    # Nothing to share: vector observations, or a critic with an encoder of its own.
    assert shared_encoder_features(MLPActorCritic(spaces.Box(-1, 1, (3,)), spaces.Discrete(2)), x) is None
    own = MLPActorCritic(SMALL, spaces.Discrete(3), encoder="small", share_encoder=False)
    assert shared_encoder_features(own, x) is None


def test_actor_critic_with_separate_encoders_and_gaussian_policy():
    ac = MLPActorCritic(
        SMALL, spaces.Box(-1, 1, (2,)), encoder="small", share_encoder=False, hidden_sizes=(8,)
    )
    x = frames(SMALL)
    a, v, logp = ac.step(x)
    assert a.shape == (3, 2) and v.shape == (3,) and logp.shape == (3,)
    ac.v(x).sum().backward()
    assert all(p.grad is not None for p in ac.v.v_net[0].parameters())
    assert ac.act(x, deterministic=True).shape == (3, 2)


def test_vector_networks_are_unchanged():
    torch.manual_seed(0)
    ac = MLPActorCritic(spaces.Box(-1, 1, (4,)), spaces.Discrete(2))
    assert ac.encoder is None and count_vars(ac) == (4 * 64 + 64 + 64 * 64 + 64 + 64 * 2 + 2) + (
        4 * 64 + 64 + 64 * 64 + 64 + 65
    )
    assert numpy_policy(ac, torch.device("cpu")) is not None
    image_ac = MLPActorCritic(SMALL, spaces.Discrete(2), encoder="small")
    assert numpy_policy(image_ac, torch.device("cpu")) is None  # torch runs the convolutions


@pytest.mark.parametrize(
    "cls", [MLPDeterministicActorCritic, MLPTwinActorCritic, MLPSquashedGaussianActorCritic]
)
def test_off_policy_critic_owns_the_encoder_and_reads_the_action_with_its_features(cls):
    ac = cls(SMALL, spaces.Box(-2, 2, (2,)), hidden_sizes=(16,), encoder="small", features_dim=8)
    x, act = frames(SMALL, 5), torch.zeros(5, 2)
    q = ac.q(x, act)
    assert q.shape == (cls.num_q, 5) and ac.q.first(x, act).shape == (5,)
    assert ac.q.net[0].weight.shape[1] == 8 + 2  # features concatenated with the action
    assert ac.act(x).shape == (5, 2)
    assert {id(p) for p in ac.encoder.parameters()} <= {id(p) for p in ac.q.parameters()}
    assert not {id(p) for p in ac.encoder.parameters()} & {id(p) for p in ac.pi.parameters()}
    out = ac.pi(x)
    (out[0] if isinstance(out, tuple) else out).sum().backward()
    assert all(p.grad is None for p in ac.encoder.parameters())  # the actor does not train it
    # A target network made by deepcopy shares its own copy of the encoder between its actor and critic.
    targ = copy.deepcopy(ac)
    feats = targ.pi.net[0] if hasattr(targ.pi, "net") else targ.pi.pi[0]
    assert feats.encoder is targ.q.encoder and targ.q.encoder is not ac.q.encoder


def test_dqn_network_on_images_is_the_nature_dqn():
    q = MLPQNetwork(ATARI, spaces.Discrete(6))
    x = frames(ATARI)
    assert q.q(x).shape == (1, 3, 6)
    assert q.act(x).shape == (3,)
    assert count_vars(q) == 1_684_128 + 512 * 6 + 6
    assert len(q.state_dict()) == len(list(q.parameters()))  # the encoder is saved once


def test_a_spinning_up_style_critic_on_images_is_recognised_and_wrapped():
    from spinrl.nets.custom import as_spinrl_actor_critic

    class Q(torch.nn.Module):  # Spinning Up's critics return (B,); the probe feeds a uint8 image batch
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(144 + 2, 1)

        def forward(self, obs, act):
            assert obs.dtype == torch.uint8 and obs.shape[1:] == (1, 12, 12)
            return self.lin(torch.cat([obs.flatten(1).float() / 255, act], -1)).squeeze(-1)

    class AC(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pi = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(144, 2), torch.nn.Tanh())
            self.q = Q()

    act_space = spaces.Box(-2, 2, (2,))
    ac = as_spinrl_actor_critic(AC(), SMALL, act_space, "ddpg")
    assert type(ac).__name__ == "SpinningUpOffPolicyAC"
    assert ac.q(frames(SMALL), torch.zeros(3, 2)).shape == (1, 3)
