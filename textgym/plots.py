"""Figures a run writes next to its results."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the headless backend


def plot_learning_curve(rows: list[tuple[int, dict[str, float]]], path: Path) -> None:
    """Success rate, and where known ``q_error`` and ``regret``, against training episodes."""
    keys = [k for k in ("success_rate", "q_error", "regret") if rows and k in rows[0][1]]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.5), squeeze=False)
    episodes = [episode for episode, _ in rows]
    for ax, key in zip(axes[0], keys):
        ax.plot(episodes, [metrics[key] for _, metrics in rows], marker="o", markersize=3)
        ax.set_xlabel("training episodes")
        ax.set_title({"q_error": "max |Q - Q*|", "regret": "regret V*(start) - V(start)"}.get(key, key))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
