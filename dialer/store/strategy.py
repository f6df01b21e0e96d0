"""Queries of the strategy area: debtors' contact histories and promises, scoring rows, saved scores/treatments."""
from __future__ import annotations

import json
from typing import Any, Iterable, Mapping, Sequence

from dialer.store import Store

_SCORING_SQL = """
SELECT d.debtor_id, d.campaign, d.timezone, d.customer_type, d.lang, d.segment, d.propensity,
       a.account_id, a.amount_owed, a.currency, a.days_past_due, a.bucket
FROM debtors d JOIN accounts a ON a.account_id = (
       SELECT a2.account_id FROM accounts a2
       WHERE a2.debtor_id = d.debtor_id AND CAST(a2.amount_owed AS REAL) > 0
       ORDER BY a2.days_past_due DESC, CAST(a2.amount_owed AS REAL) DESC, a2.account_id LIMIT 1)
WHERE d.status = 'active'
"""


def _in(ids: Sequence[str]) -> str:
    return ",".join("?" for _ in ids)


def scoring_rows(store: Store, campaign: str | None = None,
                 debtor_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Active debtors with the account the hopper would talk about (same choice as `due_debtors`)."""
    sql, args = _SCORING_SQL, []
    if campaign is not None:
        sql += " AND d.campaign = ?"
        args.append(campaign)
    if debtor_ids is not None:
        if not debtor_ids:
            return []
        sql += f" AND d.debtor_id IN ({_in(debtor_ids)})"
        args.extend(debtor_ids)
    rows = [dict(r) for r in store.query(sql + " ORDER BY d.debtor_id", args)]
    for r in rows:
        r["amount_owed"] = float(r["amount_owed"])
    return rows


def histories(store: Store, debtor_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per debtor: own-number attempts (oldest first), promise counts by status, and whether they asked to cease.
    The shape is what `dialer.strategy.DebtorHistory.coerce` reads."""
    ids = list(dict.fromkeys(str(i) for i in debtor_ids))
    out: dict[str, dict[str, Any]] = {i: {"attempts": [], "promises": {}, "cease": False} for i in ids}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        q = _in(chunk)
        for r in store.query(
                f"SELECT debtor_id, placed_at, outcome, conversation, machine, answered_at, disposition"
                f" FROM attempts WHERE third_party = 0 AND debtor_id IN ({q}) ORDER BY placed_at, id", chunk):
            out[r["debtor_id"]]["attempts"].append(dict(r))
        for r in store.query(f"SELECT debtor_id, status, count(*) AS n FROM promises WHERE debtor_id IN ({q})"
                             " GROUP BY debtor_id, status", chunk):
            out[r["debtor_id"]]["promises"][r["status"]] = int(r["n"])
        for r in store.query(f"SELECT DISTINCT debtor_id FROM contact_requests WHERE kind = 'cease'"
                             f" AND debtor_id IN ({q})", chunk):
            out[r["debtor_id"]]["cease"] = True
        for r in store.query(f"SELECT debtor_id FROM debtors WHERE status = 'cease' AND debtor_id IN ({q})", chunk):
            out[r["debtor_id"]]["cease"] = True
    return out


def save_scores(store: Store, rows: Iterable[Mapping[str, Any]], scored_at: float) -> int:
    """Upsert each debtor's score and treatment, and copy the propensity to `debtors.propensity` (what
    `due_debtors` orders by), in one transaction. Rows: debtor_id, propensity, quadrant, band, bucket,
    treatment (dict), best_hour, model, reason."""
    n = 0
    with store.transaction() as conn:
        for r in rows:
            conn.execute(
                "INSERT INTO strategy_scores(debtor_id, propensity, quadrant, band, bucket, treatment_json,"
                " best_hour, model, reason, scored_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT(debtor_id) DO UPDATE SET propensity=excluded.propensity, quadrant=excluded.quadrant,"
                " band=excluded.band, bucket=excluded.bucket, treatment_json=excluded.treatment_json,"
                " best_hour=excluded.best_hour, model=excluded.model, reason=excluded.reason,"
                " scored_at=excluded.scored_at",
                (r["debtor_id"], r.get("propensity"), r["quadrant"], r.get("band"), r["bucket"],
                 json.dumps(r.get("treatment") or {}, sort_keys=True, ensure_ascii=False), r.get("best_hour"),
                 r.get("model") or "fallback", r.get("reason") or "manual", float(scored_at)))
            conn.execute("UPDATE debtors SET propensity=? WHERE debtor_id=?", (r.get("propensity"), r["debtor_id"]))
            n += 1
    return n


def get_score(store: Store, debtor_id: str) -> dict[str, Any] | None:
    row = store.query_one("SELECT * FROM strategy_scores WHERE debtor_id=?", (debtor_id,))
    if row is None:
        return None
    out = dict(row)
    out["treatment"] = json.loads(out.pop("treatment_json"))
    return out


# -- training from the store's own outcomes ----------------------------------------------------------

def debtors_as_of(store: Store, as_of: float, campaign: str | None = None) -> list[dict[str, Any]]:
    """Every debtor imported by `as_of` (whatever their status now) with the account the hopper would use."""
    sql = _SCORING_SQL.replace("WHERE d.status = 'active'", "WHERE d.imported_at <= ?")
    args: list[Any] = [float(as_of)]
    if campaign is not None:
        sql += " AND d.campaign = ?"
        args.append(campaign)
    rows = [dict(r) for r in store.query(sql + " ORDER BY d.debtor_id", args)]
    for r in rows:
        r["amount_owed"] = float(r["amount_owed"])
    return rows


def promise_rows(store: Store, debtor_ids: Sequence[str]) -> list[dict[str, Any]]:
    ids = list(debtor_ids)
    out: list[dict[str, Any]] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        out += [dict(r) for r in store.query(
            f"SELECT debtor_id, created_at, due_date, status FROM promises WHERE debtor_id IN ({_in(chunk)})"
            " ORDER BY created_at, id", chunk)]
    return out


def payers_between(store: Store, after_date: str, until_date: str) -> set[str]:
    """Debtors with a payment dated in (after_date, until_date] (ISO dates) on any of their accounts."""
    return {r[0] for r in store.query(
        "SELECT DISTINCT a.debtor_id FROM payments p JOIN accounts a ON a.account_id = p.account_id"
        " WHERE substr(p.paid_at, 1, 10) > ? AND substr(p.paid_at, 1, 10) <= ?", (after_date, until_date))}
