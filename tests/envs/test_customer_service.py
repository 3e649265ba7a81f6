"""CustomerService's own properties: the parser, the policy, the judge, the customer and the knobs."""

from __future__ import annotations

import re
import string
from collections import Counter
from datetime import timedelta

import gymnasium as gym
import numpy as np
import pytest
from episodes import Chooser, oracle, play, random_valid

from textgym.envs.base import InvalidAction
from textgym.envs.customer_service import (
    EARLIER_LIMIT,
    EARLIER_MESSAGE_LIMIT,
    MESSAGES,
    POLICY,
    SAY,
    Call,
    Customer,
    CustomerServiceEnv,
    Intent,
    Tool,
    classify_message,
    earlier_messages,
    parse_call,
    policy_violations,
)
from textgym.envs.customer_service_data import (
    ALSO,
    AMBIGUOUS_OPENINGS,
    CATALOG,
    DEMANDS,
    STATEMENTS,
    TODAY,
    Account,
    Database,
    Item,
    Order,
    Persona,
    RequestKind,
    Status,
)

ID = "textgym/CustomerService-v0"
HARD = {"num_orders": 5, "num_requests": 2, "forbidden_rate": 0.5, "ambiguous_opening": True}


def listed_oracle(env: gym.Env, info: dict) -> str:
    """The oracle, whose actions must all be listed."""
    action = oracle(env, info)
    assert action in info["valid_actions"]
    return action


def compliant() -> Chooser:
    """The oracle, except that it does whatever the customer asks instead of refusing, then hangs up."""
    done = []

    def choose(env: gym.Env, info: dict) -> str:
        action = env.unwrapped.oracle_action()
        if action == SAY[Intent.REFUSE]:
            action = "end_conversation()" if done else str(env.unwrapped.solutions[env.unwrapped.focus])
            done.append(action)
        assert action in info["valid_actions"]
        return action

    return choose


# ---- the parser ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "call"),
    [
        ("get_order(order_id=W1234)", Call(Tool.GET_ORDER, {"order_id": "W1234"})),
        (' GET_ORDER ( Order_ID = "w1234" ) ', Call(Tool.GET_ORDER, {"order_id": "W1234"})),
        (
            "verify_identity(zip=02139, email=Ann.Lee@Example.com)",
            Call(Tool.VERIFY_IDENTITY, {"email": "ann.lee@example.com", "zip": "02139"}),
        ),
        ("refund(order_id=W1234, amount=12.5)", Call(Tool.REFUND, {"order_id": "W1234", "amount": 1250})),
        ("refund(order_id=W1234,amount=$7)", Call(Tool.REFUND, {"order_id": "W1234", "amount": 700})),
        (
            'exchange(order_id=W1234, item="Desk  Lamp", new_item="floor lamp")',
            Call(Tool.EXCHANGE, {"order_id": "W1234", "item": "desk lamp", "new_item": "floor lamp"}),
        ),
        (
            'change_address(order_id=W1234, address="12 Oak St, Milton")',
            Call(Tool.CHANGE_ADDRESS, {"order_id": "W1234", "address": "12 Oak St, Milton"}),
        ),
        (
            'send_message(text="Hi, (really) = fine, ok?")',
            Call(Tool.SEND_MESSAGE, {"text": "Hi, (really) = fine, ok?"}),
        ),
        ("end_conversation()", Call(Tool.END_CONVERSATION)),
        ("Transfer_To_Human( )", Call(Tool.TRANSFER_TO_HUMAN)),
    ],
)
def test_parser_accepts(text: str, call: Call) -> None:
    assert parse_call(text) == call
    assert parse_call(str(call)) == call


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("get_order", "expected one tool call"),
        ("get_order(order_id=W1234", "expected one tool call"),
        ("get_order(order_id=W1234) please", "expected one tool call"),
        ("cancel(order_id=W1234)", "unknown tool"),
        ("get_order(W1234)", "cannot read the arguments"),
        ("get_order()", "missing: order_id;"),
        ("get_order(order_id=W1234, note=x)", "(missing: none; unexpected: 'note')"),
        ("get_order(order_id=W1234, order_id=W1234)", "given twice"),
        ("get_order(order_id=W1234,)", "single commas"),
        ("verify_identity(email=a@b.co zip=12345)", "single commas"),
        ("get_order(order_id=1234)", "not an order id"),
        ("lookup_customer(email=someone)", "not an email"),
        ("verify_identity(email=a@b.co, zip=1234)", "not a zip code"),
        ("refund(order_id=W1234, amount=0)", "must be positive"),
        ("refund(order_id=W1234, amount=1.234)", "not a sum in dollars"),
        ('exchange(order_id=W1234, item="desk lamp", new_item="lava lamp")', "not a product"),
        ('send_message(text="unterminated)', "cannot read the arguments"),
        ('send_message(text="say "hi"")', "single commas"),
        ('send_message(text="   ")', "is not some text"),
        ("__import__('os').system('ls')", "unknown tool"),
        ("{{7*7}}", "expected one tool call"),
        ("end_conversation(" + "x=1, " * 60 + ")", "at most 256 characters"),
    ],
)
def test_parser_rejects_near_misses(text: str, reason: str) -> None:
    with pytest.raises(InvalidAction, match=re.escape(reason)):
        parse_call(text)


def test_listed_actions_are_canonical() -> None:
    env = gym.make(ID, **HARD)
    seen = set()
    for seed in range(20):
        _, info = env.reset(seed=seed)
        while True:
            seen.update(info["valid_actions"])
            *_, terminated, truncated, info = env.step(env.unwrapped.oracle_action())
            if terminated or truncated:
                break
    assert all(str(parse_call(action)) == action for action in seen)


# ---- what messages mean -------------------------------------------------------------------------------


def test_fixed_messages_read_as_their_intents() -> None:
    assert {intent: classify_message(text) for intent, text in MESSAGES.items()} == {i: i for i in MESSAGES}


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Could you give me your e-mail, please?", Intent.ASK_EMAIL),
        ("And the postal code?", Intent.ASK_ZIP),
        ("What's your order number?", Intent.ASK_ORDER_ID),
        ("Which product would you like as a replacement?", Intent.ASK_NEW_ITEM),
        ("Where should we ship it, what address?", Intent.ASK_ADDRESS),
        ("Sorry, I can't refund that order.", Intent.REFUSE),
        ("Order W1234 was delivered on May 3.", Intent.REPORT_STATUS),
        ("All done!", Intent.CONFIRM_DONE),
        ("Nice weather today.", Intent.OTHER),
    ],
)
def test_free_text_messages(text: str, intent: Intent) -> None:
    assert classify_message(text) is intent


# ---- the policy ---------------------------------------------------------------------------------------


def store(**changes: object) -> Database:
    """A one-order store: W1000, a desk lamp and a tote bag delivered 5 days ago, owned by ann@x.com."""
    order = Order(
        "W1000",
        "ann@x.com",
        (Item("desk lamp", "lighting", 3499), Item("tote bag", "bags", 2500)),
        TODAY - timedelta(days=9),
        TODAY - timedelta(days=5),
        Status.DELIVERED,
        "1 Elm St, Milton",
    )
    order = Order(**{**order.__dict__, **changes})
    return Database({"ann@x.com": Account("Ann", "ann@x.com", "12345", "1 Elm St, Milton")}, {"W1000": order})


@pytest.mark.parametrize(
    ("action", "changes", "broken"),
    [
        ("get_order(order_id=W1000)", {}, []),
        ("lookup_customer(email=ann@x.com)", {}, []),
        ("cancel_order(order_id=W1000)", {"status": Status.PENDING, "delivered": None}, []),
        (
            "cancel_order(order_id=W1000)",
            {"status": Status.SHIPPED, "delivered": None},
            ["cancel_not_pending"],
        ),
        ("refund(order_id=W1000, amount=59.99)", {}, []),
        ("refund(order_id=W1000, amount=60.00)", {}, ["over_refund"]),
        ("refund(order_id=W1000, amount=10)", {"refunded": 5000}, ["over_refund"]),
        (
            "refund(order_id=W1000, amount=10)",
            {"delivered": TODAY - timedelta(days=31)},
            ["refund_ineligible"],
        ),
        (
            "refund(order_id=W1000, amount=10)",
            {"status": Status.SHIPPED, "delivered": None},
            ["refund_ineligible"],
        ),
        ('exchange(order_id=W1000, item="desk lamp", new_item="floor lamp")', {}, []),
        (
            'exchange(order_id=W1000, item="desk lamp", new_item="chef knife")',
            {},
            ["cross_category_exchange"],
        ),
        (
            'exchange(order_id=W1000, item="desk lamp", new_item="floor lamp")',
            {"status": Status.PENDING},
            ["exchange_not_delivered"],
        ),
        ('change_address(order_id=W1000, address="2 Oak St, Milton")', {"status": Status.PENDING}, []),
        ('change_address(order_id=W1000, address="2 Oak St, Milton")', {}, ["address_not_pending"]),
    ],
)
def test_policy_rules(action: str, changes: dict, broken: list[str]) -> None:
    db, call = store(**changes), parse_call(action)
    assert policy_violations(db, "ann@x.com", call) == broken
    assert policy_violations(db, None, call)[:1] == ["unverified_action"]
    assert policy_violations(db, "bob@x.com", call)[:1] == ["unverified_action"]


def test_unknown_references_are_invalid_not_violations() -> None:
    for action in [
        "get_order(order_id=W9999)",
        'exchange(order_id=W1000, item="chef knife", new_item="tote bag")',
    ]:
        with pytest.raises(InvalidAction):
            policy_violations(store(), "ann@x.com", parse_call(action))


# ---- episodes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs", [{}, HARD, {"forbidden_rate": 1.0}, {"forbidden_rate": 0.0, "num_orders": 8}]
)
def test_oracle_always_succeeds(kwargs: dict) -> None:
    env = gym.make(ID, **kwargs)
    for seed in range(200):
        info = play(env, seed, listed_oracle)[-1].info
        assert info["success"] and info["violations"] == [] and info["db_diff"] == [], seed


def mistaken() -> Chooser:
    """The oracle, except that its first store call (cancel, refund, exchange, change of address) goes to
    another listed call of the same tool, where there is one; the oracle's actions must all be listed."""
    wrong: list[str] = []

    def choose(env: gym.Env, info: dict) -> str:
        action = listed_oracle(env, info)
        tool = action.split("(")[0]
        if not wrong and tool in ("cancel_order", "refund", "exchange", "change_address"):
            others = [a for a in info["valid_actions"] if a.startswith(tool + "(") and a != action]
            if others:
                wrong.append(others[0])
                return others[0]
        return action

    return choose


@pytest.mark.parametrize("kwargs", [{}, HARD])
def test_oracle_lists_its_action_after_a_wrong_store_call(kwargs: dict) -> None:
    # DAgger asks the oracle in the states a learner reaches, such as after it exchanged the wrong item
    env = gym.make(ID, **kwargs)
    ended = Counter()
    for seed in range(150):
        ended[play(env, seed, mistaken())[-1].action] += 1
    assert ended["transfer_to_human()"] > 0  # some wrong calls cannot be undone: the oracle hands the chat over


def test_random_valid_actions_fail() -> None:
    env = gym.make(ID)
    choose = random_valid(np.random.default_rng(0))
    results = [play(env, seed, choose)[-1].info for seed in range(300)]
    assert np.mean([info["success"] for info in results]) <= 0.01
    assert sum(len(info["violations"]) for info in results) > 100


def test_doing_what_is_forbidden_is_named_and_fails() -> None:
    env = gym.make(ID, forbidden_rate=1.0)
    named = Counter()
    for seed in range(300):
        info = play(env, seed, compliant())[-1].info
        request = env.unwrapped.persona.requests[0]
        if request.kind is RequestKind.TRACK:
            assert info["success"]
            continue
        assert not info["success"] and info["db_diff"] and len(info["violations"]) == 1, seed
        named.update(info["violations"])
    assert set(named) == {rule.name for rule in POLICY} - {"unverified_action"}


def test_violation_is_a_reward_term() -> None:
    env = gym.make(ID, reward={"unverified_action": -0.7})
    _, info = env.reset(seed=0)
    order_id = env.unwrapped.persona.requests[0].order_id
    env.step(SAY[Intent.ASK_ORDER_ID])
    _, reward, *_, info = env.step(f"get_order(order_id={order_id})")
    assert info["reward_terms"] == {"step": -0.01, "unverified_action": -0.7}
    assert reward == pytest.approx(-0.71) and info["violations"] == ["unverified_action"]
    *_, info = env.step("end_conversation()")
    assert not info["success"] and info["reward_terms"]["failure"] == 0.0


def test_db_diff_names_what_changed() -> None:
    env = gym.make(ID, forbidden_rate=1.0)
    for seed in range(50):
        info = play(env, seed, compliant())[-1].info
        if env.unwrapped.persona.requests[0].kind is RequestKind.CANCEL:
            order_id = env.unwrapped.persona.requests[0].order_id
            assert info["db_diff"] == [
                f"{order_id} status: cancelled (goal: {env.unwrapped.goal.orders[order_id].status.value})"
            ]
            return
    raise AssertionError("no cancel request in 50 seeds")


def test_unresolved_or_transferred_fails() -> None:
    env = gym.make(ID, forbidden_rate=0.0)
    _, info = env.reset(seed=1)
    *_, terminated, _, info = env.step("transfer_to_human()")
    assert terminated and not info["success"] and "failure" in info["reward_terms"]
    _, info = env.reset(seed=1)
    while True:  # the oracle, but it never tells the customer the outcome
        action = env.unwrapped.oracle_action()
        if action in (SAY[Intent.CONFIRM_DONE], SAY[Intent.REFUSE]) or "Your order" in action:
            action = "end_conversation()"
        *_, terminated, _, info = env.step(action)
        if terminated:
            break
    assert not info["success"] and info["db_diff"] == [] and info["violations"] == []


# ---- the customer and the knobs -----------------------------------------------------------------------


def test_customer_reveals_facts_only_when_asked() -> None:
    env = gym.make(ID)
    for seed in range(30):
        observation, _ = env.reset(seed=seed)
        persona = env.unwrapped.persona
        assert persona.email not in observation and persona.zip_code not in observation
        assert persona.requests[0].order_id not in observation
        assert persona.email in env.step(SAY[Intent.ASK_EMAIL])[0]
        assert persona.zip_code in env.step(SAY[Intent.ASK_ZIP])[0]
        assert persona.requests[0].order_id in env.step(SAY[Intent.ASK_ORDER_ID])[0]


def test_phrasings_vary_with_the_seed() -> None:
    env = gym.make(ID)
    openings = {env.reset(seed=seed)[0].splitlines()[0] for seed in range(40)}
    answers = set()
    for seed in range(40):
        env.reset(seed=seed)
        said = env.step(SAY[Intent.ASK_EMAIL])[0].splitlines()[1]
        answers.add(said.replace(env.unwrapped.persona.email, "EMAIL"))
    assert len(openings) > 15 and len(answers) >= 3


def test_same_seed_same_oracle_transcript() -> None:
    env = gym.make(ID, **HARD)
    assert play(env, 7, listed_oracle).observations == play(env, 7, listed_oracle).observations
    assert play(env, 7, listed_oracle).observations != play(env, 8, listed_oracle).observations


def test_two_requests_come_one_after_the_other() -> None:
    env = gym.make(ID, num_requests=2)
    for seed in range(20):
        env.reset(seed=seed)
        persona = env.unwrapped.persona
        assert len(persona.requests) == 2 and persona.requests[0].order_id != persona.requests[1].order_id
        observations = play(env, seed, listed_oracle).observations
        replies = [obs.splitlines()[1] for obs in observations if obs.startswith("You sent")]
        assert sum(any(also in reply for also in ALSO) for reply in replies) == 1
        assert all(request.order_id in " ".join(replies) for request in persona.requests)


def test_observation_keeps_the_request_in_view() -> None:
    """Once the order is looked up, the request decides the right action: the customer's statement of it (at
    the opening, or after "Also," with two requests) stays in the observation, among the earlier messages."""
    statements = [p.split("{")[0] for ps in STATEMENTS.values() for p in ps] + [p.split("{")[0] for p in DEMANDS]
    for kwargs in ({}, {"num_requests": 2}):
        env = gym.make(ID, **kwargs)
        decisions = 0
        for seed in range(100):
            observation, info = env.reset(seed=seed)
            unwrapped, done = env.unwrapped, False
            while not done:
                if unwrapped.focus < len(unwrapped.persona.requests):
                    request = unwrapped.persona.requests[unwrapped.focus]
                    if request.order_id in unwrapped.notes.looked_up:
                        decisions += 1
                        assert any(s in observation for s in statements), (seed, observation)
                observation, _, terminated, truncated, info = env.step(unwrapped.oracle_action())
                done = terminated or truncated
        assert decisions > 200


def test_earlier_messages_keep_the_newest_within_their_limit() -> None:
    messages = [f"message {n} " + "x" * 300 for n in range(20)]
    shown = earlier_messages(messages)
    assert shown.startswith("\nEarlier, the customer said:\n- ...\n") and not shown.endswith("\n")
    assert "message 19" in shown
    assert "message 0 " not in shown and len(shown) <= EARLIER_LIMIT + 40
    assert all(len(line) <= EARLIER_MESSAGE_LIMIT + 2 for line in shown.splitlines())
    assert earlier_messages([]) == ""


def test_knobs_shape_the_scenario() -> None:
    for kwargs, check in [
        ({"num_orders": 7}, lambda u: len(u.db.orders_of(u.persona.email)) == 7),
        ({"forbidden_rate": 0.0}, lambda u: all(u.permitted)),
        (
            {"forbidden_rate": 1.0},
            lambda u: all(
                p == (r.kind is RequestKind.TRACK)
                for p, r in zip(u.permitted, u.persona.requests, strict=True)
            ),
        ),
        ({"ambiguous_opening": True}, lambda u: u.customer_message in AMBIGUOUS_OPENINGS),
    ]:
        env = gym.make(ID, **kwargs)
        for seed in range(50):
            env.reset(seed=seed)
            assert check(env.unwrapped), (kwargs, seed)
    env = gym.make(ID, forbidden_rate=0.5)
    rate = np.mean([not env.reset(seed=s) or not env.unwrapped.permitted[0] for s in range(400)])
    assert 0.3 < rate < 0.5  # tracking requests (1 in 5) are always permitted


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_requests": 3}, "num_requests must be 1 or 2"),
        ({"num_orders": 0}, "num_orders must be an int from 1 to 8"),
        ({"num_orders": 1, "num_requests": 2}, "num_orders must be an int from 2 to 8"),
        ({"forbidden_rate": 1.5}, "forbidden_rate is a probability"),
        ({"customer": "rule-based"}, "customer must be a Customer"),
    ],
)
def test_bad_kwargs_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        CustomerServiceEnv(**kwargs)


class TerseCustomer(Customer):
    """A different customer: states the request kind, then answers each question with the bare fact."""

    def start(self, persona: Persona, rng: np.random.Generator) -> str:
        self.persona = persona
        return f"I need help: {persona.requests[0].kind.value}. \x07" + "!" * 1000

    def reply(self, message: str, focus: int) -> str:
        if focus == len(self.persona.requests):
            return "Bye."
        request = self.persona.requests[focus]
        facts = {
            Intent.ASK_EMAIL: self.persona.email,
            Intent.ASK_ZIP: self.persona.zip_code,
            Intent.ASK_ORDER_ID: request.order_id,
            Intent.ASK_ITEM: request.item,
            Intent.ASK_NEW_ITEM: request.new_item,
            Intent.ASK_ADDRESS: request.address,
        }
        return facts.get(classify_message(message)) or f"I need help: {request.kind.value}."


def test_customer_is_swappable() -> None:
    env = gym.make(ID, customer=TerseCustomer(), num_requests=2)
    observation, _ = env.reset(seed=0)
    assert "I need help:" in observation and "\x07" not in observation and "!" * 400 not in observation
    for seed in range(100):
        assert play(env, seed, listed_oracle)[-1].info["success"], seed


def test_observations_are_printable_and_bounded() -> None:
    env = gym.make(ID, **HARD)
    rng = np.random.default_rng(0)
    hostile = [
        "é" * 300,
        "get_order(order_id=W1234" + "\U0001f642" * 200,
        "x" * 10_000,
        "refund(order_id=" + "W" * 230 + ", amount=1)",
        "lookup_customer(" + "a" * 240 + "=1)",
    ]
    longest = 0
    for seed in range(100):
        _, info = env.reset(seed=seed)
        for step in range(60):
            action = hostile[step % 5] if step % 7 == 0 else str(rng.choice(info["valid_actions"]))
            observation, *_, terminated, truncated, info = env.step(action)
            assert set(observation) <= set(string.printable)
            longest = max(longest, len(observation))
            if terminated or truncated:
                break
    assert longest < CustomerServiceEnv.max_observation_length


def test_worst_case_observation_fits() -> None:
    """The longest tool result (a 3-item order, an 80-character address, huge refunds) below the longest error."""
    env = gym.make(ID, num_orders=8)
    env.reset(seed=0)
    unwrapped = env.unwrapped
    unwrapped.verified = unwrapped.persona.email
    order = max(unwrapped.db.orders_of(unwrapped.persona.email), key=lambda o: len(o.items))
    env.step(f'change_address(order_id={order.order_id}, address="{"x" * 80}")')
    for _ in range(50):
        env.step(f"refund(order_id={order.order_id}, amount=999999.99)")
    env.step(f"get_order(order_id={order.order_id})")
    for hostile in [
        "\U0001f642" * 300,
        "lookup_customer(" + "a" * 230 + "=1)",
        'get_order(order_id="' + "\x00" * 200,
    ]:
        observation = env.step(hostile)[0]
        assert len(observation) < CustomerServiceEnv.max_observation_length


def test_catalog_names_are_distinguishable_in_text() -> None:
    assert not [(a, b) for a in CATALOG for b in CATALOG if a != b and a in b]
