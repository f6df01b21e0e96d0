"""QA rule configuration: the `qa:` section of each profile and the shared `qa_lexicons:` of compliance_rules.yaml, validated into typed objects.

Built on the gate's reading of the file (`dialer.gate.rules`, the one parser): `window: gate` is the
gate's parsed windows, a window of QA's own goes through the same `parse_windows`, and the profiles
and default profile are the gate's.

Every lexicon entry is a regular expression over the matching form of a turn (common.normalize:
Simplified, half-width, case-folded, 您→你), so entries are normalised the same way when loaded.
Errors name the file, line and field (`compliance_rules.yaml:212: qa_lexicons.zh.stages.identity[3]: …`).
The `debt` stage is not in the file: it is `common.lexicon.DEBT`, the list the script validator reads too.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from common.lexicon import DEBT
from common.normalize import normalize_text
from common.yamlfile import ConfigError, Located
from dialer.gate import rules as gate_rules
from dialer.gate.rules import DEFAULT_RULES_FILE, Rules, Window

RULE_IDS = (
    "time.window",
    "conduct.threat",
    "conduct.insult",
    "conduct.impersonation",
    "privacy.third_party_disclosure",
    "disclosure.identity_missing",
    "process.order",
)
CONDUCT_RULES = ("conduct.threat", "conduct.insult", "conduct.impersonation")
STAGES = ("identity", "verification", "debt", "plan_or_consequence")
CALLEE_KEYS = ("confirm", "deny", "third_party")
LANGS = ("zh", "en")
DEFAULT_WEIGHTS = {
    "time.window": 15,
    "conduct.threat": 30,
    "conduct.insult": 25,
    "conduct.impersonation": 35,
    "privacy.third_party_disclosure": 30,
    "disclosure.identity_missing": 15,
    "process.order": 10,
}


class QAConfigError(ConfigError):
    """One or more problems in the QA parts of the rules file (all of them, one per line)."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = errors
        first = errors[0]
        super().__init__(first.file, first.line, first.field, first.message)

    def render(self) -> str:
        return "\n".join(ConfigError.render(e) for e in getattr(self, "errors", [])) or super().render()

    def __str__(self) -> str:
        return self.render()


@dataclass(frozen=True)
class Pattern:
    """One lexicon entry: its source text (as written) and the compiled matching-form regex."""

    source: str
    regex: re.Pattern[str]


@dataclass(frozen=True)
class Negation:
    """A match is negated when a cue precedes it in the same clause, within `window` characters,
    with no reset word (but/就/we'll …) in between."""

    cues: re.Pattern[str]
    resets: re.Pattern[str] | None
    window: int


@dataclass(frozen=True)
class ConductLexicon:
    patterns: tuple[Pattern, ...]
    negation: Negation | None


@dataclass(frozen=True)
class Lexicon:
    """Everything the checker matches for one language."""

    lang: str
    clause_breaks: re.Pattern[str]
    stages: Mapping[str, tuple[Pattern, ...]]
    callee: Mapping[str, tuple[Pattern, ...]]
    conduct: Mapping[str, ConductLexicon]


@dataclass(frozen=True)
class QARules:
    """The QA rules of one jurisdiction profile."""

    profile: str
    lexicons: Mapping[str, Lexicon]
    windows: tuple[Window, ...]
    required_order: tuple[str, ...]
    weights: Mapping[str, int]
    enabled: frozenset[str] = field(default_factory=lambda: frozenset(RULE_IDS))
    # recordings: days a call's recording files are kept (None: kept until an operator decides);
    # `dialer recordings prune` never deletes younger ones
    retention_days: int | None = None
    # live monitoring of collector calls: rule id → alert | whisper | end (rules not listed: alert)
    live: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleSet:
    """QA rules of every profile; `for_jurisdiction` picks one (default profile for unknown ones)."""

    profiles: Mapping[str, QARules]
    default_profile: str
    file: str
    sha256: str = ""  # of the rules file's text: stored with every score (dialer.store.qa.record_result)

    def for_jurisdiction(self, jurisdiction: str | None) -> QARules:
        if jurisdiction and jurisdiction in self.profiles:
            return self.profiles[jurisdiction]
        return self.profiles[self.default_profile]


# -- loading ------------------------------------------------------------------------------------

def load_rules(path: str | Path = DEFAULT_RULES_FILE) -> RuleSet:
    """Load a rules file through the gate's parser and validate its QA parts (raises RulesError for the
    gate's parts, QAConfigError listing every problem of the QA parts)."""
    return qa_rules(gate_rules.load_rules(path))


def rules_from_text(text: str, file: str = "<rules>") -> RuleSet:
    return qa_rules(gate_rules.rules_from_text(text, file))


def qa_rules(rules: Rules) -> RuleSet:
    """The QA rules of an already loaded (and gate-validated) rules file."""
    loc = rules.located
    errors: list[ConfigError] = []
    data = loc.data
    shared = data.get("qa_lexicons")
    if shared is None:
        errors.append(loc.error(("qa_lexicons",), "missing: the shared QA lexicons (zh, en)"))
        shared = {}
    elif not isinstance(shared, dict):
        errors.append(loc.error(("qa_lexicons",), "must be a mapping of language to lexicon"))
        shared = {}
    for lang in shared:
        if lang not in LANGS:
            errors.append(loc.error(("qa_lexicons", lang), f"unknown language (allowed: {', '.join(LANGS)})"))
    profiles: dict[str, QARules] = {}
    for name, profile in rules.profiles.items():
        qa = _profile(loc, name, profile.qa, profile.gate.windows, shared, errors)
        if qa is not None:
            profiles[name] = qa
    if errors:
        raise QAConfigError(errors)
    return RuleSet(profiles=profiles, default_profile=rules.default_profile, file=loc.file, sha256=rules.sha256)


def _profile(loc: Located, name: str, qa: Any, gate_windows: tuple[Window, ...], shared: Mapping[str, Any],
             errors: list[ConfigError]) -> QARules | None:
    qpath = ("profiles", name, "qa")
    if qa is None:
        qa = {}
    if not isinstance(qa, dict):
        errors.append(loc.error(qpath, "must be a mapping"))
        return None
    allowed = {"window", "required_order", "weights", "rules", "lexicons", "recordings", "live"}
    for key in qa:
        if key not in allowed:
            errors.append(loc.error(qpath + (key,), f"unknown key (allowed: {', '.join(sorted(allowed))})"))
    n0 = len(errors)
    windows = _windows(loc, qa, gate_windows, qpath, errors)
    order = qa.get("required_order", list(STAGES))
    if not isinstance(order, list) or any(s not in STAGES for s in order) or len(set(order)) != len(order):
        errors.append(loc.error(qpath + ("required_order",), f"must be a list of distinct stages from {', '.join(STAGES)}"))
        order = list(STAGES)
    weights = dict(DEFAULT_WEIGHTS)
    raw_w = qa.get("weights", {})
    if not isinstance(raw_w, dict):
        errors.append(loc.error(qpath + ("weights",), "must be a mapping of rule id to points deducted"))
        raw_w = {}
    for rule, w in raw_w.items():
        if rule not in RULE_IDS:
            errors.append(loc.error(qpath + ("weights", rule), f"unknown rule id (allowed: {', '.join(RULE_IDS)})"))
        elif isinstance(w, bool) or not isinstance(w, int) or not 0 <= w <= 100:
            errors.append(loc.error(qpath + ("weights", rule), f"must be an integer 0–100, got {w!r}"))
        else:
            weights[rule] = w
    enabled = set(RULE_IDS)
    raw_rules = qa.get("rules", {})
    if not isinstance(raw_rules, dict):
        errors.append(loc.error(qpath + ("rules",), "must be a mapping of rule id to {enabled: true|false}"))
        raw_rules = {}
    for rule, spec in raw_rules.items():
        if rule not in RULE_IDS:
            errors.append(loc.error(qpath + ("rules", rule), f"unknown rule id (allowed: {', '.join(RULE_IDS)})"))
        elif not isinstance(spec, dict) or not isinstance(spec.get("enabled", True), bool) or set(spec) - {"enabled"}:
            errors.append(loc.error(qpath + ("rules", rule), "must be {enabled: true|false}"))
        elif not spec.get("enabled", True):
            enabled.discard(rule)
    extra = qa.get("lexicons", {})
    if not isinstance(extra, dict):
        errors.append(loc.error(qpath + ("lexicons",), "must be a mapping of language to lexicon additions"))
        extra = {}
    for lang in extra:
        if lang not in LANGS:
            errors.append(loc.error(qpath + ("lexicons", lang), f"unknown language (allowed: {', '.join(LANGS)})"))
    lexicons: dict[str, Lexicon] = {}
    for lang in LANGS:
        if lang not in shared:
            continue
        lex = _lexicon(loc, lang, shared[lang], ("qa_lexicons", lang), extra.get(lang), qpath + ("lexicons", lang), errors)
        if lex is not None:
            lexicons[lang] = lex
    retention = _retention(loc, name, qa.get("recordings"), qpath + ("recordings",), errors)
    live = _live(loc, qa.get("live"), qpath + ("live",), errors)
    if len(errors) > n0:
        return None
    return QARules(profile=name, lexicons=lexicons, windows=windows, required_order=tuple(order),
                   weights=weights, enabled=frozenset(enabled), retention_days=retention, live=live)


# The legal floors on keeping call recordings, per profile name (CN: at least 5 years, seed 002).
MIN_RETENTION_DAYS = {"cn": 1826}
LIVE_POLICIES = ("alert", "whisper", "end")


def _retention(loc: Located, name: str, raw: Any, path: tuple, errors: list[ConfigError]) -> int | None:
    """`recordings: {retention_days: N}`; the profile's legal floor is required where there is one."""
    floor = MIN_RETENTION_DAYS.get(name)
    if raw is None:  # absent: the legal floor where there is one (as daily_attempts absent is the legal cap)
        return floor
    if not isinstance(raw, dict) or set(raw) - {"retention_days", "notice"}:  # notice: the gate's parser
        errors.append(loc.error(path, "must be {retention_days: N, notice: {…}} (N days, or null to keep until"
                                      " deleted by hand)"))
        return None
    if "retention_days" not in raw:
        return floor
    days = raw.get("retention_days")
    if days is None:
        if floor is not None:
            errors.append(loc.error(path + ("retention_days",), f"null would keep no floor: profile {name} must"
                                                                f" keep recordings at least {floor} days"))
        return None if floor is None else floor
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        errors.append(loc.error(path + ("retention_days",), f"must be a whole number of days ≥ 1, got {days!r}"))
        return None
    if floor is not None and days < floor:
        errors.append(loc.error(path + ("retention_days",),
                                f"{days} days is shorter than profile {name}'s legal minimum of {floor} days"))
        return None
    return days


def _live(loc: Located, raw: Any, path: tuple, errors: list[ConfigError]) -> dict[str, str]:
    """`live: {rule id: alert | whisper | end}`: what a live hit on a collector's call does."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors.append(loc.error(path, f"must be a mapping of rule id to one of {', '.join(LIVE_POLICIES)}"))
        return {}
    out: dict[str, str] = {}
    for rule, policy in raw.items():
        if rule not in RULE_IDS:
            errors.append(loc.error(path + (rule,), f"unknown rule id (allowed: {', '.join(RULE_IDS)})"))
        elif policy not in LIVE_POLICIES:
            errors.append(loc.error(path + (rule,), f"must be one of {', '.join(LIVE_POLICIES)}, got {policy!r}"))
        else:
            out[rule] = policy
    return out


def _windows(loc: Located, qa: Mapping[str, Any], gate_windows: tuple[Window, ...], qpath: tuple,
             errors: list[ConfigError]) -> tuple[Window, ...]:
    """`qa.window` is `gate` (default: the profile's gate windows, as the gate parsed them) or a window
    of its own, read by the gate's window parser."""
    raw = qa.get("window", "gate")
    if raw == "gate":
        return gate_windows
    if isinstance(raw, str):
        errors.append(loc.error(qpath + ("window",),
                                'must be "gate", {start: "08:00", end: "21:00"} or a list of {days, start, end}'))
        return ()
    return gate_rules.parse_windows(raw, lambda rel, msg: errors.append(loc.error(qpath + rel, msg)))


def _compile(loc: Located, path: tuple, value: Any, errors: list[ConfigError]) -> re.Pattern[str] | None:
    if not isinstance(value, str) or not value.strip():
        errors.append(loc.error(path, f"must be a non-empty regular expression string, got {value!r}"))
        return None
    try:
        return re.compile(_norm_pattern(value), re.IGNORECASE)
    except re.error as exc:
        errors.append(loc.error(path, f"bad regular expression: {exc}"))
        return None


def _norm_pattern(value: str) -> str:
    """Normalise the literal (non-ASCII) parts of a pattern like the text; ASCII escapes stay intact."""
    return "".join(normalize_text(ch) if ord(ch) > 127 else ch for ch in value)


def _patterns(loc: Located, items: Iterable[tuple[tuple, Any]], errors: list[ConfigError]) -> tuple[Pattern, ...]:
    out = []
    for path, value in items:
        rx = _compile(loc, path, value, errors)
        if rx is not None:
            out.append(Pattern(source=value, regex=rx))
    return tuple(out)


def _list_items(loc: Located, raw: Any, path: tuple, errors: list[ConfigError]) -> list[tuple[tuple, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append(loc.error(path, "must be a list of regular expressions"))
        return []
    return [(path + (i,), v) for i, v in enumerate(raw)]


def _union(loc: Located, items: list[tuple[tuple, Any]], errors: list[ConfigError]) -> re.Pattern[str] | None:
    pats = _patterns(loc, items, errors)
    if not pats:
        return None
    return re.compile("|".join(f"(?:{p.regex.pattern})" for p in pats), re.IGNORECASE)


def _lexicon(loc: Located, lang: str, raw: Any, path: tuple, extra: Any, xpath: tuple,
             errors: list[ConfigError]) -> Lexicon | None:
    if not isinstance(raw, dict):
        errors.append(loc.error(path, "must be a mapping (clause_breaks, negation, stages, callee, conduct)"))
        return None
    if extra is not None and not isinstance(extra, dict):
        errors.append(loc.error(xpath, "must be a mapping like the shared lexicon"))
        extra = None
    extra = extra or {}
    allowed = {"clause_breaks", "negation", "stages", "callee", "conduct"}
    for src, spath in ((raw, path), (extra, xpath)):
        for key in src:
            if key not in allowed:
                errors.append(loc.error(spath + (key,), f"unknown key (allowed: {', '.join(sorted(allowed))})"))
    n0 = len(errors)
    breaks = _compile(loc, path + ("clause_breaks",), raw.get("clause_breaks", r"[.!?;]"), errors)

    def section(name: str, keys: tuple[str, ...]) -> dict[str, list[tuple[tuple, Any]]]:
        got: dict[str, list[tuple[tuple, Any]]] = {k: [] for k in keys}
        for src, spath in ((raw, path), (extra, xpath)):
            sec = src.get(name, {})
            if sec is None:
                continue
            if not isinstance(sec, dict):
                errors.append(loc.error(spath + (name,), f"must be a mapping with keys {', '.join(keys)}"))
                continue
            for key, value in sec.items():
                if key not in keys:
                    errors.append(loc.error(spath + (name, key), f"unknown key (allowed: {', '.join(keys)})"))
                    continue
                if name == "conduct":
                    got[key].append((spath + (name, key), value))
                else:
                    got[key] += _list_items(loc, value, spath + (name, key), errors)
        return got

    stage_items = section("stages", STAGES)
    if stage_items["debt"]:
        errors.append(loc.error(stage_items["debt"][0][0][:-1], "the debt lexicon is common/lexicon.py (DEBT), "
                                                                "shared with the script validator: add words there"))
    stages = {k: _debt(lang) if k == "debt" else _patterns(loc, stage_items[k], errors) for k in STAGES}
    callee = {k: _patterns(loc, v, errors) for k, v in section("callee", CALLEE_KEYS).items()}
    default_neg = _negation(loc, raw.get("negation"), path + ("negation",), None, errors)
    conduct: dict[str, ConductLexicon] = {}
    for rule, specs in section("conduct", CONDUCT_RULES).items():
        pats: list[tuple[tuple, Any]] = []
        negation = default_neg
        for spath, spec in specs:
            if not isinstance(spec, dict) or set(spec) - {"patterns", "negation"}:
                errors.append(loc.error(spath, "must be {patterns: [...], negation: true|false|{cues, resets, window}}"))
                continue
            pats += _list_items(loc, spec.get("patterns"), spath + ("patterns",), errors)
            if "negation" in spec:
                negation = _negation(loc, spec["negation"], spath + ("negation",), default_neg, errors)
        conduct[rule] = ConductLexicon(patterns=_patterns(loc, pats, errors), negation=negation)
    if len(errors) > n0 or breaks is None:
        return None
    return Lexicon(lang=lang, clause_breaks=breaks, stages=stages, callee=callee, conduct=conduct)


def _debt(lang: str) -> tuple[Pattern, ...]:
    """The debt stage: the shared lexicon, normalised like every entry of the file."""
    return tuple(Pattern(source=e, regex=re.compile(_norm_pattern(e), re.IGNORECASE)) for e in DEBT.get(lang, ()))


def _negation(loc: Located, raw: Any, path: tuple, default: Negation | None,
              errors: list[ConfigError]) -> Negation | None:
    if raw is None or raw is True:
        return default
    if raw is False:
        return None
    if not isinstance(raw, dict) or set(raw) - {"cues", "resets", "window"}:
        errors.append(loc.error(path, "must be true, false or {cues: [...], resets: [...], window: N}"))
        return default
    cues = _union(loc, _list_items(loc, raw.get("cues"), path + ("cues",), errors), errors)
    if "resets" in raw:
        resets = _union(loc, _list_items(loc, raw.get("resets"), path + ("resets",), errors), errors)
    else:
        resets = default.resets if default else None
    window = raw.get("window", default.window if default else 12)
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        errors.append(loc.error(path + ("window",), f"must be a positive number of characters, got {window!r}"))
        window = 12
    if cues is None:
        if default is None:
            errors.append(loc.error(path + ("cues",), "needs at least one cue"))
            return None
        return Negation(cues=default.cues, resets=resets, window=window)
    return Negation(cues=cues, resets=resets, window=window)
