"""Suppression lists fed in bulk: each list blocks with its own rule id (by phone, debtor or account), from its
effective date; `compliance explain` names the list and since when; a removal is audited; a bad file imports
nothing and names row and column."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from dialer.cli import main
from dialer.gate.account import take_attempt
from dialer.store import Store, audit
from tests.test_lender_payments import AT, CAMP, RULES, _store
from tests.engines import both_engines

pytestmark = both_engines

LISTS = {  # debtor: (list, key column, key, rule id)
    "S1": ("dnc", "phone", "+12125550101", "dnc"),
    "S2": ("attorney", "debtor_id", "S2", "suppress.attorney"),
    "S3": ("bankruptcy", "account_id", "A-S3", "suppress.bankruptcy"),
    "S4": ("deceased", "debtor_id", "S4", "suppress.deceased"),
    "S5": ("complaint_hold", "phone", "+12125550105", "suppress.complaint_hold"),
}


def _cli(db: Path, *args: str):
    return CliRunner().invoke(main, [*args, "--db", str(db)])


def _file(tmp: Path, name: str, *lines: str) -> Path:
    p = tmp / name
    p.write_text("phone,debtor_id,account_id,effective_date,source,note\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return p


def _try(store: Store, debtor: str, call_id: str, when: datetime = AT):
    return take_attempt(store, call_id=call_id, debtor_id=debtor, account_id=f"A-{debtor}", campaign=CAMP.name,
                        phone=None, rules=RULES, now=when)


def test_each_list_blocks_with_its_rule_id_and_explain_says_which_and_since_when(tmp_path):
    store = _store(tmp_path, ["S0", *LISTS, "S6"])
    db = tmp_path / "d.db"
    for debtor, (name, column, key, _) in LISTS.items():
        cells = {"phone": "", "debtor_id": "", "account_id": "", column: key}
        f = _file(tmp_path, f"{name}.csv", f"{cells['phone']},{cells['debtor_id']},{cells['account_id']},2026-11-20,crm,")
        res = _cli(db, "suppress", "import", str(f), "--list", name, "--json")
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["added"] == 1
    # S6: listed from next week, not yet in force
    future = _file(tmp_path, "later.csv", ",S6,,2026-11-30,court-feed,")
    assert _cli(db, "suppress", "import", str(future), "--list", "bankruptcy").exit_code == 0
    again = _cli(db, "suppress", "import", str(tmp_path / "attorney.csv"), "--list", "attorney", "--json")
    assert json.loads(again.stdout)["already"] == 1      # the nightly file again: harmless

    for debtor, (name, _, _, rule) in LISTS.items():
        d = _try(store, debtor, f"c-{debtor}")
        assert not d.allowed and d.rule_id == rule and d.permanent, (debtor, d.rule_id, d.reason)
        assert name in d.reason and "since 2026-11-20" in d.reason and "crm" in d.reason
    assert _try(store, "S0", "c-S0").allowed
    assert _try(store, "S6", "c-S6").allowed
    week = AT + timedelta(days=8)
    d6 = take_attempt(store, call_id="c-S6b", debtor_id="S6", account_id="A-S6", campaign=CAMP.name, phone=None,
                      rules=RULES, now=week)
    assert not d6.allowed and d6.rule_id == "suppress.bankruptcy"
    blocked = {r["debtor_id"]: r["rule_id"] for r in store.query("SELECT debtor_id, rule_id FROM gate_blocks")}
    assert blocked == {**{d: v[3] for d, v in LISTS.items()}, "S6": "suppress.bankruptcy"}

    res = _cli(db, "compliance", "explain", "--debtor", "S2", "--at", AT.isoformat(), "--json")
    out = json.loads(res.stdout)
    assert out["allowed"] is False
    assert out["suppressions"] == [{"list": "attorney", "rule_id": "suppress.attorney", "by": "debtor", "key": "S2",
                                    "since": "2026-11-20", "in_force": True, "source": "crm"}]
    text = _cli(db, "compliance", "explain", "--debtor", "S2", "--at", AT.isoformat()).stdout
    assert "BLOCKED by suppress.attorney" in text and "on the attorney list" in text and "since 2026-11-20" in text
    store.close()


def test_removal_is_audited_and_the_debtor_is_dialled_again(tmp_path):
    store = _store(tmp_path, ["R1"])
    db = tmp_path / "d.db"
    f = _file(tmp_path, "a.csv", ",R1,,2026-11-01,crm,represented")
    assert _cli(db, "suppress", "import", str(f), "--list", "attorney").exit_code == 0
    assert not _try(store, "R1", "c-1").allowed
    no_reason = _cli(db, "suppress", "remove", "--list", "attorney", "--debtor", "R1")
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output
    wrong = _cli(db, "suppress", "remove", "--list", "deceased", "--debtor", "R1", "--reason", "x")
    assert wrong.exit_code == 2 and "no live entry" in wrong.output
    res = _cli(db, "suppress", "remove", "--list", "attorney", "--debtor", "R1", "--reason",
               "attorney withdrew (letter 2026-11-22)", "--by", "j.smith", "--json")
    assert res.exit_code == 0, res.output
    entries = audit.audit_entries(store, kind="suppression.remove")
    assert len(entries) == 1 and entries[0]["actor"] == "j.smith"
    assert "attorney withdrew" in json.dumps(entries[0], ensure_ascii=False)
    assert audit.verify_audit_chain(store) == (True, None)
    assert _try(store, "R1", "c-2", AT + timedelta(hours=2)).allowed
    listed = json.loads(_cli(db, "suppress", "list", "--removed", "--json").stdout)["entries"]
    assert listed[0]["removed_by"] == "j.smith" and listed[0]["removed_reason"].startswith("attorney withdrew")
    store.close()


def test_a_bad_file_imports_nothing_and_names_row_and_column(tmp_path):
    store = _store(tmp_path, ["B1"])
    db = tmp_path / "d.db"
    cases = [
        (("+12125550100,,,2026-11-01,crm,", "+1212,,,2026-11-01,crm,"), 3, "phone"),
        (("+12125550100,,,2026-11-01,crm,", ",B1,A-B1,2026-11-01,crm,"), 3, "account_id"),
        (("+12125550100,,,01/11/2026,crm,",), 2, "effective_date"),
        (("+12125550100,,,2026-11-01T09:00:00,crm,",), 2, "effective_date"),
        ((",B1,,2026-11-01,,",), 2, "source"),
        ((",B1,,2026-11-01,crm,", ",B1,,2026-11-02,crm,"), 3, "debtor_id"),
    ]
    for lines, row, column in cases:
        res = _cli(db, "suppress", "import", str(_file(tmp_path, "bad.csv", *lines)), "--list", "dnc")
        assert res.exit_code == 2 and f"row {row}, column {column}:" in res.output, (lines, res.output)
    assert store.query_one("SELECT count(*) FROM suppressions")[0] == 0
    # --source fills an empty source cell
    ok = _cli(db, "suppress", "import", str(_file(tmp_path, "ok.csv", ",B1,,2026-11-01,,")), "--list", "dnc",
              "--source", "core-banking")
    assert ok.exit_code == 0 and "1 entry added" in ok.output
    assert store.query_one("SELECT source FROM suppressions")[0] == "core-banking"
    store.close()
