"""The pure state machine `(state, event) -> (actions, state)` that runs a script."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Iterable, Mapping

from agi.intents import Intent, classify, dtmf_intent, extract_digits
from agi.script.model import (
    _OFFSET,
    Action,
    BargeIn,
    CallerHangup,
    Debtor,
    Dtmf,
    End,
    Event,
    Grammar,
    Listen,
    Node,
    NoInput,
    Record,
    Say,
    Script,
    Speech,
    Transfer,
)
from agi.script.render import PrivacyGuard, render, slot_values
from agi.script.validate import REVOKING

# ------------------------------------------------------------------ the state machine

VERIFY_FAILURES_PER_DAY = 3  # wrong verification answers per debtor per local day before the lock
VERIFY_FAILURE = "verify_failure"  # Record kind of one wrong answer (counted by the store per day)


@dataclass(frozen=True)
class State:
    node: str
    verified: bool = False
    name_confirmed: bool = False
    no_input: int = 0
    no_match: int = 0
    verify_failures: int = 0  # wrong answers at the current verification node
    call_verify_failures: int = 0  # wrong answers on this call, all nodes
    captured: Mapping[str, Any] = field(default_factory=dict)  # slots of the last promise / call-back
    intents: tuple[str, ...] = ()
    path: tuple[str, ...] = ()
    last_text: str = ""
    done: bool = False
    cued: tuple[str, ...] = ()  # voice cues already routed (each once a call)


SHORT_ANSWERS = frozenset({"confirm_identity", "deny_identity"})  # yes / no: a short endpoint hears them


def _listen(script: Script, node: Node, verified: bool) -> Listen:
    voice = script.voice_of(node)
    if node.voice is None and node.listen and set(node.listen) <= SHORT_ANSWERS and voice.answer_silence_ms:
        # a yes/no node without its own `voice:` ends the turn sooner (issue 15: the endpoint is the latency)
        voice = replace(voice, end_silence_ms=min(voice.end_silence_ms, voice.answer_silence_ms))
    if node.verify:
        return Listen(Grammar(intents=tuple(script.on_any), digits=4), node.timeout or script.timeout, voice)
    extra = tuple(script.on_any) + (tuple(script.on_any_verified) if verified else ())
    intents = tuple(dict.fromkeys(tuple(node.listen or ()) + tuple(node.on) + extra))
    return Listen(Grammar(intents=intents, dtmf=tuple(sorted((k, v.partition(":")[0]) for k, v in node.dtmf.items()))),
                  node.timeout or script.timeout, voice)


def _says(script: Script, debtor: Debtor, state: State, ids: Iterable[str]) -> list[Action]:
    values = slot_values(script, debtor, state.verified, state.captured)
    return [Say(p.id, render(p, values), p.must_finish) for p in (script.prompts[i] for i in ids)]


def _context(script: Script, state: State, reason: str) -> dict[str, Any]:
    ctx: dict[str, Any] = {"script": script.id, "node": state.node, "reason": reason, "verified": state.verified,
                           "intents": list(state.intents), "path": list(state.path)}
    if state.cued:
        ctx["cues"] = list(state.cued)  # the collector's screen pop shows why the bot handed over
    if state.verified and state.captured:
        ctx["promise"] = {k: (v.isoformat() if isinstance(v, date) else str(v)) for k, v in state.captured.items()}
    return ctx


def _record_data(debtor: Debtor, state: State, node: Node) -> dict[str, Any]:
    data: dict[str, Any] = {"node": node.id, "text": state.last_text, "verified": state.verified}
    cap = state.captured
    if node.record in ("promise", "callback"):
        if cap.get("date"):
            data["date"] = cap["date"].isoformat()
        if cap.get("date_kind"):
            data["date_kind"] = cap["date_kind"]
        if cap.get("amount") is not None:
            data["amount"] = str(cap["amount"])
        if cap.get("fraction") is not None:
            data["fraction"] = str(cap["fraction"])
        if node.record == "promise":
            if "amount" not in data and "fraction" not in data and debtor.amount_owed is not None:
                data["amount"] = str(debtor.amount_owed)  # what the bot read back: the whole balance
            data["currency"] = debtor.currency
    if node.record == "wrong_number":
        data["phone"] = debtor.phone
    return data


def _enter(script: Script, debtor: Debtor, state: State, nid: str, depth: int = 0) -> tuple[list[Action], State]:
    node = script.nodes[nid]
    state = replace(state, node=nid, no_input=0, no_match=0, verify_failures=0, path=state.path + (nid,))
    try:
        actions: list[Action] = _says(script, debtor, state, node.say)
    except PrivacyGuard:
        return [End("privacy_guard")], replace(state, done=True)
    if node.record:
        actions.append(Record(node.record, _record_data(debtor, state, node)))
    if node.transfer:
        actions.append(Transfer(node.transfer, _context(script, state, nid)))
        return actions, replace(state, done=True)
    if node.end:
        actions.append(End(node.end))
        return actions, replace(state, done=True)
    if node.next:
        if depth > len(script.nodes):
            return actions + [End("script_loop")], replace(state, done=True)
        more, state = _enter(script, debtor, state, node.next, depth + 1)
        return actions + more, state
    if node.verify and _factor(debtor, node.verify) is None:
        more, state = _enter(script, debtor, state, node.on["failed"], depth + 1)
        return actions + [Record("verification_failed", {"node": nid, "reason": "no factor on file"})] + more, state
    if node.verify and debtor.verify_failures_today + state.call_verify_failures >= VERIFY_FAILURES_PER_DAY:
        # Locked for the day, as banks do: the question is not even asked.
        more, state = _enter(script, debtor, state, node.on["failed"], depth + 1)
        return actions + [Record("verification_failed", {"node": nid, "reason": "locked"})] + more, state
    return actions + [_listen(script, node, state.verified)], state


def _factor(debtor: Debtor, factor: str) -> list[str] | None:
    values = {"birth_year": [debtor.birth_year], "id_last4": [debtor.id_last4],
              "either": [debtor.birth_year, debtor.id_last4]}[factor]
    present = [str(v).strip() for v in values if v]
    return present or None


def _retry(script: Script, debtor: Debtor, state: State, which: str) -> tuple[list[Action], State]:
    node = script.nodes[state.node]
    retry = node.no_input if which == "no_input" else node.no_match
    count = getattr(state, which) + 1
    if count > retry.retries:
        return _enter(script, debtor, state, retry.then or script.fallback)
    state = replace(state, **{which: count})
    try:
        says = _says(script, debtor, state, retry.say or node.say)
    except PrivacyGuard:
        return [End("privacy_guard")], replace(state, done=True)
    return says + [_listen(script, node, state.verified)], state


def _capture(debtor: Debtor, intent: Intent) -> dict[str, Any]:
    cap = dict(intent.slots)
    frac = cap.get("fraction")
    if frac is not None and debtor.amount_owed is not None and "amount" not in cap:
        cap["amount"] = (debtor.amount_owed * frac).quantize(Decimal("0.01"))
    return cap


def _on_intent(script: Script, debtor: Debtor, state: State, intent: Intent) -> tuple[list[Action], State]:
    node = script.nodes[state.node]
    target = node.on.get(intent.name) if not node.verify else None
    if target is None:
        target = script.on_any.get(intent.name)
    if target is None and state.verified:
        target = script.on_any_verified.get(intent.name)
    if target is None:
        return _retry(script, debtor, state, "no_match")
    state = replace(state, intents=state.intents + (intent.name,))
    if intent.name in REVOKING:
        state = replace(state, verified=False, name_confirmed=False)  # not the right party: say nothing more
    if intent.name == "confirm_identity":
        state = replace(state, name_confirmed=True)
    if intent.name in ("promise_to_pay", "callback_request"):
        state = replace(state, captured=_capture(debtor, intent))
    return _enter(script, debtor, state, target)


def _on_digits(script: Script, debtor: Debtor, state: State, digits: str | None) -> tuple[list[Action], State]:
    node = script.nodes[state.node]
    expected = _factor(debtor, node.verify or "either") or []
    if digits and digits in expected and state.name_confirmed:
        state = replace(state, verified=True, intents=state.intents + ("verified",))
        return _enter(script, debtor, state, node.on["verified"])
    failures = state.verify_failures + 1
    # Each wrong answer is a fact recorded as it happens: the daily lock counts them across calls, so a
    # caller cannot guess a birth year one call (or one hang-up) at a time.
    wrong = Record(VERIFY_FAILURE, {"node": node.id})
    today_total = debtor.verify_failures_today + state.call_verify_failures + 1
    state = replace(state, call_verify_failures=state.call_verify_failures + 1)
    if failures >= node.max_attempts or today_total >= VERIFY_FAILURES_PER_DAY:
        reason = "locked" if today_total >= VERIFY_FAILURES_PER_DAY and failures < node.max_attempts else "attempts"
        state = replace(state, intents=state.intents + ("verification_failed",))
        more, state = _enter(script, debtor, state, node.on["failed"])
        return [wrong, Record("verification_failed", {"node": node.id, "attempts": failures,
                                                      "reason": reason})] + more, state
    state = replace(state, verify_failures=failures)
    says = _says(script, debtor, state, node.no_match.say or node.say)
    return [wrong] + says + [_listen(script, node, state.verified)], state


def _dtmf(node: Node, digits: str, today: date) -> Intent:
    """A key -> its intent; a mapping like `promise_to_pay:+3d` also carries the date (today + 3 days)."""
    mapping = {k: v.partition(":")[0] for k, v in node.dtmf.items()}
    intent = dtmf_intent(digits, mapping)
    offset = node.dtmf.get(intent.text, "").partition(":")[2]
    if offset and intent.name != "unknown":
        days = int(_OFFSET.fullmatch(offset).group(1))  # type: ignore[union-attr]
        when = today + timedelta(days=days)
        return Intent(intent.name, {"date": when, "date_kind": "relative"}, intent.text)
    return intent


def start(script: Script, debtor: Debtor) -> tuple[list[Action], State]:
    """The actions that open the call, and the first state."""
    return _enter(script, debtor, State(node=script.start), script.start)


def step(script: Script, debtor: Debtor, state: State, event: Event, *,
         today: date) -> tuple[list[Action], State]:
    """One event in, the actions to perform and the next state out. Pure: `today` is the debtor's local
    date, against which key offsets (`+3d`) and spoken dates resolve."""
    if state.done:
        return [], state
    node = script.nodes[state.node]
    if isinstance(event, CallerHangup):
        return [End("caller_hangup")], replace(state, done=True)
    if isinstance(event, BargeIn):
        # The executor drops queued prompts that are not must_finish; the engine starts listening.
        return ([_listen(script, node, state.verified)] if node.listens else []), state
    if isinstance(event, NoInput):
        return _retry(script, debtor, state, "no_input")
    if isinstance(event, Dtmf):
        if node.verify:
            return _on_digits(script, debtor, state, extract_digits(event.digit))
        return _on_intent(script, debtor, state, _dtmf(node, event.digit, today))
    if isinstance(event, Speech):
        state = replace(state, last_text=event.text)
        if event.confidence < script.min_confidence:
            return _retry(script, debtor, state, "no_match")
        intent = classify(event.text, script.lang, today=today, payday=debtor.payday)
        cue = next((c for c in ("distressed", "agitated") if c in event.cues and c in script.on_cue
                    and c not in state.cued), None)
        if cue is not None and intent.name not in script.on_any:  # cease, wrong number, a person: those win
            state = replace(state, cued=state.cued + (cue,), intents=state.intents + (cue,))
            return _enter(script, debtor, state, script.on_cue[cue])
        if node.verify:
            if intent.name in script.on_any:
                return _on_intent(script, debtor, state, intent)
            return _on_digits(script, debtor, state, extract_digits(event.text))
        return _on_intent(script, debtor, state, intent)
    raise TypeError(f"not an event: {event!r}")


class Engine:
    """A call's script run: `start()` then `handle(event)` until `done`; keeps the state between events.

    `today` is the debtor's local date (the caller passes it; nothing here reads a clock)."""

    def __init__(self, script: Script, debtor: Debtor, *, today: date):
        self.script, self.debtor, self.today = script, debtor, today
        self.state = State(node=script.start)

    def start(self) -> list[Action]:
        actions, self.state = start(self.script, self.debtor)
        return actions

    def handle(self, event: Event) -> list[Action]:
        actions, self.state = step(self.script, self.debtor, self.state, event, today=self.today)
        return actions

    @property
    def done(self) -> bool:
        return self.state.done

    @property
    def verified(self) -> bool:
        return self.state.verified


def digits_needed(listen: Listen) -> int:
    return listen.grammar.digits or 1
