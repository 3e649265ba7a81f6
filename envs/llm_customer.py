"""A CustomerService customer played by a transformers chat model (SmolLM2-135M-Instruct by default).

Swap it in for the rule-based customer::

    env = gym.make("textgym/CustomerService-v0", customer=LLMCustomer("HuggingFaceTB/SmolLM2-360M-Instruct"))

or from Hydra: ``textgym train env=customer_service_llm``. The env, not the customer, judges whether a
request was answered, so the reward means the same with either customer. Generation is sampled with a
seed drawn from the env's generator, so a seeded episode replays exactly.

Measured: SmolLM2-135M-Instruct is too small to play the part. Over a seeded episode it talked like a
support assistant and never gave its email when asked, so the oracle could not verify the customer.
Each reply took 30–70 s, with the machine's 2 cores shared by other jobs. Use a larger chat model for
a believable customer; the rule-based customer stays the default.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from textgym.envs.base import PRINTABLE
from textgym.envs.customer_service import Customer
from textgym.envs.customer_service_data import Persona, Request, RequestKind

WANTS = {
    RequestKind.TRACK: "to know where order {order_id} is",
    RequestKind.CANCEL: "to cancel order {order_id}",
    RequestKind.REFUND: "a refund for order {order_id}",
    RequestKind.EXCHANGE: "to exchange the {item} in order {order_id} for a {new_item}",
    RequestKind.CHANGE_ADDRESS: "to change the shipping address of order {order_id} to {address}",
}


def describe_request(request: Request) -> str:
    """The request in the customer's own words, with the amount they demand if they over-ask."""
    want = WANTS[request.kind].format(**vars(request))
    return want + (f" of ${request.amount / 100:.2f}" if request.amount is not None else "")


def writing_prompt(persona: Persona, focus: int, turns: list[tuple[str, str]]) -> str:
    """Ask the model to write the customer's next message.

    A small instruct model plays "the assistant" when told to be the customer; asked to *write* the
    customer's message from the facts and the chat so far, it stays in role far more often.
    """
    wants = "; then ".join(describe_request(r) for r in persona.requests[focus:]) or "nothing more: they say thanks and goodbye"
    chat = "\n".join(f"{who}: {text}" for who, text in turns[-6:])
    return (
        f"{persona.name} is a customer of an online store, chatting with its support agent. Their email is "
        f"{persona.email} and their zip code is {persona.zip_code}. They want {wants}. They give their email, zip "
        "code, order id or other details only when the agent asks for them, and invent nothing else.\n\n"
        f"The chat so far:\n{chat}\n\nWrite {persona.name}'s next message: one or two short sentences, "
        "the message only."
    )


@cache
def _load(model: str) -> tuple[Any, Any]:
    from textgym.models import load_causal_lm  # heavy: torch and transformers

    return load_causal_lm(model)


class LLMCustomer(Customer):
    """A customer whose messages a causal chat LM writes from the persona (any name or local path).

    The model is loaded on first use and shared by every customer with the same ``model`` in the process;
    copies and pickles of the env do not carry it.
    """

    def __init__(self, model: str = "SmolLM2-135M-Instruct", max_new_tokens: int = 40, temperature: float = 0.7) -> None:
        if max_new_tokens < 1 or temperature <= 0:
            raise ValueError(f"need max_new_tokens >= 1 and temperature > 0, got {max_new_tokens}, {temperature}")
        self.model, self.max_new_tokens, self.temperature = model, max_new_tokens, temperature
        self.turns: list[tuple[str, str]] = []

    def start(self, persona: Persona, rng: np.random.Generator) -> str:
        self.persona, self.seed, self.turns = persona, int(rng.integers(2**31)), []
        opening = "Hello, this is the store's support chat. How can I help you?"
        if persona.ambiguous:
            opening = "Hello, this is the store's support chat."
        return self._say(opening, focus=0)

    def reply(self, message: str, focus: int) -> str:
        return self._say(message, focus)

    def _say(self, agent_message: str, focus: int) -> str:
        import torch

        model, tokenizer = _load(self.model)
        self.turns.append(("Agent", agent_message))
        messages = [{"role": "user", "content": writing_prompt(self.persona, focus, self.turns)}]
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(self.seed + len(self.turns))
            output = model.generate(
                **prompt, max_new_tokens=self.max_new_tokens, do_sample=True, temperature=self.temperature,
                pad_token_id=tokenizer.pad_token_id,
            )
        text = tokenizer.decode(output[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)
        text = " ".join("".join(c for c in text if c in PRINTABLE).split()).strip('"') or "Sorry, could you say that again?"
        self.turns.append(("Customer", text))
        return text
