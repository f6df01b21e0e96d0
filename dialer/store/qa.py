"""QA queries: transcripts and their searchable turns, scores, appeals and reviews; each write is audited in the same transaction.

Audit entries (kind, subject = call id): `qa.transcript` {sha256, turns, source, lang},
`qa.score` {result_id, score, violations, rules_sha256}, `qa.appeal` {appeal_id, result_id, reason},
`qa.review` {appeal_id, verdict, rules, effective_score, note}.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from common.normalize import normalize_text
from dialer.qa.checker import Result, Transcript, parse_transcript
from dialer.store import Store
from dialer.store.audit import audit

VERDICTS = ("upheld", "overturned")


class QAStoreError(ValueError):
    """A QA operation that cannot be done (unknown call, nothing to appeal, conflicting transcript…)."""


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def transcript_sha256(t: Transcript) -> str:
    return hashlib.sha256(_dumps(t.as_dict()).encode("utf-8")).hexdigest()


def save_transcript(store: Store, transcript: Transcript | Mapping[str, Any], *, source: str = "bot",
                    actor: str = "qa", at: float | None = None) -> str:
    """Store one transcript (docs/CONTRACTS.md shape, plus optional agent/campaign) and audit it; returns its sha256.

    Saving the same transcript again is a no-op; a different transcript for a saved call id is refused
    (a transcript is evidence: it is never silently replaced)."""
    t = transcript if isinstance(transcript, Transcript) else parse_transcript(transcript)
    sha = transcript_sha256(t)
    now = time.time() if at is None else float(at)
    with store.transaction() as conn:
        row = conn.execute("SELECT sha256 FROM transcripts WHERE call_id = ?", (t.call_id,)).fetchone()
        if row is not None:
            if row[0] == sha:
                return sha
            raise QAStoreError(f"call {t.call_id}: a different transcript is already saved (sha256 {row[0][:12]}…)")
        conn.execute(
            "INSERT INTO transcripts(call_id, lang, jurisdiction, started_at, started_epoch, turns_json, agent,"
            " campaign, source, sha256, saved_at, institution) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (t.call_id, t.lang, t.jurisdiction, t.started_at.isoformat(), t.started_at.timestamp(),
             _dumps(t.as_dict()["turns"]), t.agent, t.campaign, source, sha, now, t.institution))
        conn.executemany(
            "INSERT INTO transcript_turns(call_id, idx, speaker, text, norm) VALUES (?,?,?,?,?)",
            [(t.call_id, i, turn.speaker, turn.text, normalize_text(turn.text)) for i, turn in enumerate(t.turns)])
        audit(conn, actor, "qa.transcript", t.call_id,
              {"sha256": sha, "turns": len(t.turns), "source": source, "lang": t.lang}, now)
    return sha


def _transcript(row: Mapping[str, Any]) -> Transcript:
    return parse_transcript({
        "call_id": row["call_id"], "lang": row["lang"], "jurisdiction": row["jurisdiction"],
        "started_at": row["started_at"], "turns": json.loads(row["turns_json"]),
        "agent": row["agent"], "campaign": row["campaign"], "institution": row["institution"]})


def get_transcript(store: Store, call_id: str) -> Transcript | None:
    row = store.query_one("SELECT * FROM transcripts WHERE call_id = ?", (call_id,))
    return _transcript(row) if row else None


def transcript_turns(store: Store, call_id: str) -> list[dict[str, Any]]:
    """The saved turns of a call, in order: [{speaker, text}]."""
    rows = store.query("SELECT speaker, text FROM transcript_turns WHERE call_id=? ORDER BY idx", (call_id,))
    return [dict(r) for r in rows]


def unscored_transcripts(store: Store) -> list[Transcript]:
    rows = store.query("SELECT t.* FROM transcripts t WHERE NOT EXISTS"
                       " (SELECT 1 FROM qa_results r WHERE r.call_id = t.call_id) ORDER BY t.started_epoch, t.call_id")
    return [_transcript(r) for r in rows]


def lexicon_scored_transcripts(store: Store) -> list[Transcript]:
    """Calls whose latest score came from the version-1 lexicon checker (e.g. the daemon's end-of-call
    score) and that were never appealed: what `dialer qa run --rescore-lexicon` scores again with the
    detectors. An appealed call keeps the score its appeal is about."""
    rows = store.query(
        "SELECT t.* FROM transcripts t JOIN qa_results r ON r.call_id = t.call_id"
        " WHERE r.id = (SELECT MAX(id) FROM qa_results x WHERE x.call_id = t.call_id) AND r.engine = 'lexicon'"
        " AND NOT EXISTS (SELECT 1 FROM qa_appeals a WHERE a.call_id = t.call_id)"
        " ORDER BY t.started_epoch, t.call_id")
    return [_transcript(r) for r in rows]


def record_result(store: Store, result: Result, rules_sha256: str, *, actor: str = "qa",
                  at: float | None = None, engine: str = "lexicon") -> int:
    """Save a score (with its needs-review items) and append it to the audit log in one transaction;
    returns the result id."""
    now = time.time() if at is None else float(at)
    violations = [v.as_dict() for v in result.violations]
    review = [r.as_dict() for r in result.review]
    with store.transaction() as conn:
        if conn.execute("SELECT 1 FROM transcripts WHERE call_id = ?", (result.call_id,)).fetchone() is None:
            raise QAStoreError(f"call {result.call_id}: no transcript saved")
        rid = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM qa_results").fetchone()[0]
        seq = audit(conn, actor, "qa.score", result.call_id,
                    {"result_id": rid, "score": result.score, "violations": violations,
                     "rules_sha256": rules_sha256, **({"review": review, "engine": engine} if engine != "lexicon"
                                                      or review else {})}, now)
        conn.execute(
            "INSERT INTO qa_results(id, call_id, scored_at, score, violations_json, rules_sha256, audit_seq,"
            " review_json, engine) VALUES (?,?,?,?,?,?,?,?,?)",
            (rid, result.call_id, now, result.score, _dumps(violations), rules_sha256, seq, _dumps(review), engine))
        from dialer.store.outbox import qa_violation_events

        qa_violation_events(conn, result.call_id, rid, result.score, violations, now)
    return rid


@dataclass(frozen=True)
class StoredResult:
    id: int
    call_id: str
    score: int
    violations: list[dict[str, Any]]
    scored_at: float
    effective_score: int
    status: str  # scored | appealed | upheld | overturned
    standing_rules: frozenset[str]  # rules still held against the call after any review


def latest_result(store: Store, call_id: str) -> StoredResult | None:
    row = store.query_one("SELECT * FROM qa_results WHERE call_id = ? ORDER BY id DESC LIMIT 1", (call_id,))
    if row is None:
        return None
    appeal = store.query_one("SELECT * FROM qa_appeals WHERE result_id = ? ORDER BY id DESC LIMIT 1", (row["id"],))
    violations = json.loads(row["violations_json"])
    standing = frozenset(v["rule"] for v in violations)
    effective, status = row["score"], "scored"
    if appeal is not None:
        status = "appealed" if appeal["status"] == "open" else appeal["status"]
        review = store.query_one("SELECT verdict, rules_json, effective_score FROM qa_reviews WHERE appeal_id = ?"
                                 " ORDER BY id DESC LIMIT 1", (appeal["id"],))
        if review is not None:
            effective = review["effective_score"]
            if review["verdict"] == "overturned":
                dismissed = set(json.loads(review["rules_json"])) or set(standing)
                standing = standing - dismissed
    return StoredResult(id=row["id"], call_id=call_id, score=row["score"], violations=violations,
                        scored_at=row["scored_at"], effective_score=effective, status=status,
                        standing_rules=standing)


def file_appeal(store: Store, call_id: str, reason: str, *, filed_by: str, at: float | None = None) -> int:
    """The collector disputes the latest score of a call (seed 002: 申诉 → 人工复检)."""
    if not reason.strip():
        raise QAStoreError("an appeal needs a reason")
    now = time.time() if at is None else float(at)
    with store.transaction() as conn:
        res = conn.execute("SELECT id FROM qa_results WHERE call_id = ? ORDER BY id DESC LIMIT 1", (call_id,)).fetchone()
        if res is None:
            raise QAStoreError(f"call {call_id}: not scored yet, nothing to appeal")
        if conn.execute("SELECT 1 FROM qa_appeals WHERE result_id = ? AND status = 'open'", (res[0],)).fetchone():
            raise QAStoreError(f"call {call_id}: an appeal is already open")
        aid = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM qa_appeals").fetchone()[0]
        seq = audit(conn, filed_by, "qa.appeal", call_id, {"appeal_id": aid, "result_id": res[0], "reason": reason}, now)
        conn.execute("INSERT INTO qa_appeals(id, call_id, result_id, reason, filed_by, filed_at, audit_seq)"
                     " VALUES (?,?,?,?,?,?,?)", (aid, call_id, res[0], reason, filed_by, now, seq))
    return aid


def review_appeal(store: Store, call_id: str, verdict: str, *, reviewer: str, weights: Mapping[str, int],
                  rules: Iterable[str] = (), note: str | None = None, at: float | None = None) -> int:
    """Close the open appeal of a call. `overturned` dismisses the listed rules (all if none); returns the
    effective score (100 minus the weight of each rule still standing)."""
    if verdict not in VERDICTS:
        raise QAStoreError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    rules = sorted(set(rules))
    now = time.time() if at is None else float(at)
    with store.transaction() as conn:
        appeal = conn.execute("SELECT id, result_id FROM qa_appeals WHERE call_id = ? AND status = 'open'"
                              " ORDER BY id DESC LIMIT 1", (call_id,)).fetchone()
        if appeal is None:
            raise QAStoreError(f"call {call_id}: no open appeal to review")
        res = conn.execute("SELECT score, violations_json FROM qa_results WHERE id = ?", (appeal[1],)).fetchone()
        standing = {v["rule"] for v in json.loads(res[1])}
        unknown = set(rules) - standing
        if unknown:
            raise QAStoreError(f"call {call_id}: the appealed result has no {', '.join(sorted(unknown))} violation")
        if verdict == "upheld":
            effective = res[0]
        else:
            standing -= set(rules) if rules else standing
            effective = max(0, 100 - sum(weights.get(r, 0) for r in standing))
        seq = audit(conn, reviewer, "qa.review", call_id,
                    {"appeal_id": appeal[0], "verdict": verdict, "rules": rules, "effective_score": effective,
                     "note": note}, now)
        conn.execute("INSERT INTO qa_reviews(appeal_id, call_id, verdict, rules_json, reviewer, note, reviewed_at,"
                     " effective_score, audit_seq) VALUES (?,?,?,?,?,?,?,?,?)",
                     (appeal[0], call_id, verdict, _dumps(rules), reviewer, note, now, effective, seq))
        conn.execute("UPDATE qa_appeals SET status = ? WHERE id = ?", (verdict, appeal[0]))
    return effective


def search_turns(store: Store, terms: Iterable[str], *, speaker: str | None = None,
                 limit: int = 100) -> list[dict[str, Any]]:
    """Turns containing every term (matched like the checker: Traditional/Simplified, full-width, case)."""
    norms = [normalize_text(t) for t in terms if t.strip()]
    if not norms:
        return []
    sql = ("SELECT u.call_id, u.idx, u.speaker, u.text, t.agent, t.campaign, t.started_at"
           " FROM transcript_turns u JOIN transcripts t ON t.call_id = u.call_id WHERE 1=1")
    args: list[Any] = []
    for n in norms:
        sql += " AND instr(u.norm, ?) > 0"
        args.append(n)
    if speaker is not None:
        sql += " AND u.speaker = ?"
        args.append(speaker)
    sql += " ORDER BY t.started_epoch, u.call_id, u.idx LIMIT ?"
    args.append(int(limit))
    return [dict(r) for r in store.query(sql, args)]


def review_queue(store: Store, limit: int | None = None) -> list[dict[str, Any]]:
    """The needs-review items of every call's latest score, most confident first (what a QA officer
    triages): [{call_id, result_id, rule, turn, confidence, evidence, reason, scored_at}]; plus one item per
    call of each open complaint review (rule `complaint.<category>`, confidence 1, `complaint_id`)."""
    rows = store.query(
        "SELECT r.id, r.call_id, r.scored_at, r.review_json FROM qa_results r"
        " WHERE r.review_json != '[]' AND r.id = (SELECT MAX(id) FROM qa_results x WHERE x.call_id = r.call_id)")
    out = [{"call_id": r["call_id"], "result_id": r["id"], "scored_at": r["scored_at"], **item}
           for r in rows for item in json.loads(r["review_json"])]
    from dialer.store.complaints import open_reviews  # a complaint's open review: its calls, surest first
    out += [{"call_id": c["call_id"], "result_id": None, "scored_at": c["opened_at"], "rule": f"complaint.{c['category']}",
             "turn": None, "confidence": 1.0, "complaint_id": c["id"], "severity": c["severity"],
             "due_at": c["due_at"], "evidence": f"complaint {c['id']} via {c['channel']}: {c['text'][:100]}",
             "reason": f"complaint {c['id']} ({c['severity']}) via {c['channel']}: dialer complaints review {c['id']}"}
            for c in open_reviews(store)]
    out.sort(key=lambda i: (-float(i.get("confidence") or 0), i["call_id"], i["rule"]))
    return out[:limit] if limit else out


def report(store: Store, by: str = "collector") -> list[dict[str, Any]]:
    """Per collector (or campaign): calls scored, mean effective score, calls with violations, counts per
    rule, appeals and overturned ones — next to efficiency (conversations, promises) where the call's
    attempt and promises are in the store."""
    if by not in ("collector", "campaign"):
        raise QAStoreError("--by must be collector or campaign")
    col = "agent" if by == "collector" else "campaign"
    rows = store.query(
        f"SELECT t.call_id, COALESCE(t.{col}, a.{col}, '(unknown)') AS key, a.conversation,"
        " (SELECT COUNT(*) FROM promises p WHERE p.call_id = t.call_id) AS promises"
        " FROM transcripts t LEFT JOIN attempts a ON a.id = t.call_id"
        " WHERE EXISTS (SELECT 1 FROM qa_results r WHERE r.call_id = t.call_id) ORDER BY key, t.call_id")
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        res = latest_result(store, r["call_id"])
        assert res is not None
        g = groups.setdefault(r["key"], {by: r["key"], "calls": 0, "score_sum": 0, "calls_with_violations": 0,
                                         "rules": {}, "appeals": 0, "overturned": 0, "conversations": 0,
                                         "promises": 0})
        g["calls"] += 1
        g["score_sum"] += res.effective_score
        if res.standing_rules:
            g["calls_with_violations"] += 1
            for rule in sorted(res.standing_rules):
                g["rules"][rule] = g["rules"].get(rule, 0) + 1
        g["appeals"] += res.status in ("appealed", "upheld", "overturned")
        g["overturned"] += res.status == "overturned"
        g["conversations"] += int(r["conversation"] or 0)
        g["promises"] += int(r["promises"] or 0)
    out = []
    for g in groups.values():
        g["mean_score"] = round(g.pop("score_sum") / g["calls"], 1)
        g["promises_per_call"] = round(g["promises"] / g["calls"], 2)
        out.append(g)
    return out


def record_recording(store: Store, call_id: str, path: str, sha256: str, *, actor: str = "qa",
                     at: float | None = None) -> int:
    """Append a recording's path and hash to the audit log, so a later change to the file is detected."""
    now = time.time() if at is None else float(at)
    return audit(store, actor, "qa.recording", call_id, {"path": str(path), "sha256": sha256}, now)
