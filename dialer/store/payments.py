"""Payments settle balances: import (payments and reversals) in one transaction that also moves each account's
balance and settles the promises the payments are against. No decision beyond arithmetic lives here: the gate
reads the balance (`account.paid_in_full`) and the hopper skips an account at 0.

`accounts.amount_owed` is the current balance: the debtor file's figure, less every payment imported after it,
plus every reversal. A reversal is a row with a negative amount and the ORIGINAL payment's reference; it must
undo that payment whole (same account, same currency, same amount), once.
"""
from __future__ import annotations

import time
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Iterable, Mapping, Sequence

from dialer.campaign.imports import ImportRejected, PaymentRow, RowError, validate_payment_records
from dialer.store import Conn, Store, conn_of
from dialer.store.audit import audit

FOREVER = 253402300799.0  # the gate's "nothing will unblock" next_allowed_at (dialer/gate/account.py)
SETTLED = ("kept", "partly_kept", "broken")


def import_payments(store: Store, rows: Iterable[PaymentRow | Mapping[str, Any]], now: float | None = None,
                    *, today: date | str | None = None, actor: str = "operator") -> dict[str, Any]:
    """Import payments and reversals all or nothing, in ONE transaction with their effects: balances move,
    an account paid in full leaves the hopper (and the gate refuses a call already picked for it), a reversal
    restores the balance and makes the debtor due again, promises are settled by the payments against them.

    Refused (ImportRejected naming row and column): unknown account, currency not the account's, a reference
    already imported, a reversal whose reference is unknown, already reversed, or of another amount/account.
    """
    at = float(now) if now is not None else time.time()
    today_s = (today.isoformat() if isinstance(today, date) else str(today)) if today is not None else None
    rows = list(rows)
    if rows and not isinstance(rows[0], PaymentRow):
        rows = validate_payment_records(rows)  # type: ignore[arg-type]
    parsed: list[PaymentRow] = rows  # type: ignore[assignment]
    summary: dict[str, Any] = {"payments": 0, "reversals": 0, "totals": {}, "paid_in_full": [], "restored": [],
                               "promises_kept": [], "promises_partly_kept": [], "promises_broken": [],
                               "promises_reopened": []}
    with store.transaction() as conn:
        errors: list[RowError] = []
        new_refs: dict[str, PaymentRow] = {}
        reversed_in_file: set[str] = set()
        for r in parsed:
            acct = conn.execute("SELECT currency FROM accounts WHERE account_id=?", (r.account_id,)).fetchone()
            if acct is None:
                errors.append(RowError(r.file, r.row, "account_id", f"unknown account {r.account_id!r}"))
            elif acct[0] != r.currency:
                errors.append(RowError(r.file, r.row, "currency",
                                       f"{r.currency} does not match the account's currency {acct[0]}"))
            if r.amount > 0:
                if conn.execute("SELECT 1 FROM payments WHERE reference=?", (r.reference,)).fetchone():
                    errors.append(RowError(r.file, r.row, "reference",
                                           f"duplicate reference {r.reference!r}: already imported"))
                new_refs[r.reference] = r
                continue
            # a reversal: the original payment, in the store or earlier in this file
            orig = conn.execute("SELECT p.id, p.account_id, p.amount, p.currency, r.id AS rev FROM payments p"
                                " LEFT JOIN payment_reversals r ON r.payment_id = p.id WHERE p.reference=?",
                                (r.reference,)).fetchone()
            o_acct, o_amt = (orig["account_id"], Decimal(orig["amount"])) if orig else (None, None)
            if orig is None and r.reference in new_refs:
                o_acct, o_amt = new_refs[r.reference].account_id, new_refs[r.reference].amount
            if o_acct is None:
                errors.append(RowError(r.file, r.row, "reference",
                                       f"reversal of an unknown payment {r.reference!r}: a negative amount must "
                                       "carry the reference of the payment it reverses"))
            elif (orig is not None and orig["rev"] is not None) or r.reference in reversed_in_file:
                errors.append(RowError(r.file, r.row, "reference", f"payment {r.reference!r} is already reversed"))
            elif o_acct != r.account_id:
                errors.append(RowError(r.file, r.row, "account_id",
                                       f"payment {r.reference!r} was made to account {o_acct}, not {r.account_id}"))
            elif o_amt != -r.amount:
                errors.append(RowError(r.file, r.row, "amount",
                                       f"a reversal undoes the whole payment {r.reference!r}: amount must be "
                                       f"-{o_amt}, got {r.amount}"))
            reversed_in_file.add(r.reference)
        if errors:
            raise ImportRejected(errors)

        touched: dict[str, Decimal] = {}
        totals: dict[str, Decimal] = {}
        for r in parsed:
            if r.amount > 0:
                conn.execute("INSERT INTO payments(account_id, paid_at, amount, currency, reference, imported_at)"
                             " VALUES (?,?,?,?,?,?)", (r.account_id, r.paid_at, str(r.amount), r.currency,
                                                       r.reference, at))
                summary["payments"] += 1
            else:
                pid = conn.execute("SELECT id FROM payments WHERE reference=?", (r.reference,)).fetchone()[0]
                conn.execute("INSERT INTO payment_reversals(payment_id, reversed_at, amount, imported_at, file)"
                             " VALUES (?,?,?,?,?)", (pid, r.paid_at, str(r.amount), at, r.file))
                summary["reversals"] += 1
            totals[r.currency] = totals.get(r.currency, Decimal(0)) + r.amount
            touched[r.account_id] = touched.get(r.account_id, Decimal(0)) + r.amount
        for account_id, delta in touched.items():
            before, after, debtor_id = apply_to_balance(conn, account_id, delta)
            if before > 0 >= after:
                summary["paid_in_full"].append(account_id)
            elif before <= 0 < after:
                summary["restored"].append(account_id)
                # the gate may have parked the debtor for good (paid in full): due again; it decides at dial time
                conn.execute("UPDATE debtors SET next_allowed_at=NULL WHERE debtor_id=? AND next_allowed_at>=?",
                             (debtor_id, FOREVER))
            audit(conn, actor, "account.balance", account_id,
                  {"debtor_id": debtor_id, "before": str(before), "after": str(after), "change": str(delta)}, at)
        settled = settle_promises_by_payments(conn, sorted(touched), today_s, at)
        for k, v in settled.items():
            summary[f"promises_{k}"] = v
        summary["totals"] = {k: str(v) for k, v in totals.items()}
        audit(conn, actor, "payments.import", None,
              {"file": parsed[0].file if parsed else None, "rows": len(parsed), "payments": summary["payments"],
               "reversals": summary["reversals"], "totals": summary["totals"],
               "paid_in_full": summary["paid_in_full"], "restored": summary["restored"],
               "promises": {k: v for k, v in settled.items() if v}}, at)
    return summary


def apply_to_balance(conn: Conn, account_id: str, delta: Decimal) -> tuple[Decimal, Decimal, str]:
    """balance -= delta (a payment's amount; a reversal's is negative). Returns (before, after, debtor_id)."""
    row = conn.execute("SELECT amount_owed, debtor_id FROM accounts WHERE account_id=?", (account_id,)).fetchone()
    before = Decimal(row[0])
    after = before - delta
    conn.execute("UPDATE accounts SET amount_owed=? WHERE account_id=?", (str(after), account_id))
    return before, after, row[1]


def paid_against(conn: Store | Conn, account_id: str, start: str, end: str) -> Decimal:
    """Net payments to an account with a payment date in [start, end] (ISO dates): reversed ones count 0."""
    rows = conn_of(conn).execute(
        "SELECT p.amount FROM payments p WHERE p.account_id=? AND substr(p.paid_at,1,10) BETWEEN ? AND ?"
        " AND NOT EXISTS (SELECT 1 FROM payment_reversals r WHERE r.payment_id=p.id)",
        (account_id, start, end)).fetchall()
    return sum((Decimal(r[0]) for r in rows), Decimal(0))


def settle_promises_by_payments(conn: Conn, account_ids: Sequence[str], today: str | None,
                                at: float) -> dict[str, list[int]]:
    """The payments against each promise of these accounts decide it (separate from promises a collector marks
    kept): paid ≥ promised (or the balance is 0, for a full-balance promise) → kept; after the due date,
    some paid → partly_kept, nothing → broken; otherwise open. A reversal can reopen what payments settled.
    Promises settled by someone else (status set without payments_settled_at) are left alone. `today` None
    (an import) judges no due date: only kept, or reopened by a reversal; the nightly sweep judges the rest."""
    out: dict[str, list[int]] = {"kept": [], "partly_kept": [], "broken": [], "reopened": []}
    for account_id in account_ids:
        acct = conn.execute("SELECT amount_owed FROM accounts WHERE account_id=?", (account_id,)).fetchone()
        balance = Decimal(acct[0]) if acct else Decimal(0)
        for p in conn.execute("SELECT * FROM promises WHERE account_id=? AND (status='open' OR"
                              " payments_settled_at IS NOT NULL) ORDER BY id", (account_id,)).fetchall():
            start = datetime.fromtimestamp(p["created_at"], timezone.utc).date().isoformat()
            paid = paid_against(conn, account_id, start, p["due_date"])
            if p["amount"] is not None:
                kept = paid > 0 and paid >= Decimal(p["amount"])
            else:  # the full balance: kept when the account is paid off by payments in the promise's time
                kept = paid > 0 and balance <= 0
            if kept:
                status = "kept"
            elif today is None:
                status = p["status"] if p["status"] in ("partly_kept", "broken") else "open"
            elif p["due_date"] < today:
                status = "partly_kept" if paid > 0 else "broken"
            else:
                status = "open"
            if status == p["status"] and str(paid) == (p["paid_by_payments"] or "0"):
                continue
            conn.execute("UPDATE promises SET status=?, paid_by_payments=?, payments_settled_at=? WHERE id=?",
                         (status, str(paid), None if status == "open" else at, p["id"]))
            if status == p["status"]:
                continue
            key = "reopened" if status == "open" else status
            out[key].append(int(p["id"]))
            audit(conn, "dialer", f"promise.{key}", p["debtor_id"],
                  {"promise_id": p["id"], "account_id": account_id, "paid": str(paid), "amount": p["amount"],
                   "due_date": p["due_date"], "previous": p["status"], "by": "payments"}, at)
    return out


def settle_due_promises(store: Store, today: date | str, at: float | None = None) -> dict[str, list[int]]:
    """Nightly: every promise still open (or settled by payments) re-checked against payments as of `today`."""
    today_s = today.isoformat() if isinstance(today, date) else date.fromisoformat(today).isoformat()
    t = float(at) if at is not None else time.time()
    with store.transaction() as conn:
        accounts = [r[0] for r in conn.execute(
            "SELECT DISTINCT account_id FROM promises WHERE account_id IS NOT NULL AND"
            " (status='open' OR payments_settled_at IS NOT NULL)")]
        return settle_promises_by_payments(conn, accounts, today_s, t)


def account_balances(store: Store | Conn, debtor_id: str) -> list[dict[str, Any]]:
    """Each account's current balance with its payments and reversals, newest first."""
    conn = conn_of(store)
    out = []
    for a in conn.execute("SELECT account_id, amount_owed, currency FROM accounts WHERE debtor_id=?"
                          " ORDER BY account_id", (debtor_id,)):
        pays = [dict(r) for r in conn.execute(
            "SELECT p.reference, p.paid_at, p.amount, p.imported_at, r.reversed_at, r.amount AS reversal"
            " FROM payments p LEFT JOIN payment_reversals r ON r.payment_id=p.id WHERE p.account_id=?"
            " ORDER BY p.paid_at DESC, p.id DESC", (a["account_id"],))]
        out.append({"account_id": a["account_id"], "balance": a["amount_owed"], "currency": a["currency"],
                    "payments": pays})
    return out


def paid_in_full_since(conn: Store | Conn, account_id: str) -> str | None:
    """The payment date of the latest (unreversed) payment of an account at 0 or less, or None."""
    row = conn_of(conn).execute(
        "SELECT max(p.paid_at) FROM payments p WHERE p.account_id=? AND NOT EXISTS"
        " (SELECT 1 FROM payment_reversals r WHERE r.payment_id=p.id)", (account_id,)).fetchone()
    return row[0] if row and row[0] else None


def paid_accounts(conn: Store | Conn, debtor_id: str) -> tuple[tuple[tuple[str, str], ...], bool]:
    """For the gate: ((account_id, "balance 0.00 since <last payment date>"), …) of the debtor's accounts at 0 or
    less, and whether any account still has a balance > 0 (or the debtor has no account on record)."""
    c = conn_of(conn)
    paid, due = [], False
    for r in c.execute("SELECT account_id, amount_owed FROM accounts WHERE debtor_id=? ORDER BY account_id",
                       (debtor_id,)):
        if Decimal(r[1]) > 0:
            due = True
        else:
            since = paid_in_full_since(c, r[0])
            paid.append((r[0], f"balance {r[1]}" + (f" since the payment of {since}" if since else "")))
    return tuple(paid), due or not paid  # no account on record: nothing says it is paid
