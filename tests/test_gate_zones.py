"""The debtor's one zone, local time and local date (dialer.gate.zones): record first, then number, then fallback."""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from dialer.gate.zones import candidate_zone, debtor_zone, local_date, local_hour, local_time
from tests.engines import both_engines, sqlite_only  # noqa: F401

pytestmark = both_engines

NYC = "+12125550100"
SHANGHAI = "+8613800138000"
EVENING_NY = datetime(2026, 11, 20, 20, 0, tzinfo=ZoneInfo("America/New_York"))  # 01:00 UTC on the 21st


def test_local_date_is_the_debtors_today_not_the_machines():
    assert EVENING_NY.astimezone(timezone.utc).date() == date(2026, 11, 21)
    assert local_date(EVENING_NY, NYC, None) == date(2026, 11, 20)
    assert local_date(EVENING_NY.timestamp(), NYC, None) == date(2026, 11, 20)
    assert local_date(EVENING_NY, SHANGHAI, None) == date(2026, 11, 21)  # 09:00 in Shanghai


def test_record_zone_wins_then_number_then_fallback_then_utc():
    assert debtor_zone(NYC, "Asia/Shanghai") == ZoneInfo("Asia/Shanghai")
    assert debtor_zone(NYC, None) == ZoneInfo("America/New_York")
    assert debtor_zone(NYC, "Not/AZone") == ZoneInfo("America/New_York")
    assert debtor_zone("+999", None, ("Europe/London",)) == ZoneInfo("Europe/London")
    assert debtor_zone(None, None, ("Bad/Zone",)) == ZoneInfo("UTC")
    assert local_time(EVENING_NY, None, None).utcoffset().total_seconds() == 0


def test_strategy_and_calls_see_the_same_zone():
    cand = {"timezone": None, "phones": f"{NYC};{SHANGHAI}"}
    assert candidate_zone(cand, "UTC") == debtor_zone(NYC, None)
    assert local_hour(EVENING_NY.timestamp(), candidate_zone(cand, "UTC")) == 20
