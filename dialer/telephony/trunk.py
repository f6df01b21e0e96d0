"""A real SIP trunk's two local habits: the codec it speaks (G.711 A-law in China, the UK and most of the
world; µ-law in North America and Japan) and how it wants numbers dialled (E.164 as is, `00`+country+number,
or the national form with its trunk prefix: `0`20 7946 0000 in the UK; mobiles as 138… in China). Pure."""
from __future__ import annotations

from dataclasses import dataclass

import phonenumbers

DIAL_FORMATS = ("e164", "international", "national")
ULAW_REGIONS = frozenset({"US", "CA", "JP", "PR", "GU", "VI", "AS", "MP"})


@dataclass(frozen=True)
class DialPlan:
    """How numbers leave on the trunk. `country` is the trunk's own region (ISO 3166: CN, GB, US)."""

    format: str = "e164"
    country: str | None = None
    international_prefix: str | None = None  # default: the country's own (00 in CN/GB, 011 in US)

    def __post_init__(self) -> None:
        if self.format not in DIAL_FORMATS:
            raise ValueError(f"dial format must be one of {', '.join(DIAL_FORMATS)}, not {self.format!r}")
        if self.format != "e164" and not self.country:
            raise ValueError(f"dial format {self.format!r} needs the trunk's country (CN, GB, US, ...)")
        if self.country and self.country not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{self.country!r} is not a region code (CN, GB, US, ...)")


def codec_for(country: str | None) -> str:
    """The G.711 law a trunk in `country` speaks: ulaw in North America and Japan, alaw elsewhere;
    ulaw when no country is given (the carrier simulator)."""
    if not country:
        return "ulaw"
    return "ulaw" if country.upper() in ULAW_REGIONS else "alaw"


def _intl_prefix(country: str) -> str:
    meta = phonenumbers.PhoneMetadata.metadata_for_region(country)
    prefix = (meta.preferred_international_prefix or meta.international_prefix or "00") if meta else "00"
    return prefix if prefix.isdigit() else "00"


def dial_string(e164: str, plan: DialPlan | None) -> str:
    """The digits to put in the trunk's Request-URI for an E.164 number (as stored)."""
    if plan is None or plan.format == "e164":
        return e164
    num = phonenumbers.parse(e164, None)
    assert plan.country is not None
    domestic = phonenumbers.region_code_for_number(num) == plan.country or \
        num.country_code == phonenumbers.country_code_for_region(plan.country)
    if plan.format == "national" and domestic:
        return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.NATIONAL).replace(" ", "") \
            .replace("-", "").replace("(", "").replace(")", "")
    prefix = plan.international_prefix or _intl_prefix(plan.country)
    return f"{prefix}{num.country_code}{phonenumbers.national_significant_number(num)}"
