"""Policy gradient with a learned state-value baseline: weight each action by an advantage estimate.

    grad J(pi_theta) = E_tau[ sum_t grad log pi_theta(a_t | s_t) (Rhat_t - V_phi(s_t)) ]   (docs: intro/policy-optimization)

Subtracting any function of the state b(s_t) leaves the expected gradient unchanged (EGLP lemma), and the
on-policy value V_phi(s_t) is a good choice: it removes the part of the return the state already predicts,
so the weight says whether a_t did better or worse than usual. V_phi is fitted by regression on Rhat_t.

A time-limit truncation is not a real end: the episode would have gone on. So a truncated episode's
reward-to-go is bootstrapped with V_phi(s_{T+1}), the value of the observation its last step T reached,
while a terminated one ends at 0 (the pole fell; nothing more will come).

Standalone on purpose (PyTorch + Gymnasium only):  python examples/pg_math/3_baseline_pg.py --epochs 50
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical


def mlp(sizes: list[int], activation: type[nn.Module] = nn.Tanh) -> nn.Sequential:
    """A fully connected network; the last layer has no activation (it outputs logits or a value)."""
    layers: list[nn.Module] = []
    for j in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[j], sizes[j + 1]))
        if j < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def reward_to_go(rews: list[float], last_value: float = 0.0) -> list[float]:
    """rtg[t] = r[t] + ... + r[T] + last_value; last_value is V(s_{T+1}) after a truncation, else 0."""
    rtgs = [0.0] * len(rews)
    running = last_value
    for t in reversed(range(len(rews))):
        running = rews[t] + running
        rtgs[t] = running
    return rtgs


def train(
    env_name: str = "CartPole-v1",
    hidden_sizes: list[int] = [32],  # noqa: B006  (never mutated; a list reads best in the signature)
    lr: float = 1e-2,
    epochs: int = 50,
    batch_size: int = 5000,
    seed: int = 0,
    vf_lr: float = 1e-2,
    train_v_iters: int = 40,
) -> list[float]:
    """Train a categorical policy with a value baseline; return the mean episode return per epoch."""
    torch.manual_seed(seed)
    env = gym.make(env_name)
    assert isinstance(env.action_space, gym.spaces.Discrete), "this example needs a discrete action space"
    obs_dim = env.observation_space.shape[0]
    n_acts = int(env.action_space.n)

    logits_net = mlp([obs_dim, *hidden_sizes, n_acts])
    value_net = mlp([obs_dim, *hidden_sizes, 1])
    pi_optimizer = torch.optim.Adam(logits_net.parameters(), lr=lr)
    vf_optimizer = torch.optim.Adam(value_net.parameters(), lr=vf_lr)

    def get_policy(obs: torch.Tensor) -> Categorical:
        return Categorical(logits=logits_net(obs))

    def value(obs: torch.Tensor) -> torch.Tensor:
        return value_net(obs).squeeze(-1)

    def compute_pi_loss(obs: torch.Tensor, act: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
        # adv comes from the value net but is data here: no gradient may flow into the baseline.
        logp = get_policy(obs).log_prob(act)
        return -(logp * adv.detach()).mean()

    def compute_v_loss(obs: torch.Tensor, ret: torch.Tensor) -> torch.Tensor:
        return ((value(obs) - ret) ** 2).mean()

    first_reset = True

    def train_one_epoch() -> float:
        nonlocal first_reset
        batch_obs, batch_acts, batch_rtgs, batch_rets = [], [], [], []
        # Seed the env once; later resets continue its random stream, so every run is reproducible.
        obs, _ = env.reset(seed=seed if first_reset else None)
        first_reset = False
        ep_rews: list[float] = []
        while True:
            batch_obs.append(obs.copy())
            with torch.no_grad():
                act = get_policy(torch.as_tensor(obs, dtype=torch.float32)).sample().item()
            obs, rew, terminated, truncated, _ = env.step(act)
            batch_acts.append(act)
            ep_rews.append(float(rew))
            if terminated or truncated:
                batch_rets.append(sum(ep_rews))
                # Bootstrap only through a truncation: `obs` is then the real state where time ran out.
                last_value = 0.0
                if truncated and not terminated:
                    with torch.no_grad():
                        last_value = value(torch.as_tensor(obs, dtype=torch.float32)).item()
                batch_rtgs += reward_to_go(ep_rews, last_value)
                obs, _ = env.reset()
                ep_rews = []
                if len(batch_obs) >= batch_size:
                    break

        obs_t = torch.as_tensor(np.array(batch_obs), dtype=torch.float32)
        act_t = torch.as_tensor(batch_acts, dtype=torch.int64)
        rtg_t = torch.as_tensor(batch_rtgs, dtype=torch.float32)
        with torch.no_grad():
            adv_t = rtg_t - value(obs_t)

        pi_optimizer.zero_grad()
        compute_pi_loss(obs_t, act_t, adv_t).backward()
        pi_optimizer.step()

        # Fit the baseline after the policy step, so this epoch's advantages used the older V_phi.
        for _ in range(train_v_iters):
            vf_optimizer.zero_grad()
            compute_v_loss(obs_t, rtg_t).backward()
            vf_optimizer.step()
        return float(np.mean(batch_rets))

    returns = []
    for epoch in range(epochs):
        mean_ret = train_one_epoch()
        returns.append(mean_ret)
        print(f"epoch {epoch:3d}   mean return {mean_ret:8.2f}")
    env.close()
    return returns


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env_name", "--env", type=str, default="CartPole-v1")
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batch_size", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train(env_name=args.env_name, lr=args.lr, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
