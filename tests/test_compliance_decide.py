"""decide(): one test per rule id, multi-zone numbers, DST days, record zone vs number zone."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from dialer.gate.decide import Attempt, History, Inconvenient, PastAttempt, decide
from dialer.gate.rules import load_rules
from dialer.gate.zones import candidate_zones

RULES = load_rules(Path(__file__).resolve().parents[1] / "compliance_rules.yaml")
CN, US, UK = (RULES.profile_for(p) for p in ("cn", "us", "uk"))
CN_MOBILE = "+8613800138000"
NYC = "+12125551234"
IDAHO = "+12085551234"  # area code 208: America/Boise and America/Los_Angeles
LONDON = "+442071234567"


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def ts(iso: str) -> float:
    return at(iso).timestamp()


def past(iso: str, phone: str = CN_MOBILE, **kw) -> PastAttempt:
    return PastAttempt(placed_at=ts(iso), phone=phone, outcome=kw.pop("outcome", "no_answer"), **kw)


def check(d, rule_id):
    return next(c for c in d.checks if c.rule_id == rule_id)


def test_every_rule_id_reported_in_checks():
    d = decide(Attempt("d", CN_MOBILE), History("d"), CN, at("2026-11-23T10:00:00+08:00"))
    assert d.allowed and d.rule_id is None
    assert [c.rule_id for c in d.checks] == [
        "cease", "dnc", "suppress.attorney", "suppress.bankruptcy", "suppress.deceased", "suppress.complaint_hold",
        "suppress.dispute", "complaint.harassment_hold", "account.paid_in_full", "contact.third_party",
        "request.inconvenient", "time.holiday", "time.window",
        "cap.daily", "cap.number_daily", "cap.7in7", "conv.7day", "gap.min", "lockout.72h",
        "lockout.machine_same_day"]


@pytest.mark.parametrize("local,allowed", [("07:59:59", False), ("08:00:00", True), ("20:59:59", True),
                                           ("21:00:00", False), ("23:30:00", False), ("03:00:00", False)])
def test_cn_window_edges(local, allowed):
    d = decide(Attempt("d", CN_MOBILE), History("d"), CN, at(f"2026-11-23T{local}+08:00"))
    assert d.allowed is allowed
    if not allowed:
        assert d.rule_id == "time.window"
        assert d.next_allowed_at.astimezone(timezone.utc).strftime("%H:%M") == "00:00"  # 08:00 Beijing


def test_number_spanning_two_zones_must_be_inside_both():
    # 08:30 in Boise is 07:30 in Los Angeles: blocked until 08:00 Pacific.
    d = decide(Attempt("d", IDAHO), History("d"), US, at("2026-11-23T08:30:00-07:00"))
    assert set(d.zones) == {"America/Boise", "America/Los_Angeles"}
    assert not d.allowed and d.rule_id == "time.window"
    assert d.next_allowed_at == at("2026-11-23T08:00:00-08:00")
    # 20:30 Pacific is 21:30 Mountain: blocked; 19:59 Pacific is fine.
    assert decide(Attempt("d", IDAHO), History("d"), US, at("2026-11-23T20:30:00-08:00")).rule_id == "time.window"
    assert decide(Attempt("d", IDAHO), History("d"), US, at("2026-11-23T19:59:00-08:00")).allowed


def test_record_zone_disagreeing_with_number_adds_a_zone():
    h = History("d", timezone="America/Los_Angeles")
    assert candidate_zones(NYC, "America/Los_Angeles", ()) == ("America/Los_Angeles", "America/New_York")
    # 09:00 New York = 06:00 Los Angeles: the record zone blocks.
    d = decide(Attempt("d", NYC), h, US, at("2026-11-23T09:00:00-05:00"))
    assert d.rule_id == "time.window" and "America/Los_Angeles" in d.reason
    assert d.next_allowed_at == at("2026-11-23T08:00:00-08:00")
    # 21:30 New York = 18:30 LA: the number's zone blocks.
    assert decide(Attempt("d", NYC), h, US, at("2026-11-23T21:30:00-05:00")).rule_id == "time.window"


def test_unknown_number_zone_uses_fallback_zones():
    # A UK mobile maps to no zone: uk's fallback Europe/London.
    assert candidate_zones("+447700900123", None, UK.gate.fallback_zones) == ("Europe/London",)


def test_dst_spring_forward_new_york():
    # 2026-03-08 02:00 EST -> 03:00 EDT. 07:30 EDT is blocked, opening is 08:00 EDT = 12:00Z.
    d = decide(Attempt("d", NYC), History("d"), US, at("2026-03-08T07:30:00-04:00"))
    assert d.rule_id == "time.window"
    assert d.next_allowed_at == at("2026-03-08T12:00:00+00:00")
    # 13:00Z is 09:00 EDT after the change (08:00 in EST terms would be wrong).
    assert decide(Attempt("d", NYC), History("d"), US, at("2026-03-08T12:30:00+00:00")).allowed
    # Before the change, 12:30Z on 7 March is 07:30 EST: blocked.
    assert not decide(Attempt("d", NYC), History("d"), US, at("2026-03-07T12:30:00+00:00")).allowed


def test_dst_fall_back_new_york():
    # 2026-11-01 02:00 EDT -> 01:00 EST. 21:00 EST is 02:00Z on 2 Nov; 08:00 EST is 13:00Z.
    assert not decide(Attempt("d", NYC), History("d"), US, at("2026-11-01T12:30:00+00:00")).allowed
    assert decide(Attempt("d", NYC), History("d"), US, at("2026-11-01T13:00:00+00:00")).allowed
    d = decide(Attempt("d", NYC), History("d"), US, at("2026-11-02T02:00:00+00:00"))
    assert d.rule_id == "time.window"
    assert d.next_allowed_at == at("2026-11-02T08:00:00-05:00")


def test_daily_cap_counts_the_debtors_local_day_and_rolls_over_at_local_midnight():
    prof = replace(CN, gate=replace(CN.gate, min_gap_minutes=0))
    h = History("d", attempts=(past("2026-11-23T08:05:00+08:00"), past("2026-11-23T09:00:00+08:00"),
                               past("2026-11-23T10:00:00+08:00", phone="+8613900139000")))
    d = decide(Attempt("d", CN_MOBILE), h, prof, at("2026-11-23T11:00:00+08:00"))
    assert d.rule_id == "cap.daily"
    assert d.next_allowed_at == at("2026-11-24T08:00:00+08:00")  # midnight, then the window opens
    # Yesterday's attempts (Beijing day) do not count today, even though same UTC day.
    h2 = History("d", attempts=tuple(past(f"2026-11-22T2{i}:00:00+08:00") for i in range(3)))
    assert decide(Attempt("d", CN_MOBILE), h2, prof, at("2026-11-23T08:00:00+08:00")).allowed


def test_connected_counting_ignores_unanswered_but_counts_in_flight():
    prof = replace(CN, gate=replace(CN.gate, min_gap_minutes=0, count="connected"))
    unanswered = tuple(past(f"2026-11-23T{8 + i:02d}:00:00+08:00") for i in range(3))
    assert decide(Attempt("d", CN_MOBILE), History("d", attempts=unanswered), prof, at("2026-11-23T12:00:00+08:00")).allowed
    flying = unanswered[:2] + (PastAttempt(ts("2026-11-23T11:00:00+08:00"), CN_MOBILE, outcome=None),) + tuple(
        replace(p, outcome="answered", answered_at=p.placed_at + 5) for p in unanswered[:2])
    assert decide(Attempt("d", CN_MOBILE), History("d", attempts=flying), prof,
                  at("2026-11-23T12:00:00+08:00")).rule_id == "cap.daily"


def test_number_daily_cap():
    prof = replace(CN, gate=replace(CN.gate, min_gap_minutes=0, daily_attempts=None, number_daily_attempts=2))
    h = History("d", attempts=(past("2026-11-23T08:05:00+08:00"), past("2026-11-23T09:00:00+08:00")))
    assert decide(Attempt("d", CN_MOBILE), h, prof, at("2026-11-23T11:00:00+08:00")).rule_id == "cap.number_daily"
    assert decide(Attempt("d", "+8613900139000"), h, prof, at("2026-11-23T11:00:00+08:00")).allowed


def test_us_7in7_and_its_expiry():
    prof = replace(US, gate=replace(US.gate, daily_attempts=None, number_daily_attempts=None, min_gap_minutes=0))
    days = [f"2026-11-{16 + i}T10:00:00-05:00" for i in range(7)]
    h = History("d", attempts=tuple(past(x, phone=NYC, account_id="A1") for x in days))
    d = decide(Attempt("d", NYC, account_id="A1"), h, prof, at("2026-11-22T15:00:00-05:00"))
    assert d.rule_id == "cap.7in7"
    assert d.next_allowed_at == at("2026-11-23T10:00:00-05:00")  # the oldest ages out
    # Another account of the same debtor is counted separately.
    assert decide(Attempt("d", NYC, account_id="B2"), replace(h, attempts=tuple(
        replace(p, account_id="A1") for p in h.attempts)), prof, at("2026-11-22T15:00:00-05:00")).allowed


def test_us_exclusions_inbound_and_consent_do_not_count():
    prof = replace(US, gate=replace(US.gate, daily_attempts=None, number_daily_attempts=None, min_gap_minutes=0))
    days = [f"2026-11-{16 + i}T10:00:00-05:00" for i in range(7)]
    inbound = History("d", attempts=tuple(past(x, phone=NYC, inbound=True) for x in days))
    assert decide(Attempt("d", NYC), inbound, prof, at("2026-11-22T15:00:00-05:00")).allowed
    consent = History("d", attempts=tuple(past(x, phone=NYC) for x in days), consents=(ts("2026-11-15T09:00:00-05:00"),))
    assert decide(Attempt("d", NYC), consent, prof, at("2026-11-22T15:00:00-05:00")).allowed
    assert decide(Attempt("d", NYC), replace(consent, consents=()), prof,
                  at("2026-11-22T15:00:00-05:00")).rule_id == "cap.7in7"


def test_us_conversation_quiet_seven_days():
    h = History("d", attempts=(past("2026-11-20T10:00:00-05:00", phone=NYC, outcome="answered", conversation=True,
                                    answered_at=ts("2026-11-20T10:00:05-05:00"), ended_at=ts("2026-11-20T10:05:00-05:00")),))
    d = decide(Attempt("d", NYC), h, US, at("2026-11-24T10:00:00-05:00"))
    assert d.rule_id == "conv.7day"
    assert d.next_allowed_at == at("2026-11-27T10:05:00-05:00")
    inbound = replace(h, attempts=(replace(h.attempts[0], inbound=True),))
    assert decide(Attempt("d", NYC), inbound, US, at("2026-11-24T10:00:00-05:00")).allowed


def test_min_gap():
    h = History("d", attempts=(past("2026-11-23T10:00:00+08:00"),))
    d = decide(Attempt("d", CN_MOBILE), h, CN, at("2026-11-23T10:10:00+08:00"))
    assert d.rule_id == "gap.min" and d.next_allowed_at == at("2026-11-23T10:30:00+08:00")


def test_uk_72h_lockout_after_abandoned_call():
    h = History("d", attempts=(past("2026-11-23T10:00:00+00:00", phone=LONDON, outcome="abandoned", abandoned=True,
                                    answered_at=ts("2026-11-23T10:00:10+00:00"), ended_at=ts("2026-11-23T10:00:20+00:00")),))
    d = decide(Attempt("d", LONDON), h, UK, at("2026-11-25T12:00:00+00:00"))
    assert d.rule_id == "lockout.72h"
    assert d.next_allowed_at == at("2026-11-26T10:00:20+00:00")
    assert decide(Attempt("d", LONDON, agent_guaranteed=True), h, UK, at("2026-11-25T12:00:00+00:00")).allowed
    assert decide(Attempt("d", "+442079460000"), h, UK, at("2026-11-25T12:00:00+00:00")).allowed  # scope: number


def test_uk_machine_same_day():
    h = History("d", attempts=(past("2026-11-23T10:00:00+00:00", phone=LONDON, outcome="machine", machine=True),))
    d = decide(Attempt("d", LONDON), h, UK, at("2026-11-23T15:00:00+00:00"))
    assert d.rule_id == "lockout.machine_same_day"
    assert d.next_allowed_at == at("2026-11-24T08:00:00+00:00")


def test_cease_and_dnc_are_not_cleared_by_waiting():
    d = decide(Attempt("d", CN_MOBILE), History("d", cease=True), CN, at("2026-11-23T10:00:00+08:00"))
    assert (d.allowed, d.rule_id, d.next_allowed_at) == (False, "cease", None)
    d = decide(Attempt("d", CN_MOBILE), History("d", dnc=frozenset({CN_MOBILE})), CN, at("2026-11-23T10:00:00+08:00"))
    assert (d.allowed, d.rule_id, d.next_allowed_at) == (False, "dnc", None)


def test_inconvenient_hours_at_work():
    work = Inconvenient.from_spec({"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00",
                                   "label": "at work"})
    h = History("d", inconvenient=(work,))
    d = decide(Attempt("d", CN_MOBILE), h, CN, at("2026-11-23T10:00:00+08:00"))  # Monday
    assert d.rule_id == "request.inconvenient" and "at work" in d.reason
    assert d.next_allowed_at == at("2026-11-23T17:00:00+08:00")
    assert decide(Attempt("d", CN_MOBILE), h, CN, at("2026-11-28T10:00:00+08:00")).allowed  # Saturday
    never_work_phone = Inconvenient.from_spec({"phone": "+8613900139000", "label": "work phone"})
    h2 = History("d", inconvenient=(never_work_phone,))
    assert decide(Attempt("d", "+8613900139000"), h2, CN, at("2026-11-28T10:00:00+08:00")).next_allowed_at is None
    assert decide(Attempt("d", CN_MOBILE), h2, CN, at("2026-11-28T10:00:00+08:00")).allowed
    with pytest.raises(ValueError, match="25:00"):
        Inconvenient.from_spec({"start": "25:00", "end": "26:00"})


def test_holidays_and_blackout_dates():
    d = decide(Attempt("d", CN_MOBILE), History("d"), CN, at("2026-10-01T10:00:00+08:00"))
    assert d.rule_id == "time.holiday" and "National Day" in d.reason
    assert d.next_allowed_at is not None and d.next_allowed_at >= at("2026-10-04T00:00:00+08:00")
    assert decide(Attempt("d", CN_MOBILE), History("d"), CN, d.next_allowed_at).allowed
    us = replace(US, gate=replace(US.gate, holidays=replace(US.gate.holidays, blackout_dates=frozenset(
        {datetime(2026, 12, 24).date()}))))
    assert decide(Attempt("d", NYC), History("d"), us, at("2026-12-24T10:00:00-05:00")).rule_id == "time.holiday"


def test_third_party_only_when_debtor_unreachable():
    contact = "+8613700137000"
    a = Attempt("d", contact, third_party=True)
    h = History("d", phones=(CN_MOBILE,), attempts=(past("2026-11-22T10:00:00+08:00"),))
    d = decide(a, h, CN, at("2026-11-23T10:00:00+08:00"))
    assert d.rule_id == "contact.third_party" and d.next_allowed_at is None
    failed = History("d", phones=(CN_MOBILE,), attempts=tuple(past(f"2026-11-2{i}T10:00:00+08:00") for i in range(3)))
    assert decide(a, failed, CN, at("2026-11-23T12:00:00+08:00")).allowed
    reached = replace(failed, attempts=failed.attempts + (past("2026-11-23T11:00:00+08:00", outcome="answered",
                                                                 answered_at=ts("2026-11-23T11:00:05+08:00")),))
    assert decide(a, reached, CN, at("2026-11-23T12:00:00+08:00")).rule_id == "contact.third_party"
    dead = History("d", phones=(CN_MOBILE,), unreachable_phones=frozenset({CN_MOBILE}))
    assert decide(a, dead, CN, at("2026-11-23T12:00:00+08:00")).allowed


def test_blocked_next_allowed_time_really_passes():
    h = History("d", attempts=tuple(past(f"2026-11-23T{h:02d}:00:00+08:00") for h in (8, 9, 10)))
    d = decide(Attempt("d", CN_MOBILE), h, CN, at("2026-11-23T20:45:00+08:00"))
    assert not d.allowed and d.next_allowed_at > at("2026-11-23T20:45:00+08:00")
    assert decide(Attempt("d", CN_MOBILE), h, CN, d.next_allowed_at).allowed


def test_no_allowed_time_within_the_horizon_blocks_without_spinning():
    # Record zone New York, number in Shanghai: in winter only 08:00-10:00 Beijing (19:00-21:00 New York)
    # is inside both windows, and the debtor asked us to avoid 08:00-10:30 every day.
    h = History("d", timezone="America/New_York", inconvenient=(Inconvenient.from_spec({"start": "08:00", "end": "10:30"}),))
    d = decide(Attempt("d", CN_MOBILE), h, CN, at("2026-11-23T12:59:00+00:00"))
    assert d.rule_id == "time.window" and d.next_allowed_at is None and not d.permanent
    assert set(d.zones) == {"America/New_York", "Asia/Shanghai"}
    assert decide(Attempt("d", CN_MOBILE), replace(h, inconvenient=()), CN,
                  at("2026-11-23T12:59:00+00:00")).next_allowed_at == at("2026-11-24T08:00:00+08:00")


def test_daily_cap_on_the_25_hour_fall_back_day():
    # 2026-11-01 in New York lasts 25 hours; attempts at 08:00 EDT and 20:30 EST are the same local day.
    prof = replace(US, gate=replace(US.gate, min_gap_minutes=0, daily_attempts=2, rolling_7day=None))
    h = History("d", attempts=(past("2026-11-01T00:30:00-04:00", phone=NYC), past("2026-11-01T20:30:00-05:00", phone=NYC)))
    d = decide(Attempt("d", NYC), h, prof, at("2026-11-01T20:45:00-05:00"))
    assert d.rule_id == "cap.daily"
    assert d.next_allowed_at == at("2026-11-02T08:00:00-05:00")


def test_caller_id_per_profile():
    from dialer.gate.rules import caller_id_for

    assert caller_id_for(UK, "+442079460000") == "+442079460000"
    with pytest.raises(ValueError, match="callable caller ID"):
        caller_id_for(UK, "anonymous")
    fixed = replace(US, abandon=replace(US.abandon, caller_id=replace(US.abandon.caller_id, policy="fixed", number="+18005550100")))
    assert caller_id_for(fixed, "+12125550199") == "+18005550100"
    assert US.abandon.min_ring_seconds == 15 and US.abandon.connect_within_seconds == 2
