"""The bot's vocabulary: slots, events, actions, and scripts as data (Script, Node, Prompt, Debtor)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Iterable, Mapping

from common.vocab import DISPOSITIONS

# ------------------------------------------------------------------ vocabulary

DEBT_SLOTS = frozenset({"amount", "due_date", "days_past_due", "instalments", "instalment_amount",
                        "promise_date", "promise_amount"})
"""Slots that reveal the debt: never rendered before right-party verification."""
IDENTITY_SLOTS = frozenset({"institution", "collector_name", "debtor_name", "callback_number"})
STATIC_SLOTS = frozenset({"institution", "collector_name", "callback_number"})
"""Known at campaign load: prompts using only these are rendered once per campaign."""
SLOTS = DEBT_SLOTS | IDENTITY_SLOTS

OUTCOMES = DISPOSITIONS  # what a node's `record:` may name
VERIFY_FACTORS = ("birth_year", "id_last4", "either")
VERIFY_EDGES = ("verified", "failed")
DTMF_KEYS = frozenset("0123456789*#")

_OFFSET = re.compile(r"\+(\d{1,3})d")
_SLOT_RE = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)\}")


def slots_in(text: str) -> list[str]:
    return _SLOT_RE.findall(text)


# ------------------------------------------------------------------ events

@dataclass(frozen=True)
class Speech:
    text: str
    confidence: float = 1.0


@dataclass(frozen=True)
class Dtmf:
    digit: str  # one key, or several collected at once ("1984")


@dataclass(frozen=True)
class NoInput:
    pass


@dataclass(frozen=True)
class BargeIn:
    pass


@dataclass(frozen=True)
class CallerHangup:
    pass


Event = Speech | Dtmf | NoInput | BargeIn | CallerHangup


# ------------------------------------------------------------------ actions

@dataclass(frozen=True)
class Say:
    prompt_id: str
    text: str
    must_finish: bool = False


@dataclass(frozen=True)
class Grammar:
    """What a Listen waits for: intents by voice, keys by DTMF (key -> intent), or a number of digits."""

    intents: tuple[str, ...] = ()
    dtmf: tuple[tuple[str, str], ...] = ()
    digits: int = 0  # > 0: collect this many digits (verification)


@dataclass(frozen=True)
class Listen:
    grammar: Grammar
    timeout: float


@dataclass(frozen=True)
class Transfer:
    queue: str
    context: Mapping[str, Any]


@dataclass(frozen=True)
class End:
    reason: str


@dataclass(frozen=True)
class Record:
    outcome: str
    data: Mapping[str, Any]


Action = Say | Listen | Transfer | End | Record


# ------------------------------------------------------------------ scripts as data

@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    must_finish: bool = False

    @property
    def slots(self) -> list[str]:
        return slots_in(self.text)

    @property
    def is_static(self) -> bool:
        return all(s in STATIC_SLOTS for s in self.slots)


@dataclass(frozen=True)
class Retry:
    retries: int = 2
    say: tuple[str, ...] = ()  # re-prompt; empty -> the node's own prompts again
    then: str | None = None  # None -> the script's fallback


@dataclass(frozen=True)
class Node:
    id: str
    say: tuple[str, ...] = ()
    listen: tuple[str, ...] | None = None  # intents by voice; None: this node does not listen
    dtmf: Mapping[str, str] = field(default_factory=dict)
    on: Mapping[str, str] = field(default_factory=dict)
    verify: str | None = None  # a factor: birth_year | id_last4 | either
    max_attempts: int = 2
    next: str | None = None
    end: str | None = None
    transfer: str | None = None
    record: str | None = None
    timeout: float | None = None
    no_input: Retry = Retry()
    no_match: Retry = Retry()

    @property
    def listens(self) -> bool:
        return self.listen is not None or self.verify is not None

    def targets(self) -> list[tuple[tuple[Any, ...], str]]:
        """(field path, target node) for every transition out of this node."""
        out: list[tuple[tuple[Any, ...], str]] = [(("on", k), v) for k, v in self.on.items()]
        if self.next:
            out.append((("next",), self.next))
        for name, retry in (("no_input", self.no_input), ("no_match", self.no_match)):
            if retry.then:
                out.append(((name, "then"), retry.then))
        return out


@dataclass(frozen=True)
class Script:
    id: str
    lang: str
    locale: str
    start: str
    prompts: Mapping[str, Prompt]
    nodes: Mapping[str, Node]
    fallback: str  # where exhausted retries go when a node names no `then`
    on_any: Mapping[str, str] = field(default_factory=dict)  # intent -> node, at any time
    on_any_verified: Mapping[str, str] = field(default_factory=dict)  # only after verification
    timeout: float = 6.0
    min_confidence: float = 0.0
    instalments: int = 3
    file: str | None = None

    def prompt_texts(self, node: Node, ids: Iterable[str] | None = None) -> list[Prompt]:
        return [self.prompts[p] for p in (node.say if ids is None else ids) if p in self.prompts]


@dataclass(frozen=True)
class Debtor:
    """What a call knows about the person it is for. Verification factors are compared, never spoken."""

    debtor_id: str
    name: str
    phone: str = ""
    birth_year: str | None = None
    id_last4: str | None = None
    amount_owed: Decimal | None = None
    currency: str = "CNY"
    due_date: date | None = None
    days_past_due: int | None = None
    payday: int | None = None
    institution: str = ""
    collector_name: str = ""
    callback_number: str = ""
    account_id: str | None = None
    verify_failures_today: int = 0  # wrong verification answers already given today (all calls)
