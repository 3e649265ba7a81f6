"""Text Scheduling: find a meeting time that fits everyone's private calendar, then book it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from textgym.envs.base import InvalidAction, Outcome, RewardSpec, TextEnv, excerpt

PEOPLE = ("Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
SLOT_MINUTES = 30
OFFICE_START_HOUR = 8
SLOTS_PER_DAY = 20
"""Half-hour slots of the office day, 08:00 to 18:00; slot ``t`` starts at 08:00 + 30 t minutes."""
WORK_STARTS = range(0, 5)
"""A person's working day starts at 08:00, 08:30, ... or 10:00 (slots 0-4)."""
WORK_ENDS = range(16, 21)
"""... and ends at 16:00, 16:30, ... or 18:00 (slot boundaries 16-20)."""
CORE = (4, 16)
"""10:00-16:00: inside everyone's working hours, where a feasible slot is planted if none exists."""
TEN_AM, NOON, ONE_PM = 4, 8, 10
SYNTAX = "expected 'read_calendar <name>', 'propose <day> <HH:MM>' or 'book <day> <HH:MM>'"
READ_PATTERN = re.compile(r"read_calendar\s*(?:\(\s*(\w+)\s*\)|\s(\w+))")
SLOT_PATTERN = re.compile(r"(propose|book)\s+(\w+)\s+(\d{1,2}):(\d\d)")


def clock(slot: int) -> str:
    """The ``HH:MM`` time at which half-hour ``slot`` starts."""
    return f"{OFFICE_START_HOUR + slot // 2:02d}:{SLOT_MINUTES * (slot % 2):02d}"


def spans(slots: np.ndarray) -> list[str]:
    """The ``HH:MM-HH:MM`` runs of true entries in a boolean row of slots."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], slots.astype(np.int8), [0]))))
    return [f"{clock(a)}-{clock(b)}" for a, b in zip(edges[::2], edges[1::2])]


class Preference(NamedTuple):
    """A soft preference about when the meeting happens (plain data, so envs pickle)."""

    text: str
    """How the calendar states it, after the person's name."""
    earliest: int = 0
    """The earliest start slot it accepts."""
    latest_end: int = SLOTS_PER_DAY
    """The latest end slot it accepts."""
    lunch_free: bool = False
    """Whether it rejects meetings overlapping 12:00-13:00."""
    avoid_day: int | None = None
    """A day it rejects."""

    def accepts(self, day: int, start: int, end: int) -> bool:
        """Whether a meeting over slots ``start:end`` of ``day`` satisfies it."""
        over_lunch = start < ONE_PM and end > NOON
        return (self.earliest <= start and end <= self.latest_end and day != self.avoid_day
                and not (self.lunch_free and over_lunch))


TIME_OF_DAY = (
    Preference("prefers mornings (ending by 12:00)", latest_end=NOON),
    Preference("prefers afternoons (starting at 13:00 or later)", earliest=ONE_PM),
    Preference("prefers no meetings before 10:00", earliest=TEN_AM),
)
LUNCH = (Preference("keeps lunch (12:00-13:00) free", lunch_free=True),)


def avoid(day: int) -> Preference:
    """The preference to avoid ``day`` (0 = Monday)."""
    return Preference(f"avoids {DAYS[day]}s", avoid_day=day)


class Person(NamedTuple):
    """One attendee: the hard constraints (working hours, busy slots) and soft preferences."""

    name: str
    work_start: int
    work_end: int
    busy: np.ndarray
    """``busy[day, slot]``: a prior engagement (only inside working hours)."""
    preferences: tuple[Preference, ...]

    def conflict(self, day: int, start: int, end: int) -> str | None:
        """Why this person cannot attend a meeting over slots ``start:end`` of ``day`` (None if they can)."""
        if start < self.work_start or end > self.work_end:
            return f"outside working hours {clock(self.work_start)}-{clock(self.work_end)}"
        busy = np.flatnonzero(self.busy[day, start:end])
        return f"busy at {clock(start + int(busy[0]))}" if busy.size else None

    def calendar(self, day_names: tuple[str, ...]) -> str:
        """The text of this person's calendar."""
        wishes = "; ".join(p.text for p in self.preferences) or "no preferences"
        lines = [f"{self.name} works {clock(self.work_start)}-{clock(self.work_end)}; {wishes}."]
        for name, row in zip(day_names, self.busy):
            busy = spans(row)
            lines.append(f"  {name}: " + (f"busy {', '.join(busy)}" if busy else "free"))
        return "\n".join(lines)


class ReadCalendar(NamedTuple):
    """Read the calendar of attendee ``person``."""

    person: int


class SlotAction(NamedTuple):
    """Propose (or, if ``book``, book) the meeting at ``start`` slot of ``day``."""

    book: bool
    day: int
    start: int


@dataclass
class SchedulingReward(RewardSpec):
    """Scheduling's reward weights: ``success`` for a booking everyone can attend, plus preferences.

    ``failure`` is paid for a booking that some attendee cannot attend.
    """

    preference: float = 0.1
    """Paid per soft preference (of any attendee) that a successful booking satisfies."""


class SchedulingEnv(TextEnv[ReadCalendar | SlotAction]):
    """Book a meeting that every attendee can attend, reading their private calendars first.

    ## Description
    ``num_people`` attendees (Alice, Bob, ...) must meet for ``duration`` minutes on one of the first
    ``days`` weekdays, starting on a half hour of the office day (08:00-18:00). Each attendee has
    hard constraints (working hours, busy slots) and ``preferences`` soft preferences ("prefers
    mornings", "avoids Fridays", ...). Calendars are private: the agent reads one per action, or
    proposes a time and hears who accepts. Booking ends the episode; it succeeds only if every attendee
    can attend. The best booking also satisfies the most soft preferences.

    ## Action Space
    * ``read_calendar <name>`` (or ``read_calendar(<name>)``): show that attendee's calendar.
    * ``propose <day> <HH:MM>``: every attendee accepts or declines (with the reason); nothing is booked.
    * ``book <day> <HH:MM>``: book the meeting and end the episode.

    Days are written ``Mon`` or ``Monday``; times are on the half hour, e.g. ``09:30``; words are
    case-insensitive. A day outside the schedule, a time off the half-hour grid, or a start that makes
    the meeting run past 18:00 is invalid. ``info["valid_actions"]`` lists the unread calendars and
    every proposal and booking on the grid.

    ## Observation Space
    The last action's result, the task, the calendars read so far (working hours, preferences, busy
    times per day) and the attendees whose calendars are still unread: at most about 7,600
    characters (8 attendees over 5 days).

    ## Starting State
    Per attendee: working hours from 08:00-10:00 to 16:00-18:00 (uniform on the half hour), each
    half-hour slot inside them busy independently with probability ``busy_density``, and
    ``preferences`` soft preferences from distinct groups (time of day, lunch, a day to avoid). If no
    slot suits everyone, one random slot inside 10:00-16:00 is cleared in every calendar.

    ## Rewards
    Terms of :class:`SchedulingReward`: ``success`` (a booking everyone can attend, 1.0), ``failure``
    (a booking someone cannot attend, 0.0), ``preference`` (per soft preference met by a successful
    booking, 0.1), ``step`` (every step, 0.0) and ``invalid_action`` (-0.1). Proposals and reading
    calendars pay nothing beyond ``step``.

    ## Episode End
    Terminated by a booking (successful or not). Truncated by the registered step limit (50 steps) and
    by ``max_invalid_streak`` if set.

    ## Information
    The base keys (``valid_actions``, ``reward_terms``, ``success``, ``invalid_actions``),
    ``feasible_slots`` (how many start times suit every attendee), ``best_preferences`` (the most soft
    preferences a feasible slot satisfies) and, once booked, ``preferences_met`` (0 for a failed booking).

    ## Arguments
    ``gym.make("textgym/Scheduling-v0", num_people=3, days=3, duration=60, busy_density=0.3,
    preferences=1, reward={"preference": 0.2})``: ``num_people`` 2-8, ``days`` 1-5 (from Monday),
    ``duration`` 30-240 minutes in steps of 30, ``busy_density`` in [0, 1), ``preferences`` per
    attendee 0-3 (at most 2 with a single day).

    ## Version History
    * v0: initial version.
    """

    reward_spec = SchedulingReward
    max_observation_length = 8192
    """The longest case (8 attendees, 5 days, every other slot busy, the longest preferences, a proposal
    answered by all) is about 7,600 characters."""

    def __init__(
        self,
        num_people: int = 3,
        days: int = 3,
        duration: int = 60,
        busy_density: float = 0.3,
        preferences: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        checks = {
            "num_people": (num_people, isinstance(num_people, int) and 2 <= num_people <= len(PEOPLE),
                           f"an int from 2 to {len(PEOPLE)}"),
            "days": (days, isinstance(days, int) and 1 <= days <= len(DAYS), f"an int from 1 to {len(DAYS)}"),
            "duration": (duration, isinstance(duration, int) and duration % SLOT_MINUTES == 0
                         and SLOT_MINUTES <= duration <= 240, "minutes from 30 to 240 in steps of 30"),
            "busy_density": (busy_density, isinstance(busy_density, (int, float)) and 0 <= busy_density < 1,
                             "a probability in [0, 1)"),
        }
        for name, (value, ok, fix) in checks.items():
            if not ok:
                raise ValueError(f"{name}={value!r} is not supported; use {fix}")
        self.preference_groups = [TIME_OF_DAY, LUNCH]
        if days > 1:
            self.preference_groups.append(tuple(map(avoid, range(days))))
        """Each attendee's preferences come from distinct groups (none prefers mornings and afternoons)."""
        if not (isinstance(preferences, int) and 0 <= preferences <= len(self.preference_groups)):
            raise ValueError(
                f"preferences={preferences!r} is not supported; use an int from 0 to "
                f"{len(self.preference_groups)} (avoiding a day is a third kind of preference if days > 1)"
            )
        self.names = PEOPLE[:num_people]
        self.day_names = tuple(day[:3] for day in DAYS[:days])
        self._day_index = {name.lower(): i for i, day in enumerate(DAYS[:days]) for name in (day, day[:3])}
        self.length = duration // SLOT_MINUTES
        self.busy_density = float(busy_density)
        self.num_preferences = preferences
        self.num_starts = SLOTS_PER_DAY - self.length + 1
        self._slot_actions = [
            f"{verb} {day} {clock(start)}"
            for verb in ("propose", "book")
            for day in self.day_names
            for start in range(self.num_starts)
        ]
        self._latest = clock(self.num_starts - 1)
        attendees = ", ".join(self.names[:-1]) + f" and {self.names[-1]}"
        when = self.day_names[0] if days == 1 else (
            f"{', '.join(self.day_names[:-1])} or {self.day_names[-1]}"
        )
        self._task = (
            f"Book a {duration}-minute meeting with {attendees} on {when}, starting on the half hour "
            f"between 08:00 and {self._latest}."
        )
        self.instructions = (
            f"{self._task} Everyone must be inside their working hours and free for the whole meeting; "
            "among such times, prefer one that meets the most of their soft preferences. Calendars are "
            "private: 'read_calendar <name>' shows one. 'propose <day> <HH:MM>' (e.g. 'propose Mon 09:30') "
            "asks everyone, who accept or decline with the reason. 'book <day> <HH:MM>' books the meeting "
            "and ends the task: it succeeds only if everyone can attend."
        )
        self.people: list[Person] = []
        self._read: list[bool] = []
        self._calendars: list[str] = []
        self._preferences_met = np.zeros((days, self.num_starts), dtype=int)
        self._feasible = np.zeros((days, self.num_starts), dtype=bool)
        self._best = (0, 0)
        self._booked: SlotAction | None = None

    # ---- episode generation ---------------------------------------------------------------------
    def _person(self, name: str) -> Person:
        rng = self.np_random
        work_start, work_end = int(rng.choice(WORK_STARTS)), int(rng.choice(WORK_ENDS))
        busy = rng.random((len(self.day_names), SLOTS_PER_DAY)) < self.busy_density
        busy[:, :work_start] = busy[:, work_end:] = False
        groups = sorted(rng.choice(len(self.preference_groups), self.num_preferences, replace=False))
        wishes = tuple(
            self.preference_groups[g][int(rng.integers(len(self.preference_groups[g])))] for g in groups
        )
        return Person(name, work_start, work_end, busy, wishes)

    def _available(self) -> np.ndarray:
        """``[person, day, start]``: whether the person can attend a meeting starting there."""
        blocked = np.stack([p.busy for p in self.people])
        for i, p in enumerate(self.people):
            blocked[i, :, : p.work_start] = blocked[i, :, p.work_end :] = True
        return ~sliding_window_view(blocked, self.length, axis=2).any(axis=-1)

    def _reset(self, options: dict[str, Any] | None) -> None:
        self.people = [self._person(name) for name in self.names]
        feasible = self._available().all(axis=0)
        if not feasible.any():  # plant one slot inside everyone's working hours
            day = int(self.np_random.integers(len(self.day_names)))
            start = int(self.np_random.integers(CORE[0], CORE[1] - self.length + 1))
            for p in self.people:
                p.busy[day, start : start + self.length] = False
            feasible = self._available().all(axis=0)
        self._feasible = feasible
        self._preferences_met = np.array([
            [sum(w.accepts(day, start, start + self.length) for p in self.people for w in p.preferences)
             for start in range(self.num_starts)]
            for day in range(len(self.day_names))
        ])
        best = np.where(feasible, self._preferences_met, -1)
        day, start = np.unravel_index(int(np.argmax(best)), best.shape)  # the earliest among the best
        self._best = (int(day), int(start))
        self._calendars = [p.calendar(self.day_names) for p in self.people]
        self._read = [False] * len(self.people)
        self._booked = None

    # ---- actions --------------------------------------------------------------------------------
    def parse_action(self, text: str) -> ReadCalendar | SlotAction:
        words = " ".join(text.lower().split())
        if read := READ_PATTERN.fullmatch(words):
            name = read.group(1) or read.group(2)
            if name.capitalize() not in self.names:
                raise InvalidAction(
                    f"there is no attendee {excerpt(name, 20)}; the attendees are {', '.join(self.names)}"
                )
            return ReadCalendar(self.names.index(name.capitalize()))
        slot = SLOT_PATTERN.fullmatch(words)
        if slot is None:
            raise InvalidAction(SYNTAX)
        verb, day, hour, minute = slot.groups()
        index = self._day_index.get(day)
        if index is None:
            raise InvalidAction(f"{excerpt(day, 20)} is not a meeting day; use one of {', '.join(self.day_names)}")
        if minute not in ("00", "30"):
            raise InvalidAction("meetings start on the half hour (HH:00 or HH:30)")
        start = (int(hour) - OFFICE_START_HOUR) * 2 + (minute == "30")
        if not 0 <= start < self.num_starts:
            raise InvalidAction(f"this meeting must start between 08:00 and {self._latest} to end by 18:00")
        return SlotAction(verb == "book", index, start)

    def _step(self, action: ReadCalendar | SlotAction) -> Outcome:
        if isinstance(action, ReadCalendar):
            name = self.names[action.person]
            seen, self._read[action.person] = self._read[action.person], True
            return Outcome(f"You {'already ' if seen else ''}read {name}'s calendar.")
        day, start = action.day, action.start
        end = start + self.length
        when = f"{self.day_names[day]} {clock(start)}-{clock(end)}"
        conflicts = [(p.name, p.conflict(day, start, end)) for p in self.people]
        if not action.book:
            answers = []
            for person, (name, conflict) in zip(self.people, conflicts):
                unmet = " and ".join(w.text for w in person.preferences if not w.accepts(day, start, end))
                if conflict:
                    answers.append(f"{name} declines ({conflict})")
                else:
                    answers.append(f"{name} accepts but {unmet}" if unmet else f"{name} accepts")
            return Outcome(f"Proposal {when}: {'; '.join(answers)}.")
        self._booked = action
        absent = [f"{name} ({conflict})" for name, conflict in conflicts if conflict]
        if absent:
            return Outcome(f"You booked {when}, but these attendees cannot come: {', '.join(absent)}. "
                           "The meeting failed.", {"failure": 1}, terminated=True)
        met = int(self._preferences_met[day, start])
        total = len(self.people) * self.num_preferences
        terms = {"success": 1, "preference": met} if met else {"success": 1}
        return Outcome(f"You booked {when}. Everyone can attend, and {met} of {total} preferences are met.",
                       terms, terminated=True, success=True)

    # ---- views ----------------------------------------------------------------------------------
    def describe(self) -> str:
        unread = [name for name, read in zip(self.names, self._read) if not read]
        known = [text for text, read in zip(self._calendars, self._read) if read]
        return "\n".join([
            self._task,
            *known,
            f"Calendars not read yet: {', '.join(unread)}." if unread else "All calendars are read.",
        ])

    def valid_actions(self) -> list[str]:
        unread = [f"read_calendar {name}" for name, read in zip(self.names, self._read) if not read]
        return unread + self._slot_actions

    def _info(self) -> dict[str, Any]:
        info = {"feasible_slots": int(self._feasible.sum()),
                "best_preferences": int(self._preferences_met[self._best])}
        if self._booked is not None:
            met = self._preferences_met[self._booked.day, self._booked.start] if self._success else 0
            info["preferences_met"] = int(met)
        return info

    def oracle_action(self) -> str:
        """Read each unread calendar in turn, then book the feasible slot meeting the most preferences."""
        if not all(self._read):
            return f"read_calendar {self.names[self._read.index(False)]}"
        day, start = self._best
        return f"book {self.day_names[day]} {clock(start)}"
