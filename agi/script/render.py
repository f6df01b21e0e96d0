"""Rendering prompts: slot values, amounts and dates; debt slots refused before verification."""
from __future__ import annotations

from datetime import date
from decimal import ROUND_UP, Decimal
from typing import Any, Mapping

from agi.script.model import _SLOT_RE, DEBT_SLOTS, Debtor, Prompt, Script

# ------------------------------------------------------------------ rendering

def format_amount(value: Decimal, currency: str, lang: str) -> str:
    q = value.quantize(Decimal("0.01"))
    num = f"{q:,.2f}" if q != q.to_integral() else f"{int(q):,}"
    if lang == "zh":
        return num.replace(",", "") + ("元" if currency in ("CNY", "RMB", "") else f" {currency}")
    words = {"USD": "dollars", "CNY": "yuan", "RMB": "yuan", "GBP": "pounds", "EUR": "euros"}
    return f"{num} {words.get(currency, currency)}"


def say_amount(amount: str, currency: str) -> str:
    """An English amount as the harness flow says it: "1,250 dollars and 50 cents"."""
    value = Decimal(amount)
    whole = int(value)
    cents = int((value - whole) * 100)
    unit = {"USD": "dollars", "GBP": "pounds", "CNY": "yuan", "EUR": "euros"}.get(currency.upper(), currency)
    text = f"{whole:,} {unit}"
    if cents:
        text += f" and {cents} cents"
    return text


def format_date(d: date, lang: str) -> str:
    if lang == "zh":
        return f"{d.month}月{d.day}日"
    return f"{d.strftime('%B')} {d.day}"


def slot_values(script: Script, debtor: Debtor, verified: bool, captured: Mapping[str, Any]) -> dict[str, str]:
    """Values for prompt slots; debt slots only once the right party is verified."""
    v: dict[str, str] = {
        "institution": debtor.institution, "collector_name": debtor.collector_name,
        "debtor_name": debtor.name, "callback_number": debtor.callback_number,
    }
    if not verified:
        return v
    lang = script.lang
    if debtor.amount_owed is not None:
        v["amount"] = format_amount(debtor.amount_owed, debtor.currency, lang)
        per = (debtor.amount_owed / script.instalments).quantize(Decimal("0.01"), rounding=ROUND_UP)
        v["instalment_amount"] = format_amount(per, debtor.currency, lang)
    v["instalments"] = str(script.instalments)
    if debtor.due_date:
        v["due_date"] = format_date(debtor.due_date, lang)
    if debtor.days_past_due is not None:
        v["days_past_due"] = str(debtor.days_past_due)
    v["promise_date"] = (format_date(captured["date"], lang) if captured.get("date")
                         else ("近期" if lang == "zh" else "soon"))
    if captured.get("amount") is not None:
        v["promise_amount"] = format_amount(captured["amount"], debtor.currency, lang)
    elif "amount" in v:
        v["promise_amount"] = v["amount"]
    return v


class PrivacyGuard(Exception):
    """A prompt needed a debt slot before verification."""


def render(prompt: Prompt, values: Mapping[str, str]) -> str:
    missing = [s for s in prompt.slots if s not in values]
    if any(s in DEBT_SLOTS for s in missing):
        raise PrivacyGuard(f"prompt {prompt.id!r} needs {missing} before verification")
    return _SLOT_RE.sub(lambda m: values.get(m.group(1), ""), prompt.text)
