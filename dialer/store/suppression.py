"""Suppression lists (dnc, attorney, bankruptcy, deceased, complaint_hold): bulk import all or nothing, removal
audited, and the rows the gate reads for one debtor. The gate (`dialer/gate/decide.py`) decides; this only stores."""
from __future__ import annotations

import time
from typing import Any, Iterable, Mapping

from dialer.campaign.imports import (
    ImportRejected,
    RowError,
    SuppressionRow,
    validate_suppression_records,
)
from dialer.gate.decide import Suppression
from dialer.store import Conn, Store, conn_of, tx
from dialer.store.audit import audit

KEY_COLUMNS = {"phone": "phone", "debtor": "debtor_id", "account": "account_id"}


def import_suppressions(store: Store | Conn, rows: Iterable[SuppressionRow | Mapping[str, Any]], list_name: str,
                        now: float | None = None, *, source: str | None = None, actor: str = "operator",
                        file: str | None = None, strict: bool = False) -> dict[str, Any]:
    """Import entries onto one list, all or nothing. An entry already live on the list is left as it is
    (re-importing the nightly file is harmless) unless its effective time moves earlier; `strict` refuses
    debtors and accounts the store does not know (the API does; a file may name people not yet imported)."""
    at = float(now) if now is not None else time.time()
    rows = list(rows)
    if rows and not isinstance(rows[0], SuppressionRow):
        rows = validate_suppression_records(rows, list_name, file or "<rows>", source=source)  # type: ignore[arg-type]
    parsed: list[SuppressionRow] = rows  # type: ignore[assignment]
    summary: dict[str, Any] = {"list": list_name, "rows": len(parsed), "added": 0, "already": 0, "earlier": 0,
                               "debtors_known": 0}
    with tx(store) as conn:
        if strict:
            errors = []
            for r in parsed:
                if r.key_kind == "debtor" and not conn.execute("SELECT 1 FROM debtors WHERE debtor_id=?",
                                                               (r.key,)).fetchone():
                    errors.append(RowError(r.file, r.row, "debtor_id", f"unknown debtor {r.key!r}"))
                if r.key_kind == "account" and not conn.execute("SELECT 1 FROM accounts WHERE account_id=?",
                                                                (r.key,)).fetchone():
                    errors.append(RowError(r.file, r.row, "account_id", f"unknown account {r.key!r}"))
            if errors:
                raise ImportRejected(errors)
        for r in parsed:
            live = conn.execute("SELECT id, effective_at FROM suppressions WHERE list=? AND key_kind=? AND key=?"
                                " AND removed_at IS NULL", (r.list, r.key_kind, r.key)).fetchone()
            if live is not None:
                if r.effective_at < live["effective_at"]:
                    conn.execute("UPDATE suppressions SET effective=?, effective_at=?, source=? WHERE id=?",
                                 (r.effective, r.effective_at, r.source, live["id"]))
                    summary["earlier"] += 1
                else:
                    summary["already"] += 1
                continue
            conn.execute("INSERT INTO suppressions(list, key_kind, key, effective, effective_at, source, note, file,"
                         " added_at) VALUES (?,?,?,?,?,?,?,?,?)",
                         (r.list, r.key_kind, r.key, r.effective, r.effective_at, r.source, r.note, r.file, at))
            summary["added"] += 1
        # a debtor listed for good may have been parked as due: nothing to do, the gate re-decides at dial time
        audit(conn, actor, "suppression.import", list_name,
              {"file": parsed[0].file if parsed else file, "rows": len(parsed), "added": summary["added"],
               "already": summary["already"], "earlier": summary["earlier"]}, at)
    return summary


def remove_suppression(store: Store | Conn, list_name: str, key_kind: str, key: str, *, actor: str, reason: str,
                       now: float | None = None) -> dict[str, Any]:
    """Take an entry off a list (kept, marked removed) with who and why in the audit log; KeyError if not listed."""
    if not reason or not reason.strip():
        raise ValueError("a removal needs a reason (it is kept in the audit log)")
    at = float(now) if now is not None else time.time()
    with tx(store) as conn:
        row = conn.execute("SELECT * FROM suppressions WHERE list=? AND key_kind=? AND key=? AND removed_at IS NULL",
                           (list_name, key_kind, key)).fetchone()
        if row is None:
            raise KeyError(f"no live entry for {key_kind} {key!r} on the {list_name} list")
        conn.execute("UPDATE suppressions SET removed_at=?, removed_by=?, removed_reason=? WHERE id=?",
                     (at, actor, reason, row["id"]))
        entry = dict(row) | {"removed_at": at, "removed_by": actor, "removed_reason": reason}
        audit(conn, actor, "suppression.remove", f"{list_name}:{key_kind}:{key}",
              {"id": row["id"], "list": list_name, "key_kind": key_kind, "effective": row["effective"],
               "source": row["source"], "reason": reason}, at)
        # the debtor may have been parked for good by this entry: due again (the gate decides at dial time)
        debtor = key if key_kind == "debtor" else None
        if key_kind == "account":
            r = conn.execute("SELECT debtor_id FROM accounts WHERE account_id=?", (key,)).fetchone()
            debtor = r[0] if r else None
        if debtor:
            conn.execute("UPDATE debtors SET next_allowed_at=NULL WHERE debtor_id=? AND next_allowed_at>=?",
                         (debtor, 253402300799.0))
        elif key_kind == "phone":
            conn.execute("UPDATE debtors SET next_allowed_at=NULL WHERE next_allowed_at>=? AND debtor_id IN"
                         " (SELECT debtor_id FROM phones WHERE phone=?)", (253402300799.0, key))
    return entry


def list_suppressions(store: Store | Conn, *, list_name: str | None = None, key: str | None = None,
                      include_removed: bool = False, limit: int = 10000) -> list[dict[str, Any]]:
    sql, args = "SELECT * FROM suppressions WHERE 1=1", []
    if list_name:
        sql += " AND list=?"
        args.append(list_name)
    if key:
        sql += " AND key=?"
        args.append(key)
    if not include_removed:
        sql += " AND removed_at IS NULL"
    return [dict(r) for r in conn_of(store).execute(sql + " ORDER BY id LIMIT ?", (*args, int(limit)))]


def counts(store: Store | Conn) -> dict[str, int]:
    return {r[0]: r[1] for r in conn_of(store).execute(
        "SELECT list, count(*) FROM suppressions WHERE removed_at IS NULL GROUP BY list")}


def suppressions_for(conn: Store | Conn, debtor_id: str, extra_phones: tuple[str, ...] = ()) -> tuple[Suppression, ...]:
    """Live entries naming the debtor, one of their accounts, or any of their, their contacts' or `extra_phones`
    numbers (future ones too: the gate compares effective times with its clock)."""
    c = conn_of(conn)
    phones = {r[0] for r in c.execute("SELECT phone FROM phones WHERE debtor_id=? UNION"
                                      " SELECT phone FROM contacts WHERE debtor_id=?", (debtor_id, debtor_id))}
    phones |= {p for p in extra_phones if p}
    accounts = [r[0] for r in c.execute("SELECT account_id FROM accounts WHERE debtor_id=?", (debtor_id,))]
    rows = list(c.execute("SELECT * FROM suppressions WHERE removed_at IS NULL AND key_kind='debtor' AND key=?",
                          (debtor_id,)))
    for kind, keys in (("account", accounts), ("phone", sorted(phones))):
        if keys:
            rows += c.execute(f"SELECT * FROM suppressions WHERE removed_at IS NULL AND key_kind=? AND key IN"
                              f" ({','.join('?' * len(keys))})", (kind, *keys)).fetchall()
    return tuple(Suppression(list=r["list"], key_kind=r["key_kind"], key=r["key"], effective_at=r["effective_at"],
                             since=r["effective"], source=r["source"])
                 for r in sorted(rows, key=lambda r: (r["effective_at"], r["id"])))
