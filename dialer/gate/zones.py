"""The debtor's zones and local days, in ONE place: which zones a number can be in, the one zone
used for the debtor's local time, local date and local hour, and holidays.

The gate checks every candidate zone of a dial (`candidate_zones`); everything that needs a single
"debtor's time" (a promise's "today", QA's call window, the ranking's contact hours) uses
`debtor_zone` / `local_time` / `local_date`. Pure: time comes in as an argument.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, Iterable, Mapping, NamedTuple
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


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def primary_number_zone(phone: str) -> str | None:
    """The first zone the number maps to (the gate checks all of them; a single local time needs one)."""
    zones = number_zones(phone)
    return zones[0] if zones else None


def debtor_zone(phone: str | None, record_zone: str | None, fallback: Iterable[str] = ()) -> ZoneInfo:
    """The debtor's one zone: the record's, else the number's first, else the first valid fallback, else UTC."""
    if record_zone and _valid_zone(record_zone):
        return _zone(record_zone)
    name = primary_number_zone(phone) if phone else None
    if name:
        return _zone(name)
    for name in fallback:
        if _valid_zone(name):
            return _zone(name)
    return _zone("UTC")


def local_time(at: datetime | float, phone: str | None, record_zone: str | None,
               fallback: Iterable[str] = ()) -> datetime:
    """`at` (an aware datetime or UTC epoch seconds) as wall time in the debtor's zone."""
    t = at.timestamp() if isinstance(at, datetime) else float(at)
    return datetime.fromtimestamp(t, debtor_zone(phone, record_zone, fallback))


def local_date(at: datetime | float, phone: str | None, record_zone: str | None,
               fallback: Iterable[str] = ()) -> date:
    """The debtor's calendar date at `at`: "today" for a debtor (a promise to pay today, for one)."""
    return local_time(at, phone, record_zone, fallback).date()


@lru_cache(maxsize=262144)
def local_hour(at: float, tz: ZoneInfo) -> int:
    """Hour of day at `at` (UTC epoch seconds) in zone `tz`; cached, histories are re-read on every ranking."""
    return datetime.fromtimestamp(at, tz).hour


def _field(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def candidate_zone(candidate: Any, default_tz: str) -> ZoneInfo:
    """A hopper candidate's zone (a mapping or the store's Candidate, `phones` a sequence or
    "a;b"): the record's, else the primary phone number's, else `default_tz`, else UTC."""
    phones = _field(candidate, "phones") or ()
    if isinstance(phones, str):
        phones = phones.split(";")
    phone = str(phones[0]).strip() if phones else None
    return debtor_zone(phone, _field(candidate, "timezone"), (default_tz,))


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

