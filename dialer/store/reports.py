"""Report queries: contact, promise-to-pay, recovery, abandonment and compliance per campaign; what the demo shows."""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from dialer.store import Store


def campaign_figures(store: Store, campaign: str, since: float | None = None, until: float | None = None) -> dict[str, Any]:
    """Every figure of one campaign over [since, until) (attempt time), exact decimals for money."""
    lo = since if since is not None else 0.0
    hi = until if until is not None else 1e18
    a = store.query_one(
        "SELECT count(*) AS dials,"
        " sum(outcome IN ('answered','callee_hangup','abandoned') OR answered_at IS NOT NULL) AS answered,"
        " sum(machine) AS machines, sum(abandoned) AS abandoned, sum(conversation) AS rpc,"
        " sum(inbound) AS inbound, count(DISTINCT debtor_id) AS debtors_dialled,"
        " sum(agent IS NOT NULL) AS to_collector"
        " FROM attempts WHERE campaign=? AND placed_at>=? AND placed_at<?", (campaign, lo, hi))
    outcomes = {r["outcome"] or "open": r["n"] for r in store.query(
        "SELECT outcome, count(*) AS n FROM attempts WHERE campaign=? AND placed_at>=? AND placed_at<?"
        " GROUP BY outcome", (campaign, lo, hi))}
    dispositions = {r["disposition"]: r["n"] for r in store.query(
        "SELECT disposition, count(*) AS n FROM attempts WHERE campaign=? AND placed_at>=? AND placed_at<?"
        " AND disposition IS NOT NULL GROUP BY disposition", (campaign, lo, hi))}
    promises = store.query(
        "SELECT p.amount, p.status, a.amount_owed FROM promises p JOIN attempts t ON t.id = p.call_id"
        " LEFT JOIN accounts a ON a.account_id = p.account_id"
        " WHERE t.campaign=? AND t.placed_at>=? AND t.placed_at<?", (campaign, lo, hi))
    promised = sum((Decimal(p["amount"] or p["amount_owed"] or "0") for p in promises), Decimal("0"))
    owed = store.query_one(
        "SELECT a.currency, group_concat(a.amount_owed, '|') AS amounts FROM accounts a JOIN debtors d"
        " ON d.debtor_id = a.debtor_id WHERE d.campaign=? GROUP BY a.currency ORDER BY count(*) DESC LIMIT 1",
        (campaign,))
    owed_total = sum((Decimal(x) for x in (owed["amounts"].split("|") if owed and owed["amounts"] else [])),
                     Decimal("0"))
    paid = store.query(
        "SELECT p.amount FROM payments p JOIN accounts a ON a.account_id = p.account_id"
        " JOIN debtors d ON d.debtor_id = a.debtor_id WHERE d.campaign=?"
        " AND NOT EXISTS (SELECT 1 FROM payment_reversals r WHERE r.payment_id = p.id)", (campaign,))
    paid_total = sum((Decimal(p["amount"]) for p in paid), Decimal("0"))
    balance_total = owed_total
    owed_total = balance_total + paid_total  # balances are current (payments settle them): owed = placed
    blocks = {r["rule_id"]: r["n"] for r in store.query(
        "SELECT rule_id, count(*) AS n FROM gate_blocks WHERE campaign=? AND at>=? AND at<? GROUP BY rule_id",
        (campaign, lo, hi))}
    qa = store.query(
        "SELECT q.score, q.violations_json FROM qa_results q JOIN attempts t ON t.id = q.call_id"
        " WHERE t.campaign=? AND t.placed_at>=? AND t.placed_at<?"
        " AND q.id = (SELECT max(id) FROM qa_results WHERE call_id = q.call_id)", (campaign, lo, hi))
    return {
        "dials": a["dials"] or 0, "answered": a["answered"] or 0, "machines": a["machines"] or 0,
        "abandoned": a["abandoned"] or 0, "right_party_contacts": a["rpc"] or 0, "inbound": a["inbound"] or 0,
        "debtors_dialled": a["debtors_dialled"] or 0, "to_collector": a["to_collector"] or 0,
        "outcomes": outcomes, "dispositions": dispositions,
        "promises": len(promises), "promises_kept": sum(1 for p in promises if p["status"] == "kept"),
        "promised_amount": str(promised), "owed_amount": str(owed_total), "paid_amount": str(paid_total),
        "balance_amount": str(balance_total),
        "currency": owed["currency"] if owed else None,
        "gate_blocks": blocks, "qa_scores": [r["score"] for r in qa], "qa_violation_json": [r["violations_json"] for r in qa],
    }


def debtor_calls(store: Store, campaign: str) -> list[dict[str, Any]]:
    """Every debtor of a campaign with each of its attempts (one row per attempt; a debtor never
    called has one row with call_id None), oldest attempt first."""
    rows = store.query(
        "SELECT d.debtor_id, d.name, d.status, t.id AS call_id, t.phone, t.outcome, t.disposition, t.agent,"
        " t.conversation FROM debtors d LEFT JOIN attempts t ON t.debtor_id = d.debtor_id"
        " WHERE d.campaign = ? ORDER BY d.debtor_id, t.placed_at", (campaign,))
    return [dict(r) for r in rows]


def screen_pops(store: Store) -> list[dict[str, Any]]:
    """Every screen pop in order: agent, debtor_id and the stored context."""
    return [{"agent": r["agent"], "debtor_id": r["debtor_id"], "context": json.loads(r["context_json"])}
            for r in store.query("SELECT agent, debtor_id, context_json FROM screen_pops ORDER BY id")]


def attempt_rows(store: Store, since: float, until: float, campaigns: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per attempt placed in [since, until): its times and facts, the debtor's segment, the
    promise made on it (amount, status) and the latest QA result (score, violations)."""
    where, args = "t.placed_at >= ? AND t.placed_at < ?", [since, until]
    if campaigns:
        where += f" AND t.campaign IN ({','.join('?' * len(campaigns))})"
        args += list(campaigns)
    rows = store.query(
        "SELECT t.id, t.campaign, d.segment, t.agent, t.placed_at, t.answered_at, t.ended_at, t.outcome,"
        " t.disposition, t.machine, t.abandoned, t.conversation, t.inbound, t.debtor_id,"
        " (SELECT count(*) FROM promises p WHERE p.call_id = t.id) AS promises,"
        " (SELECT group_concat(coalesce(p.amount, a.amount_owed), '|') FROM promises p"
        "   LEFT JOIN accounts a ON a.account_id = p.account_id WHERE p.call_id = t.id) AS promised,"
        " (SELECT count(*) FROM promises p WHERE p.call_id = t.id AND p.status = 'kept') AS kept,"
        " q.score AS qa_score, q.violations_json AS qa_violations"
        " FROM attempts t JOIN debtors d ON d.debtor_id = t.debtor_id"
        " LEFT JOIN qa_results q ON q.id = (SELECT max(id) FROM qa_results WHERE call_id = t.id)"
        f" WHERE {where} ORDER BY t.placed_at", tuple(args))
    return [dict(r) for r in rows]


def payment_rows(store: Store, campaigns: list[str] | None = None) -> list[dict[str, Any]]:
    """Every payment with the campaign of its debtor (paid_at is the lender's ISO date)."""
    where, args = "", ()
    if campaigns:
        where, args = f" WHERE d.campaign IN ({','.join('?' * len(campaigns))})", tuple(campaigns)
    return [dict(r) for r in store.query(
        "SELECT d.campaign, p.paid_at, p.amount, p.currency FROM payments p JOIN accounts a ON a.account_id ="
        f" p.account_id JOIN debtors d ON d.debtor_id = a.debtor_id{where} ORDER BY p.paid_at", args)]


def block_rows(store: Store, since: float, until: float, campaigns: list[str] | None = None) -> list[dict[str, Any]]:
    """Gate refusals in [since, until): when, campaign, rule."""
    where, args = "at >= ? AND at < ?", [since, until]
    if campaigns:
        where += f" AND campaign IN ({','.join('?' * len(campaigns))})"
        args += list(campaigns)
    return [dict(r) for r in store.query(f"SELECT at, campaign, rule_id FROM gate_blocks WHERE {where}", tuple(args))]


def cease_rows(store: Store, since: float, until: float) -> list[dict[str, Any]]:
    """Cease-contact requests made in [since, until), with the debtor's campaign."""
    return [dict(r) for r in store.query(
        "SELECT c.created_at, d.campaign FROM contact_requests c JOIN debtors d ON d.debtor_id = c.debtor_id"
        " WHERE c.kind = 'cease' AND c.created_at >= ? AND c.created_at < ?", (since, until))]


def campaign_profiles(store: Store) -> dict[str, str]:
    """Campaign name → compliance profile."""
    return {r["name"]: r["profile"] for r in store.query("SELECT name, profile FROM campaigns")}


def attempt_span(store: Store) -> tuple[float | None, float | None]:
    """When the first and the last attempt were placed (None, None in an empty store)."""
    r = store.query_one("SELECT min(placed_at) AS lo, max(placed_at) AS hi FROM attempts")
    return (r["lo"], r["hi"]) if r else (None, None)
