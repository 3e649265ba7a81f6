"""A tiny random Llama and a byte-level BPE tokenizer trained here on env texts: LLM tests without a hub."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

import textgym  # noqa: F401 - registers the envs

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def env_texts(env_id: str, episodes: int = 30, **kwargs) -> list[str]:
    """Instructions, observations and actions of random episodes."""
    env, rng, texts = gym.make(env_id, **kwargs), np.random.default_rng(0), []
    for episode in range(episodes):
        observation, info = env.reset(seed=episode)
        texts += [info["instructions"], observation]
        done = False
        while not done:
            action = str(rng.choice(info["valid_actions"]))
            observation, _, terminated, truncated, info = env.step(action)
            texts += [action, observation]
            done = terminated or truncated
    return texts


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = env_texts("textgym/FrozenLake-v0", is_slippery=False) + env_texts("textgym/GuessNumber-v0")
    tokenizer.train_from_iterator(corpus + ["You answered: "] * 5, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<|im_end|>", unk_token="<|endoftext|>")
    fast.chat_template = CHATML
    return fast


def tiny_model(tokenizer: PreTrainedTokenizerFast, layers: int = 2, hidden: int = 64, seed: int = 0) -> LlamaForCausalLM:
    """Random weights with a wide init (std 0.2): at the usual 0.02, attention is so flat that the last
    token barely sees which state the prompt describes, and LoRA cannot tell the states apart."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True,
        initializer_range=0.2,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config).eval()


def learnable_end(model: LlamaForCausalLM, seed: int = 0) -> LlamaForCausalLM:
    """``model`` with a random embedding of the pad token (here the end token): ``nn.Embedding(padding_idx=...)``
    zeroes it, and with tied embeddings the end token's logit is then 0 in every state, so that a model whose
    embeddings are frozen (LoRA) could never learn when to stop writing."""
    torch.manual_seed(seed)
    with torch.no_grad():
        model.get_input_embeddings().weight[model.config.pad_token_id].normal_(0, model.config.initializer_range)
    return model


def save_tiny(directory: Path, layers: int = 2) -> Path:
    """A tiny model and tokenizer saved where ``policy.model=<directory>`` loads them."""
    tokenizer = tiny_tokenizer()
    tiny_model(tokenizer, layers).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def move_adapters(policy, seed: int = 1, std: float = 0.3) -> None:
    """Random non-zero LoRA ``B`` matrices, so that the adapted policy differs from its base model."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in policy.lm.named_parameters():
            if "lora_B" in name:
                p.normal_(0, std)


def demonstrator_agreement(policy, data: Path) -> float:
    """The share of a collected dataset's turns where the LLM policy's greedy action is the recorded one."""
    from textgym.algorithms.imitation import recorded_turns
    from textgym.algorithms.trajectories import load_trajectories

    dataset, _ = load_trajectories(data)
    examples = recorded_turns(dataset, history=0)
    with torch.no_grad():
        acted = [policy.decide([p.text], [{"valid_actions": list(p.actions), "instructions": p.instructions}],
                               greedy=True).actions[0] for p, _ in examples]
    return sum(a == b for a, (_, b) in zip(acted, examples)) / len(examples)
