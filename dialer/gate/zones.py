"""The debtor's zones and local days: which zones a number can be in, local time, holidays."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Iterable, NamedTuple
from zoneinfo import ZoneInfo

import holidays as holidays_lib
import phonenumbers
from phonenumbers import timezone as pn_timezone

from dialer.gate.rules import HolidayRules, _valid_zone


# --------------------------------------------------------------------------------------------
# Zones and local days
# --------------------------------------------------------------------------------------------
@lru_cache(maxsize=100_000)
def number_zones(phone: str) -> tuple[str, ...]:
    """Every IANA zone the phonenumbers library maps the number to ('' unknowns dropped)."""
    try:
        num = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return ()
    return tuple(z for z in pn_timezone.time_zones_for_number(num) if z and z != "Etc/Unknown" and _valid_zone(z))


def candidate_zones(phone: str, record_zone: str | None, fallback: Iterable[str]) -> tuple[str, ...]:
    """The record's zone and every zone of the number; the profile's fallback if neither gives one."""
    zones: list[str] = []
    if record_zone and _valid_zone(record_zone):
        zones.append(record_zone)
    for z in number_zones(phone):
        if z not in zones:
            zones.append(z)
    return tuple(zones) if zones else tuple(fallback)


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _local(t: float, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(t, zone)


def _at_local(d: date, minutes: int, zone: ZoneInfo) -> float:
    """Epoch of local wall time d + minutes in zone (DST gaps resolve forward, folds to the first)."""
    if minutes >= 1440:
        d, minutes = d + timedelta(days=1), minutes - 1440
    return datetime(d.year, d.month, d.day, minutes // 60, minutes % 60, tzinfo=zone).timestamp()


@lru_cache(maxsize=65536)
def _date_bounds(zone_name: str, d: date) -> tuple[float, float]:
    zone = _zone(zone_name)
    return _at_local(d, 0, zone), _at_local(d + timedelta(days=1), 0, zone)


class _Local(NamedTuple):
    """One candidate zone seen at one instant."""

    name: str
    zone: ZoneInfo
    dt: datetime  # local wall time
    day_lo: float  # local day [lo, hi) as epochs
    day_hi: float


@lru_cache(maxsize=256)
def _holiday_dates(calendar: str, subdiv: str | None, year: int) -> dict[date, str]:
    return dict(holidays_lib.country_holidays(calendar, subdiv=subdiv, years=year).items())


def holiday_name(rules: HolidayRules, d: date) -> str | None:
    if d in rules.blackout_dates:
        return "blackout date"
    if rules.observe and rules.calendar:
        return _holiday_dates(rules.calendar, rules.subdiv, d.year).get(d)
    return None


def local_time(t: float, phone: str, record_zone: str | None) -> datetime:
    """`t` in the debtor's zone: the record's, else the number's first, else UTC."""
    zones = candidate_zones(phone, record_zone, ())
    return datetime.fromtimestamp(t, _zone(zones[0]) if zones else timezone.utc)


def local_date(t: float, phone: str, record_zone: str | None) -> date:
    """The debtor's calendar date at `t` (a promise "today" is the debtor's today)."""
    return local_time(t, phone, record_zone).date()
