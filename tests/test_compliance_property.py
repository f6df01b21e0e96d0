"""Property tests: `decide` against an independent brute-force checker.

The checker below shares no code with dialer/gate/ beyond the rules dataclasses: it finds
the debtor's zones with phonenumbers itself, converts every attempt to each zone's local date and
counts directly, and checks window/holiday/inconvenient hours per minute of the local clock.
500 generated debtors x 20 random clocks = 10,000 cases per run for the main property.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import phonenumbers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from phonenumbers import timezone as pntz

from dialer.gate.decide import Attempt, History, Inconvenient, PastAttempt, decide
from dialer.gate.rules import GateRules, load_rules

RULES = load_rules(Path(__file__).resolve().parents[1] / "compliance_rules.yaml")
PROFILES = {p: RULES.profile_for(p) for p in ("cn", "us", "uk")}
PHONES = {
    "cn": ["+8613800138000", "+8613900139000"],
    "us": ["+12125551234", "+12085551234", "+16055551234", "+13105551234", "+18085551234"],
    "uk": ["+442071234567", "+447700900123"],
}
ZONES = ["Asia/Shanghai", "Asia/Urumqi", "America/New_York", "America/Chicago", "America/Denver",
         "America/Los_Angeles", "America/Boise", "Pacific/Honolulu", "Europe/London", "Europe/Paris"]
DAY = 86400.0
DST_EDGES = [datetime(2026, 3, 8, 7, tzinfo=timezone.utc), datetime(2026, 11, 1, 6, tzinfo=timezone.utc),
             datetime(2026, 3, 29, 1, tzinfo=timezone.utc), datetime(2026, 10, 25, 1, tzinfo=timezone.utc)]
CASES = {"n": 0}


# ---------------------------------------------------------------- the independent checker
def oracle_zones(phone: str, record: str | None, fallback: tuple[str, ...]) -> list[str]:
    zs = [record] if record else []
    for z in pntz.time_zones_for_number(phonenumbers.parse(phone)):
        if z != "Etc/Unknown" and z not in zs:
            zs.append(z)
    return zs or list(fallback)


@lru_cache(maxsize=None)
def oracle_holidays(cal: str, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(cal, years=year).keys())


def local_date(ts: float, zone: str) -> date:
    return datetime.fromtimestamp(ts, ZoneInfo(zone)).date()


def oracle_violations(a: Attempt, h: History, g: GateRules, t: float) -> set[str]:
    bad: set[str] = set()
    if h.cease:
        bad.add("cease")
    if a.phone in h.dnc:
        bad.add("dnc")
    # an attempt later than the clock counts as the latest one (the clock cannot be turned back)
    outbound = [p for p in h.attempts if not p.inbound]
    for zone in oracle_zones(a.phone, h.timezone, g.fallback_zones):
        now = datetime.fromtimestamp(t, ZoneInfo(zone))
        minute, wd, today = now.hour * 60 + now.minute, now.weekday(), now.date()
        if not any(wd in w.days and w.start <= minute < w.end for w in g.windows):
            bad.add("time.window")
        hol = g.holidays
        if today in hol.blackout_dates or (hol.observe and hol.calendar and today in oracle_holidays(hol.calendar, today.year)):
            bad.add("time.holiday")
        for r in h.inconvenient:
            if (r.phone is None or r.phone == a.phone) and (r.start is None or (wd in r.days and r.start <= minute < r.end)):
                bad.add("request.inconvenient")
        same_day = [p for p in outbound if local_date(p.placed_at, zone) == today]
        counted = [p for p in same_day if not p.third_party and (
            g.count == "attempts" or p.outcome is None or p.answered_at is not None or p.conversation
            or p.outcome in ("answered", "callee_hangup", "abandoned", "machine"))]
        if g.daily_attempts is not None and len(counted) >= g.daily_attempts:
            bad.add("cap.daily")
        if g.number_daily_attempts is not None and sum(p.phone == a.phone for p in same_day) >= g.number_daily_attempts:
            bad.add("cap.number_daily")
        if g.machine_same_day and not a.agent_guaranteed and any(p.machine and p.phone == a.phone for p in same_day):
            bad.add("lockout.machine_same_day")

    def excluded(p: PastAttempt) -> bool:
        return (p.inbound and g.exclusions.inbound) or any(
            c <= p.placed_at < c + g.exclusions.consent_days * DAY for c in h.consents)

    mine = [p for p in h.attempts if not p.third_party and not excluded(p)
            and (a.account_id is None or p.account_id in (None, a.account_id))]
    if g.rolling_7day is not None and sum(1 for p in mine if not p.inbound and p.placed_at > t - 7 * DAY) >= g.rolling_7day:
        bad.add("cap.7in7")
    if g.conversation_quiet_days:
        for p in mine:
            end = max(p.placed_at, p.answered_at or 0, p.ended_at or 0)
            if p.conversation and t < end + g.conversation_quiet_days * DAY:
                bad.add("conv.7day")
    if any(p.third_party == a.third_party and t < p.placed_at + g.min_gap_minutes * 60 for p in outbound):
        bad.add("gap.min")
    lock = g.abandoned_lockout
    if lock and not a.agent_guaranteed:
        for p in outbound:
            end = max(p.placed_at, p.answered_at or 0, p.ended_at or 0)
            if p.abandoned and (lock.scope == "debtor" or p.phone == a.phone) and t < end + lock.hours * 3600:
                bad.add("lockout.72h")
    return bad


# ---------------------------------------------------------------- generators
@st.composite
def debtors(draw):
    name = draw(st.sampled_from(sorted(PROFILES)))
    prof = PROFILES[name]
    g = prof.gate
    g = replace(g, daily_attempts=draw(st.sampled_from([None, 1, 2, 3, 4])),
                number_daily_attempts=draw(st.sampled_from([None, 1, 2, 6])),
                min_gap_minutes=draw(st.sampled_from([0, 15, 30, 90])),
                count=draw(st.sampled_from(["attempts", "connected"])),
                rolling_7day=draw(st.sampled_from([None, 2, 7])) if name == "us" else g.rolling_7day)
    phones = PHONES[name]
    record = draw(st.one_of(st.none(), st.sampled_from(ZONES)))
    base = draw(st.one_of(
        st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 28), timezones=st.just(timezone.utc)),
        st.sampled_from(DST_EDGES).flatmap(lambda e: st.integers(-36 * 3600, 36 * 3600).map(lambda s: e + timedelta(seconds=s)))))
    base_ts = float(int(base.timestamp()))
    n = draw(st.integers(0, 12))
    attempts = []
    for _ in range(n):
        age = draw(st.floats(0, 9 * DAY, allow_nan=False))
        outcome = draw(st.sampled_from([None, "no_answer", "busy", "answered", "machine", "abandoned"]))
        placed = float(int(base_ts - age))
        answered = placed + 8 if outcome in ("answered", "abandoned", "machine") else None
        attempts.append(PastAttempt(
            placed_at=placed, phone=draw(st.sampled_from(phones)), account_id=draw(st.sampled_from([None, "A", "B"])),
            inbound=draw(st.booleans()) and draw(st.booleans()), outcome=outcome,
            conversation=outcome == "answered" and draw(st.booleans()), abandoned=outcome == "abandoned",
            machine=outcome == "machine", answered_at=answered, ended_at=answered + 60 if answered else None))
    incon = ()
    if draw(st.integers(0, 4)) == 0:
        s = draw(st.integers(0, 22)) * 60
        incon = (Inconvenient(frozenset(draw(st.sets(st.integers(0, 6), min_size=1))), s, s + draw(st.integers(1, 8)) * 60),)
    h = History("d", timezone=record, attempts=tuple(sorted(attempts, key=lambda p: p.placed_at)),
                cease=draw(st.integers(0, 30)) == 0,
                dnc=frozenset({phones[0]}) if draw(st.integers(0, 20)) == 0 else frozenset(),
                inconvenient=incon, consents=(base_ts - draw(st.floats(0, 8 * DAY)),) if draw(st.booleans()) else (),
                phones=tuple(phones))
    a = Attempt("d", draw(st.sampled_from(phones)), draw(st.sampled_from([None, "A"])),
                agent_guaranteed=draw(st.integers(0, 5)) == 0)
    clocks = draw(st.lists(st.integers(0, 3 * 86400), min_size=20, max_size=20))
    return a, h, replace(prof, gate=g), [base_ts + c for c in clocks]


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(debtors())
def test_decide_agrees_with_brute_force_checker(case):
    a, h, prof, clocks = case
    for t in clocks:
        CASES["n"] += 1
        d = decide(a, h, prof, utc(t))
        bad = oracle_violations(a, h, prof.gate, t)
        failing = {c.rule_id for c in d.checks if not c.passed}
        # Never allows what the checker forbids; blocks exactly for the checker's reasons.
        assert d.allowed == (not bad), (d.reason, bad)
        assert failing == bad, (failing, bad)
        if not d.allowed:
            assert d.rule_id in bad
            if d.next_allowed_at is not None:
                nxt = d.next_allowed_at.timestamp()
                assert nxt > t
                assert oracle_violations(a, h, prof.gate, nxt) == set(), (d.rule_id, utc(t), d.next_allowed_at)
                assert decide(a, h, prof, d.next_allowed_at).allowed
            elif not bad & {"cease", "dnc", "request.inconvenient"}:
                # No allowed time within the search horizon: the candidate zones' windows never
                # overlap (e.g. record zone New York, number in Shanghai). Check a week, every 10 min.
                assert all(oracle_violations(a, h, prof.gate, t + k * 600) for k in range(7 * 144))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(debtors())
def test_next_allowed_time_is_the_earliest_minute(case):
    """Minute by minute from now to next_allowed_at, the checker finds no earlier allowed minute."""
    a, h, prof, clocks = case
    t = clocks[0]
    d = decide(a, h, prof, utc(t))
    if d.allowed or d.next_allowed_at is None:
        return
    nxt = d.next_allowed_at.timestamp()
    m = (t // 60 + 1) * 60
    stop = min(nxt - 60, t + 4 * DAY)
    while m < stop:
        assert oracle_violations(a, h, prof.gate, m), f"allowed at {utc(m)} but next_allowed_at={d.next_allowed_at}"
        m += 60


def test_enough_cases_were_generated():
    # Runs after the property above in file order; 500 examples x 20 clocks.
    assert CASES["n"] >= 10_000 or CASES["n"] == 0
