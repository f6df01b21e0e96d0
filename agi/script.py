"""The voice bot's script engine: scripts as data and a pure state machine `(state, event) -> (actions, state)`.

Right-party verification is enforced here, not only in the script files: a script whose
pre-verification nodes mention a debt slot (or debt words) fails `validate`, and at run time a
prompt that needs a debt slot before verification is never rendered (the call ends instead).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_UP, Decimal
from typing import Any, Iterable, Mapping

from agi.intents import INTENTS, Intent, classify, dtmf_intent, extract_digits

# ------------------------------------------------------------------ vocabulary

DEBT_SLOTS = frozenset({"amount", "due_date", "days_past_due", "instalments", "instalment_amount",
                        "promise_date", "promise_amount"})
"""Slots that reveal the debt: never rendered before right-party verification."""
IDENTITY_SLOTS = frozenset({"institution", "collector_name", "debtor_name", "callback_number"})
STATIC_SLOTS = frozenset({"institution", "collector_name", "callback_number"})
"""Known at campaign load: prompts using only these are rendered once per campaign."""
SLOTS = DEBT_SLOTS | IDENTITY_SLOTS

OUTCOMES = ("promise", "hardship", "dispute", "refusal", "wrong_number", "cease", "callback",
            "third_party", "verification_failed", "no_response")
VERIFY_FACTORS = ("birth_year", "id_last4", "either")
VERIFY_EDGES = ("verified", "failed")
DTMF_KEYS = frozenset("0123456789*#")

DEBT_WORDS = {
    "zh": ("逾期", "欠款", "欠费", "欠", "还款", "账单", "债", "催收", "贷款", "借款", "金额", "分期", "违约"),
    "en": ("debt", "owe", "overdue", "past due", "balance", "payment", "collect", "loan", "bill",
           "arrears", "instalment", "installment"),
}
"""Words that disclose a debt; none may be spoken before verification (privacy.third_party_disclosure)."""

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


# ------------------------------------------------------------------ validation

@dataclass(frozen=True)
class Problem:
    path: tuple[Any, ...]  # into the script file's structure, e.g. ('nodes', 'greet', 'on', 'yes')
    message: str


def _reachable(script: Script, cut: set[tuple[str, str]] | None = None,
               cut_intent: str | None = None, start: str | None = None) -> set[str]:
    """Nodes reachable from start; `cut` = (node, edge) pairs not followed; `cut_intent` = intent edges not followed."""
    cut = cut or set()
    seen: set[str] = set()
    stack = [start or script.start]
    globals_ = [(k, v) for k, v in script.on_any.items()]
    while stack:
        nid = stack.pop()
        if nid in seen or nid not in script.nodes:
            continue
        seen.add(nid)
        node = script.nodes[nid]
        edges = [(path[-1] if path[0] == "on" else path[0], tgt) for path, tgt in node.targets()]
        if node.listens:
            edges += globals_
        for edge, tgt in edges:
            if (nid, edge) in cut or (cut_intent and edge == cut_intent):
                continue
            stack.append(tgt)
    return seen


REVOKING = ("third_party", "wrong_number")
"""Intents that end verification: whoever says them is not (or no longer) the right party."""
REQUIRED_ANYTIME = ("third_party", "wrong_number", "cease")
"""Intents every script must handle at any moment (`on_any`)."""


def pre_verification_nodes(script: Script) -> set[str]:
    """Every node that can run while the right party is not verified (before, or after a third party spoke)."""
    cut = {(nid, "verified") for nid, n in script.nodes.items() if n.verify}
    nodes = _reachable(script, cut=cut)
    revoked = {tgt for n in script.nodes.values() for k, tgt in n.on.items() if k in REVOKING}
    revoked |= {tgt for k, tgt in script.on_any.items() if k in REVOKING}
    for tgt in revoked:
        nodes |= _reachable(script, cut=cut, start=tgt)
    return nodes


def _prompt_ids(node: Node) -> list[tuple[tuple[Any, ...], str]]:
    out = [(("say", i), p) for i, p in enumerate(node.say)]
    for name, retry in (("no_input", node.no_input), ("no_match", node.no_match)):
        out += [((name, "say", i), p) for i, p in enumerate(retry.say)]
    return out


def debt_words(text: str, lang: str) -> list[str]:
    """Debt words in a prompt's own wording (slot names such as {debtor_name} are not words)."""
    low = _SLOT_RE.sub(" ", text).lower()
    if lang == "zh":
        return [w for w in DEBT_WORDS["zh"] if w in low]
    return [w for w in DEBT_WORDS.get(lang, ()) if re.search(rf"\b{re.escape(w)}", low)]


def validate(script: Script) -> list[Problem]:
    """Every problem with a script, each at a field path; empty when the script is safe to run."""
    P: list[Problem] = []
    nodes = script.nodes
    if script.lang not in DEBT_WORDS:
        P.append(Problem(("lang",), f"unknown lang {script.lang!r} (zh or en)"))
    if script.start not in nodes:
        P.append(Problem(("start",), f"unknown node {script.start!r}"))
        return P
    if script.fallback not in nodes:
        P.append(Problem(("fallback",), f"unknown node {script.fallback!r}"))
    for intent in REQUIRED_ANYTIME:
        if intent not in script.on_any:
            P.append(Problem(("on_any",), f"on_any must handle {intent!r}: it can come at any moment of a call"))
    for section, table in (("on_any", script.on_any), ("on_any_verified", script.on_any_verified)):
        for intent, tgt in table.items():
            if intent not in INTENTS:
                P.append(Problem((section, intent), f"unknown intent {intent!r}"))
            if tgt not in nodes:
                P.append(Problem((section, intent), f"unknown node {tgt!r}"))
    for pid, prompt in script.prompts.items():
        for s in prompt.slots:
            if s not in SLOTS:
                P.append(Problem(("prompts", pid), f"unknown slot {{{s}}} (known: {', '.join(sorted(SLOTS))})"))
    for nid, node in nodes.items():
        base = ("nodes", nid)
        kinds = [k for k, v in (("listen", node.listen is not None), ("verify", node.verify), ("next", node.next),
                                ("end", node.end), ("transfer", node.transfer)) if v]
        if len(kinds) != 1:
            P.append(Problem(base, "a node needs exactly one of listen, verify, next, end, transfer"
                             + (f" (has {', '.join(kinds)})" if kinds else "")))
        for path, pid in _prompt_ids(node):
            if pid not in script.prompts:
                P.append(Problem(base + path, f"missing prompt {pid!r}"))
        if node.listens and not node.say:
            P.append(Problem(base, "missing prompt: a node that listens must say something first"))
        for path, tgt in node.targets():
            if tgt not in nodes:
                P.append(Problem(base + path, f"unknown node {tgt!r}"))
        for intent in node.listen or ():
            if intent not in INTENTS:
                P.append(Problem(base + ("listen",), f"unknown intent {intent!r}"))
        for key, value in node.dtmf.items():
            intent, _, offset = value.partition(":")
            if len(key) != 1 or key not in DTMF_KEYS:
                P.append(Problem(base + ("dtmf", key), f"not a DTMF key {key!r}"))
            if offset and not _OFFSET.fullmatch(offset):
                P.append(Problem(base + ("dtmf", key), f"bad date offset {offset!r} (like +3d)"))
            if intent not in INTENTS:
                P.append(Problem(base + ("dtmf", key), f"unknown intent {intent!r}"))
        for intent in node.on:
            allowed = VERIFY_EDGES if node.verify else INTENTS
            if intent not in allowed:
                P.append(Problem(base + ("on", intent), f"unknown intent {intent!r}"))
        if node.verify:
            if node.verify not in VERIFY_FACTORS:
                P.append(Problem(base + ("verify",), f"unknown factor {node.verify!r} ({', '.join(VERIFY_FACTORS)})"))
            for edge in VERIFY_EDGES:
                if edge not in node.on:
                    P.append(Problem(base + ("on",), f"a verify node needs on.{edge}"))
        if node.record and node.record not in OUTCOMES:
            P.append(Problem(base + ("record",), f"unknown outcome {node.record!r} ({', '.join(OUTCOMES)})"))
        if node.listen is not None and not node.on and not node.dtmf:
            P.append(Problem(base + ("on",), "a listening node needs transitions"))
    if P:
        return P
    # identity statement first: who is calling and for which institution
    first = script.prompt_texts(nodes[script.start])
    if not first or "institution" not in first[0].slots:
        P.append(Problem(("nodes", script.start, "say", 0),
                         "the first prompt must state who is calling and for which institution ({institution})"))
    # `next` chains must end
    for nid in nodes:
        seen, cur = set(), nid
        while cur and nodes[cur].next:
            if cur in seen:
                P.append(Problem(("nodes", nid, "next"), "a cycle of `next` transitions never listens"))
                break
            seen.add(cur)
            cur = nodes[cur].next
    reach = _reachable(script)
    for tgt in script.on_any_verified.values():
        reach |= _reachable(script, start=tgt)
    for nid in nodes:
        if nid not in reach:
            P.append(Problem(("nodes", nid), f"node {nid!r} is unreachable from {script.start!r}"))
    # verification needs the name confirmed first
    before_name = _reachable(script, cut_intent="confirm_identity")
    for nid in before_name:
        if nodes[nid].verify:
            P.append(Problem(("nodes", nid, "verify"),
                             "reachable without the caller confirming their name (confirm_identity)"))
    # nothing about the debt before verification
    for nid in sorted(pre_verification_nodes(script)):
        node = nodes[nid]
        for path, pid in _prompt_ids(node):
            prompt = script.prompts[pid]
            leaked = [s for s in prompt.slots if s in DEBT_SLOTS]
            if leaked:
                P.append(Problem(("nodes", nid) + path, f"debt slot {{{leaked[0]}}} in prompt {pid!r} before verification"))
            words = debt_words(prompt.text, script.lang)
            if words:
                P.append(Problem(("nodes", nid) + path,
                                 f"prompt {pid!r} mentions the debt ({words[0]!r}) before verification"))
        if node.record in ("promise",):
            P.append(Problem(("nodes", nid, "record"), "a promise cannot be recorded before verification"))
    return P


# ------------------------------------------------------------------ rendering

def format_amount(value: Decimal, currency: str, lang: str) -> str:
    q = value.quantize(Decimal("0.01"))
    num = f"{q:,.2f}" if q != q.to_integral() else f"{int(q):,}"
    if lang == "zh":
        return num.replace(",", "") + ("元" if currency in ("CNY", "RMB", "") else f" {currency}")
    words = {"USD": "dollars", "CNY": "yuan", "RMB": "yuan", "GBP": "pounds", "EUR": "euros"}
    return f"{num} {words.get(currency, currency)}"


def format_date(d: date, lang: str) -> str:
    if lang == "zh":
        return f"{d.month}月{d.day}日"
    return f"{d.strftime('%B')} {d.day}"


def slot_values(script: Script, debtor: Debtor, verified: bool, captured: Mapping[str, Any]) -> dict[str, str]:
    """Values for prompt slots; debt slots only once the right party is verified."""
    v: dict[str, str] = {
        "institution": debtor.institution, "collector_name": debtor.collector_name,
        "debtor_name": debtor.name, "callback_number": debtor.callback_number,
    }
    if not verified:
        return v
    lang = script.lang
    if debtor.amount_owed is not None:
        v["amount"] = format_amount(debtor.amount_owed, debtor.currency, lang)
        per = (debtor.amount_owed / script.instalments).quantize(Decimal("0.01"), rounding=ROUND_UP)
        v["instalment_amount"] = format_amount(per, debtor.currency, lang)
    v["instalments"] = str(script.instalments)
    if debtor.due_date:
        v["due_date"] = format_date(debtor.due_date, lang)
    if debtor.days_past_due is not None:
        v["days_past_due"] = str(debtor.days_past_due)
    v["promise_date"] = (format_date(captured["date"], lang) if captured.get("date")
                         else ("近期" if lang == "zh" else "soon"))
    if captured.get("amount") is not None:
        v["promise_amount"] = format_amount(captured["amount"], debtor.currency, lang)
    elif "amount" in v:
        v["promise_amount"] = v["amount"]
    return v


class PrivacyGuard(Exception):
    """A prompt needed a debt slot before verification."""


def render(prompt: Prompt, values: Mapping[str, str]) -> str:
    missing = [s for s in prompt.slots if s not in values]
    if any(s in DEBT_SLOTS for s in missing):
        raise PrivacyGuard(f"prompt {prompt.id!r} needs {missing} before verification")
    return _SLOT_RE.sub(lambda m: values.get(m.group(1), ""), prompt.text)


# ------------------------------------------------------------------ the state machine

@dataclass(frozen=True)
class State:
    node: str
    verified: bool = False
    name_confirmed: bool = False
    no_input: int = 0
    no_match: int = 0
    verify_failures: int = 0
    captured: Mapping[str, Any] = field(default_factory=dict)  # slots of the last promise / call-back
    intents: tuple[str, ...] = ()
    path: tuple[str, ...] = ()
    last_text: str = ""
    done: bool = False


def _listen(script: Script, node: Node, verified: bool) -> Listen:
    if node.verify:
        return Listen(Grammar(intents=tuple(script.on_any), digits=4), node.timeout or script.timeout)
    extra = tuple(script.on_any) + (tuple(script.on_any_verified) if verified else ())
    intents = tuple(dict.fromkeys(tuple(node.listen or ()) + tuple(node.on) + extra))
    return Listen(Grammar(intents=intents, dtmf=tuple(sorted((k, v.partition(":")[0]) for k, v in node.dtmf.items()))), node.timeout or script.timeout)


def _says(script: Script, debtor: Debtor, state: State, ids: Iterable[str]) -> list[Action]:
    values = slot_values(script, debtor, state.verified, state.captured)
    return [Say(p.id, render(p, values), p.must_finish) for p in (script.prompts[i] for i in ids)]


def _context(script: Script, state: State, reason: str) -> dict[str, Any]:
    ctx: dict[str, Any] = {"script": script.id, "node": state.node, "reason": reason, "verified": state.verified,
                           "intents": list(state.intents), "path": list(state.path)}
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
    if failures >= node.max_attempts:
        state = replace(state, intents=state.intents + ("verification_failed",))
        more, state = _enter(script, debtor, state, node.on["failed"])
        return [Record("verification_failed", {"node": node.id, "attempts": failures})] + more, state
    state = replace(state, verify_failures=failures)
    says = _says(script, debtor, state, node.no_match.say or node.say)
    return says + [_listen(script, node, state.verified)], state


def _dtmf(node: Node, digits: str, today: date | None) -> Intent:
    """A key -> its intent; a mapping like `promise_to_pay:+3d` also carries the date (today + 3 days)."""
    mapping = {k: v.partition(":")[0] for k, v in node.dtmf.items()}
    intent = dtmf_intent(digits, mapping)
    offset = node.dtmf.get(intent.text, "").partition(":")[2]
    if offset and intent.name != "unknown":
        days = int(_OFFSET.fullmatch(offset).group(1))  # type: ignore[union-attr]
        when = (today or date.today()) + timedelta(days=days)
        return Intent(intent.name, {"date": when, "date_kind": "relative"}, intent.text)
    return intent


def start(script: Script, debtor: Debtor) -> tuple[list[Action], State]:
    """The actions that open the call, and the first state."""
    return _enter(script, debtor, State(node=script.start), script.start)


def step(script: Script, debtor: Debtor, state: State, event: Event, *,
         today: date | None = None) -> tuple[list[Action], State]:
    """One event in, the actions to perform and the next state out. Pure."""
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
        if node.verify:
            if intent.name in script.on_any:
                return _on_intent(script, debtor, state, intent)
            return _on_digits(script, debtor, state, extract_digits(event.text))
        return _on_intent(script, debtor, state, intent)
    raise TypeError(f"not an event: {event!r}")


class Engine:
    """A call's script run: `start()` then `handle(event)` until `done`; keeps the state between events."""

    def __init__(self, script: Script, debtor: Debtor, *, today: date | None = None):
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

