"""Debtor and payment CSVs (docs/CONTRACTS.md) → validated rows; one bad cell rejects the whole file.

Row numbers count as a spreadsheet user counts them: the header is row 1, the first debtor row 2.
Every problem is collected; the error shows the first few with file, row and column.
"""
from __future__ import annotations

import csv
import difflib
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers

from dialer.campaign.config import CUSTOMER_TYPES, bucket_for

DEBTOR_COLUMNS = ("debtor_id", "name", "phones", "id_last4", "birth_year", "account_id", "amount_owed",
                  "currency", "days_past_due", "due_date", "timezone", "customer_type", "lang", "contacts")
DEBTOR_REQUIRED = ("debtor_id", "name", "phones", "account_id", "amount_owed", "days_past_due",
                   "customer_type")
PAYMENT_COLUMNS = ("account_id", "paid_at", "amount", "currency", "reference")
PAYMENT_REQUIRED = PAYMENT_COLUMNS
SUPPRESSION_COLUMNS = ("phone", "debtor_id", "account_id", "effective_date", "source", "note")
SUPPRESSION_REQUIRED = ("effective_date",)
SUPPRESSION_LIST_NAMES = ("dnc", "attorney", "bankruptcy", "deceased", "complaint_hold", "dispute")
LANGS = ("zh", "en")
MAX_DAYS_PAST_DUE = 36_500  # a hundred years; more is a data error
MAX_SHOWN = 5
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class RowError:
    file: str
    row: int | None
    column: str | None
    message: str

    def render(self) -> str:
        where = self.file
        if self.row is not None:
            where += f": row {self.row}"
        if self.column:
            where += f", column {self.column}" if self.row is not None else f": column {self.column}"
        return f"{where}: {self.message}"


class ImportRejected(ValueError):
    """A file (or rows) refused as a whole; `errors` lists every problem found."""

    def __init__(self, errors: list[RowError]):
        self.errors = errors
        shown = [e.render() for e in errors[:MAX_SHOWN]]
        more = len(errors) - MAX_SHOWN
        if more > 0:
            shown.append(f"... and {more} more error{'s' if more > 1 else ''}")
        if len(errors) == 1:
            message = "nothing imported: " + shown[0]
        else:
            message = f"nothing imported, {len(errors)} errors:\n" + "\n".join(shown)
        super().__init__(message)


@dataclass(frozen=True)
class Contact:
    name: str
    relation: str
    phone: str


@dataclass(frozen=True)
class DebtorRow:
    """One validated CSV row: a debtor and one of their accounts."""

    row: int
    debtor_id: str
    name: str
    phones: tuple[str, ...]
    account_id: str
    amount_owed: Decimal
    currency: str | None
    days_past_due: int
    bucket: str
    customer_type: str
    due_date: str | None = None
    timezone: str | None = None
    lang: str | None = None
    id_last4: str | None = None
    birth_year: int | None = None
    contacts: tuple[Contact, ...] = field(default_factory=tuple)
    file: str = "<rows>"


@dataclass(frozen=True)
class PaymentRow:
    """One payment (amount > 0), or a reversal (amount < 0, reference = the reversed payment's)."""

    row: int
    account_id: str
    paid_at: str          # ISO date or datetime as written (normalized)
    paid_date: str        # ISO date, for promise-kept checks
    amount: Decimal
    currency: str
    reference: str
    file: str = "<rows>"


@dataclass(frozen=True)
class SuppressionRow:
    """One suppression entry: exactly one of a phone, a debtor or an account, from an effective time."""

    row: int
    list: str
    key_kind: str  # phone | debtor | account
    key: str
    effective: str  # as written (normalized ISO)
    effective_at: float  # UTC epoch
    source: str
    note: str | None = None
    file: str = "<rows>"


# -- cell parsers: return the value or raise ValueError(message) ---------------------------------

def parse_phone(text: str, region: str | None = None) -> str:
    """An E.164 number ('+8613800138000'), or a national number ('13800138000') when the campaign
    names a default region ('CN'); anything else is refused."""
    t = text.strip()
    if not t.startswith("+") and not region:
        raise ValueError(f"{t!r} is not in E.164 form (must start with + and the country code; "
                         "or set the campaign's default_region to accept national numbers)")
    try:
        num = phonenumbers.parse(t, None if t.startswith("+") else region)
    except phonenumbers.NumberParseException:
        raise ValueError(f"{t!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(num):
        where = f" in region {region}" if region and not t.startswith("+") else ""
        raise ValueError(f"{t!r} is not a valid phone number{where}")
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def parse_phones(text: str, region: str | None = None) -> tuple[str, ...]:
    parts = [p for p in (x.strip() for x in text.split(";")) if p]
    if not parts:
        raise ValueError("at least one phone number is required")
    out: list[str] = []
    for p in parts:
        e164 = parse_phone(p, region)
        if e164 in out:
            raise ValueError(f"{p!r} is listed twice")
        out.append(e164)
    return tuple(out)


def parse_contacts(text: str, region: str | None = None) -> tuple[Contact, ...]:
    out = []
    for entry in (x.strip() for x in text.split(";")):
        if not entry:
            continue
        bits = [b.strip() for b in entry.split("|")]
        if len(bits) != 3 or not bits[0] or not bits[1]:
            raise ValueError(f"{entry!r}: expected name|relation|+E164")
        out.append(Contact(bits[0], bits[1], parse_phone(bits[2], region)))
    return tuple(out)


# Amounts: plain digits with an optional point and up to 4 decimals (1234.56), or thousands grouped by
# commas (1,234.56). Nothing else: "1,50" (a decimal comma) and "1e400" are refused, not guessed at.
_AMOUNT = re.compile(r"-?(?:\d{1,15}|\d{1,3}(?:,\d{3}){1,4})(?:\.\d+)?")


def parse_amount(text: str, *, positive: bool = False) -> Decimal:
    t = text.strip()
    if not _AMOUNT.fullmatch(t):
        raise ValueError(f"{t!r} is not an amount: write digits with an optional decimal point, "
                         "commas only between thousands (1234.56 or 1,234.56)")
    try:
        value = Decimal(t.replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a decimal amount") from None
    if value < 0 or (positive and value == 0):
        raise ValueError(f"amount must be {'> 0' if positive else '>= 0'}, got {text.strip()}")
    if value.as_tuple().exponent < -4:  # type: ignore[operator]
        raise ValueError(f"{text!r} has more than 4 decimal places")
    return value


def parse_payment_amount(text: str) -> Decimal:
    """A payment: > 0; a reversal: < 0 (with the original payment's reference); never 0."""
    t = text.strip()
    value = parse_amount(t[1:]) if t.startswith("-") else parse_amount(t, positive=True)
    if t.startswith("-"):
        if value == 0:
            raise ValueError("amount must not be 0 (a payment is > 0, a reversal < 0)")
        return -value
    return value


def parse_iso_date(text: str) -> str:
    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO date (YYYY-MM-DD)") from None


def parse_paid_at(text: str) -> tuple[str, str]:
    """ISO date or date-time → (normalized text, ISO date)."""
    t = text.strip()
    try:
        if len(t) == 10:
            d = date.fromisoformat(t)
            return d.isoformat(), d.isoformat()
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise ValueError(f"{t!r} is not an ISO date or date-time") from None
    return dt.isoformat(), dt.date().isoformat()


EARLIEST_OFFSET = timezone(timedelta(hours=14))  # UTC+14: where a date starts first


def parse_effective(text: str) -> tuple[str, float]:
    """An ISO date (in force from the first moment it is that date anywhere: 00:00 at UTC+14) or an ISO
    date-time with a UTC offset → (normalized text, UTC epoch)."""
    t = text.strip()
    try:
        if len(t) == 10:
            d = date.fromisoformat(t)
            return d.isoformat(), datetime(d.year, d.month, d.day, tzinfo=EARLIEST_OFFSET).timestamp()
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise ValueError(f"{t!r} is not an ISO date (YYYY-MM-DD) or date-time") from None
    if dt.tzinfo is None:
        raise ValueError(f"{t!r} has no UTC offset (write 2026-12-01T09:00:00+08:00, or a date)")
    return dt.isoformat(), dt.timestamp()


def parse_timezone(text: str) -> str:
    t = text.strip()
    try:
        ZoneInfo(t)
    except (ZoneInfoNotFoundError, ValueError):
        hint = difflib.get_close_matches(t, sorted(available_timezones()), n=1)
        extra = f" (did you mean '{hint[0]}'?)" if hint else ""
        raise ValueError(f"{t!r} is not an IANA time zone{extra}") from None
    return t


def parse_choice(text: str, choices: tuple[str, ...], what: str) -> str:
    t = text.strip()
    if t not in choices:
        hint = difflib.get_close_matches(t, choices, n=1)
        extra = f" (did you mean '{hint[0]}'?)" if hint else ""
        raise ValueError(f"unknown {what} {t!r}: expected one of {', '.join(choices)}{extra}")
    return t


def parse_int(text: str, lo: int, hi: int | None = None) -> int:
    t = text.strip()
    if not re.fullmatch(r"[+-]?\d+", t):
        raise ValueError(f"{t!r} is not a whole number")
    if len(t.lstrip("+-")) > 12:
        raise ValueError(f"{t!r} is out of range" + (f" ({lo}..{hi})" if hi is not None else ""))
    v = int(t)
    if v < lo or (hi is not None and v > hi):
        raise ValueError(f"{v} is out of range ({lo}..{hi})" if hi is not None else f"must be >= {lo}, got {v}")
    return v


def parse_currency(text: str) -> str:
    """An ISO 4217 code; a common local name is refused with the code to write (RMB → CNY)."""
    from dialer.campaign.currencies import ISO_4217, LOCAL_NAMES

    raw = text.strip()
    t = raw.upper()
    if t in ISO_4217:
        return t
    hint = LOCAL_NAMES.get(t) or LOCAL_NAMES.get(raw)
    if hint is None:
        close = difflib.get_close_matches(t, sorted(ISO_4217), n=1, cutoff=0.6)
        hint = close[0] if close else None
    extra = f" (did you mean {hint}?)" if hint else ""
    raise ValueError(f"{raw!r} is not an ISO 4217 currency code{extra}")


# -- files ---------------------------------------------------------------------------------------

ENCODINGS = ("utf-8", "gbk", "gb18030")


def _decode(file: str, data: bytes, encoding: str | None) -> str:
    """The file's text: UTF-8 (with or without BOM) unless told otherwise. A file that is not UTF-8
    but reads as GBK (what Excel on a Chinese Windows saves) is named as such, not guessed at."""
    if encoding:
        enc = encoding.lower().replace("_", "-")
        try:
            return data.decode("utf-8-sig" if enc in ("utf-8", "utf8") else enc)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ImportRejected([RowError(file, None, None, f"cannot read as {encoding}: {exc}")]) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        try:
            sample = data.decode("gbk")
        except UnicodeDecodeError:
            raise ImportRejected([RowError(file, line, None, f"not UTF-8 ({exc.reason} at byte {exc.start})")]) from None
        first = next((ln for ln in sample.splitlines()[1:] if ln.strip()), "")[:40]
        raise ImportRejected([RowError(
            file, line, None,
            f"not UTF-8: the file looks GBK-encoded (Excel on Chinese Windows; first row reads {first!r}); "
            "re-run with --encoding gbk, or save it as CSV UTF-8")]) from None


def _read_csv(source: str | Path, text: str | None,
              encoding: str | None = None) -> tuple[str, list[dict[str, str]], list[str]]:
    file = str(source)
    if text is None:
        try:
            data = Path(source).read_bytes()
        except FileNotFoundError:
            raise ImportRejected([RowError(file, None, None, "file not found")]) from None
        text = _decode(file, data, encoding)
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise ImportRejected([RowError(file, reader.line_num, None, f"CSV syntax error: {exc}")]) from None
    if not rows:
        raise ImportRejected([RowError(file, 1, None, "empty file (a header row is required)")])
    header = [h.strip() for h in rows[0]]
    out = []
    for n, values in enumerate(rows[1:], start=2):
        if not any(v.strip() for v in values):
            continue
        rec = {h: (values[i] if i < len(values) else "") for i, h in enumerate(header)}
        rec["__row__"] = str(n)
        rec["__extra__"] = str(len(values) - len(header)) if len(values) > len(header) else "0"
        out.append(rec)
    return file, out, header


def _check_header(file: str, header: list[str], known: tuple[str, ...], required: tuple[str, ...]) -> list[RowError]:
    errors = []
    for col in header:
        if col not in known:
            hint = difflib.get_close_matches(col, known, n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else ""
            errors.append(RowError(file, 1, col or "<empty>", f"unknown column{extra}"))
    seen = set()
    for col in header:
        if col in seen:
            errors.append(RowError(file, 1, col, "column appears twice"))
        seen.add(col)
    for col in required:
        if col not in header:
            errors.append(RowError(file, 1, col, "required column is missing"))
    return errors


class _Row:
    """Collects errors while reading one record's cells."""

    def __init__(self, file: str, rec: Mapping[str, str], errors: list[RowError]):
        self.file, self.rec, self.errors = file, rec, errors
        self.row = int(rec.get("__row__", 0))
        self.ok = True

    def cell(self, col: str, parse: Any, *, required: bool = False) -> Any:
        raw = self.rec.get(col)
        raw = "" if raw is None else str(raw)
        if not raw.strip():
            if required:
                self.fail(col, "required value is empty")
            return None
        try:
            return parse(raw)
        except ValueError as exc:
            self.fail(col, str(exc))
            return None

    def fail(self, col: str | None, message: str) -> None:
        self.ok = False
        self.errors.append(RowError(self.file, self.row, col, message))


def _text(v: str) -> str:
    return v.strip()


def _rows(records: Iterable[Mapping[str, Any]], file: str, errors: list[RowError]) -> Iterable[_Row]:
    """Each record as a _Row (cells as strings, spreadsheet row number), flagging surplus values."""
    for i, rec in enumerate(records):
        rec = {k: ("" if v is None else str(v)) for k, v in rec.items()}
        rec.setdefault("__row__", str(i + 2))
        r = _Row(file, rec, errors)
        if rec.get("__extra__", "0") != "0":
            r.fail(None, f"{rec['__extra__']} more value(s) than the header has columns")
        yield r


def validate_debtor_records(records: Iterable[Mapping[str, Any]], file: str = "<rows>",
                            region: str | None = None, bar: Any = None) -> list[DebtorRow]:
    """Validate raw records (CSV dicts of strings; `__row__` optional) into DebtorRows, all or nothing.
    `region` (the campaign's default_region, e.g. 'CN') lets phones be written as national numbers."""
    errors: list[RowError] = []
    out: list[DebtorRow] = []
    seen: dict[tuple[str, str], int] = {}
    account_owner: dict[str, tuple[str, int]] = {}
    identities: dict[str, tuple[int, dict[str, Any]]] = {}
    for r in _rows(records, file, errors):
        if bar is not None:
            bar.advance()
        debtor_id = r.cell("debtor_id", _text, required=True)
        name = r.cell("name", _text, required=True)
        phones = r.cell("phones", lambda t: parse_phones(t, region), required=True)
        account_id = r.cell("account_id", _text, required=True)
        amount = r.cell("amount_owed", parse_amount, required=True)
        currency = r.cell("currency", parse_currency)
        dpd = r.cell("days_past_due", lambda t: parse_int(t, 0, MAX_DAYS_PAST_DUE), required=True)
        due = r.cell("due_date", parse_iso_date)
        tz = r.cell("timezone", parse_timezone)
        ctype = r.cell("customer_type", lambda t: parse_choice(t, CUSTOMER_TYPES, "customer type"), required=True)
        lang = r.cell("lang", lambda t: parse_choice(t, LANGS, "language"))
        last4 = r.cell("id_last4", lambda t: _digits4(t))
        by = r.cell("birth_year", lambda t: parse_int(t, 1900, datetime.now(timezone.utc).year))
        contacts = r.cell("contacts", lambda t: parse_contacts(t, region)) or ()
        if debtor_id and r.ok:
            _same_person(r, identities, debtor_id, {
                "name": name, "phones": tuple(sorted(phones or ())), "birth_year": by,
                "id_last4": last4, "timezone": tz, "lang": lang})
        if debtor_id and account_id:
            key = (debtor_id, account_id)
            if key in seen:
                r.fail("account_id", f"debtor {debtor_id} / account {account_id} already on row {seen[key]}")
            seen[key] = r.row
            owner = account_owner.get(account_id)
            if owner and owner[0] != debtor_id:
                r.fail("account_id", f"account {account_id} belongs to debtor {owner[0]} on row {owner[1]}")
            account_owner.setdefault(account_id, (debtor_id, r.row))
        if r.ok:
            out.append(DebtorRow(
                row=r.row, debtor_id=debtor_id, name=name, phones=phones, account_id=account_id,
                amount_owed=amount, currency=currency, days_past_due=dpd, bucket=bucket_for(dpd),
                customer_type=ctype, due_date=due, timezone=tz, lang=lang, id_last4=last4,
                birth_year=by, contacts=tuple(contacts), file=file,
            ))
    if errors:
        raise ImportRejected(errors)
    return out


def _same_person(r: _Row, identities: dict[str, tuple[int, dict[str, Any]]], debtor_id: str,
                 ident: dict[str, Any]) -> None:
    """One debtor_id on several rows (several accounts) must be one person: same name, phones,
    verification factors, zone and language. Otherwise one row's phone would be called and asked for
    the other row's person, so the whole file is refused, naming both rows."""
    first = identities.get(debtor_id)
    if first is None:
        identities[debtor_id] = (r.row, ident)
        return
    row, seen = first
    for col, value in ident.items():
        if value != seen[col]:
            r.fail(col, f"debtor {debtor_id} has a different {col} on row {row}; one debtor_id must be "
                        "one person (give the other person their own debtor_id)")
            return


def _digits4(t: str) -> str:
    t = t.strip()
    if not re.fullmatch(r"\d{4}", t):
        raise ValueError(f"{t!r} must be exactly 4 digits")
    return t


def validate_payment_records(records: Iterable[Mapping[str, Any]], file: str = "<rows>") -> list[PaymentRow]:
    errors: list[RowError] = []
    out: list[PaymentRow] = []
    refs: dict[str, int] = {}
    for r in _rows(records, file, errors):
        account_id = r.cell("account_id", _text, required=True)
        paid = r.cell("paid_at", parse_paid_at, required=True)
        amount = r.cell("amount", parse_payment_amount, required=True)
        currency = r.cell("currency", parse_currency, required=True)
        ref = r.cell("reference", _text, required=True)
        if ref and amount is not None:  # a payment and its reversal share the reference
            key = ref if amount > 0 else f"-{ref}"
            if key in refs:
                what = "reference" if amount > 0 else "reversal of"
                r.fail("reference", f"duplicate {what} {ref!r} (also on row {refs[key]})")
            refs.setdefault(key, r.row)
        if r.ok:
            out.append(PaymentRow(row=r.row, account_id=account_id, paid_at=paid[0], paid_date=paid[1],
                                  amount=amount, currency=currency, reference=ref, file=file))
    if errors:
        raise ImportRejected(errors)
    return out


def validate_suppression_records(records: Iterable[Mapping[str, Any]], list_name: str, file: str = "<rows>",
                                 *, source: str | None = None, region: str | None = None) -> list[SuppressionRow]:
    """Validate raw suppression records, all or nothing; `source` is the default for an empty source cell."""
    if list_name not in SUPPRESSION_LIST_NAMES:
        raise ImportRejected([RowError(file, None, "list", f"unknown list {list_name!r}: expected one of "
                                                           f"{', '.join(SUPPRESSION_LIST_NAMES)}")])
    errors: list[RowError] = []
    out: list[SuppressionRow] = []
    seen: dict[tuple[str, str], int] = {}
    for r in _rows(records, file, errors):
        phone = r.cell("phone", lambda t: parse_phone(t, region))
        debtor = r.cell("debtor_id", _text)
        account = r.cell("account_id", _text)
        eff = r.cell("effective_date", parse_effective, required=True)
        src = r.cell("source", _text) or source
        note = r.cell("note", _text)
        keys = [(k, v) for k, v in (("phone", phone), ("debtor", debtor), ("account", account)) if v]
        raw_given = [c for c in ("phone", "debtor_id", "account_id") if str(r.rec.get(c) or "").strip()]
        if len(raw_given) != 1:
            r.fail(raw_given[1] if len(raw_given) > 1 else "phone",
                   "give exactly one of phone, debtor_id, account_id per row"
                   + (f" (this row has {', '.join(raw_given)})" if raw_given else ""))
        if not src:
            r.fail("source", "required value is empty (or give --source)")
        if r.ok and keys:
            key = keys[0]
            if key in seen:
                r.fail({"phone": "phone", "debtor": "debtor_id", "account": "account_id"}[key[0]],
                       f"{key[1]} is already listed on row {seen[key]}")
            seen.setdefault(key, r.row)
        if r.ok:
            out.append(SuppressionRow(row=r.row, list=list_name, key_kind=keys[0][0], key=keys[0][1],
                                      effective=eff[0], effective_at=eff[1], source=src, note=note, file=file))
    if errors:
        raise ImportRejected(errors)
    return out


def read_suppressions_csv(path: str | Path, list_name: str, text: str | None = None, *, source: str | None = None,
                          region: str | None = None, encoding: str | None = None) -> list[SuppressionRow]:
    """Parse and validate a suppression CSV (columns: phone, debtor_id, account_id, effective_date, source, note)."""
    file, records, header = _read_csv(path, text, encoding)
    errors = _check_header(file, header, SUPPRESSION_COLUMNS, SUPPRESSION_REQUIRED)
    if not any(c in header for c in ("phone", "debtor_id", "account_id")):
        errors.append(RowError(file, 1, "phone", "one of the columns phone, debtor_id, account_id is required"))
    if errors:
        raise ImportRejected(errors)
    return validate_suppression_records(records, list_name, file, source=source, region=region)


def read_debtors_csv(path: str | Path, text: str | None = None, *, region: str | None = None,
                     encoding: str | None = None) -> list[DebtorRow]:
    """Parse and validate a debtor CSV; raises ImportRejected naming file, row and column."""
    from common.progress import progress

    file, records, header = _read_csv(path, text, encoding)
    errors = _check_header(file, header, DEBTOR_COLUMNS, DEBTOR_REQUIRED)
    if errors:
        raise ImportRejected(errors)
    records = list(records)
    with progress(f"checking {Path(file).name}", len(records)) as bar:
        return validate_debtor_records(records, file, region, bar)


def read_payments_csv(path: str | Path, text: str | None = None, *,
                      encoding: str | None = None) -> list[PaymentRow]:
    """Parse and validate a payments CSV; raises ImportRejected naming file, row and column."""
    file, records, header = _read_csv(path, text, encoding)
    errors = _check_header(file, header, PAYMENT_COLUMNS, PAYMENT_REQUIRED)
    if errors:
        raise ImportRejected(errors)
    return validate_payment_records(records, file)
