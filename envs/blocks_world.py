"""Text Blocks World: restack lettered blocks into a goal configuration, one move at a time."""

from __future__ import annotations

import functools
import math
import re
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from textgym.envs.base import InvalidAction, Outcome, RewardSpec, TextEnv, excerpt
from textgym.envs.mdp import Branch, TabularMDP, enumerate_mdp

TABLE = -1
"""The support of a block standing directly on the table."""
NAMES = string.ascii_uppercase
MAX_BLOCKS = 10
"""Above this the exact planner run at every reset (for the oracle and ``optimal_steps``) gets slow:
it takes about 1 ms with 6 blocks, 10 ms with 8 and up to a second with 10."""
MAX_MDP_BLOCKS = 4
"""The most blocks :meth:`BlocksWorldEnv.tabular_mdp` enumerates: its states are (configuration, goal)
pairs, 73**2 = 5329 of them for 4 blocks but 501**2 = 251001 for 5."""
MOVE_PATTERN = re.compile(
    r"move\s+(\w+)\s+(?:(?:onto|on)\s+(?!the\b|table\b)(\w+)|(?:to|onto|on)\s+(?:the\s+)?table)"
)
SYNTAX = "expected 'move <block> onto <block>' or 'move <block> to the table', e.g. 'move A onto B'"

State = tuple[int, ...]
"""``state[b]`` is the block that block ``b`` stands on, or ``TABLE``: one tuple per configuration."""


class Move(NamedTuple):
    """Put the clear block ``block`` onto ``dest`` (a clear block, or ``TABLE``)."""

    block: int
    dest: int

    def __str__(self) -> str:
        target = "to the table" if self.dest == TABLE else f"onto {NAMES[self.dest]}"
        return f"move {NAMES[self.block]} {target}"


def stacks_of(state: State) -> list[list[int]]:
    """The stacks of ``state``, each bottom to top, ordered by their bottom block."""
    above = {below: block for block, below in enumerate(state) if below != TABLE}
    stacks = []
    for bottom in (block for block, below in enumerate(state) if below == TABLE):
        stack = [bottom]
        while stack[-1] in above:
            stack.append(above[stack[-1]])
        stacks.append(stack)
    return stacks


def state_of(stacks: Sequence[Sequence[int]]) -> State:
    """The state whose stacks (bottom to top) are ``stacks``."""
    state = [TABLE] * sum(len(stack) for stack in stacks)
    for stack in stacks:
        for below, block in zip(stack, stack[1:]):
            state[block] = below
    return tuple(state)


def clear_blocks(state: State) -> list[int]:
    """The blocks with nothing on top of them, in letter order."""
    covered = set(state)
    return [block for block in range(len(state)) if block not in covered]


def legal_moves(state: State) -> Iterator[tuple[int, int]]:
    """Every admissible ``(block, dest)`` move: a clear block to the table (if not there) or onto
    another clear block."""
    clear = clear_blocks(state)
    for block in clear:
        if state[block] != TABLE:
            yield block, TABLE
        yield from ((block, dest) for dest in clear if dest != block)


@functools.lru_cache(maxsize=1024)
def well_placed(state: State, goal: State) -> tuple[bool, ...]:
    """Whether each block is in its final position: on its goal support, which is itself well placed.

    The table is always well placed, so a block is well placed when every block from the bottom of its
    stack up to it stands where the goal has it. Some optimal plan never moves a well-placed block,
    and every other block must move at least once. (Cached: a step, its text and its info all ask.)
    """
    placed = [False] * len(state)
    for stack in stacks_of(state):
        for block in stack:
            if state[block] != goal[block]:
                break
            placed[block] = True
    return tuple(placed)


def _search(start: State, goal: State) -> list[State]:
    """The states of a shortest path from ``start`` to ``goal`` (bidirectional breadth-first search).

    Every move can be undone by one move, so the search from the goal uses the same moves.
    """
    if start == goal:
        return [start]
    parents: tuple[dict[State, State | None], dict[State, State | None]] = ({start: None}, {goal: None})
    frontiers = ([start], [goal])
    while frontiers[0] and frontiers[1]:
        side = 0 if len(frontiers[0]) <= len(frontiers[1]) else 1
        mine, other = parents[side], parents[1 - side]
        next_frontier, meetings = [], []
        for state in frontiers[side]:
            for block, dest in legal_moves(state):
                child = state[:block] + (dest,) + state[block + 1 :]
                if child not in mine:
                    mine[child] = state
                    next_frontier.append(child)
                    if child in other:
                        meetings.append(child)
        if meetings:
            meet = min(meetings, key=lambda state: len(_chain(other, state)))
            forward, backward = _chain(parents[0], meet), _chain(parents[1], meet)
            return forward[::-1] + backward[1:]
        frontiers = (next_frontier, frontiers[1]) if side == 0 else (frontiers[0], next_frontier)
    raise ValueError("the goal cannot be reached from the start")  # unreachable: every state connects


def _chain(parents: dict[State, State | None], state: State) -> list[State]:
    """``state`` and its ancestors up to the search root."""
    chain = [state]
    while (parent := parents[chain[-1]]) is not None:
        chain.append(parent)
    return chain


def _move_between(before: State, after: State) -> Move:
    block = next(b for b, (x, y) in enumerate(zip(before, after)) if x != y)
    return Move(block, after[block])


def parse_stacks(stacks: Sequence[Sequence[str]], num_blocks: int) -> State:
    """The state of ``stacks`` given as lists of block names, bottom to top (e.g. ``[["A", "C"], ["B"]]``).

    Raises ``ValueError`` unless the stacks hold the blocks ``A``, ``B``, ... (``num_blocks`` of
    them) once each.
    """
    names = sorted(name for stack in stacks for name in stack)
    if names != list(NAMES[:num_blocks]):
        blocks = ", ".join(NAMES[:num_blocks])
        raise ValueError(f"the stacks must hold the blocks {blocks} once each, got {names}")
    return state_of([[NAMES.index(name) for name in stack] for stack in stacks])


def shortest_plan(start: Sequence[Sequence[str]], goal: Sequence[Sequence[str]]) -> list[str]:
    """A shortest list of moves turning the ``start`` stacks into the ``goal`` stacks.

    Stacks are lists of block names, bottom to top (see :func:`parse_stacks`). Example:
    ``shortest_plan([["A", "B"]], [["B", "A"]])`` is ``["move B to the table", "move A onto B"]``.
    """
    num_blocks = sum(len(stack) for stack in start)
    path = _search(parse_stacks(start, num_blocks), parse_stacks(goal, num_blocks))
    return [str(_move_between(a, b)) for a, b in zip(path, path[1:])]


@functools.lru_cache(maxsize=1024)
def _stack_text(state: State) -> str:
    return " ".join("[" + " ".join(NAMES[block] for block in stack) + "]" for stack in stacks_of(state))


def view(state: State, goal: State) -> str:
    """The text view of ``state`` on the way to ``goal``: both sets of stacks and the well-placed blocks."""
    placed = [NAMES[b] for b, ok in enumerate(well_placed(state, goal)) if ok]
    return (
        f"Stacks now (bottom to top): {_stack_text(state)}\n"
        f"Goal stacks (bottom to top): {_stack_text(goal)}\n"
        f"Blocks in their final position: {len(placed)} of {len(state)}"
        + (f" ({', '.join(placed)})." if placed else ".")
    )


def apply_move(state: State, goal: State, move: Move) -> tuple[State, dict[str, float], bool]:
    """The MDP's (deterministic) transition: the state after a legal ``move``, its reward terms, and
    whether it reaches ``goal``. Shared by ``_step`` and :meth:`BlocksWorldEnv.tabular_mdp`."""
    block, dest = move
    after = state[:block] + (dest,) + state[block + 1 :]
    gained = sum(well_placed(after, goal)) - sum(well_placed(state, goal))
    terms: dict[str, float] = {"progress": gained} if gained else {}
    done = after == goal
    return after, {**terms, "success": 1} if done else terms, done


def configurations(num_blocks: int) -> list[State]:
    """Every configuration of ``num_blocks`` blocks (each is reachable from any other)."""
    found = [(TABLE,) * num_blocks]
    seen = set(found)
    for state in found:
        for block, dest in legal_moves(state):
            child = state[:block] + (dest,) + state[block + 1 :]
            if child not in seen:
                seen.add(child)
                found.append(child)
    return found


@dataclass
class BlocksWorldReward(RewardSpec):
    """Blocks World's reward weights; by default 1 for reaching the goal and nothing else.

    ``failure`` is never paid: every configuration can still reach the goal.
    """

    progress: float = 0.0
    """Paid per change in the number of well-placed blocks (see :func:`well_placed`): +1 when a move
    puts a block in its final position, -1 when it takes a well-placed block away. A potential-based
    shaping term: it sums to (final - initial) well-placed count over an episode."""


class BlocksWorldEnv(TextEnv[Move]):
    """Rearrange stacks of lettered blocks on a table into the goal stacks.

    ## Description
    ``num_blocks`` blocks named ``A``, ``B``, ... stand in stacks on an unbounded table. One move
    picks up a clear block (nothing on top of it) and puts it on the table or on another clear block.
    The episode is solved when the stacks equal the goal stacks (the order of the stacks on the table
    does not matter). An exact planner (:func:`shortest_plan`) gives the oracle and the optimal plan
    length, so an agent's efficiency is ``optimal_steps / steps taken``.

    ## Action Space
    ``move <X> onto <Y>`` or ``move <X> to the table``, with block letters ``X``, ``Y`` (case and
    extra spaces ignored; ``on`` for ``onto``, and ``to table`` or ``onto the table``, are accepted).
    A move of a covered block, onto a covered block, onto itself, or to where the block already
    stands is invalid: the stacks stay as they are and the observation says why.

    ## Observation Space
    The last move's result, the current stacks and the goal stacks (each ``[bottom ... top]``,
    ordered by bottom block), and the blocks already in their final position. ``info["state"]`` is
    the configuration followed by the goal, as one flat tuple: ``state[b]`` is the block that block
    ``b`` stands on (``-1``: the table) and ``state[n + b]`` the one it stands on in the goal.

    ## Starting State
    The start and the goal are drawn independently and uniformly among all configurations of the
    blocks (a random permutation cut into a random number of stacks, weighted by the Lah numbers);
    the goal is redrawn until it differs from the start. ``reset(options={"start": ..., "goal": ...})``
    sets either one instead, as stacks of block names (``[["A", "C"], ["B"]]``: C on A, B alone).

    ## Rewards
    Terms of :class:`BlocksWorldReward`: ``success`` (stacks equal the goal, 1.0), ``failure``
    (never paid, 0.0), ``step`` (every step, 0.0), ``invalid_action`` (-0.1) and ``progress`` (per
    change in the number of well-placed blocks, 0.0). A block is well placed when it stands on its goal
    support (block or table) and that support is itself well placed.

    ## Episode End
    Terminated when the stacks equal the goal. Truncated by the registered step limit (50 steps) and
    by ``max_invalid_streak`` if set.

    ## Information
    The base keys (``valid_actions``, ``reward_terms``, ``success``, ``invalid_actions``),
    ``state`` (the configuration and the goal, see above), ``optimal_steps`` (the length of a
    shortest plan from the episode's start state) and ``well_placed`` (how many blocks are in their
    final position now).

    ## Arguments
    ``gym.make("textgym/BlocksWorld-v0", num_blocks=4, reward={"progress": 0.1})``; ``num_blocks``
    runs from 2 to 10 (there are 73 configurations of 4 blocks, 4051 of 6, 394353 of 8 and 58941091
    of 10; the exact plan computed at each reset takes up to a second with 10 blocks). With up to 4
    blocks, ``env.unwrapped.tabular_mdp()`` exports the exact MDP over (configuration, goal) pairs.

    ## Version History
    * v0: initial version.
    """

    reward_spec = BlocksWorldReward
    max_observation_length = 1024

    def __init__(self, num_blocks: int = 4, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(num_blocks, int) or not 2 <= num_blocks <= MAX_BLOCKS:
            raise ValueError(
                f"num_blocks={num_blocks!r} is not supported; use an int from 2 to {MAX_BLOCKS} "
                "(the exact planner behind the oracle grows exponentially with the blocks)"
            )
        self.num_blocks = num_blocks
        self.names = NAMES[:num_blocks]
        # P(k stacks) over uniform configurations: Lah number L(n, k) = C(n-1, k-1) n! / k!
        lah = [math.comb(num_blocks - 1, k - 1) * math.factorial(num_blocks) // math.factorial(k)
               for k in range(1, num_blocks + 1)]
        self._stack_count_probs = np.array(lah) / sum(lah)
        self.instructions = (
            f"Blocks {', '.join(self.names)} stand in stacks on a table. Rearrange them into the goal "
            "stacks. Stacks are written [bottom ... top]. Only a clear block (nothing on top of it) can "
            "move, onto the table or onto another clear block. A block is in its final position when it "
            "and every block below it stand as in the goal. Answer with one move: 'move A onto B' or "
            "'move A to the table'. Use as few moves as you can."
        )
        self.state: State = tuple([TABLE] * num_blocks)
        self.goal: State = self.state
        self.optimal_steps = 0
        self._plan: dict[State, Move] = {}
        self._move_texts = [
            [str(Move(block, dest)) for dest in range(TABLE, num_blocks)] for block in range(num_blocks)
        ]
        """``self._move_texts[block][dest + 1]``: the action string of a move."""

    def _random_state(self) -> State:
        """A configuration drawn uniformly from all configurations of the blocks."""
        k = int(self.np_random.choice(self.num_blocks, p=self._stack_count_probs)) + 1
        order = self.np_random.permutation(self.num_blocks).tolist()
        cuts = sorted(int(c) + 1 for c in self.np_random.choice(self.num_blocks - 1, k - 1, replace=False))
        return state_of([order[a:b] for a, b in zip([0, *cuts], [*cuts, self.num_blocks])])

    def _reset(self, options: dict[str, Any] | None) -> None:
        start, goal = self._given(options, "start"), self._given(options, "goal")
        if start is not None and start == goal:
            raise ValueError("reset options 'start' and 'goal' are the same stacks; give different ones")
        self.state = start or self._random_state()
        while self.state == goal:  # a drawn start must differ from the given goal
            self.state = self._random_state()
        self.goal = goal or self.state
        while self.goal == self.state:
            self.goal = self._random_state()
        self.optimal_steps = self._replan()

    def _given(self, options: dict[str, Any] | None, key: str) -> State | None:
        """The state given as ``options[key]`` (stacks of block names), if any."""
        return parse_stacks(options[key], self.num_blocks) if options and key in options else None

    def _replan(self) -> int:
        """Store a shortest plan from the current state for the oracle; return its length."""
        path = _search(self.state, self.goal)
        self._plan = {a: _move_between(a, b) for a, b in zip(path, path[1:])}
        return len(path) - 1

    def parse_action(self, text: str) -> Move:
        match = MOVE_PATTERN.fullmatch(" ".join(text.lower().split()))
        if match is None:
            raise InvalidAction(SYNTAX)
        block, dest = match.group(1), match.group(2)
        if dest is not None and dest == block:
            raise InvalidAction(f"a block cannot be moved onto itself ({excerpt(block.upper(), 10)})")
        return Move(self._block(block), TABLE if dest is None else self._block(dest))

    def _block(self, name: str) -> int:
        index = self.names.lower().find(name) if len(name) == 1 else -1
        if index < 0:
            raise InvalidAction(f"there is no block {excerpt(name.upper(), 10)}; the blocks are {', '.join(self.names)}")
        return index

    def _step(self, action: Move) -> Outcome:
        block, dest = action
        name = NAMES[block]
        if block in self.state:
            raise InvalidAction(f"{name} is not clear: {NAMES[self.state.index(block)]} is on top of it")
        if self.state[block] == dest:
            raise InvalidAction(f"{name} is already on {'the table' if dest == TABLE else NAMES[dest]}")
        if dest != TABLE and dest in self.state:
            raise InvalidAction(
                f"cannot move {name} onto {NAMES[dest]}: {NAMES[self.state.index(dest)]} is on top of it"
            )
        self.state, terms, done = apply_move(self.state, self.goal, action)
        message = f"You moved {name} {'to the table' if dest == TABLE else 'onto ' + NAMES[dest]}."
        return Outcome(message + " The stacks match the goal!" if done else message, terms, done, done)

    def describe(self) -> str:
        return view(self.state, self.goal)

    def valid_actions(self) -> list[str]:
        return [self._move_texts[block][dest + 1] for block, dest in legal_moves(self.state)]

    def _info(self) -> dict[str, Any]:
        placed = sum(well_placed(self.state, self.goal))
        return {"state": self.state + self.goal, "optimal_steps": self.optimal_steps, "well_placed": placed}

    def oracle_action(self) -> str:
        """The next move of a shortest plan from the current state (replanned after a detour).

        Once the goal is reached (the episode is over) any legal move is returned.
        """
        if self.state == self.goal:
            return self.valid_actions()[0]
        if self.state not in self._plan:
            self._replan()
        return str(self._plan[self.state])

    def tabular_mdp(self) -> TabularMDP:
        """The exact MDP over ``info["state"]``, (configuration, goal) pairs, with this env's reward spec.

        Each episode plays in the part of it with that episode's goal (the goal never changes within
        an episode); the start distribution is that of a reset without options: start and goal uniform
        over the ordered pairs of different configurations. Raises ``ValueError`` above
        ``MAX_MDP_BLOCKS`` = 4 blocks.
        """
        n = self.num_blocks
        if n > MAX_MDP_BLOCKS:
            raise ValueError(
                f"tabular_mdp() supports num_blocks <= {MAX_MDP_BLOCKS}, got {n}: its states are "
                "(configuration, goal) pairs, 5329 for 4 blocks but 251001 for 5; "
                f"use num_blocks={MAX_MDP_BLOCKS} or fewer"
            )
        every = configurations(n)
        pairs = len(every) * (len(every) - 1)
        start = {state + goal: 1 / pairs for state in every for goal in every if goal != state}

        def branches(pair: tuple[int, ...], action: str) -> list[Branch]:
            after, terms, done = apply_move(pair[:n], pair[n:], self.parse_action(action))
            return [Branch(1.0, after + pair[n:], terms, done, done)]

        return enumerate_mdp(
            start,
            lambda pair: [self._move_texts[block][dest + 1] for block, dest in legal_moves(pair[:n])],
            branches,
            lambda pair: view(pair[:n], pair[n:]),
            self.reward,
        )
