"""textgym: Gymnasium text environments, LLM and classic policies, and RL algorithms for LLM agents.

``import textgym`` registers every environment, so ``gymnasium.make("textgym/FrozenLake-v0")``
works after it; in a fresh interpreter ``gymnasium.make("textgym:textgym/FrozenLake-v0")`` imports
textgym first.
"""

import textgym.envs  # noqa: F401 - registers the environments

__version__ = "0.1.0"
