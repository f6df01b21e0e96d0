"""Script tests that read like a transcript: feed the engine a list of events, compare the types of the actions.

    run_flow("m1_reminder_en", debtor, today=date(2026, 11, 23),
             events=[Dtmf("1"), Dtmf("1984"), Dtmf("1")],
             expect=[Say, Say, Listen, Say, Listen, Say, Say, Say, Listen, Say, Say, Record, End])

No audio, no Asterisk, no clock: `today` is the debtor's local date and comes in like every other input.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Sequence

from agi.script.engine import Engine, State
from agi.script.loader import load_by_id
from agi.script.model import Action, Debtor, Event, Say, Script


@dataclass(frozen=True)
class FlowRun:
    """What a run produced: every action in order, the actions of each step (`start` first), the final state."""

    actions: list[Action]
    steps: list[tuple[Event | None, list[Action]]]
    state: State

    @property
    def said(self) -> str:
        """The text of every `Say`, joined by spaces."""
        return " ".join(a.text for a in self.actions if isinstance(a, Say))

    def transcript(self) -> str:
        """One line per step: the event (or `start`) and the actions it produced."""
        lines = []
        for event, actions in self.steps:
            out = ", ".join(f"{type(a).__name__}({a.prompt_id})" if isinstance(a, Say) else type(a).__name__
                            for a in actions)
            lines.append(f"{'start' if event is None else repr(event)} -> {out or '(nothing)'}")
        return "\n".join(lines)


def run_flow(script: Script | str, debtor: Debtor, *, events: Sequence[Event], today: date,
             expect: Sequence[type] | None = None) -> FlowRun:
    """Start the call, hand the engine each event in turn, and return what came out.

    `script` is a `Script` or a script id under campaigns/scripts/. `expect`, when given, is the type of
    every action of the whole run in order (`[Say, Listen, Record, End]`); a difference raises
    AssertionError with the transcript."""
    engine = Engine(load_by_id(script) if isinstance(script, str) else script, debtor, today=today)
    first = engine.start()
    steps: list[tuple[Event | None, list[Action]]] = [(None, first)]
    for event in events:
        steps.append((event, engine.handle(event)))
    run = FlowRun([a for _, actions in steps for a in actions], steps, engine.state)
    if expect is not None:
        got = [type(a) for a in run.actions]
        if got != list(expect):
            at = next((i for i, (g, e) in enumerate(zip(got, expect)) if g is not e), min(len(got), len(expect)))
            raise AssertionError(
                f"action {at}: expected {_names(expect[at:at + 1]) or 'no more actions'}, got "
                f"{_names(got[at:at + 1]) or 'no more actions'}\n"
                f"expected: {_names(expect)}\ngot:      {_names(got)}\n{run.transcript()}")
    return run


def _names(types: Sequence[type]) -> str:
    return ", ".join(t.__name__ for t in types)
