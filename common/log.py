"""Structured, privacy-safe logging: key=value lines, one event per line, phone numbers and IDs masked."""
from __future__ import annotations

import logging
import re
from typing import Any

_PHONE = re.compile(r"\+?\d[\d\- ]{6,}\d")


def mask_phone(number: str | None) -> str:
    """'+8613800138000' -> '+86*******8000' (keeps the country prefix and last 4)."""
    if not number:
        return ""
    s = str(number)
    digits = s.lstrip("+")
    if len(digits) <= 4:
        return "*" * len(digits)
    keep_head = 2 if s.startswith("+") else 0
    head = ("+" if s.startswith("+") else "") + digits[:keep_head]
    return head + "*" * (len(digits) - keep_head - 4) + digits[-4:]


def mask_id(value: str | None) -> str:
    """Debtor/account identifiers: keep only the last 3 characters."""
    if not value:
        return ""
    s = str(value)
    return "*" * max(len(s) - 3, 1) + s[-3:] if len(s) > 3 else "*" * len(s)


def scrub(text: str) -> str:
    """Mask anything in free text that looks like a phone number."""
    return _PHONE.sub(lambda m: mask_phone(re.sub(r"[\- ]", "", m.group(0))), text)


def _fmt(value: Any) -> str:
    s = str(value)
    if s == "" or any(c in s for c in ' ="'):
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return s


def kv(event: str, **fields: Any) -> str:
    """One log line: `event key=value ...`. Keys named phone/number/callerid are masked."""
    parts = [event]
    for key, value in fields.items():
        if value is None:
            continue
        if key in ("phone", "number", "callerid", "caller_id", "to", "from_number"):
            value = mask_phone(str(value))
        elif key in ("debtor", "debtor_id", "account", "account_id", "id_number"):
            value = mask_id(str(value))
        parts.append(f"{key}={_fmt(value)}")
    return " ".join(parts)


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, kv(event, **fields))
