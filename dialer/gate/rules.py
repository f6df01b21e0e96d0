"""compliance_rules.yaml → typed Rules: the ONE reader of that file.

Gate, abandonment and caller-ID rules per profile, the recording notice (`qa.recordings.notice`: the one
piece of the `qa` section the calls themselves need), campaign overrides, the profile names and THE
call-window parser. QA (`dialer.qa.rules`) builds its rules on top of a loaded `Rules` (its
`window: gate` is the gate's parsed windows; its own windows go through `parse_windows`), and
campaign validation asks `profile_names` here; nothing else parses the file."""
from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib

from common.vocab import COMPLAINT_CATEGORIES, COMPLAINT_CHANNELS, COMPLAINT_SEVERITIES
from common.yamlfile import ConfigError, Located, field_path, load_file, load_text

DEFAULT_RULES_FILE = Path("compliance_rules.yaml")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY = 86400.0
HORIZON_DAYS = 60  # beyond this, "no allowed time found" (never spin forever)

# Rule ids (docs/CONTRACTS.md), in the order they are checked and reported.
RULE_IDS = (
    "cease",
    "dnc",
    "suppress.attorney",
    "suppress.bankruptcy",
    "suppress.deceased",
    "suppress.complaint_hold",
    "suppress.dispute",
    "complaint.harassment_hold",
    "account.paid_in_full",
    "contact.third_party",
    "request.inconvenient",
    "time.holiday",
    "time.window",
    "cap.daily",
    "cap.number_daily",
    "cap.7in7",
    "conv.7day",
    "gap.min",
    "lockout.72h",
    "lockout.machine_same_day",
)


# Suppression lists (`dialer suppress import --list NAME`) and the rule id each blocks with.
SUPPRESSION_LISTS = {
    "dnc": "dnc",
    "attorney": "suppress.attorney",
    "bankruptcy": "suppress.bankruptcy",
    "deceased": "suppress.deceased",
    "complaint_hold": "suppress.complaint_hold",
    "dispute": "suppress.dispute",  # a dispute hold (API or file): no collection call until it is released
    "harassment_hold": "complaint.harassment_hold",  # a harassment complaint's hold (dialer complaints release)
}


# --------------------------------------------------------------------------------------------
# Typed rules
# --------------------------------------------------------------------------------------------
class RulesError(ConfigError):
    """One or more problems in a rules file; `errors` holds each, rendered file:line: field: msg."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = errors
        first = errors[0]
        super().__init__(first.file, first.line, first.field, first.message)

    def render(self) -> str:  # every error, one per line
        return "\n".join(ConfigError.render(e) for e in getattr(self, "errors", [])) or super().render()


@dataclass(frozen=True)
class Window:
    """Allowed local hours on some weekdays: start <= t < end (minutes after midnight)."""

    days: frozenset[int]
    start: int
    end: int


@dataclass(frozen=True)
class HolidayRules:
    calendar: str | None
    subdiv: str | None
    observe: bool
    blackout_dates: frozenset[date]


@dataclass(frozen=True)
class AbandonedLockout:
    hours: float
    scope: str  # number | debtor


@dataclass(frozen=True)
class Exclusions:
    inbound: bool
    consent_days: float


@dataclass(frozen=True)
class ThirdPartyRules:
    allowed: bool
    unreachable_after_attempts: int
    unreachable_days: float
    daily_attempts: int | None


@dataclass(frozen=True)
class GateRules:
    windows: tuple[Window, ...]
    holidays: HolidayRules
    daily_attempts: int | None
    count: str  # attempts | connected
    number_daily_attempts: int | None
    rolling_7day: int | None
    conversation_quiet_days: float | None
    min_gap_minutes: float
    abandoned_lockout: AbandonedLockout | None
    machine_same_day: bool
    exclusions: Exclusions
    third_party: ThirdPartyRules
    fallback_zones: tuple[str, ...]

    @property
    def lookback_seconds(self) -> float:
        """How much attempt history a decision needs."""
        days = [8.0, self.third_party.unreachable_days + 1, self.exclusions.consent_days + 8]
        if self.conversation_quiet_days:
            days.append(self.conversation_quiet_days + 1)
        if self.abandoned_lockout:
            days.append(self.abandoned_lockout.hours / 24 + 1)
        return max(days) * DAY


@dataclass(frozen=True)
class CallerId:
    policy: str  # campaign | fixed
    number: str | None
    callable: bool


@dataclass(frozen=True)
class AbandonRules:
    limit: float
    window: str  # calendar_day | rolling_30_days
    clock_starts: str  # end_of_greeting | answer
    connect_within_seconds: float
    min_ring_seconds: float
    wrap_up_seconds: float
    caller_id: CallerId


@dataclass(frozen=True)
class ChannelRules:
    """One task channel's rules (`channels.sms` …): its window and caps, as the GateRules `decide()` runs
    with (the profile's gate for holidays, zones and exclusions; no call-only rule)."""

    channel: str
    gate: GateRules

    @property
    def lookback_seconds(self) -> float:
        return max(8 * DAY, self.gate.min_gap_minutes * 60 + DAY)


CHANNELS = ("sms", "letter", "legal_review")  # the escalation plan's task channels (voice calls follow `gate`)


@dataclass(frozen=True)
class RecordingNotice:
    """`qa.recordings.notice`: whether the callee must be told the call is recorded, and what is said, per
    locale. Played at the start of every recorded call of the profile (docs/RECORDINGS.md); never a word
    about a debt (it is heard before the right party is verified)."""

    required: bool = False
    text: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)

    def text_for(self, locale: str) -> str | None:
        """The notice to play in `locale`; None when none is required."""
        return self.text.get(locale) if self.required else None


@dataclass(frozen=True)
class Profile:
    """One resolved jurisdiction profile (possibly with a campaign's overrides applied)."""

    name: str
    gate: GateRules
    abandon: AbandonRules
    qa: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    complaints: "ComplaintRules" = field(default_factory=lambda: ComplaintRules(), hash=False, compare=False)
    campaign: str | None = None
    channels: Mapping[str, ChannelRules] = field(default_factory=dict, hash=False, compare=False)
    recording_notice: RecordingNotice = field(default_factory=RecordingNotice, hash=False, compare=False)


@dataclass
class Rules:
    """The whole rules file: profiles by name, plus per-campaign overrides."""

    file: str
    version: int
    default_profile: str
    profiles: dict[str, Profile]
    override_raw: dict[str, dict[str, Any]]
    located: Located = field(repr=False)
    sha256: str = ""  # of the file's bytes (QA stores it with every score)
    _resolved: dict[tuple[str, str | None], Profile] = field(default_factory=dict, repr=False)

    def profile_for(self, profile_name: str | None = None, campaign_name: str | None = None) -> Profile:
        """The profile a campaign dials under: its override's profile, else `profile_name`,
        else the default; the campaign's overrides merged on top."""
        override = self.override_raw.get(campaign_name) if campaign_name else None
        base = (override or {}).get("profile") or profile_name or self.default_profile
        if base not in self.profiles:
            raise ConfigError(self.file, None, "default_profile" if profile_name is None else None,
                              f"unknown compliance profile {base!r} (known: {', '.join(sorted(self.profiles))})")
        if override is None:
            return self.profiles[base]
        key = (base, campaign_name)
        if key not in self._resolved:
            errors: list[ConfigError] = []
            prof = _build_profile(self.located, base, campaign_name, errors)
            if errors or prof is None:
                raise RulesError(errors)
            self._resolved[key] = prof
        return self._resolved[key]


def caller_id_for(profile: Profile, campaign_caller_id: str | None) -> str:
    """The caller ID to present under a profile: the campaign's own number, or the profile's fixed one.
    Raises ValueError when the profile demands a callable number and there is none (UK-CLI)."""
    cid = profile.abandon.caller_id
    number = cid.number if cid.policy == "fixed" else campaign_caller_id
    if cid.callable and not (isinstance(number, str) and number.startswith("+") and number[1:].isdigit()
                             and len(number) >= 8):
        raise ValueError(f"profile {profile.name}: a callable caller ID (E.164) is required, got {number!r}")
    return number or ""


def load_rules(path: str | Path = DEFAULT_RULES_FILE, campaign: str | None = None) -> Rules:
    """Load and validate a rules file; raises RulesError (every problem, file:line: field)."""
    loc = load_file(path)
    return rules_from_located(loc, campaign, sha256=hashlib.sha256(Path(path).read_bytes()).hexdigest())


def rules_from_text(text: str, file: str = "<rules>", campaign: str | None = None) -> Rules:
    return rules_from_located(load_text(text, file), campaign,
                              sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())


def profile_names(path: str | Path) -> tuple[str, ...] | None:
    """The profile names a rules file defines (the keys of `profiles`), without validating the
    profiles themselves; None when there is no such file or it has no `profiles` mapping."""
    if not Path(path).exists():
        return None
    data = load_file(path).data
    profiles = data.get("profiles") if isinstance(data, dict) else None
    return tuple(str(k) for k in profiles) if isinstance(profiles, dict) else None


def recording_notice(path: str | Path, profile: str) -> tuple[RecordingNotice, int | None] | None:
    """A profile's recording notice and the line that sets it (campaign validation: a campaign whose profile
    requires a notice must have its text in the campaign's locale); None when there is no such file or
    profile. Raises RulesError when the notice itself is malformed."""
    if not Path(path).exists():
        return None
    loc = load_file(path)
    profiles = loc.data.get("profiles") if isinstance(loc.data, dict) else None
    if not isinstance(profiles, dict) or not isinstance(profiles.get(profile), dict):
        return None
    errors: list[ConfigError] = []
    notice = _parse_notice(loc, profile, errors)
    if errors:
        raise RulesError(errors)
    where = _notice_path(loc, profile)
    return notice, loc.line_of(where) if where else None


def rules_from_located(loc: Located, campaign: str | None = None, *, sha256: str = "") -> Rules:
    errors: list[ConfigError] = []
    data = loc.data
    if not isinstance(data, dict):
        raise RulesError([loc.error((), "a rules file is a mapping with version, default_profile, profiles")])
    top = {"version", "default_profile", "profiles", "campaign_overrides"}
    for key in data:
        if key not in top and not str(key).startswith("qa_"):
            errors.append(loc.error((key,), f"unknown key (allowed: {', '.join(sorted(top))}, qa_*)"))
    version = data.get("version")
    if version != 1:
        errors.append(loc.error(("version",), f"unsupported version {version!r} (expected 1)"))
    profiles_raw = data.get("profiles")
    profiles: dict[str, Profile] = {}
    if not isinstance(profiles_raw, dict) or not profiles_raw:
        errors.append(loc.error(("profiles",), "must be a non-empty mapping of profile name to {gate, abandon, qa}"))
        profiles_raw = {}
    for name in profiles_raw:
        prof = _build_profile(loc, str(name), None, errors)
        if prof is not None:
            profiles[str(name)] = prof
    default = data.get("default_profile")
    if not isinstance(default, str) or default not in profiles_raw:
        errors.append(loc.error(("default_profile",), f"unknown profile {default!r} (known: {', '.join(map(str, profiles_raw))})"))
    overrides = data.get("campaign_overrides", {}) or {}
    if not isinstance(overrides, dict):
        errors.append(loc.error(("campaign_overrides",), "must be a mapping of campaign name to overrides"))
        overrides = {}
    for cname, over in overrides.items():
        path = ("campaign_overrides", cname)
        if not isinstance(over, dict):
            errors.append(loc.error(path, "must be a mapping {profile, gate, abandon}"))
            continue
        for key in over:
            if key not in ("profile", "gate", "abandon"):
                errors.append(loc.error(path + (key,), "unknown key (allowed: profile, gate, abandon)"))
        base = over.get("profile", default)
        if base not in profiles_raw:
            errors.append(loc.error(path + ("profile",), f"unknown profile {base!r} (known: {', '.join(map(str, profiles_raw))})"))
            continue
        _build_profile(loc, str(base), str(cname), errors)
    if errors:
        raise RulesError(errors)
    rules = Rules(file=loc.file, version=1, default_profile=str(default), profiles=profiles,
                  override_raw={str(k): v for k, v in overrides.items()}, located=loc, sha256=sha256)
    if campaign is not None:
        rules.profile_for(None, campaign)
    return rules


# -- building one profile, with overrides and line-numbered errors ----------------------------
class _Src:
    """A section seen through layers (profile, then a campaign override): merged values, and
    for any field the line of the layer that set it."""

    def __init__(self, loc: Located, layers: list[tuple[tuple[Any, ...], Any]], errors: list[ConfigError]):
        self.loc, self.layers, self.errors = loc, layers, errors

    def merged(self) -> Any:
        out: Any = None
        for _, raw in self.layers:
            out = _deep_merge(out, raw)
        return out

    def fail(self, rel: tuple[Any, ...], msg: str) -> None:
        best, best_len = self.layers[0][0] + rel, -1
        for root, raw in reversed(self.layers):
            n = _prefix_len(raw, rel)
            if n > best_len:
                best, best_len = root + rel, n
        self.errors.append(self.loc.error(best, msg))


def _deep_merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _deep_merge(base.get(k), v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(over)


def _prefix_len(raw: Any, rel: tuple[Any, ...]) -> int:
    n = 0
    for part in rel:
        if isinstance(raw, dict) and part in raw:
            raw = raw[part]
        elif isinstance(raw, list) and isinstance(part, int) and part < len(raw):
            raw = raw[part]
        else:
            return n
        n += 1
    return n


def _build_profile(loc: Located, name: str, campaign: str | None, errors: list[ConfigError]) -> Profile | None:
    ppath = ("profiles", name)
    praw = loc.data["profiles"][name]
    if not isinstance(praw, dict):
        errors.append(loc.error(ppath, "a profile is a mapping with gate, abandon, qa"))
        return None
    n0 = len(errors)
    if campaign is None:
        for key in praw:
            if key not in ("gate", "abandon", "qa", "complaints", "channels"):
                errors.append(loc.error(ppath + (key,), "unknown key (allowed: gate, abandon, qa, complaints, channels)"))
    over = loc.data.get("campaign_overrides", {}).get(campaign, {}) if campaign else {}
    sections: dict[str, Any] = {}
    for sec in ("gate", "abandon"):
        layers = [(ppath + (sec,), praw.get(sec))]
        if sec in over:
            layers.append((("campaign_overrides", campaign, sec), over[sec]))
        src = _Src(loc, layers, errors)
        raw = src.merged()
        if not isinstance(raw, dict):
            src.fail((), f"missing or not a mapping: the {sec} section is required")
            continue
        sections[sec] = _parse_gate(src, raw, name) if sec == "gate" else _parse_abandon(src, raw)
    complaints = _parse_complaints(_Src(loc, [(ppath + ("complaints",), praw.get("complaints"))], errors),
                                   praw.get("complaints"))
    if len(errors) > n0 or "gate" not in sections or "abandon" not in sections:
        return None
    channels = _parse_channels(_Src(loc, [(ppath + ("channels",), praw.get("channels"))], errors),
                               praw.get("channels"), sections["gate"])
    if len(errors) > n0:
        return None
    qa = praw.get("qa") or {}
    notice = _parse_notice(loc, name, errors if campaign is None else [])  # reported once, with the profile
    if len(errors) > n0:
        return None
    return Profile(name=name, gate=sections["gate"], abandon=sections["abandon"], qa=qa, campaign=campaign,
                   complaints=complaints, channels=channels, recording_notice=notice)


def _parse_channels(src: _Src, raw: Any, gate: GateRules) -> dict[str, ChannelRules]:
    """`channels: {sms: {window, daily, weekly, min_gap_hours, holidays}, letter: …, legal_review: …}`."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        src.fail((), f"must be a mapping of channel ({', '.join(CHANNELS)}) to its rules, got {raw!r}")
        return {}
    out: dict[str, ChannelRules] = {}
    for ch, body in raw.items():
        if ch not in CHANNELS:
            extra = " (voice calls follow the gate section)" if ch in ("voice", "call", "calls") else ""
            src.fail((ch,), f"unknown channel {ch!r} (allowed: {', '.join(CHANNELS)}){extra}")
            continue
        if not isinstance(body, dict):
            src.fail((ch,), f"must be a mapping {{window, daily, weekly, min_gap_hours, holidays}}, got {body!r}")
            continue
        r = _Reader(src, body, (ch,), ("window", "daily", "weekly", "min_gap_hours", "holidays"))
        windows = (Window(frozenset(range(7)), 0, 1440),) if "window" not in body else \
            parse_windows(body["window"], lambda path, msg, ch=ch: src.fail((ch,) + path, msg))
        gap = float(r.number("min_gap_hours", 0) or 0)
        hol = gate.holidays if r.boolean("holidays", True) else HolidayRules(None, None, False, frozenset())
        out[ch] = ChannelRules(ch, GateRules(
            windows=windows, holidays=hol,
            daily_attempts=r.number("daily", None, integer=True, nullable=True, minimum=1),
            count="attempts", number_daily_attempts=None,
            rolling_7day=r.number("weekly", None, integer=True, nullable=True, minimum=1),
            conversation_quiet_days=None, min_gap_minutes=gap * 60, abandoned_lockout=None,
            machine_same_day=False, exclusions=Exclusions(True, 0.0),
            third_party=ThirdPartyRules(False, 3, 7.0, None), fallback_zones=gate.fallback_zones))
    return out


_LOCALE = re.compile(r"^[a-z]{2,3}-[A-Z]{2}$")
NOTICE_MAX_CHARS = 200  # a notice is one short sentence, heard before the bot or the collector says anything


def _notice_path(loc: Located, name: str) -> tuple[Any, ...] | None:
    """The path of `profiles.NAME.qa.recordings.notice` when the file has one."""
    raw: Any = loc.data
    for part in ("profiles", name, "qa", "recordings", "notice"):
        if not isinstance(raw, dict) or part not in raw:
            return None
        raw = raw[part]
    return ("profiles", name, "qa", "recordings", "notice")


def _parse_notice(loc: Located, name: str, errors: list[ConfigError]) -> RecordingNotice:
    """`qa.recordings.notice: {required: true|false, text: {LOCALE: "…"}}`; absent: no notice. A notice must
    not mention the debt (the debt lexicon, common/lexicon.py): it is heard before right-party verification."""
    path = _notice_path(loc, name)
    if path is None:
        return RecordingNotice()
    raw = loc.data["profiles"][name]["qa"]["recordings"]["notice"]
    if not isinstance(raw, dict) or set(raw) - {"required", "text"}:
        errors.append(loc.error(path, "must be {required: true|false, text: {LOCALE: \"what is said\"}}"))
        return RecordingNotice()
    required = raw.get("required", False)
    if not isinstance(required, bool):
        errors.append(loc.error(path + ("required",), f"must be true or false, got {required!r}"))
        required = False
    text_raw = raw.get("text", {})
    if text_raw is None:
        text_raw = {}
    if not isinstance(text_raw, dict):
        errors.append(loc.error(path + ("text",), "must be a mapping of locale (zh-CN, en-US, …) to the sentence said"))
        text_raw = {}
    texts: dict[str, str] = {}
    for locale, text in text_raw.items():
        tpath = path + ("text", locale)
        if not isinstance(locale, str) or not _LOCALE.match(locale):
            errors.append(loc.error(tpath, f"not a locale such as zh-CN or en-US: {locale!r}"))
        elif not isinstance(text, str) or not text.strip():
            errors.append(loc.error(tpath, "must be the sentence to say (a non-empty string)"))
        elif len(text) > NOTICE_MAX_CHARS:
            errors.append(loc.error(tpath, f"{len(text)} characters: a notice is one short sentence"
                                           f" (at most {NOTICE_MAX_CHARS})"))
        elif (debt := _debt_word(text)) is not None:
            errors.append(loc.error(tpath, f"mentions the debt ({debt!r}): the notice is heard before the right"
                                           " party is verified and must say nothing about a debt"))
        else:
            texts[locale] = text.strip()
    if required and not texts and not text_raw:
        errors.append(loc.error(path + ("text",), "required: true needs the sentence in at least one locale"))
    return RecordingNotice(required=required, text=texts)


def _debt_word(text: str) -> str | None:
    """The first debt word of `text` (common/lexicon.py, strict, any language), or None."""
    from common.lexicon import LANGS, debt_mentions

    return next((w for lang in LANGS for w in debt_mentions(text, lang)), None)


class _Reader:
    """Typed field access on one merged mapping, recording errors through a _Src."""

    def __init__(self, src: _Src, raw: dict[str, Any], rel: tuple[Any, ...], allowed: Iterable[str]):
        self.src, self.raw, self.rel = src, raw, rel
        allowed = set(allowed)
        for key in raw:
            if key not in allowed:
                src.fail(rel + (key,), f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def fail(self, key: str | tuple[Any, ...], msg: str) -> None:
        self.src.fail(self.rel + ((key,) if isinstance(key, str) else key), msg)

    def number(self, key: str, default: Any = ..., *, integer: bool = False, nullable: bool = False,
               minimum: float = 0, maximum: float | None = None) -> Any:
        if key not in self.raw:
            if default is ...:
                self.fail(key, "required")
                return None
            return default
        v = self.raw[key]
        if v is None and nullable:
            return None
        kind = "a whole number" if integer else "a number"
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
            self.fail(key, f"must be {kind}{' or null' if nullable else ''}, got {v!r}")
            return None
        if v < minimum or (maximum is not None and v > maximum):
            rng = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            self.fail(key, f"must be {rng}, got {v!r}")
            return None
        return v

    def boolean(self, key: str, default: bool) -> bool:
        v = self.raw.get(key, default)
        if not isinstance(v, bool):
            self.fail(key, f"must be true or false, got {v!r}")
            return default
        return v

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None) -> str:
        v = self.raw.get(key, default)
        if v not in choices:
            self.fail(key, f"must be one of {', '.join(choices)}, got {v!r}")
            return choices[0]
        return str(v)

    def mapping(self, key: str, allowed: Iterable[str], nullable: bool = False) -> "_Reader | None":
        v = self.raw.get(key, {} if not nullable else None)
        if v is None and nullable:
            return None
        if not isinstance(v, dict):
            self.fail(key, f"must be a mapping{' or null' if nullable else ''}, got {v!r}")
            return None
        return _Reader(self.src, v, self.rel + (key,), allowed)


_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")


def parse_hhmm(value: Any, *, allow_24: bool = False) -> int:
    """'08:30' -> 510 minutes; raises ValueError with a clear message."""
    m = _HHMM.match(value) if isinstance(value, str) else None
    if not m:
        raise ValueError(f"must be a time of day \"HH:MM\" (quoted), got {value!r}")
    h, mi = int(m.group(1)), int(m.group(2))
    if (h == 24 and mi == 0 and allow_24) or (h < 24 and mi < 60):
        return h * 60 + mi
    raise ValueError(f"{value!r} is not a time of day (00:00–23:59{', or 24:00 for an end' if allow_24 else ''})")


def parse_days(value: Any) -> frozenset[int]:
    """['mon', 'fri'] -> {0, 4}; None -> every day."""
    if value is None:
        return frozenset(range(7))
    if not isinstance(value, list) or not value:
        raise ValueError(f"days must be a non-empty list of {', '.join(WEEKDAYS)}, got {value!r}")
    out = set()
    for d in value:
        if d not in WEEKDAYS:
            raise ValueError(f"unknown day {d!r} (use {', '.join(WEEKDAYS)})")
        out.add(WEEKDAYS.index(d))
    return frozenset(out)


def parse_windows(raw: Any, fail: Callable[[tuple[Any, ...], str], None]) -> tuple[Window, ...]:
    """THE call-window parser: the value of a `window:` field, `{start, end}` or a list of
    `{days, start, end}` (local "HH:MM", end may be 24:00, no crossing midnight, no overlap on a day)
    → Windows. Each problem goes to `fail(path, message)`, the path starting with "window"."""
    name: tuple[Any, ...] = ("window",)
    if raw is None:
        fail(name, 'required: {start: "08:00", end: "21:00"} or a list of {days, start, end}')
        return ()
    items = [(raw, name)] if isinstance(raw, dict) else (
        [(w, name + (i,)) for i, w in enumerate(raw)] if isinstance(raw, list) else None)
    if not items:
        fail(name, f"must be a mapping {{start, end}} or a non-empty list of {{days, start, end}}, got {raw!r}")
        return ()
    out: list[tuple[Window, tuple[Any, ...]]] = []
    for w, path in items:
        if not isinstance(w, dict):
            fail(path, f"must be a mapping {{days, start, end}}, got {w!r}")
            continue
        for key in w:
            if key not in ("days", "start", "end"):
                fail(path + (key,), "unknown key (allowed: days, start, end)")
        try:
            days = parse_days(w.get("days"))
        except ValueError as exc:
            fail(path + ("days",), str(exc))
            continue
        vals = {}
        for key, a24 in (("start", False), ("end", True)):
            try:
                vals[key] = parse_hhmm(w.get(key), allow_24=a24)
            except ValueError as exc:
                fail(path + (key,), "required" if key not in w else str(exc))
        if len(vals) < 2:
            continue
        if vals["start"] >= vals["end"]:
            fail(path + ("end",), f"end {w['end']} must be after start {w['start']} (windows cannot cross midnight)")
            continue
        win = Window(days, vals["start"], vals["end"])
        for other, opath in out:
            common = win.days & other.days
            if common and win.start < other.end and other.start < win.end:
                day = WEEKDAYS[min(common)]
                fail(path, f"overlaps {field_path(opath)} on {day} (windows of one day must not overlap)")
                break
        else:
            out.append((win, path))
    return tuple(w for w, _ in out)


# Daily caps the law sets when a profile does not say (docs/REGULATIONS.md): CN-FREQ, 3 a day.
LEGAL_DAILY_ATTEMPTS = {"cn": 3}


def _daily_attempts(r: "_Reader", profile: str) -> int | None:
    """Absent: the profile's legal default (required where the law sets none). `null` is refused: it
    would silently turn the daily cap off."""
    if "daily_attempts" not in r.raw:
        if profile in LEGAL_DAILY_ATTEMPTS:
            return LEGAL_DAILY_ATTEMPTS[profile]
        r.fail("daily_attempts", f"required (profile {profile!r} has no legal default): a whole number")
        return None
    if r.raw["daily_attempts"] is None:
        r.fail("daily_attempts", "null would turn the daily cap off; give a whole number"
               + (f" (the legal cap is {LEGAL_DAILY_ATTEMPTS[profile]})" if profile in LEGAL_DAILY_ATTEMPTS else ""))
        return None
    return r.number("daily_attempts", integer=True)


def _parse_gate(src: _Src, raw: dict[str, Any], profile: str) -> GateRules:
    r = _Reader(src, raw, (), (
        "window", "holidays", "daily_attempts", "count", "number_daily_attempts", "rolling_7day",
        "conversation_quiet_days", "min_gap_minutes", "abandoned_lockout", "machine_same_day",
        "exclusions", "third_party", "fallback_zones"))
    windows = parse_windows(r.raw.get("window"), r.fail)
    hol = HolidayRules(None, None, False, frozenset())
    h = r.mapping("holidays", ("calendar", "subdiv", "observe", "blackout_dates"))
    if h is not None:
        cal = h.raw.get("calendar")
        subdiv = h.raw.get("subdiv")
        if cal is not None:
            try:
                holidays_lib.country_holidays(str(cal), subdiv=subdiv, years=2026)
            except (NotImplementedError, KeyError, ValueError) as exc:
                h.fail("calendar", f"unknown holiday calendar {cal!r} (ISO country code such as CN, US, GB): {exc}")
        blackout: set[date] = set()
        bl = h.raw.get("blackout_dates", []) or []
        if not isinstance(bl, list):
            h.fail("blackout_dates", "must be a list of ISO dates")
            bl = []
        for i, d in enumerate(bl):
            try:
                blackout.add(d if isinstance(d, date) else date.fromisoformat(str(d)))
            except ValueError:
                h.fail(("blackout_dates", i), f"not an ISO date (YYYY-MM-DD): {d!r}")
        hol = HolidayRules(str(cal) if cal else None, str(subdiv) if subdiv else None,
                           h.boolean("observe", True), frozenset(blackout))
    lock = None
    lk = r.mapping("abandoned_lockout", ("hours", "scope"), nullable=True)
    if lk is not None:
        lock = AbandonedLockout(float(lk.number("hours", minimum=0.01) or 72), lk.choice("scope", ("number", "debtor"), "number"))
    ex = r.mapping("exclusions", ("inbound", "consent_days"))
    exclusions = Exclusions(True, 0.0)
    if ex is not None:
        exclusions = Exclusions(ex.boolean("inbound", True), float(ex.number("consent_days", 0) or 0))
    tp = r.mapping("third_party", ("allowed", "unreachable_after_attempts", "unreachable_days", "daily_attempts"))
    third = ThirdPartyRules(False, 3, 7.0, 1)
    if tp is not None:
        third = ThirdPartyRules(
            tp.boolean("allowed", False),
            int(tp.number("unreachable_after_attempts", 3, integer=True, minimum=1) or 3),
            float(tp.number("unreachable_days", 7, minimum=0.01) or 7),
            tp.number("daily_attempts", 1, integer=True, nullable=True))
    zones_raw = raw.get("fallback_zones")
    zones: list[str] = []
    if not isinstance(zones_raw, list) or not zones_raw:
        r.fail("fallback_zones", "required: a non-empty list of IANA zones used when neither the record nor the number gives one")
    else:
        for i, z in enumerate(zones_raw):
            if not _valid_zone(z):
                r.fail(("fallback_zones", i), f"unknown IANA time zone {z!r}")
            else:
                zones.append(z)
    return GateRules(
        windows=windows,
        holidays=hol,
        daily_attempts=_daily_attempts(r, profile),
        count=r.choice("count", ("attempts", "connected"), "attempts"),
        number_daily_attempts=r.number("number_daily_attempts", None, integer=True, nullable=True),
        rolling_7day=r.number("rolling_7day", None, integer=True, nullable=True, minimum=1),
        conversation_quiet_days=r.number("conversation_quiet_days", None, nullable=True),
        min_gap_minutes=float(r.number("min_gap_minutes", 0) or 0),
        abandoned_lockout=lock,
        machine_same_day=r.boolean("machine_same_day", False),
        exclusions=exclusions,
        third_party=third,
        fallback_zones=tuple(zones),
    )


def _parse_abandon(src: _Src, raw: dict[str, Any]) -> AbandonRules:
    r = _Reader(src, raw, (), ("limit", "window", "clock_starts", "connect_within_seconds",
                               "min_ring_seconds", "wrap_up_seconds", "caller_id"))
    cid = r.mapping("caller_id", ("policy", "number", "callable"))
    caller = CallerId("campaign", None, True)
    if cid is not None:
        policy = cid.choice("policy", ("campaign", "fixed"), "campaign")
        number = cid.raw.get("number")
        if policy == "fixed" and not (isinstance(number, str) and number.startswith("+") and number[1:].isdigit()):
            cid.fail("number", f"policy fixed needs an E.164 number such as \"+8610...\", got {number!r}")
        caller = CallerId(policy, number if isinstance(number, str) else None, cid.boolean("callable", True))
    return AbandonRules(
        limit=float(r.number("limit", maximum=1) or 0),
        window=r.choice("window", ("calendar_day", "rolling_30_days")),
        clock_starts=r.choice("clock_starts", ("end_of_greeting", "answer"), "end_of_greeting"),
        connect_within_seconds=float(r.number("connect_within_seconds", 2) or 0),
        min_ring_seconds=float(r.number("min_ring_seconds", 15) or 0),
        wrap_up_seconds=float(r.number("wrap_up_seconds", 0) or 0),
        caller_id=caller,
    )


def _valid_zone(name: Any) -> bool:
    if not isinstance(name, str):
        return False
    try:
        ZoneInfo(name)
        return True
    except (ZoneInfoNotFoundError, ValueError):
        return False


# --------------------------------------------------------------------------------------------
# Complaints (docs/COMPLAINTS.md): a profile's `complaints:` block
# --------------------------------------------------------------------------------------------
_SEVERITY = {"threat": "serious", "harassment": "serious", "harassing_relatives": "serious",
             "information_leak": "serious", "attitude": "moderate", "over_collection": "moderate",
             "compliance_dispute": "moderate", "other": "minor"}


@dataclass(frozen=True)
class ComplaintRules:
    """What a profile does with a complaint: the link window, which categories hold contact, which link every
    attempt (answered or not), each category's severity, the channels that raise it a grade, and the hours a
    review of each severity has. A profile without the block gets these defaults."""

    window_days: float = 14.0
    hold: tuple[str, ...] = ("harassment", "harassing_relatives", "threat")
    all_attempts: tuple[str, ...] = ("over_collection", "harassment", "harassing_relatives")
    severity: Mapping[str, str] = field(default_factory=lambda: dict(_SEVERITY), hash=False, compare=False)
    raise_channels: tuple[str, ...] = ("regulator_hotline",)
    due_hours: Mapping[str, float] = field(default_factory=lambda: {"serious": 24.0, "moderate": 72.0, "minor": 168.0},
                                           hash=False, compare=False)

    def grade(self, category: str, channel: str) -> str:
        """The severity of a complaint: its category's, one grade up through a raising channel (regulator > CS)."""
        S = COMPLAINT_SEVERITIES
        i = S.index(self.severity.get(category, "moderate")) + (1 if channel in self.raise_channels else 0)
        return S[min(i, len(S) - 1)]


def _parse_complaints(src: _Src, raw: Any) -> ComplaintRules:
    """`complaints: {window_days, hold: [category], all_attempts: [category], severity: {category: grade},
    raise: [channel], due_hours: {grade: hours}}`; every key optional (the defaults above)."""
    d = ComplaintRules()
    if raw is None:
        return d
    if not isinstance(raw, dict):
        src.fail((), f"must be a mapping {{window_days, hold, all_attempts, severity, raise, due_hours}}, got {raw!r}")
        return d
    r = _Reader(src, raw, (), ("window_days", "hold", "all_attempts", "severity", "raise", "due_hours"))

    def names(key: str, known: tuple[str, ...], default: tuple[str, ...]) -> tuple[str, ...]:
        v = raw.get(key, list(default))
        if not isinstance(v, list):
            r.fail(key, f"must be a list of {', '.join(known)}, got {v!r}")
            return default
        for i, x in enumerate(v):
            if x not in known:
                r.fail((key, i), f"unknown {'channel' if known is COMPLAINT_CHANNELS else 'category'} {x!r} "
                                 f"(known: {', '.join(known)})")
        return tuple(x for x in v if x in known)

    def table(key: str, keys: tuple[str, ...], check: Callable[[Any], bool], what: str,
              default: Mapping[str, Any]) -> dict[str, Any]:
        v = raw.get(key, {})
        out = dict(default)
        if not isinstance(v, dict):
            r.fail(key, f"must be a mapping of {' | '.join(keys)} to {what}, got {v!r}")
            return out
        for k, x in v.items():
            if k not in keys:
                r.fail((key, k), f"unknown key (allowed: {', '.join(keys)})")
            elif not check(x):
                r.fail((key, k), f"must be {what}, got {x!r}")
            else:
                out[k] = x
        return out

    window = r.number("window_days", d.window_days, minimum=0.01, maximum=365)
    severity = table("severity", COMPLAINT_CATEGORIES, lambda x: x in COMPLAINT_SEVERITIES,
                     " | ".join(COMPLAINT_SEVERITIES), d.severity)
    due = table("due_hours", COMPLAINT_SEVERITIES,
                lambda x: isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x <= 24 * 365,
                "hours (a number above 0, at most a year)", d.due_hours)
    return ComplaintRules(window_days=float(window or d.window_days),
                          hold=names("hold", COMPLAINT_CATEGORIES, d.hold),
                          all_attempts=names("all_attempts", COMPLAINT_CATEGORIES, d.all_attempts),
                          severity=severity, raise_channels=names("raise", COMPLAINT_CHANNELS, d.raise_channels),
                          due_hours={k: float(v) for k, v in due.items()})
