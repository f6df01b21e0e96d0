"""Right-party validation of a script: nothing about the debt before verification, required branches."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agi.intents import INTENTS
from agi.script.model import (
    _OFFSET,
    _SLOT_RE,
    DEBT_SLOTS,
    DTMF_KEYS,
    OUTCOMES,
    SLOTS,
    VERIFY_EDGES,
    VERIFY_FACTORS,
    Node,
    Script,
)
from common.lexicon import LANGS, debt_mentions

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
    globals_ = [(k, v) for k, v in script.on_any.items()] + [(k, v) for k, v in script.on_cue.items()]
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


CUES = ("agitated", "distressed")
"""Voice cues a script can route on (`on_cue`; agi/media/cues.py)."""
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
    """Debt words (common/lexicon.py, the list QA reads too) in a prompt's own wording; slot names such as
    {debtor_name} are not words."""
    return debt_mentions(_SLOT_RE.sub(" ", text), lang)


def validate(script: Script) -> list[Problem]:
    """Every problem with a script, each at a field path; empty when the script is safe to run."""
    P: list[Problem] = []
    nodes = script.nodes
    if script.lang not in LANGS:
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
    for cue, tgt in script.on_cue.items():
        if cue not in CUES:
            P.append(Problem(("on_cue", cue), f"unknown voice cue {cue!r} (known: {', '.join(CUES)})"))
        if tgt not in nodes:
            P.append(Problem(("on_cue", cue), f"unknown node {tgt!r}"))
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
