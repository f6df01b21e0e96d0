"""The gate's pure decision: `decide(attempt, history, rules, now)`.

Says whether one dial may be placed now, which rule blocks it, why, and the earliest later time at
which the same dial would pass every rule (searched forward, so a blocked debtor is never retried
before something changes). No I/O: `dialer.gate.account` loads the history and records the outcome."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, NamedTuple
from zoneinfo import ZoneInfo

from common.vocab import CONNECTED_OUTCOMES, FAILED_OUTCOMES, REACHED_OUTCOMES
from dialer.gate.rules import (
    DAY,
    HORIZON_DAYS,
    SUPPRESSION_LISTS,
    WEEKDAYS,
    GateRules,
    Profile,
    Rules,
    parse_days,
    parse_hhmm,
)
from dialer.gate.zones import (
    _at_local,
    _date_bounds,
    _Local,
    _local,
    _zone,
    candidate_zones,
    holiday_name,
)


# --------------------------------------------------------------------------------------------
# Inputs of a decision
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Attempt:
    """The dial being asked for."""

    debtor_id: str
    phone: str
    account_id: str | None = None
    campaign: str | None = None
    third_party: bool = False
    agent_guaranteed: bool = False  # UK-72H / UK-AMD24 allow a redial with a guaranteed agent


@dataclass(frozen=True)
class PastAttempt:
    """One earlier attempt of the debtor (times are UTC epoch seconds)."""

    placed_at: float
    phone: str
    account_id: str | None = None
    third_party: bool = False
    inbound: bool = False
    outcome: str | None = None  # None = still in flight
    conversation: bool = False
    abandoned: bool = False
    machine: bool = False
    answered_at: float | None = None
    ended_at: float | None = None


@dataclass(frozen=True)
class Inconvenient:
    """A debtor's request: not at these local hours (on these days), or never on this number."""

    days: frozenset[int]
    start: int | None  # minutes; None with a phone = that number at any time
    end: int | None
    phone: str | None = None
    label: str = ""

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> "Inconvenient":
        """{"days": [...], "start": "09:00", "end": "17:00", "phone": "+1...", "label": "at work"}"""
        unknown = set(spec) - {"days", "start", "end", "phone", "label"}
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))} (allowed: days, start, end, phone, label)")
        days = parse_days(spec.get("days"))
        start = end = None
        if "start" in spec or "end" in spec:
            start = parse_hhmm(spec.get("start"))
            end = parse_hhmm(spec.get("end"), allow_24=True)
            if start >= end:
                raise ValueError(f"end {spec.get('end')} must be after start {spec.get('start')}")
        phone = spec.get("phone")
        if start is None and not phone:
            raise ValueError("give start and end (hours to avoid), a phone (a number to avoid), or both")
        return cls(days, start, end, phone or None, str(spec.get("label") or ""))


@dataclass(frozen=True)
class Suppression:
    """An entry of a suppression list that names this debtor, one of their accounts or a number."""

    list: str  # dnc | attorney | bankruptcy | deceased | complaint_hold
    key_kind: str  # phone | debtor | account
    key: str
    effective_at: float  # UTC epoch from which it holds
    since: str  # the effective date as written
    source: str

    def matches(self, attempt: "Attempt") -> bool:
        if self.key_kind == "debtor":
            return True
        if self.key_kind == "phone":
            return self.key == attempt.phone
        return attempt.account_id is None or self.key == attempt.account_id  # no account named: any of theirs

    def describe(self) -> str:
        what = {"phone": "the number", "debtor": "the debtor", "account": f"account {self.key}"}[self.key_kind]
        return f"{what} is on the {self.list} list since {self.since} (source: {self.source})"


@dataclass(frozen=True)
class History:
    """Everything about a debtor the gate needs, as of now."""

    debtor_id: str
    timezone: str | None = None  # the record's zone
    attempts: tuple[PastAttempt, ...] = ()
    cease: bool = False
    dnc: frozenset[str] = frozenset()
    inconvenient: tuple[Inconvenient, ...] = ()
    consents: tuple[float, ...] = ()  # times of direct consent
    phones: tuple[str, ...] = ()  # the debtor's own numbers, rank order
    unreachable_phones: frozenset[str] = frozenset()  # wrong_number / unallocated
    suppressions: tuple[Suppression, ...] = ()
    paid_accounts: tuple[tuple[str, str], ...] = ()  # (account_id, "paid in full on …") balance <= 0
    balance_due: bool = True  # some account of the debtor still has a balance > 0


class Check(NamedTuple):
    """One rule's verdict at the decision's instant."""

    rule_id: str
    passed: bool
    why: str
    next_ok_at: datetime | None = None  # when this rule alone would pass (None = not by waiting)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule_id: str | None
    reason: str
    next_allowed_at: datetime | None  # == now when allowed; None when waiting cannot help
    checks: tuple[Check, ...]
    zones: tuple[str, ...] = ()
    at: datetime | None = None
    phone: str | None = None

    @property
    def permanent(self) -> bool:
        """Blocked by a rule that no amount of waiting clears (cease, dnc, a number to avoid...)."""
        return not self.allowed and any(not c.passed and c.next_ok_at is None for c in self.checks)

    def local_times(self) -> dict[str, str]:
        if self.at is None:
            return {}
        return {z: self.at.astimezone(ZoneInfo(z)).isoformat() for z in self.zones}

    def as_dict(self) -> dict[str, Any]:
        iso = lambda d: d.isoformat() if d else None  # noqa: E731
        return {
            "allowed": self.allowed, "rule_id": self.rule_id, "reason": self.reason,
            "next_allowed_at": iso(self.next_allowed_at), "permanent": self.permanent, "at": iso(self.at),
            "zones": list(self.zones), "local_times": self.local_times(),
            "checks": [{"rule_id": c.rule_id, "passed": c.passed, "why": c.why,
                        "next_ok_at": iso(c.next_ok_at)} for c in self.checks],
        }



# --------------------------------------------------------------------------------------------
# The decision
# --------------------------------------------------------------------------------------------
class _Ctx:
    """One decision's precomputed views of the history."""

    def __init__(self, attempt: Attempt, history: History, g: GateRules):
        self.a, self.h, self.g = attempt, history, g
        self.zone_names = candidate_zones(attempt.phone, history.timezone, g.fallback_zones)
        self.zones = [_zone(z) for z in self.zone_names]
        phone, tp_flag, acct = attempt.phone, attempt.third_party, attempt.account_id
        connected = g.count == "connected"
        cdays = g.exclusions.consent_days * DAY
        consents = history.consents if cdays > 0 else ()
        excl_inbound = g.exclusions.inbound
        lock = g.abandoned_lockout
        lock_any = lock is not None and lock.scope == "debtor"
        self.own: list[PastAttempt] = []
        self.daily: list[float] = []
        self.tp_daily: list[float] = []
        self.number: list[float] = []
        self.gap: list[float] = []
        c7: list[float] = []
        self.conv: list[float] = []
        self.abandoned: list[float] = []
        self.machine: list[float] = []
        for p in history.attempts:  # one pass, each attempt sorted into the views the rules count
            x = p.placed_at
            if not p.inbound:
                if p.third_party:
                    self.tp_daily.append(x)
                else:
                    self.own.append(p)
                    if not connected or p.outcome is None or p.answered_at is not None or p.conversation \
                            or p.outcome in CONNECTED_OUTCOMES:
                        self.daily.append(x)
                same_phone = p.phone == phone
                if same_phone:
                    self.number.append(x)
                    if p.machine:
                        self.machine.append(x)
                if p.third_party == tp_flag:
                    self.gap.append(x)
                if p.abandoned and lock is not None and (lock_any or same_phone):
                    self.abandoned.append(max(x, p.answered_at or 0, p.ended_at or 0))
            if p.third_party or (p.inbound and excl_inbound):
                continue
            if consents and any(c <= x < c + cdays for c in consents):
                continue
            if acct is not None and p.account_id is not None and p.account_id != acct:
                continue
            if not p.inbound:
                c7.append(x)
            if p.conversation:
                self.conv.append(max(x, p.answered_at or 0, p.ended_at or 0))
        c7.sort()
        self.c7 = c7
        self._memo_t: float | None = None
        self._memo: list[_Local] = []

    def at(self, t: float) -> list[_Local]:
        """The candidate zones' local views at t (memoised: every rule looks at the same instant)."""
        if t != self._memo_t:
            out = []
            for name, z in zip(self.zone_names, self.zones):
                dt = datetime.fromtimestamp(t, z)
                lo, hi = _date_bounds(name, dt.date())
                out.append(_Local(name, z, dt, lo, hi))
            self._memo_t, self._memo = t, out
        return self._memo


def _count_in(times: list[float], lo: float, hi: float) -> int:
    return sum(1 for x in times if lo <= x < hi)


def _fmt_t(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


# Each rule: (ctx, t) -> (passed, why, earliest time >= t it could pass; None = waiting cannot help)
RuleResult = tuple[bool, str, float | None]


def _r_cease(c: _Ctx, t: float) -> RuleResult:
    if c.h.cease:
        return False, "the debtor asked us to stop contacting them (cease)", None
    return True, "no cease-contact request", t


def _suppressed(c: _Ctx, t: float, name: str) -> Suppression | None:
    return next((s for s in c.h.suppressions if s.list == name and s.effective_at <= t and s.matches(c.a)), None)


def _r_dnc(c: _Ctx, t: float) -> RuleResult:
    if c.a.phone in c.h.dnc:
        return False, "the number is on the do-not-call list", None
    s = _suppressed(c, t, "dnc")
    if s is not None:
        return False, s.describe(), None
    return True, "number not on the do-not-call list", t


def _suppression_rule(name: str) -> Any:
    def rule(c: _Ctx, t: float) -> RuleResult:
        s = _suppressed(c, t, name)
        if s is not None:
            return False, s.describe(), None
        later = [x for x in c.h.suppressions if x.list == name and x.effective_at > t and x.matches(c.a)]
        if later:
            return True, f"on the {name} list from {later[0].since} (not yet in force)", t
        return True, f"not on the {name} list", t
    return rule


def _r_paid(c: _Ctx, t: float) -> RuleResult:
    paid = dict(c.h.paid_accounts)
    if c.a.account_id is not None and c.a.account_id in paid:
        return False, f"account {c.a.account_id} is paid in full ({paid[c.a.account_id]})", None
    if c.a.account_id is None and not c.h.balance_due:
        return False, "every account of the debtor is paid in full", None
    return True, "a balance is due", t


def _r_third_party(c: _Ctx, t: float) -> RuleResult:
    if not c.a.third_party:
        return True, "dialling the debtor, not a contact", t
    tp = c.g.third_party
    if not tp.allowed:
        return False, "the profile forbids calling contacts", None
    h = c.h
    own_phones = [p for p in h.phones if p not in h.dnc]
    all_dead = bool(h.phones) and all(p in h.unreachable_phones for p in own_phones)
    since = t - tp.unreachable_days * DAY
    recent = [p for p in c.own if p.placed_at >= since]
    reached = [p for p in recent if p.conversation or p.outcome in REACHED_OUTCOMES
               or (p.answered_at is not None and not p.machine)]
    failed = [p for p in recent if p.outcome in FAILED_OUTCOMES]
    if reached:
        return False, f"the debtor was reached on {_fmt_t(reached[-1].placed_at)}: contacts only when unreachable", None
    if not all_dead and len(failed) < tp.unreachable_after_attempts:
        return False, (f"debtor not yet unreachable: {len(failed)} failed attempt(s) in {tp.unreachable_days:g} days "
                       f"< {tp.unreachable_after_attempts}"), None
    if tp.daily_attempts is not None:
        worst = None
        for lv in c.at(t):
            lo, hi = lv.day_lo, lv.day_hi
            if _count_in(c.tp_daily, lo, hi) >= tp.daily_attempts:
                worst = hi if worst is None else max(worst, hi)
        if worst is not None:
            return False, f"contact calls today already at the cap of {tp.daily_attempts}", worst
    why = "all the debtor's numbers are dead" if all_dead else f"{len(failed)} failed attempts to the debtor"
    return True, f"debtor unreachable ({why}); locating only", t


def _r_inconvenient(c: _Ctx, t: float) -> RuleResult:
    nxt = None
    label = ""
    for req in c.h.inconvenient:
        if req.phone and req.phone != c.a.phone:
            continue
        if req.start is None:
            return False, f"the debtor asked not to be called on this number{f' ({req.label})' if req.label else ''}", None
        for lv in c.at(t):
            loc, z = lv.dt, lv.zone
            m = loc.hour * 60 + loc.minute
            if loc.weekday() in req.days and req.start <= m < req.end:
                end = _at_local(loc.date(), req.end, z)
                if end <= t:  # DST oddity: step a minute
                    end = t + 60
                nxt = end if nxt is None else max(nxt, end)
                label = req.label or f"{req.start // 60:02d}:{req.start % 60:02d}–{req.end // 60:02d}:{req.end % 60:02d}"
    if nxt is not None:
        return False, f"inside hours the debtor asked us to avoid ({label})", nxt
    return True, "outside every time the debtor asked us to avoid", t


def _r_holiday(c: _Ctx, t: float) -> RuleResult:
    nxt, names = None, []
    for lv in c.at(t):
        d = lv.dt.date()
        hol = holiday_name(c.g.holidays, d)
        if hol:
            names.append(f"{d.isoformat()} {hol} in {lv.name}")
            end = lv.day_hi
            nxt = end if nxt is None else max(nxt, end)
    if nxt is not None:
        return False, "holiday: " + "; ".join(names), nxt
    return True, "not a holiday or blackout date in any candidate zone", t


def _in_window(g: GateRules, loc: datetime) -> bool:
    m = loc.hour * 60 + loc.minute + (loc.second + loc.microsecond / 1e6) / 60
    wd = loc.weekday()
    return any(wd in w.days and w.start <= m < w.end for w in g.windows)


def _next_window_start(g: GateRules, t: float, z: ZoneInfo) -> float | None:
    d0 = _local(t, z).date()
    for k in range(8):
        d = d0 + timedelta(days=k)
        for w in sorted(g.windows, key=lambda w: w.start):
            if d.weekday() in w.days:
                s = _at_local(d, w.start, z)
                if s > t and _in_window(g, _local(s, z)):
                    return s
    return None


def _r_window(c: _Ctx, t: float) -> RuleResult:
    outside, nxt = [], None
    for lv in c.at(t):
        loc = lv.dt
        if not _in_window(c.g, loc):
            outside.append(f"{WEEKDAYS[loc.weekday()]} {loc.hour:02d}:{loc.minute:02d} in {lv.name}")
            s = _next_window_start(c.g, t, lv.zone)
            if s is None:
                return False, "no call window in the profile", None
            nxt = s if nxt is None else max(nxt, s)
    if outside:
        return False, "outside the call window: " + ", ".join(outside), nxt
    return True, "inside the call window in every candidate zone", t


def _day_cap(c: _Ctx, t: float, times: list[float], cap: int | None, what: str) -> RuleResult:
    if cap is None:
        return True, f"no {what} cap in this profile", t
    worst, seen = None, 0
    for lv in c.at(t):
        lo, hi = lv.day_lo, lv.day_hi
        n = _count_in(times, lo, hi)
        seen = max(seen, n)
        if n >= cap:
            worst = hi if worst is None else max(worst, hi)
    if worst is not None:
        return False, f"{seen} {what} today (local day) >= cap {cap}", worst
    return True, f"{seen} {what} today < cap {cap}", t


def _r_daily(c: _Ctx, t: float) -> RuleResult:
    if c.a.third_party:
        return True, "contact call: the debtor's daily cap does not apply", t
    what = "connected calls" if c.g.count == "connected" else "attempts to the debtor"
    return _day_cap(c, t, c.daily, c.g.daily_attempts, what)


def _r_number_daily(c: _Ctx, t: float) -> RuleResult:
    return _day_cap(c, t, c.number, c.g.number_daily_attempts, "attempts to this number")


def _r_7in7(c: _Ctx, t: float) -> RuleResult:
    cap = c.g.rolling_7day
    if cap is None or c.a.third_party:
        return True, "no 7-in-7 cap applies", t
    inside = [x for x in c.c7 if t - 7 * DAY < x]  # later than the clock: counted (it cannot be turned back)
    if len(inside) >= cap:
        k = len(inside) - cap  # the (k+1)-th oldest must age out
        return False, f"{len(inside)} counted calls in the last 7 days >= cap {cap}", inside[k] + 7 * DAY
    return True, f"{len(inside)} counted calls in the last 7 days < cap {cap}", t


def _r_conv7(c: _Ctx, t: float) -> RuleResult:
    days = c.g.conversation_quiet_days
    if not days or c.a.third_party:
        return True, "no post-conversation quiet period applies", t
    recent = [x for x in c.conv if t < x + days * DAY]  # a conversation later than the clock counts too
    if recent:
        last = max(recent)
        return False, f"telephone conversation about the debt at {_fmt_t(last)}: quiet for {days:g} days", last + days * DAY
    return True, f"no counted conversation in the last {days:g} days", t


def _r_gap(c: _Ctx, t: float) -> RuleResult:
    gap = c.g.min_gap_minutes * 60
    if gap <= 0:
        return True, "no minimum gap", t
    recent = [x for x in c.gap if t < x + gap]  # an attempt later than the clock is the latest one
    if recent:
        last = max(recent)
        return False, f"last attempt at {_fmt_t(last)}: minimum gap {c.g.min_gap_minutes:g} min", last + gap
    return True, f"no attempt in the last {c.g.min_gap_minutes:g} min", t


def _r_lock72(c: _Ctx, t: float) -> RuleResult:
    lock = c.g.abandoned_lockout
    if lock is None:
        return True, "no abandoned-call lockout in this profile", t
    if c.a.agent_guaranteed:
        return True, "agent guaranteed: abandoned-call lockout lifted", t
    span = lock.hours * 3600
    recent = [x for x in c.abandoned if t < x + span]
    if recent:
        last = max(recent)
        return False, f"abandoned call at {_fmt_t(last)}: no redial for {lock.hours:g} h without a guaranteed agent", last + span
    return True, f"no abandoned call to this {lock.scope} in the last {lock.hours:g} h", t


def _r_machine(c: _Ctx, t: float) -> RuleResult:
    if not c.g.machine_same_day:
        return True, "no same-day machine rule in this profile", t
    if c.a.agent_guaranteed:
        return True, "agent guaranteed: same-day machine redial allowed", t
    worst = None
    for lv in c.at(t):
        lo, hi = lv.day_lo, lv.day_hi
        if _count_in(c.machine, lo, hi):
            worst = hi if worst is None else max(worst, hi)
    if worst is not None:
        return False, "an answering machine took a call to this number today (local day)", worst
    return True, "no answering machine on this number today", t


_RULES = (
    ("cease", _r_cease),
    ("dnc", _r_dnc),
    *((rid, _suppression_rule(name)) for name, rid in SUPPRESSION_LISTS.items() if name != "dnc"),
    ("account.paid_in_full", _r_paid),
    ("contact.third_party", _r_third_party),
    ("request.inconvenient", _r_inconvenient),
    ("time.holiday", _r_holiday),
    ("time.window", _r_window),
    ("cap.daily", _r_daily),
    ("cap.number_daily", _r_number_daily),
    ("cap.7in7", _r_7in7),
    ("conv.7day", _r_conv7),
    ("gap.min", _r_gap),
    ("lockout.72h", _r_lock72),
    ("lockout.machine_same_day", _r_machine),
)


def _as_profile(rules: Profile | Rules | GateRules, campaign: str | None) -> GateRules:
    if isinstance(rules, GateRules):
        return rules
    if isinstance(rules, Rules):
        rules = rules.profile_for(None, campaign)
    return rules.gate


def _utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc)


def decide(attempt: Attempt, history: History, rules: Profile | Rules | GateRules, now: datetime) -> Decision:
    """May `attempt` be dialled at `now`? Every rule is evaluated and reported in `checks`."""
    if now.tzinfo is None:
        raise ValueError("decide() needs an aware datetime")
    g = _as_profile(rules, attempt.campaign)
    ctx = _Ctx(attempt, history, g)
    t0 = now.timestamp()
    results = [(rid, fn(ctx, t0)) for rid, fn in _RULES]
    checks = tuple(Check(rid, True, why, now) if ok else Check(rid, False, why, _utc(nxt))
                   for rid, (ok, why, nxt) in results)
    failing = [(rid, why, nxt) for rid, (ok, why, nxt) in results if not ok]
    if not failing:
        return Decision(True, None, "every rule passes", now, checks, ctx.zone_names, now, attempt.phone)
    rule_id, why, _ = failing[0]
    nxt = _search_next(ctx, t0, [n for _, _, n in failing])
    return Decision(False, rule_id, why, _utc(nxt), checks, ctx.zone_names, now, attempt.phone)


def _search_next(ctx: _Ctx, t0: float, first: list[float | None]) -> float | None:
    """Earliest t > t0 at which every rule passes. Each failing rule's own next time is a lower bound
    for all rules passing, so jump to it and re-check from the top; stop when every rule passes."""
    if any(n is None for n in first):
        return None
    t = max(n for n in first if n is not None)
    limit = t0 + HORIZON_DAYS * DAY
    for _ in range(5000):
        if t > limit:
            return None
        for _, fn in _RULES:
            ok, _, nxt = fn(ctx, t)
            if not ok:
                if nxt is None:
                    return None
                t = max(nxt, t + 1e-6)
                break
        else:
            return t
    return None
