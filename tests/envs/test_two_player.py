"""Two-player games: PettingZoo's own API and seed tests on every AEC env, exact values, opponents as policies."""

from __future__ import annotations

import warnings
from collections import Counter

import gymnasium as gym
import numpy as np
import pytest
from episodes import oracle, play, random_valid
from pettingzoo.test import api_test, seed_test

from textgym.envs import connect_four, kuhn_poker, nim, tic_tac_toe
from textgym.envs.mdp import Objective, solve, start_value
from textgym.envs.two_player import TextActions

GAMES = {"tic_tac_toe": tic_tac_toe, "connect_four": connect_four, "kuhn_poker": kuhn_poker, "nim": nim}
SINGLE = {"tic_tac_toe": "textgym/TicTacToe-v0", "connect_four": "textgym/ConnectFour-v0",
          "kuhn_poker": "textgym/KuhnPoker-v0", "nim": "textgym/Nim-v0"}


@pytest.fixture(params=sorted(GAMES))
def game(request: pytest.FixtureRequest) -> str:
    return request.param


def test_pettingzoo_api_test(game: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its advice to use Box/Discrete spaces: ours are text
        api_test(GAMES[game].aec_env(), num_cycles=1000)


def test_pettingzoo_seed_test(game: str) -> None:
    seed_test(GAMES[game].aec_env, num_cycles=500)


def test_max_cycles_truncates_every_player(game: str) -> None:
    """PettingZoo's max_cycles_test needs a parallel env, which a turn-based game is not; this is its AEC half."""
    env = GAMES[game].aec_env(max_cycles=2)
    env.reset(seed=0)
    steps = 0
    for _ in env.agent_iter():
        *_, terminated, truncated, _ = env.last()
        env.step(None if terminated or truncated else "not a move")  # invalid: the game never ends by itself
        steps += 1
    assert steps == 4 + 2  # two cycles of two players, then each one's final None step


def test_text_actions_sample_from_the_mask() -> None:
    space = TextActions(("a", "b", "c"), seed=0)
    assert {space.sample(np.array([0, 1, 1], dtype=np.int8)) for _ in range(50)} == {"b", "c"}
    assert isinstance(space.sample(), str)


class Recorder:
    """A random opponent that logs its moves into a shared list."""

    def __init__(self, moves: list[str], rng: np.random.Generator) -> None:
        self.moves, self.rng = moves, rng

    def act(self, observations: list[str], infos: list[dict]) -> list[str]:
        self.moves.append(str(self.rng.choice(infos[0]["valid_actions"])))
        return [self.moves[-1]]


def test_aec_and_single_agent_env_agree(game: str) -> None:
    """The moves of a single-agent game, replayed in the AEC env from the same seed, end with the same payoff:
    one Game serves both."""
    rng = np.random.default_rng(0)
    for seed in range(20):
        moves: list[str] = []
        single = gym.make(SINGLE[game], opponent=Recorder(moves, rng))
        _, info = single.reset(seed=seed)
        while info["valid_actions"]:
            moves.append(str(rng.choice(info["valid_actions"])))
            *_, info = single.step(moves[-1])
        aec = GAMES[game].aec_env()
        aec.reset(seed=seed)  # the same deal: both draw it first from the same seed
        for move in moves:
            aec.step(move)
        payoff = single.unwrapped.game.seat_payoff(single.unwrapped.state, 0)
        assert aec.unwrapped.state == single.unwrapped.state
        assert aec.rewards == {"player_0": payoff, "player_1": -payoff} and all(aec.terminations.values())


def test_observations_are_text_with_a_mask(game: str) -> None:
    env = GAMES[game].aec_env()
    env.reset(seed=0)
    observation, _, _, _, info = env.last()
    assert isinstance(observation["text"], str) and observation["text"]
    legal = [a for a, allowed in zip(env.unwrapped.game.actions, observation["action_mask"]) if allowed]
    assert legal == info["valid_actions"]
    env.step("surely not a move")
    observation, reward, *_ = env.last()
    assert observation["text"].startswith("Invalid action") and reward == -0.1


# ---- exact values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("first_player", "value"),
                         [("agent", kuhn_poker.GAME_VALUE), ("opponent", -kuhn_poker.GAME_VALUE)])
def test_kuhn_poker_value_is_minus_one_eighteenth(first_player: str, value: float) -> None:
    """Best play against the equilibrium earns exactly the game's value, from either seat: -1/18 for the
    first player, +1/18 for the second. Together they pin the value (a min-max sandwich)."""
    env = gym.make("textgym/KuhnPokerEquilibrium-v0", first_player=first_player)
    mdp = env.unwrapped.tabular_mdp()
    assert start_value(mdp, solve(mdp)) == pytest.approx(value, abs=1e-12)


def test_kuhn_oracle_exploits_a_random_opponent_and_random_play_loses() -> None:
    env = gym.make("textgym/KuhnPoker-v0")
    mdp = env.unwrapped.tabular_mdp()
    best = start_value(mdp, solve(mdp))
    assert best == pytest.approx(0.5, abs=1e-12)
    oracle_chips = np.mean([play(env, seed, oracle)[-1].reward for seed in range(3000)])
    assert abs(oracle_chips - best) < 0.08
    versus_equilibrium = gym.make("textgym/KuhnPokerEquilibrium-v0")
    mdp = versus_equilibrium.unwrapped.tabular_mdp()
    uniform = [np.full(len(actions), 1 / len(actions)) if actions else np.zeros(0) for actions in mdp.actions]
    exact = start_value(mdp, solve(mdp, policy=uniform))
    assert exact < kuhn_poker.GAME_VALUE - 0.05  # random play is exploited by the equilibrium
    rng = np.random.default_rng(0)
    random_chips = np.mean([play(versus_equilibrium, seed, random_valid(rng))[-1].reward for seed in range(3000)])
    assert abs(random_chips - exact) < 0.08


def test_kuhn_hides_the_opponents_card_until_a_showdown() -> None:
    env = gym.make("textgym/KuhnPoker-v0")
    observation, info = env.reset(seed=1)
    hidden = set(kuhn_poker.CARDS) - {info["state"].card}
    assert info["state"].card in observation and not any(f"card: {c}" in observation for c in hidden)


def test_connect_four_is_a_draw_and_the_oracle_never_loses() -> None:
    assert connect_four.GAME.negamax((connect_four.EMPTY * 16, 0)) == 0
    env = gym.make("textgym/ConnectFourMinimax-v0", first_player="random")
    assert Counter(play(env, seed, oracle)[-1].info["outcome"] for seed in range(20)) == {"draw": 20}
    versus_random = gym.make("textgym/ConnectFour-v0")
    outcomes = Counter(play(versus_random, seed, oracle)[-1].info["outcome"] for seed in range(100))
    assert outcomes["loss"] == 0 and outcomes["win"] >= 60  # measured 70 of 100 (minimax expects perfect replies)


def test_connect_four_tabular_mdp_matches_sampling() -> None:
    from textgym.envs.checker import check_tabular_mdp

    check_tabular_mdp("textgym/ConnectFour-v0", seed=0, samples=5000)
    mdp = gym.make("textgym/ConnectFourMinimax-v0").unwrapped.tabular_mdp()
    assert start_value(mdp, solve(mdp, objective=Objective.success)) == 0.0  # no win against perfect play


@pytest.mark.parametrize("env_id", ["textgym/KuhnPoker-v0", "textgym/KuhnPokerEquilibrium-v0"])
def test_kuhn_tabular_mdp_matches_sampling(env_id: str) -> None:
    from textgym.envs.checker import check_tabular_mdp

    check_tabular_mdp(env_id, seed=0)


# ---- opponents that are policies -------------------------------------------------------------------------


class FirstListed:
    """A policy that always plays the first valid action (and says what it was asked)."""

    def __init__(self) -> None:
        self.asked: list[dict] = []

    def act(self, observations: list[str], infos: list[dict]) -> list[str]:
        self.asked.append(infos[0])
        return [infos[0]["valid_actions"][0] for _ in infos]


class Babbler:
    def act(self, observations: list[str], infos: list[dict]) -> list[str]:
        return ["I fold? no wait" for _ in infos]


def test_any_policy_can_be_the_opponent() -> None:
    opponent = FirstListed()
    env = gym.make("textgym/TicTacToe-v0", opponent=opponent)
    steps = play(env, 0, lambda env, info: info["valid_actions"][-1])
    assert steps[0].info["state"][0] == "O"  # O took a1, the first empty cell
    assert opponent.asked and opponent.asked[0]["instructions"].startswith("You play tic-tac-toe as O")
    assert env.unwrapped.tabular_mdp is None  # no ground truth against a policy


def test_an_opponents_invalid_move_is_replaced_and_counted() -> None:
    env = gym.make("textgym/KuhnPoker-v0", opponent=Babbler(), first_player="opponent")
    _, info = env.reset(seed=0)
    assert info["opponent_invalid"] == 1 and info["valid_actions"]


def test_bad_opponent_is_named() -> None:
    with pytest.raises(ValueError, match=r"opponent='perfect' is not supported; use one of \['random', 'minimax'\]"):
        gym.make("textgym/ConnectFour-v0", opponent="perfect")
    with pytest.raises(TypeError, match="act\\(observations, infos\\)"):
        gym.make("textgym/ConnectFour-v0", opponent=3)


def test_nim_is_solved_by_leaving_multiples_of_four() -> None:
    assert [nim.GAME.best_moves(nim.State(n, 0)) for n in (5, 6, 7)] == [("1",), ("2",), ("3",)]
    env = gym.make("textgym/NimMinimax-v0")
    mdp = env.unwrapped.tabular_mdp()
    assert start_value(mdp, solve(mdp)) == pytest.approx(6 / 8)  # heaps 8 and 12 are lost for the first player
    assert Counter(play(env, seed, oracle)[-1].info["outcome"] for seed in range(200))["win"] / 200 == pytest.approx(
        0.75, abs=0.08)
