"""Prompts of the LLM policy: the env's fixed instructions, then a bounded window of turns and the observation.

A prompt is split where the chat template puts the user's message: the part before it (the system turn with
the env's instructions) is the same all episode long, so the policy encodes it once into a KV cache; only the
dynamic part (history, observation, the template's closing tokens) runs for each state.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # recording prompts (textgym collect) needs no transformers
    from transformers import PreTrainedTokenizerBase

_SLOT = "\x00user message\x00"


@dataclass(frozen=True)
class Prompt:
    """What the policy sees in one state; hashable, so that equal states share one forward pass."""

    instructions: str
    """The env's ``info["instructions"]`` from the episode's reset."""
    text: str
    """The user's message: earlier turns (if any) and the observation."""
    actions: tuple[str, ...]
    """The valid actions (the candidates in score mode)."""

    def messages(self) -> list[dict[str, str]]:
        """The chat the template renders: the instructions as the system turn, the text as the user turn."""
        return [{"role": "system", "content": self.instructions}, {"role": "user", "content": self.text}]


class ChatFormat:
    """The tokenizer's chat template, cut into a fixed prefix and a dynamic part.

    ``prefix(instructions)`` is the template up to the user's message (system turn included);
    ``dynamic(text)`` is the user's message with what closes it and opens the assistant's answer.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        if tokenizer.chat_template is None:
            raise ValueError("the tokenizer has no chat template; set tokenizer.chat_template (e.g. a ChatML one)")
        self.tokenizer = tokenizer
        rendered = self._render("")
        if rendered.count(_SLOT) != 1:
            raise ValueError("the chat template must show the user's message exactly once")
        self.suffix = rendered.split(_SLOT)[1]

    def _render(self, instructions: str) -> str:
        messages = Prompt(instructions, _SLOT, ()).messages()
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def prefix(self, instructions: str) -> str:
        """The template text before the user's message."""
        return self._render(instructions).split(_SLOT)[0]

    def dynamic(self, text: str) -> str:
        """The user's message and the template text after it (the assistant's answer starts next)."""
        return text + self.suffix


class History:
    """Per vector-env slot: the instructions and the last ``window`` turns of the running episode.

    A slot whose ``info`` carries ``instructions`` has just been reset, and its history starts afresh.
    """

    def __init__(self, window: int) -> None:
        self.instructions: dict[int, str] = {}
        self.turns: dict[int, deque[tuple[str, str]]] = {}
        self.pending: dict[int, str] = {}
        self.window = window

    def prompts(self, observations: Sequence[str], infos: Sequence[Mapping[str, Any]]) -> list[Prompt]:
        """The prompt of each slot; the observations wait for :meth:`record` to become turns."""
        prompts = []
        for slot, (observation, info) in enumerate(zip(observations, infos)):
            if "instructions" in info or slot not in self.instructions:
                self.instructions[slot] = str(info.get("instructions", ""))
                self.turns[slot] = deque(maxlen=self.window)
            actions = tuple(info.get("valid_actions", ()))
            if not actions:
                raise ValueError(f"slot {slot} has no info['valid_actions']; the LLM policy chooses among them")
            text = "".join(f"{seen}\nYou answered: {answer}\n\n" for seen, answer in self.turns[slot]) + observation
            prompts.append(Prompt(self.instructions[slot], text, actions))
            self.pending[slot] = observation
        return prompts

    def record(self, actions: Sequence[str]) -> None:
        """Note the actions taken in the states of the last :meth:`prompts` call."""
        for slot, action in enumerate(actions):
            self.turns[slot].append((self.pending[slot], action))
