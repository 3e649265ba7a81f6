"""The store behind ``textgym/CustomerService-v0``: catalog, records, tools, scenarios and phrase book.

A scenario is one conversation-to-be: a small store :class:`Database` (the customer's orders among
other customers') and the :class:`Persona` the simulated customer plays (identity facts and hidden
requests). Each request's order is drawn in a state that makes the request permitted or forbidden by
the store policy (``SHAPES``); the env decides which with its policy table. The store's tools read and
change a database; the phrase book holds what the rule-based customer says.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import Enum
from typing import NamedTuple, TypeVar

import numpy as np

from textgym.envs.base import InvalidAction

TODAY = date(2025, 6, 2)
"""The store's calendar is fixed, so the refund window depends only on the seed."""
REFUND_WINDOW_DAYS = 30
OTHER_ACCOUNTS = 3
"""Accounts in the store besides the customer's own (1 to 3 orders each)."""
MAX_ORDERS = 8
MAX_ITEMS_PER_ORDER = 3

CATALOG: dict[str, tuple[str, int]] = {
    "running shoes": ("footwear", 8999),
    "hiking boots": ("footwear", 12900),
    "leather sandals": ("footwear", 4950),
    "canvas sneakers": ("footwear", 5900),
    "desk lamp": ("lighting", 3499),
    "floor lamp": ("lighting", 7900),
    "string lights": ("lighting", 1999),
    "reading light": ("lighting", 2450),
    "wireless earbuds": ("audio", 9900),
    "bluetooth speaker": ("audio", 5999),
    "studio headphones": ("audio", 14900),
    "clock radio": ("audio", 3900),
    "coffee grinder": ("kitchen", 4500),
    "chef knife": ("kitchen", 6900),
    "cast iron pan": ("kitchen", 3999),
    "tea kettle": ("kitchen", 2950),
    "travel backpack": ("bags", 7400),
    "tote bag": ("bags", 2500),
    "duffel bag": ("bags", 5500),
    "laptop sleeve": ("bags", 2299),
}
"""Product name -> (category, price in cents). No name contains another, so names can be spotted in text."""
CATEGORIES = tuple(dict.fromkeys(category for category, _ in CATALOG.values()))
PRODUCTS = {
    category: tuple(name for name, (c, _) in CATALOG.items() if c == category) for category in CATEGORIES
}

FIRST_NAMES = tuple("Maria James Aisha Chen Olga Diego Priya Tom Yuki Fatima Liam Sara".split())
LAST_NAMES = tuple("Lopez Smith Khan Wang Petrova Silva Patel Brown Sato Haddad Murphy".split())
STREETS = tuple("Maple Oak Cedar Pine Elm Birch Willow Chestnut".split())
STREET_TYPES = ("St", "Ave", "Rd", "Ln")
CITIES = tuple("Riverton Lakeside Fairview Greenville Springfield Milton Ashford Brookdale".split())

T = TypeVar("T")


class Status(Enum):
    """An order's status."""

    PENDING = "pending"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


def dollars(cents: int) -> str:
    """``1250`` -> ``"$12.50"``."""
    return f"${cents // 100}.{cents % 100:02d}"


@dataclass(frozen=True)
class Item:
    """One product line of an order."""

    name: str
    category: str
    price: int
    """The price paid, in cents."""


@dataclass(frozen=True)
class Order:
    """An order; records are immutable, so a tool that changes one stores a new record."""

    order_id: str
    email: str
    """The owner's account."""
    items: tuple[Item, ...]
    ordered: date
    delivered: date | None
    status: Status
    address: str
    """The shipping address."""
    refunded: int = 0
    """Cents refunded so far."""

    @property
    def paid(self) -> int:
        return sum(item.price for item in self.items)

    def item(self, name: str) -> Item | None:
        return next((item for item in self.items if item.name == name), None)


@dataclass(frozen=True)
class Account:
    """A customer account; ``email`` is its key."""

    name: str
    email: str
    zip_code: str
    address: str


@dataclass
class Database:
    """The store: accounts by email and orders by id (a fixed set of keys; tools replace records)."""

    accounts: dict[str, Account]
    orders: dict[str, Order]

    def copy(self) -> Database:
        return Database(dict(self.accounts), dict(self.orders))

    def orders_of(self, email: str) -> list[Order]:
        return sorted((o for o in self.orders.values() if o.email == email), key=lambda o: o.order_id)

    def diff(self, goal: Database) -> list[str]:
        """One line per order field unlike ``goal``'s, e.g. ``"W1234 status: cancelled (goal: pending)"``."""
        return [
            f"{order_id} {f.name}: {_show(getattr(order, f.name))} (goal: {_show(getattr(want, f.name))})"
            for order_id, order in self.orders.items()
            if order != (want := goal.orders[order_id])
            for f in dataclasses.fields(Order)
            if getattr(order, f.name) != getattr(want, f.name)
        ]


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return ", ".join(item.name for item in value)
    if isinstance(value, Status):
        return value.value
    if isinstance(value, int):
        return dollars(value)
    return str(value)


# ---- the store's tools: each raises InvalidAction for unknown references before changing anything ----


def find_order(db: Database, order_id: str) -> Order:
    order = db.orders.get(order_id)
    if order is None:
        raise InvalidAction(f"there is no order {order_id}")
    return order


def find_item(order: Order, name: str) -> Item:
    item = order.item(name)
    if item is None:
        names = ", ".join(i.name for i in order.items)
        raise InvalidAction(f"order {order.order_id} has no {name}; it has {names}")
    return item


def lookup_customer(db: Database, email: str) -> str:
    account = db.accounts.get(email)
    if account is None:
        raise InvalidAction(f"there is no account with email {email}")
    orders = ", ".join(f"{o.order_id} ({o.status.value})" for o in db.orders_of(email))
    return f"Account of {account.name} ({email}), address {account.address}. Orders: {orders}."


def get_order(db: Database, order_id: str) -> str:
    order = find_order(db, order_id)
    items = "; ".join(f"{i.name} ({i.category}) {dollars(i.price)}" for i in order.items)
    delivered = f", delivered {order.delivered}" if order.delivered else ""
    return (
        f"Order {order_id} of {order.email}: {order.status.value}, ordered {order.ordered}{delivered}; "
        f"ships to {order.address}; items: {items}; paid {dollars(order.paid)}, "
        f"refunded {dollars(order.refunded)}."
    )


def cancel_order(db: Database, order_id: str) -> str:
    db.orders[order_id] = replace(find_order(db, order_id), status=Status.CANCELLED)
    return f"Order {order_id} is now cancelled."


def refund(db: Database, order_id: str, amount: int) -> str:
    order = find_order(db, order_id)
    db.orders[order_id] = replace(order, refunded=order.refunded + amount)
    return f"Refunded {dollars(amount)} on order {order_id}."


def exchange(db: Database, order_id: str, item: str, new_item: str) -> str:
    order = find_order(db, order_id)
    old = find_item(order, item)
    if order.item(new_item) is not None:
        raise InvalidAction(f"order {order_id} already has a {new_item}")
    items = tuple(Item(new_item, CATALOG[new_item][0], old.price) if i is old else i for i in order.items)
    db.orders[order_id] = replace(order, items=items)
    return f"Order {order_id}: {item} exchanged for {new_item}."


def change_address(db: Database, order_id: str, address: str) -> str:
    db.orders[order_id] = replace(find_order(db, order_id), address=address)
    return f"Order {order_id} now ships to {address}."


class RequestKind(Enum):
    """What a customer can want about an order."""

    TRACK = "track"
    CANCEL = "cancel"
    REFUND = "refund"
    EXCHANGE = "exchange"
    CHANGE_ADDRESS = "change_address"


@dataclass(frozen=True)
class Request:
    """One thing the customer wants, with the facts they give when asked."""

    kind: RequestKind
    order_id: str
    item: str | None = None
    """The product to exchange."""
    new_item: str | None = None
    """The product wanted instead."""
    address: str | None = None
    """The new shipping address."""
    amount: int | None = None
    """Cents the customer demands back; only set when they demand more than they paid."""


@dataclass(frozen=True)
class Persona:
    """What the simulated customer knows: who they are and what they want, in order."""

    name: str
    email: str
    zip_code: str
    requests: tuple[Request, ...]
    ambiguous: bool
    """The opening message does not say what the customer wants."""
    acquaintance: str = ""
    """The email of another account of the store (someone the customer knows), for the impostor persona."""


class Shape(NamedTuple):
    """The state a request's order is drawn in, and whether the customer over-asks."""

    status: Status
    days_since_delivery: tuple[int, int] | None = None
    """Inclusive range, for delivered orders."""
    overreach: bool = False
    """The customer asks for more than the policy allows: over-refund or cross-category exchange."""


PENDING = Shape(Status.PENDING)
SHIPPED = Shape(Status.SHIPPED)
RECENT = Shape(Status.DELIVERED, (1, REFUND_WINDOW_DAYS))
LATE = Shape(Status.DELIVERED, (REFUND_WINDOW_DAYS + 1, 120))
CANCELLED = Shape(Status.CANCELLED)
OVERREACH = RECENT._replace(overreach=True)

SHAPES: dict[RequestKind, tuple[tuple[Shape, ...], tuple[Shape, ...]]] = {
    RequestKind.TRACK: ((PENDING, SHIPPED, RECENT, LATE, CANCELLED), ()),
    RequestKind.CANCEL: ((PENDING,), (SHIPPED, RECENT)),
    RequestKind.REFUND: ((RECENT,), (PENDING, SHIPPED, LATE, OVERREACH)),
    RequestKind.EXCHANGE: ((RECENT, LATE), (PENDING, SHIPPED, OVERREACH)),
    RequestKind.CHANGE_ADDRESS: ((PENDING,), (SHIPPED, RECENT)),
}
"""Per request kind: the order shapes that make it (permitted, forbidden)."""
BACKGROUND = (PENDING, SHIPPED, RECENT, RECENT, LATE, CANCELLED)
"""Shapes of orders no request is about."""
ORDER_AGE_DAYS = {
    Status.PENDING: (0, 2),
    Status.SHIPPED: (2, 7),
    Status.DELIVERED: (2, 7),
    Status.CANCELLED: (3, 60),
}
"""Days from ordering to today (to delivery, for delivered orders)."""
OVERREACH_EXTRA = (1500, 2500, 4000)
"""Cents an over-asking customer adds to what they paid."""


@dataclass(frozen=True)
class Scenario:
    db: Database
    persona: Persona


def generate_scenario(
    rng: np.random.Generator, num_orders: int, num_requests: int, forbidden_rate: float, ambiguous: bool
) -> Scenario:
    """A store, and a customer with ``num_requests`` requests about distinct orders among ``num_orders``."""
    accounts = _accounts(rng, 1 + OTHER_ACCOUNTS)
    customer = accounts[0]
    ids = iter(
        f"W{n}" for n in rng.choice(np.arange(1000, 10000), MAX_ORDERS * (1 + OTHER_ACCOUNTS), replace=False)
    )
    orders, requests = [], []
    for _ in range(num_requests):
        kind = _pick(rng, tuple(RequestKind))
        permitted, forbidden = SHAPES[kind]
        shape = _pick(rng, forbidden if forbidden and rng.random() < forbidden_rate else permitted)
        order = _order(rng, next(ids), customer, shape)
        orders.append(order)
        requests.append(_request(rng, kind, order, shape.overreach))
    orders += [
        _order(rng, next(ids), customer, _pick(rng, BACKGROUND)) for _ in range(num_orders - num_requests)
    ]
    for other in accounts[1:]:
        orders += [
            _order(rng, next(ids), other, _pick(rng, BACKGROUND)) for _ in range(int(rng.integers(1, 4)))
        ]
    db = Database({a.email: a for a in accounts}, {o.order_id: o for o in orders})
    persona = Persona(customer.name, customer.email, customer.zip_code, tuple(requests), ambiguous, accounts[1].email)
    return Scenario(db, persona)


def _pick(rng: np.random.Generator, choices: tuple[T, ...]) -> T:
    return choices[int(rng.integers(len(choices)))]


def _address(rng: np.random.Generator) -> str:
    number = int(rng.integers(1, 10000))
    return f"{number} {_pick(rng, STREETS)} {_pick(rng, STREET_TYPES)}, {_pick(rng, CITIES)}"


def _accounts(rng: np.random.Generator, count: int) -> list[Account]:
    names = [(first, last) for first in FIRST_NAMES for last in LAST_NAMES]
    chosen = rng.choice(len(names), count, replace=False)
    accounts = []
    for index in chosen:
        first, last = names[int(index)]
        email = f"{first}.{last}{int(rng.integers(10, 100))}@example.com".lower()
        accounts.append(
            Account(f"{first} {last}", email, str(int(rng.integers(10000, 100000))), _address(rng))
        )
    return accounts


def _order(rng: np.random.Generator, order_id: str, owner: Account, shape: Shape) -> Order:
    """An order in ``shape``'s state, its items from distinct categories (so same-category swaps exist)."""
    categories = rng.choice(len(CATEGORIES), int(rng.integers(1, MAX_ITEMS_PER_ORDER + 1)), replace=False)
    items = []
    for index in categories:
        name = _pick(rng, PRODUCTS[CATEGORIES[int(index)]])
        items.append(Item(name, *CATALOG[name]))
    delivered = None
    if shape.days_since_delivery is not None:
        low, high = shape.days_since_delivery
        delivered = TODAY - timedelta(days=int(rng.integers(low, high + 1)))
    low, high = ORDER_AGE_DAYS[shape.status]
    ordered = (delivered or TODAY) - timedelta(days=int(rng.integers(low, high + 1)))
    return Order(order_id, owner.email, tuple(items), ordered, delivered, shape.status, owner.address)


def _request(rng: np.random.Generator, kind: RequestKind, order: Order, overreach: bool) -> Request:
    if kind is RequestKind.REFUND and overreach:
        return Request(kind, order.order_id, amount=order.paid + _pick(rng, OVERREACH_EXTRA))
    if kind is RequestKind.EXCHANGE:
        item = _pick(rng, order.items)
        in_order = {i.name for i in order.items}
        categories = [c for c in CATEGORIES if (c != item.category) == overreach]
        options = tuple(name for c in categories for name in PRODUCTS[c] if name not in in_order)
        return Request(kind, order.order_id, item=item.name, new_item=_pick(rng, options))
    if kind is RequestKind.CHANGE_ADDRESS:
        address = _address(rng)
        while address == order.address:
            address = _address(rng)
        return Request(kind, order.order_id, address=address)
    return Request(kind, order.order_id)


# ---- the rule-based customer's phrase book ------------------------------------------------------------

GREETINGS = ("Hi.", "Hello there.", "Good morning.", "Hey.")
AMBIGUOUS_OPENINGS = (
    "Hi, I have a problem with one of my orders.",
    "Hello, I need some help with an order.",
    "Hi there. Something is up with my order.",
)
STATEMENTS: dict[RequestKind, tuple[str, ...]] = {
    RequestKind.TRACK: (
        "Where is my order? I'd like to know its status.",
        "Can you tell me the status of my order?",
        "I'm wondering what is happening with my order.",
    ),
    RequestKind.CANCEL: (
        "I'd like to cancel an order.",
        "Please cancel my order, I don't need it anymore.",
        "I want to cancel one of my orders.",
    ),
    RequestKind.REFUND: (
        "I'd like a refund for an order.",
        "I want my money back for an order.",
        "Can I get a refund for my order?",
    ),
    RequestKind.EXCHANGE: (
        "I'd like to exchange an item from my order.",
        "Can I swap an item in my order for something else?",
        "I want to exchange something I bought.",
    ),
    RequestKind.CHANGE_ADDRESS: (
        "I need to change the shipping address of an order.",
        "Can you update the delivery address on my order?",
        "I moved, so my order should go to a new address.",
    ),
}
DEMANDS = (
    "I want a refund of {amount} for my order.",
    "Please refund me {amount} for my order, that is what I'm owed.",
    "I expect {amount} back for my order, shipping included.",
)
"""Statements of a refund request that names a sum (more than was paid)."""
FACT_PHRASES: dict[str, tuple[str, ...]] = {
    "email": ("It's {}.", "My email is {}.", "Sure, it's {}."),
    "zip": ("My zip code is {}.", "It's {}.", "{}."),
    "order_id": ("The order id is {}.", "It's order {}.", "{}, I think."),
    "item": ("The {}.", "It's the {}.", "I mean the {}."),
    "new_item": ("I'd like the {} instead.", "Could I get the {}?", "The {}, please."),
    "address": ("Please send it to {}.", "The new address is {}.", "{}."),
}
"""Ways to give a fact when asked."""
IRRELEVANT = ("I don't think that matters here.", "That's not relevant to my request.", "Why do you ask?")
CONFUSED = ("Sorry, I don't follow.", "What do you mean?", "I'm not sure I understand.")
UNCONVINCED = (
    "Hm, I don't think that's right.",
    "That doesn't answer my question.",
    "That's not what I asked.",
)
THANKS = ("Great, thanks!", "Perfect, thank you.", "Wonderful.")
DISAPPOINTED = ("Oh, that's a shame.", "I see. Too bad.", "Okay, I understand.")
ALSO = ("One more thing.", "Also, there's something else.", "While I have you:")
GOODBYES = (
    "That's all I needed. Bye!",
    "Nothing else, thanks. Goodbye!",
    "That's everything, have a nice day.",
)
