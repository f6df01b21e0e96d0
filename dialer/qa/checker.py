"""The QA checker, pure: one transcript plus call metadata → violations (rule id, turn index, evidence) and a 0–100 score.

Conduct rules look only at the agent's (collector's or bot's) turns. Disclosure follows the call's
state turn by turn: a verification question from the agent, then the callee's answer, decides who
has been verified; anyone who says they are someone else (spouse, colleague, wrong number) is a
third party until a new verification succeeds.

process.order checks the first occurrence of each stage of `required_order`; debt or plan mentioned
before verification is reported once, as privacy.third_party_disclosure, not again as process.order.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from common.normalize import Normalized, normalize
from dialer.gate.rules import WEEKDAYS
from dialer.qa.rules import CONDUCT_RULES, Lexicon, Negation, Pattern, QARules, RuleSet

SPEAKERS = ("agent", "callee")
_SENTENCE_END = re.compile(r"[。！？!?;；\n]|\.(?=\s|$)")


class TranscriptError(ValueError):
    """A transcript that cannot be checked; `field` names the offending field."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class Turn:
    speaker: str
    text: str
    start: float | None = None
    end: float | None = None
    segments: tuple[tuple[str, float | None, float | None], ...] = ()  # recogniser pieces (text, start, end)


@dataclass(frozen=True)
class Transcript:
    call_id: str
    lang: str
    jurisdiction: str
    started_at: datetime
    turns: tuple[Turn, ...]
    agent: str | None = None
    campaign: str | None = None
    institution: str | None = None  # the campaign's institution: naming it is an identity statement

    def as_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id, "lang": self.lang, "jurisdiction": self.jurisdiction,
            "started_at": self.started_at.isoformat(),
            "turns": [{"speaker": t.speaker, "text": t.text, "start": t.start, "end": t.end,
                       **({"segments": [{"text": x, "start": a, "end": b} for x, a, b in t.segments]}
                          if t.segments else {})} for t in self.turns],
            **({"agent": self.agent} if self.agent else {}),
            **({"campaign": self.campaign} if self.campaign else {}),
            **({"institution": self.institution} if self.institution else {}),
        }


@dataclass(frozen=True)
class Violation:
    rule: str
    turn: int | None
    evidence: str
    confidence: float | None = None  # the detector's probability (None: a rule or lexicon decided alone)

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"rule": self.rule, "turn": self.turn, "evidence": self.evidence}
        if self.confidence is not None:
            d["confidence"] = self.confidence
        return d


@dataclass(frozen=True)
class ReviewItem:
    """An uncertain finding for a QA officer: the rule, the evidence turn, the detector's probability."""

    rule: str
    turn: int | None
    confidence: float
    evidence: str
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "turn": self.turn, "confidence": self.confidence, "evidence": self.evidence,
                "reason": self.reason}


@dataclass(frozen=True)
class Result:
    call_id: str
    violations: tuple[Violation, ...]
    score: int
    review: tuple[ReviewItem, ...] = ()

    @property
    def rules(self) -> frozenset[str]:
        return frozenset(v.rule for v in self.violations)

    @property
    def review_rules(self) -> frozenset[str]:
        return frozenset(r.rule for r in self.review)

    def outcome(self, rule: str) -> str:
        """violation | needs_review | clean"""
        return "violation" if rule in self.rules else "needs_review" if rule in self.review_rules else "clean"

    def as_dict(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "violations": [v.as_dict() for v in self.violations], "score": self.score,
                "review": [r.as_dict() for r in self.review]}


# -- input --------------------------------------------------------------------------------------

def parse_transcript(obj: Any, rules: RuleSet | QARules | None = None) -> Transcript:
    """Validate one transcript object (docs/CONTRACTS.md shape); raise TranscriptError naming the field."""
    if not isinstance(obj, Mapping):
        raise TranscriptError("(call)", "must be a JSON object")
    for key in ("call_id", "lang", "jurisdiction", "started_at", "turns"):
        if key not in obj or obj[key] is None:
            raise TranscriptError(key, "missing")
    call_id = obj["call_id"]
    if not isinstance(call_id, (str, int)) or str(call_id) == "":
        raise TranscriptError("call_id", "must be a non-empty string")
    lang = obj["lang"]
    known_langs = _known_langs(rules)
    if lang not in known_langs:
        raise TranscriptError("lang", f"unknown language {lang!r} (known: {', '.join(sorted(known_langs))})")
    jurisdiction = obj["jurisdiction"]
    if isinstance(rules, RuleSet) and jurisdiction not in rules.profiles:
        raise TranscriptError("jurisdiction", f"unknown jurisdiction {jurisdiction!r} (known: {', '.join(rules.profiles)})")
    if not isinstance(jurisdiction, str):
        raise TranscriptError("jurisdiction", "must be a string")
    try:
        started_at = datetime.fromisoformat(str(obj["started_at"]))
    except ValueError:
        raise TranscriptError("started_at", f"not an ISO-8601 time: {obj['started_at']!r}") from None
    if started_at.tzinfo is None:
        raise TranscriptError("started_at", "needs a UTC offset (the debtor's local time), e.g. +08:00")
    raw_turns = obj["turns"]
    if not isinstance(raw_turns, list):
        raise TranscriptError("turns", "must be a list")
    turns = []
    for i, t in enumerate(raw_turns):
        where = f"turns[{i}]"
        if not isinstance(t, Mapping):
            raise TranscriptError(where, "must be an object {speaker, text, start, end}")
        if t.get("speaker") not in SPEAKERS:
            raise TranscriptError(f"{where}.speaker", f"must be agent or callee, got {t.get('speaker')!r}")
        if not isinstance(t.get("text"), str):
            raise TranscriptError(f"{where}.text", "missing or not a string")
        times = []
        for k in ("start", "end"):
            v = t.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise TranscriptError(f"{where}.{k}", f"must be seconds (a number), got {v!r}")
            times.append(float(v) if v is not None else None)
        turns.append(Turn(speaker=t["speaker"], text=t["text"], start=times[0], end=times[1],
                          segments=_segments(t.get("segments"), where)))
    return Transcript(call_id=str(call_id), lang=lang, jurisdiction=jurisdiction, started_at=started_at,
                      turns=tuple(turns), agent=_opt_str(obj.get("agent")), campaign=_opt_str(obj.get("campaign")),
                      institution=_opt_str(obj.get("institution")))


def _segments(raw: Any, where: str) -> tuple[tuple[str, float | None, float | None], ...]:
    """Optional recogniser pieces of a turn: [{text, start, end}] (pauses between them mark sentence ends)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise TranscriptError(f"{where}.segments", "must be a list of {text, start, end}")
    out = []
    for k, s in enumerate(raw):
        w = f"{where}.segments[{k}]"
        if not isinstance(s, Mapping) or not isinstance(s.get("text"), str):
            raise TranscriptError(w, "must be an object with a text string")
        times = []
        for key in ("start", "end"):
            v = s.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise TranscriptError(f"{w}.{key}", f"must be seconds (a number), got {v!r}")
            times.append(float(v) if v is not None else None)
        out.append((s["text"], times[0], times[1]))
    return tuple(out)


def _opt_str(v: Any) -> str | None:
    return str(v) if v not in (None, "") else None


def _known_langs(rules: RuleSet | QARules | None) -> set[str]:
    if rules is None:
        return {"zh", "en"}
    profiles = rules.profiles.values() if isinstance(rules, RuleSet) else [rules]
    return {lang for p in profiles for lang in p.lexicons}


# -- matching -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Hit:
    pattern: Pattern
    start: int
    end: int


def _negated(text: str, start: int, breaks: re.Pattern[str], neg: Negation) -> bool:
    clause_start = 0
    for m in breaks.finditer(text, 0, start):
        clause_start = m.end()
    lo = max(clause_start, start - neg.window)
    window = text[lo:start]
    cues = list(neg.cues.finditer(window))
    if not cues:
        return False
    between = window[cues[-1].end():]
    return not (neg.resets is not None and neg.resets.search(between))


def _find(patterns: tuple[Pattern, ...], norm: Normalized, lex: Lexicon,
          negation: Negation | None = None) -> _Hit | None:
    best: _Hit | None = None
    for p in patterns:
        for m in p.regex.finditer(norm.text):
            if m.end() <= m.start():
                continue
            if negation is not None and _negated(norm.text, m.start(), lex.clause_breaks, negation):
                continue
            if best is None or m.start() < best.start:
                best = _Hit(p, m.start(), m.end())
            break
    return best


def _evidence(norm: Normalized, hit: _Hit | None, limit: int = 160) -> str:
    """The sentence of the original turn that holds the match (the whole turn if no match)."""
    text = norm.original
    if hit is None:
        return text[:limit]
    a, b = norm.span(hit.start, hit.end)
    lo = 0
    for m in _SENTENCE_END.finditer(text, 0, a):
        lo = m.end()
    m = _SENTENCE_END.search(text, b)
    hi = m.end() if m else len(text)
    sentence = text[lo:hi].strip()
    if len(sentence) > limit:
        sentence = text[max(a - 40, 0):min(b + 40, len(text))].strip()
    return sentence


# -- the check ----------------------------------------------------------------------------------

def check(transcript: Transcript | Mapping[str, Any], rules: RuleSet | QARules, detectors: Any = None) -> Result:
    """Every violation in one call, in turn order, and its score (100 minus the weight of each rule broken).

    With `detectors` (dialer.qa.detect.load()), the sentence-embedding detectors decide next to the
    lexicons and uncertain findings come back as review items (dialer.qa.judge); without, the lexicon
    checker alone (the version-1 behaviour, kept as the benchmark's baseline)."""
    t = transcript if isinstance(transcript, Transcript) else parse_transcript(transcript, rules)
    profile = rules.for_jurisdiction(t.jurisdiction) if isinstance(rules, RuleSet) else rules
    lex = profile.lexicons.get(t.lang)
    if lex is None:
        raise TranscriptError("lang", f"no {t.lang!r} lexicon in profile {profile.profile!r}")
    if detectors is not None:
        from dialer.qa.judge import judge
        return judge(t, profile, lex, detectors)
    found: list[Violation] = []
    if "time.window" in profile.enabled:
        v = _time_window(t, profile)
        if v:
            found.append(v)
    found += _turns(t, profile, lex)
    found = [v for v in found if v.rule in profile.enabled]
    found.sort(key=lambda v: (-1 if v.turn is None else v.turn, v.rule))
    score = max(0, 100 - sum(profile.weights.get(r, 0) for r in {v.rule for v in found}))
    return Result(call_id=t.call_id, violations=tuple(found), score=score)


def _fmt_minutes(m: int) -> str:
    return f"{m // 60:02d}:{m % 60:02d}"


def _time_window(t: Transcript, profile: QARules) -> Violation | None:
    local = t.started_at
    minute = local.hour * 60 + local.minute + local.second / 60
    day = local.weekday()
    todays = [w for w in profile.windows if day in w.days]
    if any(w.start <= minute < w.end for w in todays):
        return None
    allowed = ", ".join(f"{_fmt_minutes(w.start)}–{_fmt_minutes(w.end)}" for w in todays) or "no calls"
    return Violation("time.window", None,
                     f"call started {local.strftime('%H:%M')} {WEEKDAYS[day]} debtor-local "
                     f"(UTC{local.strftime('%z')}); allowed {allowed}")


def _turns(t: Transcript, profile: QARules, lex: Lexicon) -> list[Violation]:
    out: list[Violation] = []
    first: dict[str, int] = {}
    verified = pending = False
    first_agent: int | None = None
    for i, turn in enumerate(t.turns):
        norm = normalize(turn.text)
        if turn.speaker == "callee":
            if _find(lex.callee["third_party"], norm, lex):
                verified = pending = False
            elif pending and _find(lex.callee["deny"], norm, lex):
                pending = False
            elif pending and _find(lex.callee["confirm"], norm, lex):
                verified, pending = True, False
            continue
        if first_agent is None:
            first_agent = i
        for rule in CONDUCT_RULES:
            c = lex.conduct.get(rule)
            hit = _find(c.patterns, norm, lex, c.negation) if c else None
            if hit:
                out.append(Violation(rule, i, _evidence(norm, hit)))
        hits = {stage: _find(lex.stages[stage], norm, lex) for stage in lex.stages}
        for stage, hit in hits.items():
            if hit:
                first.setdefault(stage, i)
        if hits.get("debt") and not verified:
            out.append(Violation("privacy.third_party_disclosure", i, _evidence(norm, hits["debt"])))
        if hits.get("verification"):
            pending = True
    if "identity" not in first:
        out.append(Violation("disclosure.identity_missing", first_agent if first_agent is not None else 0,
                             "the agent never said who is calling and for which institution"))
    order = _order(first, profile.required_order)
    if order:
        out.append(order)
    return out


def _order(first: Mapping[str, int], required: tuple[str, ...]) -> Violation | None:
    """First broken pair of required_order among the stages that occurred (verification→debt/plan excepted)."""
    broken: list[tuple[int, str, str]] = []
    for ai, a in enumerate(required):
        for b in required[ai + 1:]:
            if a == "verification" and b in ("debt", "plan_or_consequence"):
                continue  # that is a disclosure before verification: privacy.third_party_disclosure
            if a in first and b in first and first[b] < first[a]:
                broken.append((first[b], b, a))
    if not broken:
        return None
    turn, early, late = min(broken)
    return Violation("process.order", turn, f"{early} (turn {turn}) came before {late} (turn {first[late]})")
