"""The lender REST API through `dialer api serve` (a real server on 127.0.0.1, bearer token 0600): every endpoint
with good and bad input, an import through the API equals the same import through the CLI, and schemathesis
against the served OpenAPI description finds no 5xx."""
from __future__ import annotations

import json
from datetime import datetime, timezone
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from dialer.cli import main
from dialer.gate.account import take_attempt
from dialer.store import Store, core
from tests.test_lender_payments import AT, CAMP, RULES

REPO = Path(__file__).resolve().parent.parent
DEBTORS_CSV = REPO / "campaigns" / "examples" / "demo_debtors.csv"


class Api:
    def __init__(self, tmp: Path, url: str | None = None):
        self.db = url or tmp / "api.db"   # a postgresql:// URL on the PostgreSQL leg
        store = Store(self.db)
        core.upsert_campaign(store, CAMP)
        store.close()
        env = dict(os.environ, PYTHONPATH=str(REPO))
        # on PostgreSQL the default token file is var/api.token of the working directory: keep it in tmp
        self.token_args = ["--token-file", str(tmp / "api.token")] if url else []
        self.proc = subprocess.Popen([sys.executable, "-m", "dialer.cli", "api", "serve", "--port", "0",
                                      "--db", str(self.db), *self.token_args], env=env, cwd=REPO, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"dialer api serve did not start: {self.proc.stderr.read()}")
        info = json.loads(line)
        self.url, self.token_file = info["url"], Path(info["token_file"])
        self.token = self.token_file.read_text().strip()

    def __call__(self, method: str, path: str, *, json_body=None, csv: str | None = None, token: bool = True,
                 params=None) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {self.token}"} if token else {}
        data = None
        if csv is not None:
            headers["Content-Type"] = "text/csv"
            data = csv.encode("utf-8")
        r = requests.request(method, self.url + path.lstrip("/"), json=json_body, data=data, headers=headers,
                             params=params, timeout=30)
        return r.status_code, r.json()

    def store(self) -> Store:
        return Store(self.db)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request, tmp_path_factory):
    """One server per engine for the module (its tests build on each other's imports); on the PostgreSQL
    leg a database of the session's throwaway cluster."""
    url = None
    if request.param == "postgres":
        url = request.getfixturevalue("pg_cluster").create_database(f"api{os.getpid()}",
                                                                    template="dialer_template")
    a = Api(tmp_path_factory.mktemp("api"), url)
    try:
        yield a
    finally:
        a.stop()


def _table(store: Store, sql: str) -> list[tuple]:
    return [tuple(r) for r in store.query(sql)]


def test_token_is_required_and_kept_private(api):
    assert stat.S_IMODE(api.token_file.stat().st_mode) == 0o600
    status, body = api("GET", "campaigns", token=False)
    assert status == 401 and "Bearer" in body["error"]
    r = requests.get(api.url + "campaigns", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert r.status_code == 401
    status, spec = api("GET", "openapi.json", token=False)   # the description is public
    assert status == 200 and spec["openapi"].startswith("3.") and "/imports/debtors" in spec["paths"]


def test_debtor_import_through_the_api_equals_the_cli_import(api, tmp_path):
    cli_db = tmp_path / "cli.db"
    s = Store(cli_db)
    core.upsert_campaign(s, CAMP)
    s.close()
    res = CliRunner().invoke(main, ["debtors", "import", str(DEBTORS_CSV), "--campaign", CAMP.name, "--db",
                                    str(cli_db), "--json"])
    assert res.exit_code == 0, res.output
    status, body = api("POST", "imports/debtors", csv=DEBTORS_CSV.read_text(encoding="utf-8"),
                       params={"campaign": CAMP.name})
    assert status == 200, body
    cli_summary = json.loads(res.stdout)
    assert {k: body[k] for k in ("rows", "debtors", "new", "updated", "no_segment")} == \
        {k: cli_summary[k] for k in ("rows", "debtors", "new", "updated", "no_segment")}
    a, c = api.store(), Store(cli_db)
    for sql in ("SELECT debtor_id, campaign, name, id_last4, birth_year, timezone, customer_type, lang, segment,"
                " status FROM debtors ORDER BY debtor_id",
                "SELECT * FROM accounts ORDER BY account_id", "SELECT * FROM phones ORDER BY debtor_id, phone",
                "SELECT debtor_id, name, relation, phone FROM contacts ORDER BY debtor_id, name"):
        assert _table(a, sql) == _table(c, sql), sql
    a.close()
    c.close()
    # the same rows as JSON: the same result (the re-import updates, nothing new)
    import csv as csvmod
    rows = list(csvmod.DictReader(DEBTORS_CSV.open(encoding="utf-8")))
    status, body = api("POST", "imports/debtors", json_body={"rows": rows}, params={"campaign": CAMP.name})
    assert status == 200 and body["new"] == 0 and body["updated"] == len(rows)


def test_debtor_import_bad_input(api):
    st = api.store()
    before = _table(st, "SELECT count(*) FROM debtors")
    bad_csv = DEBTORS_CSV.read_text(encoding="utf-8").replace("1250.00", "12x50", 1)
    status, body = api("POST", "imports/debtors", csv=bad_csv, params={"campaign": CAMP.name})
    assert status == 422 and body["errors"][0]["row"] == 2 and body["errors"][0]["column"] == "amount_owed"
    status, body = api("POST", "imports/debtors", csv="x", params={"campaign": "nope"})
    assert status == 404 and body["field"] == "campaign"
    status, body = api("POST", "imports/debtors", csv="x")
    assert status == 400 and body["field"] == "campaign" and "required" in body["error"]
    status, body = api("POST", "imports/debtors", json_body={"rows": [{"debtor_id": "Z1", "nmae": "x"}]},
                       params={"campaign": CAMP.name})
    assert status == 400 and body["field"] == "body.rows[0].nmae" and "unknown field" in body["error"]
    status, body = api("POST", "imports/debtors", json_body={"rows": [{"debtor_id": "Z1"}]},
                       params={"campaign": CAMP.name})
    assert status == 400 and body["field"].startswith("body.rows[0].")
    r = requests.post(api.url + "imports/debtors", params={"campaign": CAMP.name}, data=b"a=b",
                      headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/x-www-form-urlencoded"},
                      timeout=10)
    assert r.status_code == 415 and "text/csv" in r.json()["error"]
    assert _table(st, "SELECT count(*) FROM debtors") == before
    st.close()


def test_payments_and_suppressions_through_the_api(api):
    status, body = api("POST", "imports/debtors", csv=DEBTORS_CSV.read_text(encoding="utf-8"),
                       params={"campaign": CAMP.name})
    assert status == 200
    pay = "account_id,paid_at,amount,currency,reference\nACC-1002,2026-11-22,480.50,USD,API-1\n"
    status, body = api("POST", "imports/payments", csv=pay)
    assert status == 200 and body["paid_in_full"] == ["ACC-1002"] and body["payments"] == 1
    status, body = api("POST", "imports/payments", csv=pay)      # the same file again: nothing imported
    assert status == 422 and body["errors"][0]["column"] == "reference" and body["errors"][0]["row"] == 2
    status, body = api("POST", "imports/payments", json_body={"rows": [
        {"account_id": "ACC-1003", "paid_at": "2026-11-22", "amount": "5", "currency": "USD", "reference": "API-2"},
        {"account_id": "ACC-404", "paid_at": "2026-11-22", "amount": "5", "currency": "USD", "reference": "API-3"}]})
    assert status == 422 and body["errors"] == [{"row": 3, "column": "account_id", "message": "unknown account 'ACC-404'"}]
    st = api.store()
    assert st.query_one("SELECT count(*) FROM payments WHERE reference='API-2'")[0] == 0
    st.close()

    status, body = api("POST", "imports/suppressions", params={"list": "deceased", "source": "registry"},
                       json_body={"rows": [{"debtor_id": "D003", "effective_date": "2026-11-01"}]})
    assert status == 200 and body["added"] == 1
    status, body = api("POST", "imports/suppressions", params={"list": "funeral"}, json_body={"rows": []})
    assert status == 400 and body["field"] == "list"
    status, body = api("POST", "imports/suppressions", params={"list": "dnc"},
                       csv="phone,effective_date,source\n+1212,2026-11-01,crm\n")
    assert status == 422 and body["errors"][0]["column"] == "phone"
    st = api.store()
    d = take_attempt(st, call_id="api-c1", debtor_id="D003", account_id="ACC-1003", campaign=CAMP.name, phone=None,
                     rules=RULES, now=AT)
    assert not d.allowed and d.rule_id == "suppress.deceased"
    st.close()


def test_debtor_history_holds_promises(api):
    status, body = api("GET", "debtors/D001")
    assert status == 200 and body["accounts"][0]["amount_owed"] == "1250.00"
    assert "id_last4" not in body and "birth_year" not in body and "*" in body["phones"][0]["phone"]
    assert api("GET", "debtors/NOPE")[0] == 404
    st = api.store()
    with st.transaction() as conn:
        core.insert_attempt(conn, call_id="api-h1", debtor_id="D001", account_id="ACC-1001", campaign=CAMP.name,
                            phone="+12125550101", placed_at=AT.timestamp())
    core.update_attempt(st, "api-h1", state="ended", outcome="answered", disposition="promise",
                        ended_at=AT.timestamp() + 60)
    pid = core.record_promise(st, "api-h1", "D001", "ACC-1001", "100.00", "2026-12-05", AT.timestamp() + 30)
    st.close()
    status, body = api("GET", "debtors/D001/history")
    assert status == 200 and body["attempts"][0]["disposition"] == "promise"
    assert "*" in body["attempts"][0]["phone"] and body["promises"][0]["id"] == pid
    assert api("GET", "debtors/NOPE/history")[0] == 404

    status, body = api("GET", "promises", params={"debtor_id": "D001", "status": "open"})
    assert status == 200 and [p["id"] for p in body["promises"]] == [pid]
    assert api("GET", "promises", params={"status": "maybe"})[0] == 400
    status, body = api("GET", "promises", params={"limit": "abc"})
    assert status == 400 and body["field"] == "limit"
    assert api("GET", "promises", params={"colour": "red"})[0] == 400

    status, body = api("POST", "debtors/D004/holds", json_body={"kind": "dispute", "source": "crm", "note": "letter"})
    assert status == 201 and body["kind"] == "dispute"
    st = api.store()
    d = take_attempt(st, call_id="api-c2", debtor_id="D004", account_id="ACC-1004", campaign=CAMP.name, phone=None,
                     rules=RULES, now=datetime.now(timezone.utc))   # a hold holds from the moment it is taken
    assert not d.allowed and d.rule_id == "suppress.dispute"
    st.close()
    status, body = api("DELETE", "debtors/D004/holds/dispute", params={"by": "j.smith"})
    assert status == 400 and body["field"] == "reason"
    status, body = api("DELETE", "debtors/D004/holds/dispute", params={"by": "j.smith", "reason": "validated"})
    assert status == 200 and body["released"]["removed_by"] == "j.smith"
    assert api("DELETE", "debtors/D004/holds/dispute", params={"by": "j", "reason": "again"})[0] == 404
    status, body = api("POST", "debtors/D005/holds", json_body={"kind": "cease", "source": "crm"})
    assert status == 201
    assert api("POST", "debtors/D005/holds", json_body={"kind": "pause", "source": "crm"})[0] == 400
    assert api("POST", "debtors/NOPE/holds", json_body={"kind": "cease", "source": "crm"})[0] == 404
    status, body = api("POST", "debtors/D006/holds", json_body={"kind": "dispute", "source": "c\x00rm"})
    assert status == 400 and body["field"] == "body.source"   # PostgreSQL text cannot hold a NUL: refused on both
    st = api.store()
    assert core.get_debtor(st, "D005")["status"] == "cease"
    kinds = [r[0] for r in st.query("SELECT kind FROM outbox ORDER BY id")]
    assert kinds.count("dispute") == 2 and "cease" in kinds and "promise" in kinds and "disposition" in kinds
    st.close()


def test_campaign_state_pause_resume(api):
    status, body = api("GET", "campaigns")
    assert status == 200 and [c["name"] for c in body["campaigns"]] == [CAMP.name]
    assert api("GET", "campaigns/nope")[0] == 404
    assert api("POST", "campaigns/nope/pause")[0] == 404
    status, body = api("POST", f"campaigns/{CAMP.name}/pause")
    assert status == 200 and body["status"] == "paused"
    st = api.store()
    assert core.due_debtors(st, CAMP.name, AT.timestamp()) == []     # the hopper offers nobody
    status, body = api("POST", f"campaigns/{CAMP.name}/resume")
    assert status == 200 and body["status"] == "active"
    assert core.due_debtors(st, CAMP.name, AT.timestamp())
    assert [e["kind"] for e in __import__("dialer.store.audit", fromlist=["x"]).audit_entries(
        st, kind="campaign.status")][-2:] == ["campaign.status", "campaign.status"]
    st.close()
    status, body = api("GET", "webhooks/status")
    assert status == 200 and body["outbox_events"] >= 1


def test_schemathesis_finds_no_server_error(api, tmp_path):
    # a complaint with a hold (the description's example complaint_id), so reviewing and releasing reach the store
    status, _ = api("POST", "complaints", json_body={"phone": "+12125550777", "channel": "lender_cs",
                                                     "category": "harassment", "text": "calls at night"})
    assert status == 201
    st_bin = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st_bin, "schemathesis is not installed (pip install schemathesis; see pyproject test extras)"
    res = subprocess.run([st_bin, "run", api.url + "openapi.json", "-H", f"Authorization: Bearer {api.token}",
                          "--checks", "not_a_server_error,status_code_conformance,response_schema_conformance",
                          "-n", "25", "--seed", "7", "--report-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "passed" in res.stdout and "Tested: 1" in res.stdout


def test_serve_says_plainly_when_the_port_is_taken(api):
    port = int(api.url.split(":")[2].split("/")[0])
    res = subprocess.run([sys.executable, "-m", "dialer.cli", "api", "serve", "--port", str(port), "--db", str(api.db),
                          *api.token_args],
                         env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=REPO, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in res.stderr and "Traceback" not in res.stderr
