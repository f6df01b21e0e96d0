"""Campaign YAML → frozen dataclasses, validated at the door; every error names file, line and field.

A campaign says who is called (segments by days past due, customer type and propensity band), with
which voice-bot script, in which dial mode, how often (cadence) and when to retry. Segments are
matched in file order; the first match wins (`segment_for`).
"""
from __future__ import annotations

import difflib
import importlib
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import phonenumbers

from common.paths import REPO
from common.vocab import RETRY_OUTCOMES
from common.yamlfile import ConfigError, Located, load_file, load_text
from dialer.campaign.escalation import ACTIONS, STAGE_KEYS, TASK_ACTIONS, Stage
from dialer.gate.rules import DEFAULT_RULES_FILE, profile_names, recording_notice

REPO_ROOT = REPO
DEFAULT_SCRIPTS_DIR = Path("campaigns/scripts")

PROFILES = ("cn", "us", "uk")
LOCALES = ("zh-CN", "en-US")
DIAL_MODES = ("preview", "progressive", "predictive", "bot_only")
AMD_POLICIES = ("hangup", "message")  # message: the information message (identity, call-back number; no debt)
COLLECTOR_DIAL_MODES = ("progressive", "predictive")  # paced: answered people go straight to the queue
NOT_BUILT_DIAL_MODES = {  # modes operators know from other dialers: named, and refused as not built here
    "power": "use 'progressive' (one line per ready collector) or 'predictive'",
    "manual": "use 'preview' (the collector sees the debtor and accepts before the call is placed)",
    "blended": "inbound call-backs already reach the collectors' queue; pick an outbound mode",
    "ratio": "use 'predictive' (the pacer sets the ratio from the abandon budget)",
}
CUSTOMER_TYPES = ("first", "repeat", "wilful")
PROPENSITY_BANDS = ("any", "high", "mid", "low")
BUCKETS: dict[str, tuple[int, int | None]] = {
    "M0": (0, 0), "M1": (1, 30), "M2": (31, 60), "M3": (61, 90), "M3+": (91, None),
}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DELAY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_DELAY_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def bucket_for(days_past_due: int) -> str:
    """Days past due → seed-003 bucket (M0 0, M1 1–30, M2 31–60, M3 61–90, M3+ > 90)."""
    for name, (lo, hi) in BUCKETS.items():
        if days_past_due >= lo and (hi is None or days_past_due <= hi):
            return name
    raise ValueError(f"days_past_due must be >= 0, got {days_past_due}")


def parse_delay(value: Any) -> int:
    """'30m' / '2h' / '1d' / '45s' (or a number of seconds) → seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a delay like '30m', '2h' or '1d'")
    if isinstance(value, (int, float)) and value >= 0:
        return int(value)
    m = _DELAY_RE.match(str(value))
    if not m:
        raise ValueError(f"expected a delay like '30m', '2h' or '1d', got {value!r}")
    return int(float(m.group(1)) * _DELAY_UNITS[m.group(2)])


# -- the typed campaign ---------------------------------------------------------------------

@dataclass(frozen=True)
class DpdRange:
    """Days-past-due range, inclusive; hi None = open-ended. `text` is as written ('M2', '1-7', '61+')."""

    text: str
    lo: int
    hi: int | None

    def contains(self, days: int) -> bool:
        return days >= self.lo and (self.hi is None or days <= self.hi)


@dataclass(frozen=True)
class Cadence:
    max_attempts_per_day: int | None = None
    max_attempts_per_week: int | None = None
    max_attempts_total: int | None = None
    min_gap_minutes: int | None = None
    days_between_contacts: float | None = None


@dataclass(frozen=True)
class Retry:
    """Delay in seconds before the next attempt, per outcome; None = no retry for that outcome."""

    busy: int | None = None
    no_answer: int | None = None
    machine: int | None = None
    failed: int | None = None
    callee_hangup: int | None = None
    max_attempts: int | None = None

    def delay_for(self, outcome: str) -> int | None:
        return getattr(self, outcome, None) if outcome in RETRY_OUTCOMES else None


@dataclass(frozen=True)
class Segment:
    name: str
    dpd: DpdRange
    script: str
    customer_types: tuple[str, ...] = CUSTOMER_TYPES
    propensity: str = "any"
    dial_mode: str | None = None
    cadence: Cadence = field(default_factory=Cadence)
    retry: Retry = field(default_factory=Retry)
    escalation: tuple[Stage, ...] = ()  # the plan by stage (campaign/escalation.py); () = no plan


@dataclass(frozen=True)
class PropensityBands:
    """Score thresholds: high ≥ high, mid ≥ mid, else low."""

    high: float = 0.6
    mid: float = 0.3

    def band(self, score: float) -> str:
        return "high" if score >= self.high else "mid" if score >= self.mid else "low"


@dataclass(frozen=True)
class Campaign:
    name: str
    profile: str
    locale: str
    institution: str
    callback_number: str
    caller_id: str
    dial_mode: str
    line_limit: int
    segments: tuple[Segment, ...]
    propensity_bands: PropensityBands = field(default_factory=PropensityBands)
    description: str = ""
    strategy: Any = None          # parsed by dialer.strategy.table when present, else the raw mapping
    amd: bool = True              # answering-machine detection on answered calls
    ring_seconds: float = 20.0    # ring time before no-answer (the profile's minimum ring time still applies)
    pacing: Any = None            # dialer.pacing.PredictiveConfig for predictive campaigns (None = defaults)
    default_region: str | None = None  # ISO 3166 region whose national numbers the CSV may use ('CN')
    owner: str | None = None  # who answers for the campaign's pacing and caps (a complaint with no collector on the line)
    preview_seconds: float = 30.0  # preview: how long an offer waits for the collector's accept or skip
    amd_policy: str = "hangup"  # collector modes, a machine answered: hang up, or leave the information message
    file: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def lang(self) -> str:
        return self.locale.split("-")[0]

    @property
    def default_currency(self) -> str:
        return {"zh-CN": "CNY", "en-US": "USD"}.get(self.locale, "USD")

    def segment(self, name: str) -> Segment | None:
        return next((s for s in self.segments if s.name == name), None)

    def dial_mode_for(self, segment: Segment | None) -> str:
        return (segment.dial_mode if segment and segment.dial_mode else self.dial_mode)

    def mode_of(self, segment_name: str | None) -> str:
        """The dial mode of the segment called `segment_name` (the campaign's when there is none)."""
        return self.dial_mode_for(self.segment(segment_name) if segment_name else None)

    @property
    def has_preview(self) -> bool:
        return self.dial_mode == "preview" or any(s.dial_mode == "preview" for s in self.segments)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("raw", None)
        if self.strategy is not None and not isinstance(self.strategy, (dict, list, str, int, float)):
            d["strategy"] = self.raw.get("strategy")
        return d


def segment_for(campaign: Campaign, account_days_past_due: int, customer_type: str,
                propensity: float | None) -> Segment | None:
    """The first segment (file order) matching the account; None if none does.

    An unscored debtor (propensity None) matches only segments whose band is 'any'.
    """
    band = campaign.propensity_bands.band(propensity) if propensity is not None else None
    for seg in campaign.segments:
        if not seg.dpd.contains(account_days_past_due):
            continue
        if customer_type not in seg.customer_types:
            continue
        if seg.propensity != "any" and seg.propensity != band:
            continue
        return seg
    return None


def retry_delay(segment: Segment, outcome: str, attempts_made: int) -> int | None:
    """Seconds to wait before retrying after `outcome`, or None when the segment says stop
    (no delay configured for that outcome, or `max_attempts` already made). Pure."""
    if segment.retry.max_attempts is not None and attempts_made >= segment.retry.max_attempts:
        return None
    return segment.retry.delay_for(outcome)


# -- validation ------------------------------------------------------------------------------

_TOP_KEYS = ("name", "description", "profile", "locale", "institution", "callback_number",
             "caller_id", "dial_mode", "line_limit", "segments", "cadence", "retry",
             "propensity_bands", "strategy", "amd", "ring_seconds", "pacing", "default_region",
             "preview_seconds", "amd_policy", "owner")
_REQUIRED_TOP = ("name", "profile", "locale", "institution", "callback_number", "caller_id",
                 "dial_mode", "line_limit", "segments")
_SEGMENT_KEYS = ("name", "dpd", "customer_types", "propensity", "script", "dial_mode", "cadence", "retry",
                 "escalation")
_CADENCE_KEYS = tuple(Cadence.__dataclass_fields__)
_RETRY_KEYS = tuple(Retry.__dataclass_fields__)

MAX_INTEGER = 1_000_000_000  # above this no setting makes sense, and SQLite integers overflow at 2**63
MAX_LINE_LIMIT = 10_000  # simultaneous lines one campaign may hold; a 2-core PBX saturates near 300
MAX_DPD = 36_500  # days past due: a hundred years; more is a typing error


class _Checker:
    """Walks a Located mapping, turning problems into ConfigError with file:line: field."""

    def __init__(self, located: Located):
        self.loc = located

    def err(self, path: tuple[Any, ...], msg: str) -> ConfigError:
        return self.loc.error(path, msg)

    def mapping(self, value: Any, path: tuple[Any, ...], allowed: tuple[str, ...],
                required: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.err(path, f"expected a mapping, got {_type_name(value)}")
        for key in value:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                extra = f" (did you mean '{hint[0]}'?)" if hint else f" (allowed: {', '.join(allowed)})"
                raise self.err(path + (key,), f"unknown key{extra}")
        for key in required:
            if key not in value:
                raise self.err(path, f"missing required key '{key}'")
        return value

    def string(self, value: Any, path: tuple[Any, ...], *, pattern: re.Pattern | None = None) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.err(path, f"expected a non-empty string, got {_type_name(value)}")
        if pattern is not None and not pattern.match(value):
            raise self.err(path, f"{value!r} must match {pattern.pattern}")
        return value

    def choice(self, value: Any, path: tuple[Any, ...], choices: tuple[str, ...]) -> str:
        if not isinstance(value, str):
            raise self.err(path, f"expected one of {', '.join(choices)}, got {_type_name(value)}")
        if value not in choices:
            hint = difflib.get_close_matches(value, choices, n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise self.err(path, f"{value!r} is not one of {', '.join(choices)}{extra}")
        return value

    def integer(self, value: Any, path: tuple[Any, ...], minimum: int = 0, maximum: int = MAX_INTEGER) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.err(path, f"expected an integer, got {_type_name(value)}")
        if value < minimum:
            raise self.err(path, f"must be >= {minimum}, got {value}")
        if value > maximum:
            raise self.err(path, f"must be <= {maximum:,}, got {_short(value)}")
        return value

    def number(self, value: Any, path: tuple[Any, ...], lo: float = 0.0, hi: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.err(path, f"expected a number, got {_type_name(value)}")
        if value != value or value in (float("inf"), float("-inf")):
            raise self.err(path, f"expected a finite number, got {value}")
        if hi is None and value > MAX_INTEGER:
            raise self.err(path, f"must be <= {MAX_INTEGER:,}, got {_short(value)}")
        if value < lo or (hi is not None and value > hi):
            raise self.err(path, f"must be between {lo} and {hi}" if hi is not None else f"must be >= {lo}")
        return float(value)

    def phone(self, value: Any, path: tuple[Any, ...]) -> str:
        if isinstance(value, int):
            value = str(value)
        text = self.string(value, path)
        try:
            num = phonenumbers.parse(text, None)
        except phonenumbers.NumberParseException:
            raise self.err(path, f"{text!r} is not an E.164 number (e.g. +12125550100)") from None
        if not phonenumbers.is_possible_number(num):
            raise self.err(path, f"{text!r} is not a possible phone number")
        return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 20 else f"{text[:8]}… ({len(text)} digits)"


def _dpd(c: _Checker, value: Any, path: tuple[Any, ...]) -> DpdRange:
    out = _dpd_range(c, value, path)
    if max(out.lo, out.hi or 0) > MAX_DPD:
        raise c.err(path, f"days past due must be <= {MAX_DPD:,}")
    return out


def _dpd_range(c: _Checker, value: Any, path: tuple[Any, ...]) -> DpdRange:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise c.err(path, "days past due must be >= 0")
        return DpdRange(str(value), value, value)
    if not isinstance(value, str):
        raise c.err(path, f"expected a bucket (M0, M1, M2, M3, M3+) or a range like '1-7' or '61+', got {_type_name(value)}")
    text = value.strip()
    if text in BUCKETS:
        lo, hi = BUCKETS[text]
        return DpdRange(text, lo, hi)
    m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", text)
    if m:
        lo, hi = int(m.group(1)), int(m.group(2))
        if lo > hi:
            raise c.err(path, f"range {text!r} is empty (start > end)")
        return DpdRange(text, lo, hi)
    m = re.fullmatch(r"(\d+)\s*\+", text)
    if m:
        return DpdRange(text, int(m.group(1)), None)
    hint = difflib.get_close_matches(text, list(BUCKETS), n=1)
    extra = f" (did you mean '{hint[0]}'?)" if hint else ""
    raise c.err(path, f"{text!r} is not a bucket (M0, M1, M2, M3, M3+) or a range like '1-7' or '61+'{extra}")


def _cadence(c: _Checker, value: Any, path: tuple[Any, ...], base: Cadence) -> Cadence:
    if value is None:
        return base
    m = c.mapping(value, path, _CADENCE_KEYS)
    out = asdict(base)
    for key, v in m.items():
        if key == "days_between_contacts":
            out[key] = c.number(v, path + (key,))
        else:
            out[key] = c.integer(v, path + (key,), minimum=0 if key == "min_gap_minutes" else 1)
    return Cadence(**out)


def _retry(c: _Checker, value: Any, path: tuple[Any, ...], base: Retry) -> Retry:
    if value is None:
        return base
    m = c.mapping(value, path, _RETRY_KEYS)
    out = asdict(base)
    for key, v in m.items():
        if key == "max_attempts":
            out[key] = c.integer(v, path + (key,), minimum=1)
        elif v is None or v is False or v == "never":
            out[key] = None
        else:
            try:
                out[key] = parse_delay(v)
            except ValueError as exc:
                raise c.err(path + (key,), str(exc)) from None
    return Retry(**out)


def _dial_mode(c: _Checker, value: Any, path: tuple[Any, ...], campaign_mode: str | None = None) -> str:
    """A dial mode this dialer has built; an unknown one, or one it has not built, is refused (never
    replaced by another). A collector-mode segment needs a paced (progressive/predictive) campaign."""
    if isinstance(value, str) and value in NOT_BUILT_DIAL_MODES:
        raise c.err(path, f"dial mode {value!r} is not built in this dialer: {NOT_BUILT_DIAL_MODES[value]}"
                          f" (built: {', '.join(DIAL_MODES)})")
    mode = c.choice(value, path, DIAL_MODES)
    if campaign_mode is not None and mode in COLLECTOR_DIAL_MODES and campaign_mode not in COLLECTOR_DIAL_MODES:
        raise c.err(path, f"a {mode!r} segment in a {campaign_mode!r} campaign is not built: the pacer runs for"
                          f" campaigns whose dial_mode is progressive or predictive (set the campaign's dial_mode)")
    return mode


def _escalation(c: _Checker, value: Any, path: tuple[Any, ...], campaign_mode: str) -> tuple[Stage, ...]:
    """A segment's `escalation:` list → Stages; an unknown action or key, a stage name used twice, a stage with
    no condition, or a collector call in a campaign with no collector pacing is refused (file:line: field)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        raise c.err(path, f"expected a non-empty list of stages, got {_type_name(value)}")
    out: list[Stage] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(value):
        p = path + (i,)
        s = c.mapping(raw, p, STAGE_KEYS, ("stage", "action"))
        name = c.string(s["stage"], p + ("stage",), pattern=_NAME_RE)
        if name in seen:
            raise c.err(p + ("stage",), f"duplicate stage name {name!r} (also {path[-1]}[{seen[name]}])")
        seen[name] = i
        action = c.choice(s["action"], p + ("action",), ACTIONS)
        if action == "collector_call" and campaign_mode not in COLLECTOR_DIAL_MODES:
            raise c.err(p + ("action",), f"collector_call needs a progressive or predictive campaign (the pacer"
                                         f" brings collectors); this campaign's dial_mode is {campaign_mode!r}")
        dpd = _dpd(c, s["dpd"], p + ("dpd",)) if s.get("dpd") is not None else None
        nca = c.integer(s["no_contact_attempts"], p + ("no_contact_attempts",), minimum=1) \
            if s.get("no_contact_attempts") is not None else None
        broken = None
        if s.get("broken_promise") is not None:
            broken = s["broken_promise"]
            if not isinstance(broken, bool):
                raise c.err(p + ("broken_promise",), f"expected true or false, got {_type_name(broken)}")
        if dpd is None and nca is None and broken is None:
            raise c.err(p, "a stage needs at least one condition: dpd, no_contact_attempts or broken_promise")
        template = every = None
        for key in ("template", "every"):
            if s.get(key) is not None and action not in TASK_ACTIONS:
                raise c.err(p + (key,), f"{key} is for task stages ({', '.join(TASK_ACTIONS)}); a call's script and"
                                        f" retries come from the segment")
        if s.get("template") is not None:
            template = c.string(s["template"], p + ("template",), pattern=_NAME_RE)
        if s.get("every") is not None:
            try:
                every = parse_delay(s["every"])
            except ValueError as exc:
                raise c.err(p + ("every",), str(exc)) from None
            if every <= 0:
                raise c.err(p + ("every",), "must be more than 0")
        out.append(Stage(name=name, action=action, dpd=dpd, no_contact_attempts=nca, broken_promise=broken,
                         template=template, every=every))
    return tuple(out)


def _default_scripts_dir(file: str) -> Path:
    here = Path(file).parent / "scripts"
    return here if here.is_dir() else REPO_ROOT / DEFAULT_SCRIPTS_DIR


def _default_rules_file() -> Path:
    local = DEFAULT_RULES_FILE
    return local if local.exists() else REPO_ROOT / DEFAULT_RULES_FILE


def _check_notice(c: "_Checker", rules_file: str | Path, profile: str, locale: str) -> None:
    """A profile that requires a recording notice must have its sentence in the campaign's locale."""
    found = recording_notice(rules_file, profile)
    if found is None:
        return
    notice, line = found
    if notice.required and locale not in notice.text:
        where = f"{Path(rules_file).name}:{line}" if line else Path(rules_file).name
        raise c.err(("locale",), f"profile {profile!r} requires a recording notice, but {where}"
                                 f" (profiles.{profile}.qa.recordings.notice.text) has none in {locale}"
                                 f" (has: {', '.join(notice.text) or 'none'})")


def parse_campaign(located: Located, *, scripts_dir: str | Path | None = None,
                   rules_file: str | Path | None = None, check_files: bool = True) -> Campaign:
    """Validate a loaded campaign. `check_files=False` skips the script-file and profile-file checks
    (used when re-reading a campaign already validated into the store)."""
    c = _Checker(located)
    root = c.mapping(located.data if located.data is not None else {}, (), _TOP_KEYS, _REQUIRED_TOP)
    name = c.string(root["name"], ("name",), pattern=_NAME_RE)
    profile = c.choice(root["profile"], ("profile",), PROFILES)
    if check_files:
        known = profile_names(rules_file if rules_file is not None else _default_rules_file())
        if known is not None and profile not in known:
            raise c.err(("profile",), f"profile {profile!r} is not in compliance_rules.yaml (has: {', '.join(known)})")
    locale = c.choice(root["locale"], ("locale",), LOCALES)
    if check_files:
        _check_notice(c, rules_file if rules_file is not None else _default_rules_file(), profile, locale)
    institution = c.string(root["institution"], ("institution",))
    callback = c.phone(root["callback_number"], ("callback_number",))
    caller_id = c.phone(root["caller_id"], ("caller_id",))
    dial_mode = _dial_mode(c, root["dial_mode"], ("dial_mode",))
    line_limit = c.integer(root["line_limit"], ("line_limit",), minimum=1, maximum=MAX_LINE_LIMIT)
    description = root.get("description") or ""
    if not isinstance(description, str):
        raise c.err(("description",), f"expected a string, got {_type_name(description)}")

    bands = PropensityBands()
    if root.get("propensity_bands") is not None:
        pb = c.mapping(root["propensity_bands"], ("propensity_bands",), ("high", "mid"))
        high = c.number(pb.get("high", bands.high), ("propensity_bands", "high"), 0.0, 1.0)
        mid = c.number(pb.get("mid", bands.mid), ("propensity_bands", "mid"), 0.0, 1.0)
        if mid > high:
            raise c.err(("propensity_bands", "mid"), f"mid ({mid}) must not exceed high ({high})")
        bands = PropensityBands(high=high, mid=mid)

    base_cadence = _cadence(c, root.get("cadence"), ("cadence",), Cadence())
    base_retry = _retry(c, root.get("retry"), ("retry",), Retry())

    segs_raw = root["segments"]
    if not isinstance(segs_raw, list) or not segs_raw:
        raise c.err(("segments",), f"expected a non-empty list of segments, got {_type_name(segs_raw)}")
    sdir = Path(scripts_dir) if scripts_dir is not None else _default_scripts_dir(located.file)
    segments: list[Segment] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(segs_raw):
        p = ("segments", i)
        s = c.mapping(raw, p, _SEGMENT_KEYS, ("name", "dpd", "script"))
        sname = c.string(s["name"], p + ("name",), pattern=_NAME_RE)
        if sname in seen:
            raise c.err(p + ("name",), f"duplicate segment name {sname!r} (also segments[{seen[sname]}])")
        seen[sname] = i
        dpd = _dpd(c, s["dpd"], p + ("dpd",))
        ctypes: tuple[str, ...] = CUSTOMER_TYPES
        if s.get("customer_types") is not None:
            ct = s["customer_types"]
            if isinstance(ct, str):
                ct = [ct]
            if not isinstance(ct, list) or not ct:
                raise c.err(p + ("customer_types",), f"expected a non-empty list, got {_type_name(ct)}")
            ctypes = tuple(c.choice(v, p + ("customer_types", j), CUSTOMER_TYPES) for j, v in enumerate(ct))
        band = c.choice(s.get("propensity", "any"), p + ("propensity",), PROPENSITY_BANDS)
        script = c.string(s["script"], p + ("script",), pattern=_NAME_RE)
        if check_files and not (sdir / f"{script}.yaml").is_file():
            known = sorted(x.stem for x in sdir.glob("*.yaml")) if sdir.is_dir() else []
            hint = difflib.get_close_matches(script, known, n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else (f" (known: {', '.join(known)})" if known else "")
            raise c.err(p + ("script",), f"unknown script id {script!r}: no file {sdir / (script + '.yaml')}{extra}")
        seg_mode = None
        if s.get("dial_mode") is not None:
            seg_mode = _dial_mode(c, s["dial_mode"], p + ("dial_mode",), dial_mode)
        if s.get("escalation") is not None and (seg_mode or dial_mode) == "preview":
            raise c.err(p + ("escalation",), "an escalation plan on a preview segment is not built: its debtors are"
                                             " offered to collectors (calls/preview.py); give the segment a paced or"
                                             " bot_only dial_mode")
        segments.append(Segment(
            name=sname, dpd=dpd, script=script, customer_types=ctypes, propensity=band,
            dial_mode=seg_mode,
            cadence=_cadence(c, s.get("cadence"), p + ("cadence",), base_cadence),
            retry=_retry(c, s.get("retry"), p + ("retry",), base_retry),
            escalation=_escalation(c, s.get("escalation"), p + ("escalation",), dial_mode),
        ))

    amd = root.get("amd", True)
    if not isinstance(amd, bool):
        raise c.err(("amd",), f"expected true or false, got {_type_name(amd)}")
    ring_seconds = c.number(root.get("ring_seconds", 20.0), ("ring_seconds",), 5.0, 120.0)
    preview_seconds = c.number(root.get("preview_seconds", 30.0), ("preview_seconds",), 5.0, 600.0)
    amd_policy = c.choice(root.get("amd_policy", "hangup"), ("amd_policy",), AMD_POLICIES)
    default_region = None
    if root.get("default_region") is not None:
        import phonenumbers

        default_region = c.string(root["default_region"], ("default_region",)).strip().upper()
        if default_region not in phonenumbers.SUPPORTED_REGIONS:
            raise c.err(("default_region",), f"{root['default_region']!r} is not a region code (CN, GB, US, ...)")
    owner = c.string(root["owner"], ("owner",)).strip()[:200] if root.get("owner") is not None else None
    pacing = None
    if root.get("pacing") is not None:
        from dialer.pacing.pacers import predictive_config

        pacing = predictive_config(located, ("pacing",))

    strategy = root.get("strategy")
    if strategy is not None:
        if not isinstance(strategy, dict):
            raise c.err(("strategy",), f"expected a mapping, got {_type_name(strategy)}")
        strategy = _parse_strategy(located, strategy)

    return Campaign(
        name=name, profile=profile, locale=locale, institution=institution.strip(),
        callback_number=callback, caller_id=caller_id, dial_mode=dial_mode, line_limit=line_limit,
        segments=tuple(segments), propensity_bands=bands, description=description,
        strategy=strategy, file=located.file, raw=root, amd=amd, ring_seconds=ring_seconds, pacing=pacing,
        default_region=default_region, preview_seconds=preview_seconds, amd_policy=amd_policy, owner=owner,
    )


def _parse_strategy(located: Located, strategy: dict) -> Any:
    """Hand the `strategy:` section to the strategy area's parser when it exists."""
    try:
        module = importlib.import_module("dialer.strategy.table")
    except ModuleNotFoundError as exc:
        if exc.name in ("dialer.strategy.table",):
            return strategy
        raise
    parse = getattr(module, "parse_strategy", None)
    return parse(located, ("strategy",)) if parse is not None else strategy


def load_campaign(path: str | Path, *, scripts_dir: str | Path | None = None,
                  rules_file: str | Path | None = None) -> Campaign:
    """Read and validate a campaign file; raises ConfigError (`file:line: field: message`)."""
    return parse_campaign(load_file(path), scripts_dir=scripts_dir, rules_file=rules_file)


# Stand-ins that let validation go on past an error (never stored: only to find the next error).
_STAND_INS: dict[str, Any] = {
    "name": "x", "profile": "cn", "locale": "zh-CN", "institution": "x", "callback_number": "+8613800000000",
    "caller_id": "+8613800000000", "dial_mode": "bot_only", "line_limit": 1, "dpd": "M1",
}


def _path_of(field_text: str | None) -> tuple[Any, ...]:
    """'segments[2].script' -> ('segments', 2, 'script')"""
    out: list[Any] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", field_text or ""):
        out.append(int(index) if index else name)
    return tuple(out)


def campaign_errors(path: str | Path, *, scripts_dir: str | Path | None = None,
                    rules_file: str | Path | None = None, limit: int = 50) -> list[ConfigError]:
    """Every problem in a campaign file, not only the first: after each error the offending value is
    replaced by a stand-in (or dropped when optional) and validation runs again. [] when valid."""
    import copy

    try:
        located = load_file(path)
    except ConfigError as exc:
        return [exc]
    data = copy.deepcopy(located.data)
    errors: list[ConfigError] = []
    sdir = Path(scripts_dir) if scripts_dir is not None else _default_scripts_dir(located.file)
    known_scripts = sorted(x.stem for x in sdir.glob("*.yaml")) if sdir.is_dir() else []
    for _ in range(limit):
        try:
            parse_campaign(Located(data=data, file=located.file, lines=located.lines), scripts_dir=scripts_dir,
                           rules_file=rules_file)
            break
        except ConfigError as exc:
            if any(e.render() == exc.render() or (e.line, e.field) == (exc.line, exc.field) for e in errors):
                break  # cannot get past this one (or the stand-in itself is refused: not the file's error)
            errors.append(exc)
            p = _path_of(exc.field)
            if not p or not isinstance(data, dict):
                break
            parent: Any = data
            try:
                for part in p[:-1]:
                    parent = parent[part]
            except (KeyError, IndexError, TypeError):
                break
            key = p[-1]
            if key == "script" and known_scripts:
                parent[key] = known_scripts[0]
            elif key in _STAND_INS:
                parent[key] = _STAND_INS[key]
            elif isinstance(parent, dict) and key in parent:
                del parent[key]
            elif isinstance(parent, list) and isinstance(key, int) and key < len(parent) and len(parent) > 1:
                parent.pop(key)
            else:
                break
    return errors


def load_campaign_text(text: str, file: str = "<input>", **kwargs: Any) -> Campaign:
    return parse_campaign(load_text(text, file), **kwargs)


def campaign_from_stored(data: Mapping[str, Any], file: str) -> Campaign:
    """Rebuild a campaign from the mapping stored at load time (already validated)."""
    return parse_campaign(Located(data=dict(data), file=file, lines={}), check_files=False)


__all__ = [
    "BUCKETS", "Cadence", "Campaign", "ConfigError", "DpdRange", "PropensityBands", "Retry",
    "Segment", "bucket_for", "retry_delay", "campaign_from_stored", "load_campaign", "load_campaign_text",
    "parse_campaign", "parse_delay", "segment_for",
]
