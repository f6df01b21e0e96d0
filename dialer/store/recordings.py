"""Recording rows (one per leg file of a call) and their audit entries, written in one transaction each.

Audit entries (subject = call id): `qa.recording` {path, sha256, leg, bytes} when a file is sealed at
hang-up (re-hashed by `dialer audit verify`); `recording.pruned` {path, sha256, leg, sealed_seq,
retention_days, reason} when retention let it go; `recording.played` / `recording.exported` {leg, path, to?}
for every access by a person.
"""
from __future__ import annotations

import time
from typing import Any, Iterable, Mapping

from dialer.store import Conn, Store, conn_of, tx
from dialer.store.audit import audit


def call_facts(store: Store | Conn, call_id: str) -> dict[str, Any] | None:
    """What a recording's metadata says about its call: campaign, debtor, collector, start, end."""
    r = conn_of(store).execute(
        "SELECT a.id AS call_id, a.campaign, a.debtor_id, a.agent, a.placed_at, a.answered_at, a.ended_at,"
        " a.state, c.profile FROM attempts a LEFT JOIN campaigns c ON c.name = a.campaign WHERE a.id = ?",
        (call_id,)).fetchone()
    return dict(r) if r else None


def sealed_legs(store: Store | Conn, call_id: str) -> set[str]:
    return {r[0] for r in conn_of(store).execute("SELECT leg FROM recordings WHERE call_id = ?", (call_id,))}


def seal(store: Store | Conn, call_id: str, legs: Iterable[Mapping[str, Any]], facts: Mapping[str, Any] | None,
         *, actor: str = "dialer", at: float | None = None) -> list[int]:
    """Record each leg file (leg, path, sha256, bytes, seconds) and its hash in the audit log, atomically.
    A leg already sealed is left as it is. Returns the audit seqs written."""
    now = time.time() if at is None else float(at)
    facts = dict(facts or {})
    seqs: list[int] = []
    with tx(store) as conn:
        done = sealed_legs(conn, call_id)
        for leg in legs:
            if leg["leg"] in done:
                continue
            seq = audit(conn, actor, "qa.recording", call_id,
                        {"path": str(leg["path"]), "sha256": leg["sha256"], "leg": leg["leg"], "bytes": leg["bytes"]},
                        now)
            conn.execute(
                "INSERT INTO recordings(call_id, leg, path, sha256, bytes, seconds, campaign, debtor_id, agent,"
                " profile, started_at, sealed_at, audit_seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (call_id, leg["leg"], str(leg["path"]), leg["sha256"], int(leg["bytes"]), float(leg["seconds"]),
                 facts.get("campaign"), facts.get("debtor_id"), facts.get("agent"), facts.get("profile"),
                 facts.get("placed_at"), now, seq))
            seqs.append(seq)
    return seqs


def recordings_for(store: Store | Conn, call_id: str) -> list[dict[str, Any]]:
    rows = conn_of(store).execute("SELECT * FROM recordings WHERE call_id = ? ORDER BY id", (call_id,))
    return [dict(r) for r in rows]


def list_recordings(store: Store | Conn, *, since: float | None = None, until: float | None = None,
                    include_pruned: bool = False, limit: int | None = None) -> list[dict[str, Any]]:
    sql, args = "SELECT * FROM recordings WHERE 1=1", []
    if since is not None:
        sql += " AND started_at >= ?"
        args.append(since)
    if until is not None:
        sql += " AND started_at < ?"
        args.append(until)
    if not include_pruned:
        sql += " AND pruned_at IS NULL"
    sql += " ORDER BY started_at, call_id, id"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(int(limit))
    return [dict(r) for r in conn_of(store).execute(sql, args)]


def ended_calls_without_recordings(store: Store | Conn, *, since: float | None = None) -> list[str]:
    """Ended, answered calls with no sealed leg yet (sealing was interrupted, or the files never came)."""
    sql = ("SELECT a.id FROM attempts a WHERE a.state = 'ended' AND a.answered_at IS NOT NULL"
           " AND NOT EXISTS (SELECT 1 FROM recordings r WHERE r.call_id = a.id)")
    args: list[Any] = []
    if since is not None:
        sql += " AND a.placed_at >= ?"
        args.append(since)
    return [r[0] for r in conn_of(store).execute(sql + " ORDER BY a.placed_at", args)]


def mark_pruned(store: Store | Conn, rec: Mapping[str, Any], *, retention_days: float, reason: str,
                actor: str = "operator", at: float | None = None) -> int:
    """Write a leg's deletion to the audit log and the row, in one transaction (before the file goes)."""
    now = time.time() if at is None else float(at)
    with tx(store) as conn:
        seq = audit(conn, actor, "recording.pruned", rec["call_id"],
                    {"path": rec["path"], "sha256": rec["sha256"], "leg": rec["leg"], "sealed_seq": rec["audit_seq"],
                     "retention_days": retention_days, "reason": reason}, now)
        conn.execute("UPDATE recordings SET pruned_at = ? WHERE id = ?", (now, rec["id"]))
    return seq


def record_access(store: Store | Conn, call_id: str, kind: str, leg: str, path: str, *, actor: str,
                  to: str | None = None, at: float | None = None) -> int:
    """Audit a person's playback or export of one leg (who, when, which call)."""
    assert kind in ("played", "exported")
    payload: dict[str, Any] = {"leg": leg, "path": path}
    if to is not None:
        payload["to"] = to
    return audit(store, actor, f"recording.{kind}", call_id, payload, time.time() if at is None else float(at))


def pruned_paths(store: Store | Conn) -> dict[str, int]:
    """path → seq of its `recording.pruned` audit entry."""
    import json

    out: dict[str, int] = {}
    for r in conn_of(store).execute("SELECT seq, payload_json FROM audit_log WHERE kind = 'recording.pruned'"):
        out[json.loads(r[1]).get("path", "")] = r[0]
    return out


# -- transcripts of recorded legs (dialer/qa/transcribe.py) ------------------------------------------

def transcribe_facts(store: Store | Conn, call_id: str) -> dict[str, Any] | None:
    """What a transcript of a recorded call needs: campaign profile, locale and institution, the debtor's
    zone and number, the collector, the placed time."""
    r = conn_of(store).execute(
        "SELECT a.id AS call_id, a.campaign, a.debtor_id, a.agent, a.phone, a.placed_at, c.profile, c.locale,"
        " c.config_json, d.timezone FROM attempts a LEFT JOIN campaigns c ON c.name = a.campaign"
        " LEFT JOIN debtors d ON d.debtor_id = a.debtor_id WHERE a.id = ?", (call_id,)).fetchone()
    return dict(r) if r else None


def calls_to_transcribe(store: Store | Conn, legs: tuple[str, ...], *, since: float | None = None) -> list[str]:
    """Calls with every one of `legs` sealed and not pruned, and no saved transcript yet, oldest first."""
    marks = ",".join("?" * len(legs))
    sql = (f"SELECT call_id FROM recordings WHERE leg IN ({marks}) AND pruned_at IS NULL"
           " AND call_id NOT IN (SELECT call_id FROM transcripts)")
    args: list[Any] = list(legs)
    if since is not None:
        sql += " AND started_at >= ?"
        args.append(since)
    sql += f" GROUP BY call_id HAVING COUNT(DISTINCT leg) = {len(legs)} ORDER BY MIN(started_at), call_id"
    return [r[0] for r in conn_of(store).execute(sql, args)]


def leg_transcripts(store: Store | Conn, call_id: str) -> dict[str, dict[str, Any]]:
    import json

    out = {}
    for r in conn_of(store).execute("SELECT * FROM leg_transcripts WHERE call_id = ?", (call_id,)):
        out[r["leg"]] = dict(r) | {"turns": json.loads(r["turns_json"])}
    return out


def save_leg_transcript(store: Store | Conn, call_id: str, leg: str, speaker: str, turns: list[dict[str, Any]], *,
                        audio_seconds: float, speech_seconds: float, cpu_seconds: float, recording_sha256: str,
                        backend: str, at: float) -> None:
    import json

    with tx(store) as conn:
        conn.execute(
            "INSERT INTO leg_transcripts(call_id, leg, speaker, turns_json, audio_seconds, speech_seconds,"
            " cpu_seconds, recording_sha256, backend, transcribed_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (call_id, leg, speaker, json.dumps(turns, ensure_ascii=False), audio_seconds, speech_seconds,
             cpu_seconds, recording_sha256, backend, at))


# -- live alerts (dialer/qa/live.py) ---------------------------------------------------------------

def record_live_alert(store: Store | Conn, alert: Mapping[str, Any], *, at: float) -> int:
    """Store one live alert and audit it, in one transaction; returns the row id."""
    with tx(store) as conn:
        seq = audit(conn, "live-qa", "qa.live_alert", alert["call_id"],
                    {k: alert.get(k) for k in ("agent", "rule", "policy", "evidence", "confidence", "latency")}, at)
        cur = conn.execute(
            "INSERT INTO live_alerts(call_id, agent, rule, policy, evidence, confidence, phrase_start, phrase_end,"
            " latency, raised_at, action, audit_seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (alert["call_id"], alert.get("agent"), alert["rule"], alert["policy"], alert["evidence"],
             alert.get("confidence"), alert["phrase_start"], alert["phrase_end"], alert["latency"], at,
             alert.get("action"), seq))
        return int(cur.lastrowid)


def set_live_alert_action(store: Store | Conn, alert_id: int, action: str) -> None:
    with tx(store) as conn:
        conn.execute("UPDATE live_alerts SET action = ? WHERE id = ?", (action, alert_id))


def live_alerts(store: Store | Conn, call_id: str | None = None) -> list[dict[str, Any]]:
    sql, args = "SELECT * FROM live_alerts", []
    if call_id is not None:
        sql += " WHERE call_id = ?"
        args.append(call_id)
    return [dict(r) for r in conn_of(store).execute(sql + " ORDER BY id", args)]
