"""PPO's pure tensor functions: GAE, statistics, the losses. Names follow the PPO and GAE papers."""

from __future__ import annotations

import torch
from torch import Tensor


def gae(
    rewards: Tensor, values: Tensor, dones: Tensor, next_value: Tensor, gamma: float, gae_lambda: float
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimates and returns over ``[T, N]`` steps of N envs.

    ``dones[t]`` marks a step that ended its episode (nothing is bootstrapped past it); ``next_value`` is
    ``V`` of the state after the last step. Returns ``(advantages, returns = advantages + values)``.
    """
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(next_value)
    for t in reversed(range(len(rewards))):
        following = next_value if t == len(rewards) - 1 else values[t + 1]
        live = 1.0 - dones[t].to(rewards.dtype)
        delta = rewards[t] + gamma * following * live - values[t]
        last = delta + gamma * gae_lambda * live * last
        advantages[t] = last
    return advantages, advantages + values


def whiten(x: Tensor, population: Tensor, eps: float = 1e-8) -> Tensor:
    """``x`` shifted and scaled by the mean and standard deviation of ``population`` (e.g. every process's batch)."""
    return (x - population.mean()) / (population.std() + eps)


def explained_variance(predicted: Tensor, target: Tensor) -> float:
    """``1 - Var[target - predicted] / Var[target]``: 1 is perfect, 0 no better than the mean (nan if constant)."""
    variance = target.var()
    return float("nan") if variance == 0 else float(1 - (target - predicted).var() / variance)


def policy_loss(logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, clip_coef: float) -> tuple[Tensor, Tensor, Tensor]:
    """PPO's clipped surrogate loss, with the approximate KL (k3) to the old policy and the clipped fraction."""
    log_ratio = logprobs - old_logprobs
    ratio = log_ratio.exp()
    loss = torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - clip_coef, 1 + clip_coef)).mean()
    with torch.no_grad():
        approx_kl = ((ratio - 1) - log_ratio).mean()
        clip_fraction = ((ratio - 1).abs() > clip_coef).float().mean()
    return loss, approx_kl, clip_fraction


def value_loss(values: Tensor, old_values: Tensor, returns: Tensor, clip_coef: float | None) -> Tensor:
    """Half the squared error to the returns; with ``clip_coef``, the worse of it and the clipped one (CleanRL)."""
    unclipped = (values - returns) ** 2
    if clip_coef is None:
        return 0.5 * unclipped.mean()
    clipped = (old_values + (values - old_values).clamp(-clip_coef, clip_coef) - returns) ** 2
    return 0.5 * torch.max(unclipped, clipped).mean()
