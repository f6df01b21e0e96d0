"""Complaints (docs/COMPLAINTS.md): record one, link it to the calls that could be its cause, open and close its QA
review, the coaching list, the contact hold, and the figures the report shows. Each write is one transaction with
its audit entry and its outbox event. What a complaint means (categories, which ones hold) is decided in
dialer/qa/complaints.py; this only stores."""
from __future__ import annotations

import json
import time
from typing import Any, Mapping

from common.log import mask_phone
from dialer.campaign.imports import SuppressionRow
from dialer.store import Conn, Store, conn_of, tx
from dialer.store.audit import audit
from dialer.store.outbox import outbox_add
from dialer.store.suppression import import_suppressions, remove_suppression

DAY = 86400.0


class ComplaintStoreError(ValueError):
    """A complaint the store refuses (unknown debtor, no such complaint, review not open, ...); `field` names it."""

    def __init__(self, field: str, message: str, status: int = 400):
        super().__init__(f"{field}: {message}")
        self.field, self.status = field, status


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t))


def _debtor_for_phone(conn: Conn, phone: str) -> str | None:
    rows = conn.execute("SELECT debtor_id FROM phones WHERE phone=? UNION SELECT debtor_id FROM contacts WHERE phone=?"
                        " UNION SELECT debtor_id FROM attempts WHERE phone=? ORDER BY debtor_id",
                        (phone, phone, phone)).fetchall()
    return rows[0][0] if len(rows) == 1 else None


def complaint_subject(conn: Store | Conn, debtor_id: str | None, phone: str | None) -> dict[str, Any]:
    """Who a complaint is about: {debtor_id (given, else found from the number), campaign, profile, timezone,
    phone (the debtor's first number, for the zone)}. An unknown debtor is refused (404)."""
    c = conn_of(conn)
    if debtor_id is not None:
        if c.execute("SELECT 1 FROM debtors WHERE debtor_id=?", (debtor_id,)).fetchone() is None:
            raise ComplaintStoreError("debtor_id", f"no debtor {debtor_id!r}", 404)
    elif phone is not None:
        debtor_id = _debtor_for_phone(c, phone)
    out: dict[str, Any] = {"debtor_id": debtor_id, "campaign": None, "profile": None, "timezone": None, "phone": phone}
    if debtor_id is not None:
        d = c.execute("SELECT d.campaign, d.timezone, k.profile FROM debtors d LEFT JOIN campaigns k"
                      " ON k.name=d.campaign WHERE d.debtor_id=?", (debtor_id,)).fetchone()
        out |= {"campaign": d["campaign"], "profile": d["profile"], "timezone": d["timezone"]}
        p = c.execute("SELECT phone FROM phones WHERE debtor_id=? ORDER BY rank, phone LIMIT 1",
                      (debtor_id,)).fetchone()
        out["phone"] = phone or (p[0] if p else None)
    elif phone is not None:
        a = c.execute("SELECT a.campaign, k.profile FROM attempts a LEFT JOIN campaigns k ON k.name=a.campaign"
                      " WHERE a.phone=? ORDER BY a.placed_at DESC, a.id LIMIT 1", (phone,)).fetchone()
        if a is not None:
            out |= {"campaign": a["campaign"], "profile": a["profile"]}
    return out


def linked_calls(conn: Store | Conn, debtor_id: str | None, phone: str | None, received_at: float,
                 window_days: float, *, answered_only: bool = True) -> list[dict[str, Any]]:
    """Calls to the debtor or the number placed in the window before the complaint, newest first: answered ones
    only, or (a complaint about how often we call) every attempt we made too, answered or not."""
    cond, args = [], []
    if debtor_id is not None:
        cond.append("debtor_id=?")
        args.append(debtor_id)
    if phone is not None:
        cond.append("phone=?")
        args.append(phone)
    if not cond:
        return []
    rows = conn_of(conn).execute(
        "SELECT id, debtor_id, phone, campaign, agent, placed_at, answered_at, outcome, inbound FROM attempts"
        f" WHERE ({' OR '.join(cond)})"
        + (" AND answered_at IS NOT NULL" if answered_only else " AND (answered_at IS NOT NULL OR inbound=0)")
        + " AND placed_at>=? AND placed_at<=? ORDER BY placed_at DESC, id",
        (*args, received_at - window_days * DAY, received_at))
    return [dict(r) for r in rows]


def add_complaint(store: Store | Conn, c: Mapping[str, Any], *, calls: list[Mapping[str, Any]],
                  hold_list: str | None, actor: str, now: float | None = None) -> dict[str, Any]:
    """Record a complaint (`c`: the fields of dialer.qa.complaints.Complaint with its debtor resolved, and what the
    profile made of it: profile, severity, due_at, link_scope, attempts), link `calls`, open its review when there
    are any, put it on `hold_list` when given (the debtor, else the number; an entry another complaint put is
    shared, and stays until every complaint holding it is released), and raise `complaint.received`."""
    at = time.time() if now is None else float(now)
    with tx(store) as conn:
        debtor_id, phone = c.get("debtor_id"), c.get("phone")
        status = "review" if calls else "no_calls"
        cur = conn.execute(
            "INSERT INTO complaints(received_at, recorded_at, channel, category, debtor_id, phone, text, reference,"
            " recorded_by, window_days, status, audit_seq, profile, severity, due_at, link_scope, attempts_json)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,0,?,?,?,?,?)",
            (c["received_at"], at, c["channel"], c["category"], debtor_id, phone, c["text"], c.get("reference"),
             actor, c["window_days"], status, c.get("profile"), c.get("severity"), c.get("due_at"),
             c.get("link_scope", "answered"),
             json.dumps(c["attempts"], sort_keys=True) if c.get("attempts") is not None else None))
        cid = int(cur.lastrowid)
        for call in calls:
            conn.execute("INSERT INTO complaint_calls(complaint_id, call_id, agent, campaign, placed_at)"
                         " VALUES (?,?,?,?,?)", (cid, call["id"], call["agent"], call["campaign"], call["placed_at"]))
        if calls:
            conn.execute("INSERT INTO complaint_reviews(complaint_id, opened_at, status) VALUES (?,?,'open')",
                         (cid, at))
        hold = None
        if hold_list is not None and (debtor_id is not None or phone is not None):
            kind, key = ("debtor", debtor_id) if debtor_id is not None else ("phone", phone)
            since = float(c["received_at"])  # in force from when the complaint came in
            row = SuppressionRow(row=0, list=hold_list, key_kind=kind, key=key, effective=_iso(since),
                                 effective_at=since,
                                 source=f"complaint {cid}", note=f"{c['category']} complaint via {c['channel']}",
                                 file="complaint")
            import_suppressions(conn, [row], hold_list, at, actor=actor, file="complaint")
            hid = conn.execute("SELECT id FROM suppressions WHERE list=? AND key_kind=? AND key=?"
                               " AND removed_at IS NULL", (hold_list, kind, key)).fetchone()[0]
            conn.execute("UPDATE complaints SET hold_id=? WHERE id=?", (hid, cid))
            hold = {"list": hold_list, "by": kind, "key": mask_phone(key) if kind == "phone" else key}
        payload = {"complaint_id": cid, "channel": c["channel"], "category": c["category"], "debtor_id": debtor_id,
                   "phone": mask_phone(phone) if phone else None, "received_at": c["received_at"],
                   "reference": c.get("reference"), "calls": [x["id"] for x in calls],
                   "review_opened": bool(calls), "hold": hold, "severity": c.get("severity"),
                   "due_at": c.get("due_at"), "link_scope": c.get("link_scope", "answered")}
        seq = audit(conn, actor, "complaint.received", str(cid), payload | {"text": c["text"]}, at)
        conn.execute("UPDATE complaints SET audit_seq=? WHERE id=?", (seq, cid))
        outbox_add(conn, "complaint.received", payload, subject=debtor_id or str(cid), at=at)
        return get_complaint(conn, cid)  # type: ignore[return-value]


def _rule_on_call(conn: Conn, call_id: str, category: str) -> str:
    """The rule a substantiated complaint is booked under when the reviewer names none: the call's latest QA
    violation, else its live alert, else `complaint.<category>`."""
    r = conn.execute("SELECT violations_json FROM qa_results WHERE call_id=? ORDER BY id DESC LIMIT 1",
                     (call_id,)).fetchone()
    rules = sorted({v["rule"] for v in json.loads(r[0])}) if r else []
    if not rules:
        rules = [a[0] for a in conn.execute("SELECT rule FROM live_alerts WHERE call_id=? ORDER BY id", (call_id,))]
    return rules[0] if rules else f"complaint.{category}"


def _owner(conn: Conn, campaign: str | None) -> str:
    """The campaign's owner (`owner:` in its YAML), else a name for the campaign's owner."""
    r = conn.execute("SELECT config_json FROM campaigns WHERE name=?", (campaign,)).fetchone() if campaign else None
    owner = json.loads(r[0]).get("owner") if r else None
    return str(owner) if owner else f"owner of {campaign or 'no campaign'}"


def close_review(store: Store | Conn, complaint_id: int, finding: str, *, reviewer: str, call_id: str | None = None,
                 rule: str | None = None, note: str | None = None, responsible: str | None = None,
                 now: float | None = None) -> dict[str, Any]:
    """Close the open review of a complaint. `substantiated` holds someone responsible: the collector of `call_id`
    (default: the only collector among the linked calls), who goes on the coaching list; or, when no collector was
    on the line (bot calls, unanswered attempts) or `responsible="owner"`, the campaign's owner, whose entry on the
    list is marked `campaign_owner`. Raises `complaint.reviewed`."""
    at = time.time() if now is None else float(now)
    with tx(store) as conn:
        comp = conn.execute("SELECT * FROM complaints WHERE id=?", (complaint_id,)).fetchone()
        if comp is None:
            raise ComplaintStoreError("complaint_id", f"no complaint {complaint_id}", 404)
        review = conn.execute("SELECT status FROM complaint_reviews WHERE complaint_id=?", (complaint_id,)).fetchone()
        if review is None:
            raise ComplaintStoreError("complaint_id", f"complaint {complaint_id} has no review (no linked calls)", 409)
        if review[0] != "open":
            raise ComplaintStoreError("complaint_id", f"the review of complaint {complaint_id} is already closed", 409)
        calls = [dict(r) for r in conn.execute(
            "SELECT k.call_id, k.agent, k.campaign, k.placed_at, a.answered_at FROM complaint_calls k LEFT JOIN"
            " attempts a ON a.id=k.call_id WHERE k.complaint_id=? ORDER BY k.placed_at DESC, k.call_id",
            (complaint_id,))]
        for x in calls:  # a collector is on the line of an answered call only
            x["agent"] = x["agent"] if x["answered_at"] is not None else None
        agent = None
        agents = sorted({x["agent"] for x in calls if x["agent"]})
        if call_id is not None:
            match = [x for x in calls if x["call_id"] == call_id]
            if not match:
                shown = ", ".join(x["call_id"] for x in calls[:10]) + (", …" if len(calls) > 10 else "")
                raise ComplaintStoreError("call_id", f"call {call_id} is not linked to complaint {complaint_id} "
                                                     f"(linked: {shown})")
            agent = match[0]["agent"]
            if responsible == "collector" and agent is None:
                raise ComplaintStoreError("responsible", f"call {call_id} had no collector on the line")
        elif finding == "substantiated" and responsible != "owner":
            if len(agents) > 1 or (responsible == "collector" and not agents):
                raise ComplaintStoreError("call_id", "name the call the finding is about: the linked calls have "
                                          + (f"{len(agents)} collectors ({', '.join(agents)})" if agents
                                             else "no collector"))
            if agents:
                call_id = next(x["call_id"] for x in calls if x["agent"] == agents[0])
                agent = agents[0]
        if finding != "substantiated":
            responsible = None
        elif responsible is None:
            responsible = "collector" if agent else "owner"
        if responsible == "owner":
            agent = None
        campaign = next((x["campaign"] for x in calls if x["call_id"] == call_id), None) or \
            (calls[0]["campaign"] if calls else None)
        owner = _owner(conn, campaign) if responsible == "owner" else None
        if finding == "substantiated" and rule is None:
            if responsible == "owner":
                pattern = json.loads(comp["attempts_json"]) if comp["attempts_json"] else {}
                held = pattern.get("held") or {}
                broken = [k for k in ("cap.daily", "cap.number_daily", "cap.7in7") if held.get(k) is False]
                rule = broken[0] if broken else f"complaint.{comp['category']}"
            elif call_id is not None:
                rule = _rule_on_call(conn, call_id, comp["category"])
        payload = {"complaint_id": complaint_id, "finding": finding, "call_id": call_id, "agent": agent,
                   "rule": rule, "category": comp["category"], "channel": comp["channel"],
                   "debtor_id": comp["debtor_id"], "responsible": responsible, "owner": owner, "campaign": campaign,
                   "coaching": bool(responsible), "late": bool(comp["due_at"] is not None and at > comp["due_at"])}
        seq = audit(conn, reviewer, "complaint.reviewed", str(complaint_id), payload | {"note": note}, at)
        conn.execute("UPDATE complaint_reviews SET status='closed', finding=?, call_id=?, agent=?, rule=?, note=?,"
                     " reviewer=?, closed_at=?, audit_seq=?, responsible=? WHERE complaint_id=?",
                     (finding, call_id, agent, rule, note, reviewer, at, seq, responsible, complaint_id))
        conn.execute("UPDATE complaints SET status='reviewed' WHERE id=?", (complaint_id,))
        if responsible:
            conn.execute("INSERT INTO coaching(agent, complaint_id, call_id, rule, note, added_at, added_by, kind,"
                         " campaign) VALUES (?,?,?,?,?,?,?,?,?)",
                         (agent or owner, complaint_id, call_id, rule, note, at, reviewer,
                          "collector" if responsible == "collector" else "campaign_owner", campaign))
        outbox_add(conn, "complaint.reviewed", payload, subject=comp["debtor_id"] or str(complaint_id), at=at)
        return get_complaint(conn, complaint_id)  # type: ignore[return-value]


def release_hold(store: Store | Conn, complaint_id: int, *, by: str, reason: str,
                 now: float | None = None) -> dict[str, Any]:
    """Release a complaint's contact hold (audited; raises `complaint.hold_released`). The list entry is lifted only
    when no other complaint still holds it (two complaints about one debtor share one entry)."""
    if not reason or not reason.strip():
        raise ComplaintStoreError("reason", "a release needs a reason (it is kept in the audit log)")
    at = time.time() if now is None else float(now)
    with tx(store) as conn:
        comp = conn.execute("SELECT * FROM complaints WHERE id=?", (complaint_id,)).fetchone()
        if comp is None:
            raise ComplaintStoreError("complaint_id", f"no complaint {complaint_id}", 404)
        h = conn.execute("SELECT * FROM suppressions WHERE id=?", (comp["hold_id"],)).fetchone() \
            if comp["hold_id"] else None
        if h is None:
            raise ComplaintStoreError("complaint_id", f"complaint {complaint_id} put no hold", 404)
        if comp["hold_released_at"] is not None:
            raise ComplaintStoreError("complaint_id", f"the hold of complaint {complaint_id} is already released", 409)
        conn.execute("UPDATE complaints SET hold_released_at=?, hold_released_by=?, hold_release_reason=? WHERE id=?",
                     (at, by, reason, complaint_id))
        others = [r[0] for r in conn.execute("SELECT id FROM complaints WHERE hold_id=? AND id<>? AND"
                                             " hold_released_at IS NULL ORDER BY id", (h["id"], complaint_id))]
        lifted = False
        if h["removed_at"] is None and not others and str(h["source"]).startswith("complaint"):
            remove_suppression(conn, h["list"], h["key_kind"], h["key"], actor=by, reason=reason, now=at)
            lifted = True
        elif h["removed_at"] is None and others:  # the gate's reason names a complaint that still holds
            conn.execute("UPDATE suppressions SET source=? WHERE id=?", (f"complaint {others[0]}", h["id"]))
        audit(conn, by, "complaint.hold_released", str(complaint_id),
              {"hold_id": h["id"], "reason": reason, "lifted": lifted, "still_held_by": others}, at)
        outbox_add(conn, "complaint.hold_released", {"complaint_id": complaint_id, "list": h["list"], "by": by,
                                                     "reason": reason, "debtor_id": comp["debtor_id"],
                                                     "lifted": lifted, "still_held_by": others},
                   subject=comp["debtor_id"] or str(complaint_id), at=at)
        return get_complaint(conn, complaint_id)  # type: ignore[return-value]


_FIELDS = ("id", "received_at", "recorded_at", "channel", "category", "debtor_id", "phone", "text", "reference",
           "recorded_by", "window_days", "status", "hold_id", "profile", "severity", "due_at", "link_scope")


def _complaint(r: Mapping[str, Any]) -> dict[str, Any]:
    return {k: r[k] for k in _FIELDS}


def get_complaint(store: Store | Conn, complaint_id: int, *, evidence: bool = False) -> dict[str, Any] | None:
    """One complaint with its linked calls, review and hold. `evidence` adds to each call what the reviewer
    opens: its recordings (per leg, with hash), transcripts (the bot's or imported one, and each leg's ASR
    turns), live alerts and latest QA score. A frequency complaint carries `attempts`: its attempts per local day
    and per 7 days against the profile's caps."""
    c = conn_of(store)
    r = c.execute("SELECT * FROM complaints WHERE id=?", (int(complaint_id),)).fetchone()
    if r is None:
        return None
    out = _complaint(r)
    out["attempts"] = json.loads(r["attempts_json"]) if r["attempts_json"] else None
    out["calls"] = [dict(x) for x in c.execute(
        "SELECT k.call_id, k.agent, k.campaign, k.placed_at, a.answered_at, a.outcome FROM complaint_calls k"
        " LEFT JOIN attempts a ON a.id=k.call_id WHERE k.complaint_id=? ORDER BY k.placed_at DESC, k.call_id",
        (r["id"],))]
    rev = c.execute("SELECT * FROM complaint_reviews WHERE complaint_id=?", (r["id"],)).fetchone()
    out["review"] = None if rev is None else {k: rev[k] for k in (
        "status", "opened_at", "finding", "call_id", "agent", "rule", "note", "reviewer", "closed_at", "responsible")}
    if rev is not None and rev["responsible"] == "owner":
        k = c.execute("SELECT agent, campaign FROM coaching WHERE complaint_id=? AND kind='campaign_owner'"
                      " ORDER BY id LIMIT 1", (r["id"],)).fetchone()
        out["review"] |= {"owner": k[0] if k else None, "campaign": k[1] if k else None}
    h = c.execute("SELECT * FROM suppressions WHERE id=?", (r["hold_id"],)).fetchone() if r["hold_id"] else None
    out["hold"] = None if h is None else {
        "list": h["list"], "by": h["key_kind"], "key": mask_phone(h["key"]) if h["key_kind"] == "phone" else h["key"],
        "since": h["effective"], "released_at": r["hold_released_at"], "released_by": r["hold_released_by"],
        "release_reason": r["hold_release_reason"], "in_force": h["removed_at"] is None,
        "held_by": [x[0] for x in c.execute("SELECT id FROM complaints WHERE hold_id=? AND hold_released_at IS NULL"
                                            " ORDER BY id", (h["id"],))] if h["removed_at"] is None else []}
    if evidence:
        for call in out["calls"]:
            cid = call["call_id"]
            call["recordings"] = [dict(x) for x in c.execute("SELECT leg, path, sha256, seconds, pruned_at FROM"
                                                             " recordings WHERE call_id=? ORDER BY id", (cid,))]
            call["transcript"] = [{"speaker": t["speaker"], "text": t["text"]} for t in c.execute(
                "SELECT speaker, text FROM transcript_turns WHERE call_id=? ORDER BY idx", (cid,))]
            call["leg_transcripts"] = {x["leg"]: json.loads(x["turns_json"]) for x in c.execute(
                "SELECT leg, turns_json FROM leg_transcripts WHERE call_id=? ORDER BY leg", (cid,))}
            call["live_alerts"] = [{"rule": a["rule"], "evidence": a["evidence"], "action": a["action"]}
                                   for a in c.execute("SELECT * FROM live_alerts WHERE call_id=? ORDER BY id", (cid,))]
            q = c.execute("SELECT score, violations_json FROM qa_results WHERE call_id=? ORDER BY id DESC LIMIT 1",
                          (cid,)).fetchone()
            call["qa"] = None if q is None else {"score": q[0], "rules": sorted({v["rule"] for v in json.loads(q[1])})}
    return out


def list_complaints(store: Store | Conn, *, status: str | None = None, debtor_id: str | None = None,
                    since: float | None = None, overdue_at: float | None = None,
                    limit: int = 1000) -> list[dict[str, Any]]:
    """Complaints received since `since`, oldest first; `overdue_at`: only those whose review is still open past
    its due time at that moment."""
    sql, args = "SELECT * FROM complaints WHERE 1=1", []
    for col, val in (("status", status), ("debtor_id", debtor_id)):
        if val is not None:
            sql += f" AND {col}=?"
            args.append(val)
    if since is not None:
        sql += " AND received_at>=?"
        args.append(float(since))
    if overdue_at is not None:
        sql += " AND status='review' AND due_at IS NOT NULL AND due_at<?"
        args.append(float(overdue_at))
    c = conn_of(store)
    out = []
    for r in c.execute(sql + " ORDER BY received_at, id LIMIT ?", (*args, int(limit))).fetchall():
        d = _complaint(r)
        d["calls"] = [x[0] for x in c.execute("SELECT call_id FROM complaint_calls WHERE complaint_id=?"
                                              " ORDER BY placed_at DESC, call_id", (r["id"],))]
        rev = c.execute("SELECT status, finding, agent, rule, responsible, closed_at FROM complaint_reviews"
                        " WHERE complaint_id=?", (r["id"],)).fetchone()
        d["review"] = dict(rev) if rev else None
        out.append(d)
    return out


def open_reviews(store: Store | Conn) -> list[dict[str, Any]]:
    """The open complaint reviews as QA review-queue items (oldest complaint first): one per answered linked call;
    a review of unanswered attempts only (how often we called) is one item, on its latest attempt."""
    rows = [dict(r) for r in conn_of(store).execute(
        "SELECT c.id, c.channel, c.category, c.text, c.severity, c.due_at, v.opened_at, k.call_id, a.answered_at"
        " FROM complaint_reviews v JOIN complaints c ON c.id=v.complaint_id JOIN complaint_calls k ON"
        " k.complaint_id=c.id LEFT JOIN attempts a ON a.id=k.call_id"
        " WHERE v.status='open' ORDER BY v.opened_at, c.id, k.placed_at DESC, k.call_id")]
    out, answered = [], {r["id"] for r in rows if r["answered_at"] is not None}
    seen: set[int] = set()
    for r in rows:
        if r["answered_at"] is not None or (r["id"] not in answered and r["id"] not in seen):
            out.append(r)
            seen.add(r["id"])
    return out


def coaching_list(store: Store | Conn, *, agent: str | None = None, include_done: bool = False) -> list[dict[str, Any]]:
    sql, args = ("SELECT k.*, c.category, c.channel FROM coaching k LEFT JOIN complaints c ON c.id=k.complaint_id"
                 " WHERE 1=1"), []
    if agent is not None:
        sql += " AND k.agent=?"
        args.append(agent)
    if not include_done:
        sql += " AND k.done_at IS NULL"
    return [dict(r) for r in conn_of(store).execute(sql + " ORDER BY k.agent, k.added_at, k.id", args)]


def coaching_done(store: Store | Conn, coaching_id: int, *, by: str, note: str | None = None,
                  now: float | None = None) -> None:
    at = time.time() if now is None else float(now)
    with tx(store) as conn:
        r = conn.execute("SELECT agent, done_at FROM coaching WHERE id=?", (coaching_id,)).fetchone()
        if r is None:
            raise ComplaintStoreError("coaching_id", f"no coaching entry {coaching_id}", 404)
        if r[1] is not None:
            raise ComplaintStoreError("coaching_id", f"coaching entry {coaching_id} is already done", 409)
        conn.execute("UPDATE coaching SET done_at=?, done_by=? WHERE id=?", (at, by, coaching_id))
        audit(conn, by, "coaching.done", r[0], {"coaching_id": coaching_id, "note": note}, at)


def complaint_figures(store: Store | Conn, campaign: str, since: float | None = None,
                      until: float | None = None, *, as_of: float | None = None) -> dict[str, Any]:
    """Complaints received in [since, until) about a campaign (through a linked call, else the debtor's campaign),
    with the calls they are measured against: {complaints, calls, by_category, by_severity, by_collector: {agent:
    {complaints, calls}}, by_rule: {rule: substantiated complaints}, against_owner, open_reviews, overdue (reviews
    still open past their due time at `as_of`), closed_late}."""
    c = conn_of(store)
    lo, hi = (since if since is not None else 0.0), (until if until is not None else 1e18)
    at = time.time() if as_of is None else float(as_of)
    calls = c.execute("SELECT count(*) AS n FROM attempts WHERE campaign=? AND placed_at>=? AND placed_at<?",
                      (campaign, lo, hi)).fetchone()[0]
    agent_calls = {r[0]: r[1] for r in c.execute(
        "SELECT agent, count(*) AS n FROM attempts WHERE campaign=? AND agent IS NOT NULL AND placed_at>=?"
        " AND placed_at<? GROUP BY agent", (campaign, lo, hi))}
    rows = c.execute(
        "SELECT c.id, c.category, c.severity, c.due_at, v.status AS review_status, v.finding, v.agent AS found_agent,"
        " v.rule, v.responsible, v.closed_at FROM complaints c"
        " LEFT JOIN complaint_reviews v ON v.complaint_id=c.id WHERE c.received_at>=? AND c.received_at<? AND"
        " (EXISTS (SELECT 1 FROM complaint_calls k WHERE k.complaint_id=c.id AND k.campaign=?) OR"
        " (NOT EXISTS (SELECT 1 FROM complaint_calls k WHERE k.complaint_id=c.id) AND"
        " EXISTS (SELECT 1 FROM debtors d WHERE d.debtor_id=c.debtor_id AND d.campaign=?))) ORDER BY c.id",
        (lo, hi, campaign, campaign)).fetchall()
    by_category: dict[str, int] = {}
    by_severity: dict[str, int] = {}
    by_collector: dict[str, dict[str, int]] = {}
    by_rule: dict[str, int] = {}
    for r in rows:
        by_category[r["category"]] = by_category.get(r["category"], 0) + 1
        if r["severity"]:
            by_severity[r["severity"]] = by_severity.get(r["severity"], 0) + 1
        if r["finding"] == "substantiated":
            by_rule[r["rule"]] = by_rule.get(r["rule"], 0) + 1
        if r["found_agent"]:
            agents = [r["found_agent"]]
        elif r["review_status"] == "closed" and r["responsible"] == "owner":
            agents = []  # the campaign's owner answers for it, no collector
        else:  # not (yet) attributed: every collector on a linked call of this campaign
            agents = [a[0] for a in c.execute(
                "SELECT DISTINCT k.agent FROM complaint_calls k JOIN attempts a ON a.id=k.call_id WHERE"
                " k.complaint_id=? AND k.campaign=? AND k.agent IS NOT NULL AND a.answered_at IS NOT NULL"
                " ORDER BY k.agent", (r["id"], campaign))]
        for a in agents:
            g = by_collector.setdefault(a, {"complaints": 0, "calls": int(agent_calls.get(a, 0))})
            g["complaints"] += 1
    return {"complaints": len(rows), "calls": int(calls), "by_category": by_category, "by_severity": by_severity,
            "by_collector": by_collector, "by_rule": by_rule,
            "substantiated": sum(1 for r in rows if r["finding"] == "substantiated"),
            "against_owner": sum(1 for r in rows if r["responsible"] == "owner"),
            "open_reviews": sum(1 for r in rows if r["review_status"] == "open"),
            "overdue": sum(1 for r in rows if r["review_status"] == "open" and r["due_at"] is not None
                           and r["due_at"] < at),
            "closed_late": sum(1 for r in rows if r["review_status"] == "closed" and r["due_at"] is not None
                               and r["closed_at"] > r["due_at"])}
