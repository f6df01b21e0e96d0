"""QA in the store and on the command line: transcripts, scoring, search, appeals and reviews, reports, tamper evidence."""
from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from common.normalize import normalize_text
from dialer.cli import main
from dialer.qa.checker import check, parse_transcript
from dialer.qa.rules import load_rules
from dialer.qa.score import score_call
from dialer.store import Store
from dialer.store.audit import file_sha256, verify, write_head
from dialer.store.qa import (
    QAStoreError,
    file_appeal,
    latest_result,
    record_recording,
    record_result,
    report,
    review_appeal,
    save_transcript,
    search_turns,
    unscored_transcripts,
)
from tests.engines import both_engines, sqlite_only  # noqa: F401

pytestmark = both_engines

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "qa_corpus.jsonl"


@pytest.fixture(scope="module")
def rules():
    return load_rules(ROOT / "compliance_rules.yaml")


def corpus(n: int | None = None, ids: tuple[str, ...] = ()) -> list[dict]:
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    for r in rows:
        r.pop("expected"), r.pop("split"), r.pop("section")
    if ids:
        return [r for r in rows if r["call_id"] in ids]
    return rows[:n]


THREAT = "qa-zh-030"   # 你家人也会被牵连的 — conduct.threat at turn 6
CLEAN = "qa-zh-001"


def test_transcripts_are_saved_once_and_audited(tmp_path):
    store = Store(tmp_path / "d.db")
    t = corpus(ids=(CLEAN,))[0]
    sha = save_transcript(store, t, source="bot", actor="bot")
    assert save_transcript(store, t, source="bot") == sha  # same content: no-op
    changed = dict(t, turns=t["turns"][:-1])
    with pytest.raises(QAStoreError, match="a different transcript is already saved"):
        save_transcript(store, changed)
    entries = store.query("SELECT kind, subject, payload_json FROM audit_log")
    assert [(e["kind"], e["subject"]) for e in entries] == [("qa.transcript", CLEAN)]
    assert json.loads(entries[0]["payload_json"])["sha256"] == sha


def test_score_call_saves_checks_and_records(tmp_path, rules):
    store = Store(tmp_path / "d.db")
    t = corpus(ids=(THREAT,))[0]
    res = score_call(store, t, rules, source="bot", actor="bot")
    assert res.score == 70 and latest_result(store, THREAT).violations == [v.as_dict() for v in res.violations]
    assert [r["kind"] for r in store.query("SELECT kind FROM audit_log ORDER BY seq")] == ["qa.transcript", "qa.score"]
    score_payload = json.loads(store.query_one("SELECT payload_json FROM audit_log WHERE seq = 2")[0])
    assert score_payload["rules_sha256"] == rules.sha256 and len(rules.sha256) == 64


def test_score_appeal_review_loop(tmp_path, rules):
    store = Store(tmp_path / "d.db")
    for t in corpus(ids=(THREAT, CLEAN)):
        save_transcript(store, dict(t, agent="li.na", campaign="m1"))
    with pytest.raises(QAStoreError, match="not scored yet"):
        file_appeal(store, THREAT, "no", filed_by="li.na")
    for t in unscored_transcripts(store):
        record_result(store, check(t, rules), "sha")
    assert unscored_transcripts(store) == []
    assert latest_result(store, THREAT).score == 70
    with pytest.raises(QAStoreError, match="no open appeal"):
        review_appeal(store, THREAT, "upheld", reviewer="lead", weights=rules.profiles["cn"].weights)
    file_appeal(store, THREAT, "it was a warning about fees", filed_by="li.na")
    with pytest.raises(QAStoreError, match="already open"):
        file_appeal(store, THREAT, "again", filed_by="li.na")
    assert latest_result(store, THREAT).status == "appealed"
    with pytest.raises(QAStoreError, match="no process.order violation"):
        review_appeal(store, THREAT, "overturned", reviewer="lead", weights=rules.profiles["cn"].weights,
                      rules=["process.order"])
    score = review_appeal(store, THREAT, "upheld", reviewer="lead", weights=rules.profiles["cn"].weights)
    assert score == 70 and latest_result(store, THREAT).status == "upheld"
    kinds = [r["kind"] for r in store.query("SELECT kind FROM audit_log ORDER BY seq")]
    assert kinds == ["qa.transcript", "qa.transcript", "qa.score", "qa.score", "qa.appeal", "qa.review"]
    [row] = report(store, "collector")
    assert row == {"collector": "li.na", "calls": 2, "calls_with_violations": 1, "rules": {"conduct.threat": 1},
                   "appeals": 1, "overturned": 0, "conversations": 0, "promises": 0, "mean_score": 85.0,
                   "promises_per_call": 0.0}
    file_appeal(store, THREAT, "second look", filed_by="li.na")
    assert review_appeal(store, THREAT, "overturned", reviewer="lead", weights=rules.profiles["cn"].weights) == 100
    [row] = report(store, "campaign")
    assert (row["campaign"], row["mean_score"], row["calls_with_violations"], row["overturned"]) == ("m1", 100.0, 0, 1)


def test_search_matches_across_scripts_and_filters_speaker(tmp_path):
    store = Store(tmp_path / "d.db")
    for t in corpus(40):
        save_transcript(store, t)
    hits = search_turns(store, ["牽連"])            # Traditional query, Simplified transcript
    assert [(h["call_id"], h["idx"], h["speaker"]) for h in hits] == [(THREAT, 6, "agent")]
    callee = search_turns(store, ["骗子"], speaker="callee")
    agent = search_turns(store, ["骗子"], speaker="agent")
    assert ("qa-zh-010", 3) in [(h["call_id"], h["idx"]) for h in callee]  # 你们这帮骗子、垃圾
    assert ("qa-zh-011", 2) in [(h["call_id"], h["idx"]) for h in agent]   # 您说担心我们是骗子
    assert {h["speaker"] for h in callee} == {"callee"} and {h["speaker"] for h in agent} == {"agent"}
    both = search_turns(store, ["逾期", "違約金"])
    assert both and all("逾期" in normalize_text(h["text"]) and "违约金" in normalize_text(h["text"]) for h in both)
    assert len(both) < len(search_turns(store, ["逾期"]))


def test_cli_score_names_bad_lines_and_scores_the_rest(tmp_path):
    good = corpus(ids=(THREAT, CLEAN))  # file order: CLEAN, THREAT
    missing = dict(good[0])
    missing.pop("started_at")
    lines = [json.dumps(good[0], ensure_ascii=False), '{"call_id": "x", "lang": ', json.dumps(missing, ensure_ascii=False),
             json.dumps(dict(good[1], lang="fr"), ensure_ascii=False), "", json.dumps(good[1], ensure_ascii=False)]
    f = tmp_path / "calls.jsonl"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["qa", "score", str(f), "--json",
                                                    "--rules", str(ROOT / "compliance_rules.yaml")])
    assert res.exit_code == 1
    assert res.stderr.splitlines() == [
        f"{f}:2: broken JSON: Expecting value at column 26",
        f"{f}:3: started_at: missing",
        f"{f}:4: lang: unknown language 'fr' (known: en, zh)",
    ]
    out = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(o["call_id"], o["score"]) for o in out] == [(CLEAN, 100), (THREAT, 70)]
    # the default engine (QA 2 detectors) adds the detector's confidence; the finding is the same
    assert [{k: v[k] for k in ("rule", "turn", "evidence")} for v in out[1]["violations"]] == [
        {"rule": "conduct.threat", "turn": 6, "evidence": "你家人也会被牵连的，到时候别怪我们没提醒你。"}]
    assert 0.0 < out[1]["violations"][0]["confidence"] <= 1.0 and out[1]["review"] == []


def test_cli_store_commands(tmp_path):
    db = tmp_path / "d.db"
    f = tmp_path / "calls.jsonl"
    f.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in corpus(ids=(THREAT, CLEAN))), encoding="utf-8")
    r = CliRunner()
    rules = ["--rules", str(ROOT / "compliance_rules.yaml")]
    assert r.invoke(main, ["qa", "import", str(f), "--db", str(db), *rules]).exit_code == 0
    first = r.invoke(main, ["qa", "run", "--db", str(db), "--json", *rules])
    assert first.exit_code == 0 and len(first.stdout.splitlines()) == 2
    assert r.invoke(main, ["qa", "run", "--db", str(db), "--json", *rules]).stdout == ""  # nothing unscored left
    found = r.invoke(main, ["qa", "search", "牽連", "--speaker", "agent", "--db", str(db)])
    assert f"{THREAT}  turn 6" in found.stdout
    assert r.invoke(main, ["qa", "appeal", THREAT, "--reason", "misheard", "--db", str(db), "--by", "li"]).exit_code == 0
    shown = r.invoke(main, ["qa", "show", THREAT, "--db", str(db)]).stdout
    assert "  6 agent  下个月？你家人也会被牵连的，到时候别怪我们没提醒你。  <- conduct.threat" in shown
    assert "score 70, effective 70 (appealed)" in shown
    rev = r.invoke(main, ["qa", "review", THREAT, "--verdict", "overturned", "--db", str(db), "--by", "lead", *rules])
    assert rev.exit_code == 0 and "score now 100" in rev.stdout
    again = r.invoke(main, ["qa", "review", THREAT, "--verdict", "upheld", "--db", str(db), *rules])
    assert again.exit_code == 1 and "no open appeal" in again.stderr
    rep = json.loads(r.invoke(main, ["qa", "report", "--db", str(db), "--json"]).stdout)
    assert rep["audit"]["ok"] and rep["audit"]["head"]["seq"] == rep["audit"]["entries"] == 6
    assert r.invoke(main, ["qa", "verify", "--db", str(db)]).exit_code == 0


def _tamper(db: Path, sql: list[str]) -> None:
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    for s in sql:
        conn.execute(s)
    conn.commit()
    conn.close()


@pytest.fixture
def audited(tmp_path, rules):
    """A store with transcripts, scores, an appeal, a recording, and its head file; returns (db, recording)."""
    db = tmp_path / "orig.db"
    store = Store(db)
    for t in corpus(5) + corpus(ids=(THREAT,)):  # the threat call's score (70) is entry 12
        save_transcript(store, t)
        record_result(store, check(parse_transcript(t), rules), "sha")
    file_appeal(store, "qa-zh-003", "please re-listen", filed_by="chen")
    wav = tmp_path / "qa-zh-001.wav"
    wav.write_bytes(b"RIFF....WAVEfmt fake audio")
    record_recording(store, "qa-zh-001", str(wav), file_sha256(wav))
    write_head(store)
    assert verify(store).ok
    store.close()
    return db, wav


def _copy(db: Path, tmp_path: Path, name: str) -> Path:
    dst = tmp_path / f"{name}.db"
    shutil.copy(db, dst)
    shutil.copy(str(db) + ".audit-head", str(dst) + ".audit-head")
    return dst


@pytest.mark.parametrize("name,sql,expect", [
    ("edit", ["UPDATE audit_log SET payload_json = replace(payload_json, '\"score\":70', '\"score\":100') WHERE seq = 12"],
     "audit entry 12: edited (its content no longer matches its hash)"),
    ("delete", ["DELETE FROM audit_log WHERE seq = 5"], "audit entry 5 deleted (the log jumps to 6)"),
    ("reorder", ["UPDATE audit_log SET seq = -1 WHERE seq = 3", "UPDATE audit_log SET seq = 3 WHERE seq = 4",
                 "UPDATE audit_log SET seq = 4 WHERE seq = -1"], "audit entry 3: reordered (it was written after entry 4)"),
    ("truncate", ["DELETE FROM audit_log WHERE seq >= 13"], "audit log truncated: head orig.db.audit-head names entry 14"),
])
@sqlite_only  # copies the database file; the edit and delete cases run on both in test_store_core.py
def test_verify_catches_each_kind_of_tampering(audited, tmp_path, name, sql, expect):
    db, _ = audited
    copy = _copy(db, tmp_path, name)
    _tamper(copy, sql)
    result = CliRunner().invoke(main, ["qa", "verify", "--db", str(copy),
                                                       "--head", str(db) + ".audit-head"])
    assert result.exit_code == 1
    assert "TAMPERED" in result.stdout and expect in result.stdout, result.stdout
    assert verify(Store(db)).ok  # the original is untouched


def test_the_score_edit_really_was_in_the_entry(audited):
    db, _ = audited
    payload = Store(db).query_one("SELECT payload_json FROM audit_log WHERE seq = 12")[0]
    assert '"score":70' in payload  # the edit test above changed something real


def test_verify_catches_a_changed_recording(audited):
    db, wav = audited
    wav.write_bytes(b"RIFF....WAVEfmt other audio")
    res = verify(Store(db))
    assert not res.ok and res.problems == [f"recording of call qa-zh-001 changed: {wav} (audit entry 14)"]
    wav.unlink()
    assert verify(Store(db)).problems == [f"recording of call qa-zh-001 deleted without a prune entry: {wav} (audit entry 14)"]


CAMPAIGN = """\
name: m1
profile: cn
locale: zh-CN
institution: 华信银行
callback_number: "+864001234567"
caller_id: "+8610555000"
dial_mode: progressive
line_limit: 2
segments:
  - {name: early, dpd: M1, script: dtmf_verify}
"""


def test_report_puts_compliance_next_to_efficiency(tmp_path, rules):
    from dialer.campaign.config import load_campaign_text
    from dialer.store import core
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "dtmf_verify.yaml").write_text("handler: dtmf_verify\n")
    store = Store(tmp_path / "d.db")
    core.upsert_campaign(store, load_campaign_text(CAMPAIGN, "m1.yaml", scripts_dir=scripts,
                                                   rules_file=tmp_path / "none.yaml"), now=1000.0)
    core.import_debtors(store, [{"debtor_id": d, "name": d, "phones": p, "account_id": f"A-{d}", "amount_owed": "5200",
                                 "days_past_due": "15", "customer_type": "first"}
                                for d, p in (("D1", "+8613800000001"), ("D2", "+8613800000002"))], "m1", now=1000.0)
    calls = corpus(ids=(THREAT, CLEAN))
    for t, debtor, agent in zip(calls, ("D1", "D2"), ("wang", "wang")):
        with store.transaction() as conn:
            core.insert_attempt(conn, call_id=t["call_id"], debtor_id=debtor, account_id=f"A-{debtor}",
                                campaign="m1", phone="+861380000000" + debtor[-1], placed_at=2000.0)
        core.update_attempt(store, t["call_id"], at=2010.0, state="ended", conversation=1, agent=agent)
        score_call(store, t, rules)  # transcripts without agent/campaign: taken from the attempt
    core.record_promise(store, CLEAN, "D2", "A-D2", "2600", "2026-11-27", created_at=2020.0)
    [row] = report(store, "collector")
    assert (row["collector"], row["calls"], row["mean_score"], row["conversations"], row["promises"],
            row["promises_per_call"], row["rules"]) == ("wang", 2, 85.0, 2, 1, 0.5, {"conduct.threat": 1})
    assert [r["campaign"] for r in report(store, "campaign")] == ["m1"]
