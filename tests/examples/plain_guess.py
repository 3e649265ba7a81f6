"""PlainGuess: a text game written on ``gymnasium.Env`` directly (no textgym base class), as a wrapper
around someone else's game would be. ``textgym check plain_guess:plain/Guess-v0`` checks it."""

from __future__ import annotations

import string
from typing import Any

import gymnasium as gym
from gymnasium import spaces

GUESSES = ["1", "2", "3", "4"]


class PlainGuessEnv(gym.Env):
    """Guess a secret number from 1 to 4; each wrong guess says higher or lower."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, render_mode: str | None = None) -> None:
        self.observation_space = spaces.Text(200, charset=string.printable)
        self.action_space = spaces.Text(8, charset=string.printable)
        self.render_mode = render_mode
        self.secret, self.view = 1, ""

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        self.secret = int(self.np_random.integers(1, 5))
        self.view = "Guess a number from 1 to 4."
        return self.view, {"valid_actions": list(GUESSES)}

    def feedback(self, guess: int) -> str:
        return "Higher." if guess < self.secret else "Lower."

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if action.strip() not in GUESSES:
            self.view = "Invalid action: answer 1, 2, 3 or 4."
            return self.view, 0.0, False, False, {"valid_actions": list(GUESSES), "invalid_action": True}
        guess = int(action)
        won = guess == self.secret
        self.view = "Right!" if won else self.feedback(guess)
        return self.view, float(won), won, False, {"valid_actions": [] if won else list(GUESSES)}

    def render(self) -> str | None:
        return self.view if self.render_mode == "ansi" else None


gym.register("plain/Guess-v0", entry_point="plain_guess:PlainGuessEnv", max_episode_steps=10)
