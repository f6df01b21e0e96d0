"""Structured, privacy-safe logging: key=value lines, one event per line, phone numbers and IDs masked."""
from __future__ import annotations

import logging
import re
import time
import unicodedata
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


def escape(text: str) -> str:
    """A value from the network made safe for one log line: control characters (CR, LF, NUL, ESC…),
    bidi and other invisible format characters, and line separators become visible escapes."""
    out = []
    for c in text:
        if c == "\\":
            out.append("\\\\")
        elif unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            o = ord(c)
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
        else:
            out.append(c)
    return "".join(out)


def _fmt(value: Any) -> str:
    s = escape(str(value))
    if s == "" or any(c in s for c in ' ="'):
        return '"' + s.replace('"', '\\"') + '"'
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


class RateLimited:
    """Logs the first `burst` events of a kind in each `period` seconds one by one, then a summary line
    (`<event>.suppressed count=N`) when the period ends, so a flood cannot fill the disk."""

    def __init__(self, logger: logging.Logger, burst: int = 5, period: float = 60.0, clock=time.monotonic):
        self.logger, self.burst, self.period, self.clock = logger, burst, period, clock
        self._window: dict[str, tuple[float, int]] = {}

    def log(self, event: str, level: int = logging.WARNING, **fields: Any) -> None:
        now = self.clock()
        start, count = self._window.get(event, (now, 0))
        if now - start >= self.period:
            if count > self.burst:
                log_event(self.logger, f"{event}.suppressed", level, count=count - self.burst,
                          seconds=round(now - start, 1))
            start, count = now, 0
        count += 1
        self._window[event] = (start, count)
        if count <= self.burst:
            log_event(self.logger, event, level, **fields)

    def flush(self) -> None:
        """The summary of what is still held back (at shutdown)."""
        now = self.clock()
        for event, (start, count) in self._window.items():
            if count > self.burst:
                log_event(self.logger, f"{event}.suppressed", logging.WARNING, count=count - self.burst,
                          seconds=round(now - start, 1))
        self._window.clear()


class JsonLines(logging.Formatter):
    """One JSON object per line for a log file: time (UTC, ISO), level, logger, the event's name and the
    whole masked line. Free text from libraries (panoramisk, asyncio) is scrubbed of phone numbers too."""

    def format(self, record: logging.LogRecord) -> str:
        import json
        from datetime import datetime, timezone

        msg = scrub(escape(record.getMessage()))
        out = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname.lower(), "logger": record.name, "event": msg.split(" ", 1)[0], "msg": msg}
        server = getattr(record, "server", None)
        if server:
            out["server"] = server
        if record.exc_info:
            out["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


class ServerTag(logging.Filter):
    """Stamps every record with the dialer server's id (`record.server`): the log file's JSON carries it as
    "server", and a formatter can show it as %(server)s (several servers logging to one place)."""

    def __init__(self, server: str):
        super().__init__()
        self.server = server

    def filter(self, record: logging.LogRecord) -> bool:
        record.server = self.server
        return True


def file_handler(path: str, max_bytes: int = 10 * 1024 * 1024, backups: int = 5) -> logging.Handler:
    """A rotating JSON-lines log file, created and rotated readable by the owner only (0600)."""
    import logging.handlers
    import os

    class _Private(logging.handlers.RotatingFileHandler):
        def _open(self):
            fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.chmod(self.baseFilename, 0o600)
            return os.fdopen(fd, self.mode.replace("w", "a") if "b" not in self.mode else self.mode,
                             encoding=self.encoding)

    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
    h = _Private(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    h.setFormatter(JsonLines())
    return h
