"""PPO's pure functions against their definitions."""

from __future__ import annotations

import math

import pytest
import torch

from textgym.algorithms.ppo_functions import explained_variance, gae, policy_loss, value_loss, whiten


def test_gae_is_the_discounted_sum_of_td_errors_within_each_episode() -> None:
    torch.manual_seed(0)
    T, N, gamma, lam = 7, 3, 0.9, 0.8
    rewards, values, next_value = torch.randn(T, N), torch.randn(T, N), torch.randn(N)
    dones = torch.rand(T, N) < 0.3
    advantages, returns = gae(rewards, values, dones, next_value, gamma, lam)
    following = torch.cat([values[1:], next_value[None]])
    delta = rewards + gamma * following * (~dones) - values
    for n in range(N):
        for t in range(T):
            expected, weight = 0.0, 1.0
            for k in range(t, T):
                expected += weight * float(delta[k, n])
                if dones[k, n]:
                    break
                weight *= gamma * lam
            assert float(advantages[t, n]) == pytest.approx(expected, abs=1e-5)
    torch.testing.assert_close(returns, advantages + values)


def test_gae_with_lambda_one_gives_discounted_returns() -> None:
    rewards = torch.tensor([[0.0], [0.0], [1.0], [0.5]])
    dones = torch.tensor([[False], [False], [True], [False]])
    _, returns = gae(rewards, torch.zeros(4, 1), dones, torch.tensor([2.0]), gamma=0.5, gae_lambda=1.0)
    torch.testing.assert_close(returns[:, 0], torch.tensor([0.25, 0.5, 1.0, 0.5 + 0.5 * 2.0]))


def test_policy_loss_clips_the_ratio_and_stops_its_gradient() -> None:
    old = torch.zeros(2)
    new = torch.tensor([math.log(1.5), math.log(0.5)], requires_grad=True)
    loss, approx_kl, clip_fraction = policy_loss(new, old, torch.tensor([1.0, -1.0]), clip_coef=0.2)
    assert loss.item() == pytest.approx((-1.2 + 0.8) / 2)  # both pessimistic terms are the clipped ones
    loss.backward()
    assert new.grad.abs().sum() == 0 and float(clip_fraction) == 1.0
    assert float(approx_kl) == pytest.approx(((0.5 - math.log(1.5)) + (-0.5 - math.log(0.5))) / 2)


def test_value_loss_takes_the_worse_of_clipped_and_unclipped() -> None:
    returns, old = torch.tensor([1.0]), torch.tensor([0.0])
    assert float(value_loss(torch.tensor([0.9]), old, returns, clip_coef=0.2)) == pytest.approx(0.5 * 0.8**2)
    assert float(value_loss(torch.tensor([0.9]), old, returns, clip_coef=None)) == pytest.approx(0.5 * 0.1**2)


def test_whiten_and_explained_variance() -> None:
    x = torch.tensor([1.0, 2.0, 3.0, 6.0])
    whitened = whiten(x[:2], population=x)
    torch.testing.assert_close(whitened, (x[:2] - 3.0) / x.std())
    assert explained_variance(x, x) == 1.0
    assert explained_variance(torch.full((4,), 3.0), x) == pytest.approx(0.0)
    assert math.isnan(explained_variance(x, torch.ones(4)))
