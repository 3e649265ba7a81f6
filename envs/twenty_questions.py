"""Twenty Questions: find a secret everyday object with yes/no questions."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, NamedTuple

from textgym.envs.base import InvalidAction, Outcome, RewardSpec, TextEnv

DATA_FILE = "twenty_questions.json"
"""In ``envs/data/``: ``{"questions": {attribute: question}, "objects": {name: [true attributes]}}``."""
ACTION_PATTERN = re.compile(r"(ask|guess)\b\s*:?\s*(.*)", re.DOTALL)
ARTICLE = re.compile(r"^(?:a|an|the) ")
SYNTAX_HINT = "write 'ask: ' and a listed question or 'guess: ' and an object, e.g. 'ask: is it alive?'"


class Table(NamedTuple):
    """The objects and their yes/no attributes, as loaded from :data:`DATA_FILE`."""

    attributes: tuple[str, ...]
    questions: tuple[str, ...]
    """The question of each attribute, e.g. ``"is it alive?"``."""
    objects: tuple[str, ...]
    """Object names, sorted."""
    signatures: tuple[int, ...]
    """For each object, a bit mask whose bit ``i`` is set when attribute ``i`` is true of it."""
    question_index: dict[str, int]
    """Normalised question text, and attribute name, to attribute index."""
    object_index: dict[str, int]


def normalise(text: str) -> str:
    """Lower case, single spaces, no trailing punctuation: the form questions and guesses match in."""
    return " ".join(text.lower().split()).rstrip("?!. ")


@functools.cache
def load_table() -> Table:
    """The shipped table, read and checked once; every object must have a unique set of attributes."""
    raw = json.loads((files("textgym.envs") / "data" / DATA_FILE).read_text(encoding="ascii"))
    attributes, questions = tuple(raw["questions"]), tuple(raw["questions"].values())
    bits = {name: 1 << index for index, name in enumerate(attributes)}
    objects = tuple(sorted(raw["objects"]))
    for name in objects:
        unknown = set(raw["objects"][name]) - set(bits)
        if unknown:
            raise ValueError(f"{DATA_FILE}: {name!r} has unknown attributes {sorted(unknown)}: add questions")
    signatures = tuple(sum(bits[attribute] for attribute in raw["objects"][name]) for name in objects)
    owners: dict[int, str] = {}
    for name, signature in zip(objects, signatures):
        if signature in owners:  # questions alone could never tell these two apart
            raise ValueError(f"{DATA_FILE}: {owners[signature]!r} and {name!r} have the same attributes")
        owners[signature] = name
    question_index = {normalise(question): index for index, question in enumerate(questions)}
    question_index.update({name: index for index, name in enumerate(attributes)})
    object_index = {name: index for index, name in enumerate(objects)}
    return Table(attributes, questions, objects, signatures, question_index, object_index)


def yes_no(answer: bool) -> str:
    """The answer as a word."""
    return "yes" if answer else "no"


class Ask(NamedTuple):
    """A question about the attribute with this index."""

    attribute: int


class Guess(NamedTuple):
    """A guess of the object with this index in the table."""

    item: int


def parse_move(text: str, table: Table) -> Ask | Guess:
    """The question or guess written in ``text`` (case, spacing, a final ``?`` and articles ignored)."""
    match = ACTION_PATTERN.fullmatch(text.strip().lower())
    if match is None:
        raise InvalidAction(SYNTAX_HINT)
    verb, rest = match.groups()
    key = normalise(rest)
    if verb == "ask":
        if key not in table.question_index:
            raise InvalidAction("unknown question; ask one of the questions listed in the instructions")
        return Ask(table.question_index[key])
    key = ARTICLE.sub("", key, count=1)
    if key not in table.object_index:
        raise InvalidAction("unknown object; guess one of the objects in play")
    return Guess(table.object_index[key])


@dataclass
class TwentyQuestionsReward(RewardSpec):
    """Twenty Questions' reward weights."""

    wrong_guess: float = -0.1
    """Paid for each guess that names the wrong object (the game goes on while turns remain)."""


class TwentyQuestionsEnv(TextEnv[Ask | Guess]):
    """Find the secret object by asking yes/no questions about its attributes.

    ## Description
    At each reset a secret object is drawn uniformly from the objects in play: all objects of the
    shipped table (72 everyday objects, 22 yes/no attributes, each object with a unique set of
    attributes) or a random subset of ``num_objects`` of them. The agent asks questions from a fixed
    list, each about one attribute, and gets true yes/no answers; it wins by naming the object.
    Every question and every guess uses one of ``max_questions`` turns. A wrong guess costs the
    ``wrong_guess`` term and a turn but does not end the game. Keeping track of which objects still
    fit the answers is the agent's job: every object in play stays guessable.

    ## Action Space
    ``ask: <question>`` with one of the listed questions (e.g. ``ask: is it alive?``; the attribute
    name, e.g. ``ask: is_alive``, works too), or ``guess: <object>`` with an object in play (e.g.
    ``guess: teddy bear``). Case, spacing, the colon, a final ``?`` and a leading article are
    optional. Unknown questions or objects, questions already asked, objects already guessed and
    objects not in play are invalid actions (no turn is used).

    ## Observation Space
    The last action's result (the answer, or whether the guess was right), then the objects in play,
    every question asked so far with its answer, the wrong guesses, and the turns left.

    ## Starting State
    No questions asked, all turns left; the objects in play and the secret drawn from the seed.

    ## Rewards
    Terms of :class:`TwentyQuestionsReward`: ``success`` (the right guess, 1.0), ``failure`` (the
    turns run out, 0.0), ``wrong_guess`` (-0.1), ``step`` (every step, 0.0), ``invalid_action`` (-0.1).

    ## Episode End
    Terminated by the right guess (success) or when the last turn is used without it (failure; the
    secret is revealed). Truncated by the registered step limit (60 steps, reachable only through
    invalid actions) and by ``max_invalid_streak`` if set.

    ## Information
    The base keys (``valid_actions``: ``ask: ...`` for every question not yet asked, then
    ``guess: ...`` for every object in play not yet guessed; ``reward_terms``, ``success``,
    ``invalid_actions``) and ``turns_left``.

    ## Arguments
    ``gym.make("textgym/TwentyQuestions-v0", max_questions=20, num_objects=None,
    reward={"wrong_guess": -0.2})``; ``num_objects=None`` puts all 72 objects in play, a number
    from 2 to 72 a random subset of that size at each reset.

    ## Version History
    * v0: initial version.
    """

    reward_spec = TwentyQuestionsReward

    def __init__(self, max_questions: int = 20, num_objects: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table = load_table()
        total = len(self.table.objects)
        if max_questions < 1:
            raise ValueError(f"max_questions={max_questions!r} leaves no turn to play: give at least 1")
        if num_objects is not None and not 2 <= num_objects <= total:
            raise ValueError(
                f"num_objects={num_objects!r} is out of range: give 2 to {total}, or None for all objects"
            )
        self.max_questions = max_questions
        self.num_objects = total if num_objects is None else num_objects
        self._ask_actions = tuple(f"ask: {question}" for question in self.table.questions)
        self._guess_actions = tuple(f"guess: {name}" for name in self.table.objects)
        self.instructions = (
            "I am thinking of one of the objects in play, which every observation lists. Find it by asking "
            "yes/no questions, then name it. Each turn, write either 'ask: ' and one of the questions "
            "below, or 'guess: ' and an object, e.g. 'ask: is it alive?' or 'guess: apple'. Answers describe "
            f"the object as it usually is. Every question and every guess uses one of your {max_questions} "
            "turns; a wrong guess does not end the game. Name the object before your turns run "
            "out to win. The questions: " + "; ".join(self.table.questions)
        )
        self._in_play: tuple[int, ...] = ()
        self._in_play_text = ""
        self.secret = 0
        self._answers: dict[int, bool] = {}
        self._wrong: dict[int, None] = {}
        self._known_mask = self._known_values = 0
        self._turns_left = max_questions

    def _reset(self, options: dict[str, Any] | None) -> None:
        total = len(self.table.objects)
        if self.num_objects == total:
            self._in_play = tuple(range(total))
        else:
            drawn = self.np_random.choice(total, self.num_objects, replace=False)
            self._in_play = tuple(sorted(int(o) for o in drawn))
        self._in_play_text = ", ".join(self.table.objects[o] for o in self._in_play)
        self.secret = self._in_play[int(self.np_random.integers(len(self._in_play)))]
        self._answers = {}
        self._wrong = {}  # an insertion-ordered set of the wrong guesses
        self._known_mask = self._known_values = 0
        self._turns_left = self.max_questions

    def parse_action(self, text: str) -> Ask | Guess:
        return parse_move(text, self.table)

    def _step(self, action: Ask | Guess) -> Outcome:
        # the turn budget is a game rule (termination); truncation comes from max_episode_steps
        if isinstance(action, Ask):
            return self._ask(action.attribute)
        return self._guess(action.item)

    def _ask(self, attribute: int) -> Outcome:
        question = self.table.questions[attribute]
        if attribute in self._answers:
            answer = yes_no(self._answers[attribute])
            raise InvalidAction(f"you already asked {question!r}: the answer was {answer}")
        answer = bool(self.table.signatures[self.secret] >> attribute & 1)
        self._answers[attribute] = answer
        self._known_mask |= 1 << attribute
        self._known_values |= answer << attribute
        self._turns_left -= 1
        return self._next_turn(f"{question.capitalize()} {yes_no(answer).capitalize()}.", {})

    def _guess(self, guessed: int) -> Outcome:
        name = self.table.objects[guessed]
        if guessed in self._wrong:
            raise InvalidAction(f"you already guessed {name}, and it was wrong")
        if guessed not in self._in_play:
            raise InvalidAction(f"{name} is not one of the objects in play")
        self._turns_left -= 1
        if guessed == self.secret:
            message = f"Right: the secret object is {name}. You found it!"
            return Outcome(message, {"success": 1}, terminated=True, success=True)
        self._wrong[guessed] = None
        return self._next_turn(f"Wrong: the secret object is not {name}.", {"wrong_guess": 1})

    def _next_turn(self, message: str, terms: dict[str, float]) -> Outcome:
        if self._turns_left:
            return Outcome(message, terms)
        secret = self.table.objects[self.secret]
        message = f"{message} You have no turns left: the secret object was {secret}."
        return Outcome(message, {**terms, "failure": 1}, terminated=True)

    def describe(self) -> str:
        questions = self.table.questions
        answers = "".join(f"\n- {questions[a]} {yes_no(yes)}" for a, yes in self._answers.items()) or " none."
        wrong = ", ".join(self.table.objects[o] for o in self._wrong) or "none"
        return (
            f"Objects in play ({len(self._in_play)}): {self._in_play_text}.\n"
            f"Answers so far:{answers}\n"
            f"Wrong guesses: {wrong}.\n"
            f"Turns left: {self._turns_left} of {self.max_questions}."
        )

    def valid_actions(self) -> list[str]:
        asks = [action for a, action in enumerate(self._ask_actions) if a not in self._answers]
        return asks + [self._guess_actions[o] for o in self._in_play if o not in self._wrong]

    def _info(self) -> dict[str, Any]:
        return {"turns_left": self._turns_left}

    def oracle_action(self) -> str:
        """Guess when one object fits the answers (or on the last turn), else ask the most even split.

        Uses only what the agent sees; the question whose yes-count among the fitting objects is
        nearest half of them wins, the first in table order among ties.
        """
        signatures = self.table.signatures
        fitting = [
            o
            for o in self._in_play
            if o not in self._wrong and signatures[o] & self._known_mask == self._known_values
        ]
        if len(fitting) == 1 or self._turns_left == 1:
            return self._guess_actions[fitting[0]]
        # with unique signatures, some unasked attribute splits two or more fitting objects
        unasked = [a for a in range(len(self.table.attributes)) if a not in self._answers]

        def imbalance(attribute: int) -> int:  # |yes - no| among the fitting objects
            return abs(2 * sum(signatures[o] >> attribute & 1 for o in fitting) - len(fitting))

        return self._ask_actions[min(unasked, key=imbalance)]
