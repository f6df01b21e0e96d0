"""The one hash-chained audit log: append, read, verify; its head kept outside the database; recorded files re-hashed.

Chain: row hash = sha256(prev_hash + canonical_json(row)) as hex, where the row is
`{"seq", "at", "actor", "kind", "subject", "payload_json"}` serialized with sorted keys, separators
(",", ":") and ensure_ascii=False; the first row's prev_hash is 64 zeros (see `audit_row_hash`).

The head file (`<db>.audit-head` by default) holds the newest (seq, hash) each time QA writes; a
database whose chain is intact but shorter than, or different at, that head was truncated or rewritten.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from dialer.store import Conn, Store, conn_of, serialize, tx

GENESIS_HASH = "0" * 64


def canonical_json(obj: Any) -> str:
    """The store's JSON: sorted keys, no spaces, UTF-8 kept; the audit hash is taken over it."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def audit_row_hash(prev_hash: str, seq: int, at: float, actor: str, kind: str, subject: str | None,
                   payload_json: str) -> str:
    row = {"seq": seq, "at": float(at), "actor": actor, "kind": kind, "subject": subject,
           "payload_json": payload_json}
    return hashlib.sha256((prev_hash + canonical_json(row)).encode("utf-8")).hexdigest()


def audit(conn_or_store: Store | Conn, actor: str, kind: str, subject: str | None,
          payload: Mapping[str, Any] | None, at: float | None = None) -> int:
    """Append one entry to the hash-chained audit log; returns its seq."""
    at = time.time() if at is None else float(at)
    payload_json = canonical_json(dict(payload or {}))
    with tx(conn_or_store) as conn:
        serialize(conn, "audit_log")  # servers sharing PostgreSQL append one at a time
        last = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        seq = (last[0] + 1) if last else 1
        prev = last[1] if last else GENESIS_HASH
        digest = audit_row_hash(prev, seq, at, actor, kind, subject, payload_json)
        conn.execute(
            "INSERT INTO audit_log(seq, at, actor, kind, subject, payload_json, prev_hash, hash)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (seq, at, actor, kind, subject, payload_json, prev, digest),
        )
    return seq


def verify_audit_chain(store: Store | Conn) -> tuple[bool, int | None]:
    """Recompute the chain; (True, None) if intact, else (False, seq of the first bad row).

    Detects modified, inserted and deleted rows (a gap in seq or a broken prev_hash link). Truncation
    of the newest rows is only visible against an anchored `audit_head` kept elsewhere.
    """
    prev, expected_seq = GENESIS_HASH, 1
    for r in conn_of(store).execute(
            "SELECT seq, at, actor, kind, subject, payload_json, prev_hash, hash FROM audit_log ORDER BY seq"):
        seq = r[0]
        if seq != expected_seq or r[6] != prev:
            return False, seq
        if audit_row_hash(prev, seq, r[1], r[2], r[3], r[4], r[5]) != r[7]:
            return False, seq
        prev, expected_seq = r[7], seq + 1
    return True, None


def audit_head(store: Store | Conn) -> tuple[int, str]:
    """(seq, hash) of the newest entry, to anchor outside the database; (0, zeros) when empty."""
    r = conn_of(store).execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    return (r[0], r[1]) if r else (0, GENESIS_HASH)


def audit_entries(store: Store | Conn, *, kind: str | None = None, subject: str | None = None,
                  after_seq: int = 0) -> list[dict[str, Any]]:
    sql, args = "SELECT * FROM audit_log WHERE seq > ?", [after_seq]
    if kind is not None:
        sql += " AND kind = ?"
        args.append(kind)
    if subject is not None:
        sql += " AND subject = ?"
        args.append(subject)
    rows = conn_of(store).execute(sql + " ORDER BY seq", args).fetchall()
    return [dict(r) | {"payload": json.loads(r["payload_json"])} for r in rows]


# -- the head kept outside the database, and verification ----------------------------------------

def head_path(db_path: str | Path) -> Path:
    return Path(str(db_path) + ".audit-head")


def write_head(store: Store, path: Path | None = None) -> dict[str, Any]:
    """Anchor the newest audit entry outside the database (atomic replace)."""
    seq, digest = audit_head(store)
    head = {"seq": seq, "hash": digest, "written_at": time.time()}
    path = path or head_path(store.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(head, fh)
    os.replace(tmp, path)
    return head


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Verification:
    ok: bool
    entries: int
    head: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)
    recordings: int = 0  # recorded files the log names
    pruned: int = 0      # of those, deleted by retention with the deletion in the log

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "head": self.head, "problems": self.problems,
                "recordings": self.recordings, "pruned": self.pruned}


def diagnose_chain(store: Store) -> list[str]:
    """Say what happened to a broken chain: which entries were deleted, edited or moved."""
    rows = store.query("SELECT seq, at, actor, kind, subject, payload_json, prev_hash, hash FROM audit_log ORDER BY seq")
    by_hash = {r["hash"]: r["seq"] for r in rows}
    out: list[str] = []
    prev, expected = GENESIS_HASH, 1
    for r in rows:
        seq = r["seq"]
        own_ok = audit_row_hash(r["prev_hash"], seq, r["at"], r["actor"], r["kind"], r["subject"],
                                r["payload_json"]) == r["hash"]
        if seq > expected:
            gap = f"{expected}" if seq == expected + 1 else f"{expected}–{seq - 1}"
            out.append(f"audit entry {gap} deleted (the log jumps to {seq})")
        elif r["prev_hash"] != prev and r["prev_hash"] in by_hash and by_hash[r["prev_hash"]] != seq - 1:
            out.append(f"audit entry {seq}: reordered (it was written after entry {by_hash[r['prev_hash']]})")
        elif not own_ok:
            out.append(f"audit entry {seq}: edited (its content no longer matches its hash)")
        elif r["prev_hash"] != prev:
            out.append(f"audit entry {seq}: does not follow entry {seq - 1} (an entry before it was replaced)")
        prev, expected = r["hash"], seq + 1
    return out


def verify(store: Store, head_file: Path | None = None) -> Verification:
    """Chain intact, agreeing with the external head, and every recorded file unchanged?"""
    problems: list[str] = []
    intact, bad_seq = verify_audit_chain(store)
    if not intact:
        problems += diagnose_chain(store) or [f"audit entry {bad_seq}: hash chain broken there"]
    count = store.query_one("SELECT COUNT(*) FROM audit_log")[0]
    head_file = head_file or head_path(store.path)
    head = None
    if head_file.exists():
        try:
            head = json.loads(head_file.read_text(encoding="utf-8"))
            seq, digest = int(head["seq"]), str(head["hash"])
        except (ValueError, KeyError, TypeError):
            problems.append(f"{head_file}: unreadable head file")
        else:
            row = store.query_one("SELECT hash FROM audit_log WHERE seq = ?", (seq,)) if seq else None
            last = store.query_one("SELECT MAX(seq) FROM audit_log")[0] or 0
            if seq and row is None:
                problems.append(f"audit log truncated: head {head_file.name} names entry {seq}, the log ends at {last}")
            elif seq and row[0] != digest:
                problems.append(f"audit entry {seq}: hash differs from the head file (log rewritten)")
    # a file whose deletion is itself in the chain (`dialer recordings prune`) was pruned, not deleted
    pruned_at = {json.loads(r["payload_json"]).get("path", ""): r["seq"] for r in store.query(
        "SELECT seq, payload_json FROM audit_log WHERE kind = 'recording.pruned'")}
    recordings = pruned = 0
    for r in store.query("SELECT seq, subject, payload_json FROM audit_log WHERE kind = 'qa.recording' ORDER BY seq"):
        p = json.loads(r["payload_json"])
        path = Path(p.get("path", ""))
        recordings += 1
        if str(path) in pruned_at and pruned_at[str(path)] > r["seq"]:
            pruned += 1
            if path.exists() and file_sha256(path) != p.get("sha256"):
                problems.append(f"recording of call {r['subject']} changed after it was pruned: {path}")
        elif not path.exists():
            problems.append(f"recording of call {r['subject']} deleted without a prune entry: {path}"
                            f" (audit entry {r['seq']})")
        elif file_sha256(path) != p.get("sha256"):
            problems.append(f"recording of call {r['subject']} changed: {path} (audit entry {r['seq']})")
    return Verification(ok=not problems, entries=count, head=head, problems=problems, recordings=recordings,
                        pruned=pruned)
