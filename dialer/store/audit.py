"""Tamper evidence: the audit chain checked against a head kept outside the database, and recorded files re-hashed.

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
from typing import Any

from dialer.store import Store
from dialer.store.core import GENESIS_HASH, audit_head, audit_row_hash, verify_audit_chain


def head_path(db_path: str | Path) -> Path:
    return Path(str(db_path) + ".audit-head")


def write_head(store: Store, path: Path | None = None) -> dict[str, Any]:
    """Anchor the newest audit entry outside the database (atomic replace)."""
    seq, digest = audit_head(store)
    head = {"seq": seq, "hash": digest, "written_at": time.time()}
    path = path or head_path(store.path)
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

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "head": self.head, "problems": self.problems}


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
    for r in store.query("SELECT seq, subject, payload_json FROM audit_log WHERE kind = 'qa.recording' ORDER BY seq"):
        p = json.loads(r["payload_json"])
        path = Path(p.get("path", ""))
        if not path.exists():
            problems.append(f"recording of call {r['subject']} missing: {path} (audit entry {r['seq']})")
        elif file_sha256(path) != p.get("sha256"):
            problems.append(f"recording of call {r['subject']} changed: {path} (audit entry {r['seq']})")
    return Verification(ok=not problems, entries=count, head=head, problems=problems)
