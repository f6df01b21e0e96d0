"""`dialer export attempts|dispositions|promises|qa --since … --format csv|jsonl`: what the nightly feed holds,
filtered by time, phones masked unless asked, a QA violation exported with its rule; the rows stream from a cursor."""
from __future__ import annotations

import csv
import io
import json

from click.testing import CliRunner

from dialer.cli import main
from dialer.qa.checker import Result, Violation
from dialer.store import core
from dialer.store.exports import export_rows
from dialer.store.qa import record_result, save_transcript
from tests.test_lender_payments import AT, CAMP, _store
from tests.engines import both_engines

pytestmark = both_engines


def _seed(tmp_path):
    store = _store(tmp_path, ["X1", "X2"])
    for i, (debtor, disp) in enumerate((("X1", None), ("X2", "promise"), ("X1", "dispute"))):
        call_id = f"x-{i}"
        placed = AT.timestamp() + i * 86400   # one a day from 2026-11-23
        with store.transaction() as conn:
            core.insert_attempt(conn, call_id=call_id, debtor_id=debtor, account_id=f"A-{debtor}", campaign=CAMP.name,
                                phone=f"+1212555010{0 if debtor == 'X1' else 1}", placed_at=placed)
        core.update_attempt(store, call_id, state="ended", outcome="answered" if disp else "no_answer",
                            disposition=disp, ended_at=placed + 60)
    core.record_promise(store, "x-1", "X2", "A-X2", "25.00", "2026-12-01", AT.timestamp() + 86400 + 30)
    save_transcript(store, {"call_id": "x-2", "lang": "en", "jurisdiction": "us", "started_at": "2026-11-25T11:00:00-05:00",
                            "turns": [{"speaker": "agent", "text": "pay or else", "start": 0, "end": 1}]})
    record_result(store, Result("x-2", (Violation("conduct.threat", 0, "pay or else"),), 70), "sha",
                  at=AT.timestamp() + 2 * 86400 + 120)
    return store


def test_exports_since_in_csv_and_jsonl(tmp_path):
    store = _seed(tmp_path)
    db = str(tmp_path / "d.db")
    res = CliRunner().invoke(main, ["export", "attempts", "--since", "2026-11-24", "--db", db])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [r["call_id"] for r in rows] == ["x-1", "x-2"]                # the first day's call is before --since
    assert rows[0]["placed_at"] == "2026-11-24T16:00:00+00:00" and rows[0]["disposition"] == "promise"
    assert "*" in rows[0]["phone"] and "5550101" not in rows[0]["phone"]
    assert "exported 2 attempts row(s)" in res.stderr
    full = CliRunner().invoke(main, ["export", "attempts", "--since", "0", "--full-phones", "--format", "jsonl",
                                     "--db", db])
    lines = [json.loads(x) for x in full.stdout.splitlines()]
    assert len(lines) == 3 and lines[0]["phone"] == "+12125550100" and lines[0]["conversation"] is False

    disp = CliRunner().invoke(main, ["export", "dispositions", "--since", "2026-11-23", "--format", "jsonl", "--db", db])
    assert [json.loads(x)["disposition"] for x in disp.stdout.splitlines()] == ["promise", "dispute"]
    prom = CliRunner().invoke(main, ["export", "promises", "--since", "2026-11-20T00:00:00-05:00", "--db", db])
    p = list(csv.DictReader(io.StringIO(prom.stdout)))
    assert len(p) == 1 and p[0]["amount"] == "25.00" and p[0]["status"] == "open" and p[0]["call_id"] == "x-1"
    qa = CliRunner().invoke(main, ["export", "qa", "--since", "2026-11-23", "--format", "jsonl", "--db", db])
    q = [json.loads(x) for x in qa.stdout.splitlines()]
    assert q == [{"result_id": q[0]["result_id"], "call_id": "x-2", "scored_at": "2026-11-25T16:02:00+00:00",
                  "score": 70, "violations": ["conduct.threat"], "engine": "lexicon", "debtor_id": "X1",
                  "campaign": CAMP.name, "agent": None}]
    qa_csv = CliRunner().invoke(main, ["export", "qa", "--since", "2026-11-23", "--db", db])
    assert list(csv.DictReader(io.StringIO(qa_csv.stdout)))[0]["violations"] == "conduct.threat"
    # the QA violation also went to the outbox with the score, in the same transaction
    kinds = [r[0] for r in store.query("SELECT kind FROM outbox ORDER BY id")]
    assert "qa_violation" in kinds and kinds.count("disposition") == 2
    store.close()


def test_bad_since_and_the_rows_stream(tmp_path):
    store = _seed(tmp_path)
    res = CliRunner().invoke(main, ["export", "attempts", "--since", "yesterday", "--db", str(tmp_path / "d.db")])
    assert res.exit_code == 2 and "'yesterday' is not an ISO date" in res.output
    res = CliRunner().invoke(main, ["export", "attempts", "--since", "2026-11-23T00:00:00", "--db", str(tmp_path / "d.db")])
    assert res.exit_code == 2 and "no UTC offset" in res.output
    rows = export_rows(store, "attempts", 0, batch=1)
    assert next(rows)["call_id"] == "x-0"            # a generator over the cursor: rows come one at a time
    assert [r["call_id"] for r in rows] == ["x-1", "x-2"]
    store.close()
