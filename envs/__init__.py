"""textgym's environments. Importing this package registers every env under ``textgym/``.

Each line below is the one registration line of an env: a lazy ``module:Class`` entry point,
Gymnasium's step limit and, where known, the return that counts as solved.
"""

from gymnasium.envs.registration import register

from textgym.envs.base import InvalidAction, Outcome, RewardSpec, TextEnv

__all__ = ["InvalidAction", "Outcome", "RewardSpec", "TextEnv"]

register("textgym/FrozenLake-v0", "textgym.envs.frozen_lake:FrozenLakeEnv", max_episode_steps=100, reward_threshold=0.70)
register("textgym/FrozenLake8x8-v0", "textgym.envs.frozen_lake:FrozenLakeEnv", max_episode_steps=200, reward_threshold=0.85, kwargs={"map_name": "8x8"})
register("textgym/GuessNumber-v0", "textgym.envs.guess_number:GuessNumberEnv", max_episode_steps=50, reward_threshold=0.95)
register("textgym/GuessNumber8-v0", "textgym.envs.guess_number:GuessNumberEnv", max_episode_steps=50, reward_threshold=0.95, kwargs={"high": 8, "max_guesses": 4})
register("textgym/Wordle-v0", "textgym.envs.wordle:WordleEnv", max_episode_steps=50, reward_threshold=0.9)
register("textgym/WordleEasy-v0", "textgym.envs.wordle:WordleEnv", max_episode_steps=50, reward_threshold=0.9, kwargs={"num_answers": 140})
register("textgym/TicTacToe-v0", "textgym.envs.tic_tac_toe:TicTacToeEnv", max_episode_steps=50)
register("textgym/TicTacToeMinimax-v0", "textgym.envs.tic_tac_toe:TicTacToeEnv", max_episode_steps=50, kwargs={"opponent": "minimax"})
register("textgym/ConnectFour-v0", "textgym.envs.connect_four:ConnectFourEnv", max_episode_steps=50)
register("textgym/ConnectFourMinimax-v0", "textgym.envs.connect_four:ConnectFourEnv", max_episode_steps=50, kwargs={"opponent": "minimax"})
register("textgym/KuhnPoker-v0", "textgym.envs.kuhn_poker:KuhnPokerEnv", max_episode_steps=20)
register("textgym/KuhnPokerEquilibrium-v0", "textgym.envs.kuhn_poker:KuhnPokerEnv", max_episode_steps=20, kwargs={"opponent": "equilibrium"})
register("textgym/Nim-v0", "textgym.envs.nim:NimEnv", max_episode_steps=30)
register("textgym/NimMinimax-v0", "textgym.envs.nim:NimEnv", max_episode_steps=30, kwargs={"opponent": "minimax"})
register("textgym/TwentyQuestions-v0", "textgym.envs.twenty_questions:TwentyQuestionsEnv", max_episode_steps=60)
register("textgym/TwentyQuestionsEasy-v0", "textgym.envs.twenty_questions:TwentyQuestionsEnv", max_episode_steps=30, kwargs={"num_objects": 16, "max_questions": 10})
register("textgym/BlocksWorld-v0", "textgym.envs.blocks_world:BlocksWorldEnv", max_episode_steps=50, reward_threshold=1.0)
register("textgym/BlocksWorld6-v0", "textgym.envs.blocks_world:BlocksWorldEnv", max_episode_steps=50, reward_threshold=1.0, kwargs={"num_blocks": 6})
register("textgym/Scheduling-v0", "textgym.envs.scheduling:SchedulingEnv", max_episode_steps=50)
register("textgym/SchedulingHard-v0", "textgym.envs.scheduling:SchedulingEnv", max_episode_steps=50, kwargs={"num_people": 5, "days": 5, "preferences": 2})
register("textgym/CustomerService-v0", "textgym.envs.customer_service:CustomerServiceEnv", max_episode_steps=60, reward_threshold=0.8)
register("textgym/CustomerServiceHard-v0", "textgym.envs.customer_service:CustomerServiceEnv", max_episode_steps=60, reward_threshold=0.8, kwargs={"num_orders": 5, "num_requests": 2, "forbidden_rate": 0.5, "ambiguous_opening": True})
register("textgym/CustomerServiceInsistent-v0", "textgym.envs.customer_service:CustomerServiceEnv", max_episode_steps=60, reward_threshold=0.8, kwargs={"customer": "insistent", "forbidden_rate": 0.5})
register("textgym/CustomerServiceImpostor-v0", "textgym.envs.customer_service:CustomerServiceEnv", max_episode_steps=60, reward_threshold=0.8, kwargs={"customer": "impostor", "forbidden_rate": 0.5})
register("textgym/CustomerServiceInjection-v0", "textgym.envs.customer_service:CustomerServiceEnv", max_episode_steps=60, reward_threshold=0.8, kwargs={"customer": "injector", "forbidden_rate": 0.5})
register("textgym/CustomerServiceTypos-v0", "textgym.envs.customer_service:CustomerServiceEnv", max_episode_steps=60, reward_threshold=0.8, kwargs={"customer": "typos", "forbidden_rate": 0.5})
register("textgym/Remote-v0", "textgym.integrations.remote:RemoteEnv")  # a served env (textgym serve); needs textgym[serve]
