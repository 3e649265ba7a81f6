"""Text → vector features and valid actions → Discrete: fixed, stable, checkable by SB3, never crashing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.env_util import make_vec_env

from textgym.envs.features import HashedNgrams, SentenceEmbedding, make_features
from textgym.envs.frozen_lake import DIRECTIONS
from textgym.envs.wrappers import NO_SUCH_ACTION, ActionIndex, DiscreteActions, TextToVector


def frozen_lake_views() -> list[str]:
    """The observation after moving into each of the 16 cells (and the reset one)."""
    env = gym.make("textgym/FrozenLake-v0", desc=["SFFF", "FFFF", "FFFF", "FFFG"], is_slippery=False)
    views = [env.reset(seed=0)[0]]
    for row in range(4):
        env.reset(seed=0)
        for _ in range(row):
            env.step("down")
        for _ in range(3):
            views.append(env.step("right")[0])
    return views


def test_hashed_ngrams_fixed_size_unit_norm_and_distinct() -> None:
    features = HashedNgrams(dim=256)
    views = frozen_lake_views()
    vectors = features(views)
    assert vectors.shape == (len(views), 256) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert np.abs(vectors).max() <= 1.0
    cosine = vectors @ vectors.T
    assert cosine[~np.eye(len(views), dtype=bool)].max() < 0.99  # every state is told apart
    assert not features([""]).any() and features([]).shape == (0, 256)


def test_hashed_ngrams_same_in_every_process() -> None:
    text = "8 is too low: the number is higher.\nThe number is between 9 and 16. 5 guesses left."
    code = (f"from textgym.envs.features import HashedNgrams; import json; "
            f"print(json.dumps(HashedNgrams(dim=64)([{text!r}])[0].tolist()))")
    for hash_seed in ("1", "2"):
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": hash_seed})
        np.testing.assert_array_equal(np.array(json.loads(run.stdout), np.float32), HashedNgrams(dim=64)([text])[0])


def test_families_count_and_memo_is_bounded() -> None:
    words_only = HashedNgrams(dim=64, char_ngrams=[], cache_size=2)
    assert np.array_equal(words_only(["Row 1"]), words_only(["row 1"]))  # lower-cased words
    assert not np.array_equal(words_only(["row 1"]), words_only(["1 row"]))  # bigrams keep word order
    chars_only = HashedNgrams(dim=64, word_ngrams=[])
    assert not np.array_equal(chars_only(["S@FF\nFHFH"]), chars_only(["SF@F\nFHFH"]))  # layout counts
    words_only(["a", "b", "c", "a"])
    assert len(words_only._memo) == 2
    uncached = HashedNgrams(dim=64, char_ngrams=[], cache_size=0)
    assert np.array_equal(uncached(["a", "b"]), words_only(["a", "b"])) and not uncached._memo


def test_feature_config_errors_and_round_trip() -> None:
    with pytest.raises(ValueError, match="word_ngrams"):
        HashedNgrams(word_ngrams=[2, 1])
    with pytest.raises(ValueError, match="both empty"):
        HashedNgrams(word_ngrams=[], char_ngrams=[])
    features = HashedNgrams(dim=32, word_ngrams=[1, 3], lowercase=False)
    rebuilt = make_features(json.loads(json.dumps(features.config())))
    assert rebuilt == features and np.array_equal(rebuilt(["Go left"]), features(["Go left"]))


def wrapped(env_id: str, features=None) -> DiscreteActions:
    env = gym.make(env_id)
    _, info = env.reset(seed=0)
    return DiscreteActions(TextToVector(env, features or HashedNgrams(dim=128)),
                           ActionIndex.positional(len(info["valid_actions"])))


def test_sb3_check_env_passes(env_id: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SB3's checker reports problems as warnings
        check_env(wrapped(env_id))


def test_invalid_indices_reach_the_env_as_invalid_actions() -> None:
    vocabulary = [*DIRECTIONS, "fly"]  # "fly" is never valid: always masked
    env = DiscreteActions(TextToVector(gym.make("textgym/FrozenLake-v0", is_slippery=False, render_mode="ansi")),
                          ActionIndex.from_vocabulary(vocabulary))
    env.reset(seed=0)
    assert env.action_masks().tolist() == [True, True, True, True, False]
    weight = env.unwrapped.reward.invalid_action
    for index, shown in [(4, "'fly'"), (5, "'<no action 5>'"), (-1, "'<no action -1>'"), (np.int64(99), "99"),
                         (np.array(7), "7")]:
        _, reward, terminated, truncated, info = env.step(index)
        assert env.render().startswith("Invalid action") and shown in env.render().splitlines()[0]
        assert info["reward_terms"]["invalid_action"] == weight and not (terminated or truncated)
    assert info["invalid_actions"] == 5 and info["state"] == 0
    _, _, _, _, info = env.step(2)  # "right": a valid move
    assert "invalid_action" not in info["reward_terms"] and info["state"] == 1


def test_positional_index() -> None:
    index = ActionIndex.positional(3)
    assert index.mask(["a", "b"]).tolist() == [True, True, False]
    assert index.action(1, ["a", "b"]) == "b"
    assert index.action(2, ["a", "b"]) == NO_SUCH_ACTION.format(index=2)
    assert index.mask([]).tolist() == [True, True, True]  # no valid action: every index is (equally) invalid
    with pytest.raises(ValueError, match="distinct"):
        ActionIndex.from_vocabulary(["a", "a"])


def test_masks_reach_maskable_ppo_through_vec_envs() -> None:
    venv = make_vec_env(lambda: wrapped("textgym/TicTacToe-v0"), n_envs=2, seed=0)
    assert is_masking_supported(venv)
    masks = get_action_masks(venv)
    assert masks.shape == (2, 9) and masks.all()
    env = wrapped("textgym/FrozenLake-v0")
    env.reset(seed=0)
    assert get_action_masks(env).tolist() == [True] * 4


# ---- frozen sentence embeddings: a tiny random BERT and a tokenizer built here (no hub) -----------------

@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A directory with a 2-layer random BERT and a word-level tokenizer over FrozenLake's words."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    words = sorted({w for view in frozen_lake_views() for w in view.lower().replace(".", " . ").replace(",", " , ").split()})
    vocab = {token: i for i, token in enumerate(special + words)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]",
                                   cls_token="[CLS]", sep_token="[SEP]")
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=64, max_position_embeddings=128))
    directory = tmp_path_factory.mktemp("tiny_bert")
    fast.save_pretrained(directory)
    model.save_pretrained(directory)
    return str(directory)


def test_sentence_embedding_features(tiny_encoder: str) -> None:
    features = SentenceEmbedding(tiny_encoder, max_length=64)
    views = frozen_lake_views()
    vectors = features(views)
    assert features.dim == 32 and vectors.shape == (len(views), 32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert len({v.tobytes() for v in vectors}) == len(views)  # states stay apart
    batched_one_by_one = np.concatenate([SentenceEmbedding(tiny_encoder, max_length=64)([v]) for v in views[:3]])
    np.testing.assert_allclose(batched_one_by_one, vectors[:3], atol=1e-5)  # padding does not leak into the mean
    cls = SentenceEmbedding(tiny_encoder, pooling="cls")
    assert not np.allclose(cls(views[:1]), vectors[:1])
    assert make_features(features.config()) == features


def test_sb3_check_env_passes_with_embeddings(tiny_encoder: str) -> None:
    check_env(wrapped("textgym/FrozenLake-v0", SentenceEmbedding(tiny_encoder)))
