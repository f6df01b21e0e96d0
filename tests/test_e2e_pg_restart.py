"""A PostgreSQL restart mid-run, end to end through real Asterisk: a daemon on PostgreSQL (`dialer run --db
postgresql://…`) dials a small campaign through the PBX and the carrier simulator; while its first calls are up
the server is stopped (fast shutdown: every connection dropped) and started again 15 s later. The daemon pauses
dialing (no call placed while the server is down), reconnects and goes on; every debtor is called once, every
attempt is settled once, and the carrier received exactly the calls the store recorded."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from dialer.campaign.config import load_campaign
from dialer.campaign.imports import read_debtors_csv
from dialer.cli.demo import default_demo_time
from dialer.store import Store, core
from dialer.store.audit import verify
from dialer.telephony.carrier import behaviours_from_dict
from dialer.telephony.harness import Harness

pytestmark = pytest.mark.asterisk
REPO = Path(__file__).resolve().parent.parent
HEADER = ("debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,"
          "timezone,customer_type,lang,contacts\n")
DEBTORS = 9
NUMBERS = [f"+1212555031{i}" for i in range(DEBTORS)]
DOWN = 15.0  # seconds the server stays down: longer than the daemon's store wait (5 s), so dialing pauses


def _wait(cond, proc: subprocess.Popen, err: Path, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited before {what}: {err.read_text()[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def run(tmp_path_factory, pg_cluster):
    tmp = tmp_path_factory.mktemp("pgrestart")
    url = pg_cluster.create_database(f"pgrestart{int(time.time())}", template="dialer_template")
    camp_file = tmp / "pgr.yaml"
    camp_file.write_text((REPO / "campaigns" / "en_demo.yaml").read_text().replace("name: en_demo", "name: pgr")
                         .replace("line_limit: 4 ", "line_limit: 3 "))
    store = Store(url)
    camp = load_campaign(camp_file)
    assert camp.line_limit == 3
    core.upsert_campaign(store, camp)
    (tmp / "d.csv").write_text(HEADER + "".join(
        f"PR{i},Dana {i},{n},1234,1984,ACC-PR{i},300.00,USD,10,2026-11-13,America/New_York,first,en,\n"
        for i, n in enumerate(NUMBERS)))
    core.import_debtors(store, read_debtors_csv(tmp / "d.csv"), camp.name)
    harness = Harness(tmp / "run", agents=1, behaviours=behaviours_from_dict(
        {n: {"answer_after": 1, "then": "silent", "hangup_after": 8} for n in NUMBERS}))
    at = default_demo_time()
    harness.up()
    out: dict = {"store": store}
    proc = None
    try:
        spawned = time.monotonic()
        err = tmp / "daemon.err"  # a file, not a pipe: nobody reads while the server is down
        with open(tmp / "daemon.out", "w") as fo, open(err, "w") as fe:
            proc = subprocess.Popen(
                [sys.executable, "-m", "dialer.cli", "run", "--db", url, "--run-dir", str(tmp / "run"),
                 "--at", at.isoformat(), "--until-idle", "--max-seconds", "170", "--campaign", "pgr", "-v"],
                cwd=REPO, stdout=fo, stderr=fe, text=True)

        def up() -> int:
            return store.query_one("SELECT count(*) FROM attempts WHERE state IN ('ringing', 'answered')")[0]
        _wait(lambda: up() == 3, proc, err, "the first three calls up")
        # the daemon's clock started at `at` when it started: the outage in its time (it started after
        # `spawned`, so its clock is behind this estimate — a call placed after the restart never looks earlier)
        out["down_at"] = at.timestamp() + (time.monotonic() - spawned)
        out["in_flight"] = [r[0] for r in store.query("SELECT id FROM attempts WHERE state IN ('ringing', 'answered')")]
        pg_cluster.stop_server()
        time.sleep(DOWN)
        pg_cluster.start_server()
        out["up_at"] = at.timestamp() + (time.monotonic() - spawned)
        out["rc"] = proc.wait(timeout=190)
        out["stdout"], out["stderr"] = (tmp / "daemon.out").read_text(), err.read_text()
        out["carrier_cdr"] = (tmp / "run" / "carrier" / "log" / "cdr-csv" / "Master.csv").read_text()
    finally:
        if pg_cluster.proc is None:
            pg_cluster.start_server()
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        harness.down()
    return out


def test_the_daemon_pauses_while_the_server_is_down_and_goes_on(run):
    err = run["stderr"]
    assert run["rc"] == 0, err[-3000:]
    # a write the outage refused is logged with its traceback; nothing else may fail
    other = [t[:3000] for t in err.split("Traceback")[1:] if "StoreUnavailable" not in t.split("\n20")[0]]
    assert not other, other[0]
    assert "daemon.store_lost" in err and "daemon.store_back" in err, err[-3000:]
    assert "store.reconnected" in err
    placed = [r[0] for r in run["store"].query("SELECT placed_at FROM attempts ORDER BY placed_at")]
    # nothing was dialled while the server was down (5 s of the daemon's own wait after the stop included)
    assert not [t for t in placed if run["down_at"] + 1.0 < t < run["up_at"] - 1.0], (placed, run)
    assert any(t > run["up_at"] - 1.0 for t in placed), "dialing went on after the restart"


def test_every_debtor_is_called_once_and_every_attempt_settled_once(run):
    store = run["store"]
    rows = [dict(r) for r in store.query("SELECT id, debtor_id, state, outcome FROM attempts ORDER BY debtor_id")]
    assert sorted(r["debtor_id"] for r in rows) == [f"PR{i}" for i in range(DEBTORS)], rows
    assert {r["state"] for r in rows} == {"ended"}, rows
    # as the carrier ended them (it answers, then hangs up after 8 s)
    assert {r["outcome"] for r in rows if r["id"] not in run["in_flight"]} == {"callee_hangup"}, rows
    # up when the server stopped, ended while it was down, settled once it was back: reached, as the carrier
    # says. (Their bot may not have run: a bot session cannot start while the store is away — then the
    # daemon knows only that the call was answered, not who hung up.)
    assert {r["outcome"] for r in rows if r["id"] in run["in_flight"]} <= {"callee_hangup", "answered"}, rows
    stats = json.loads(run["stdout"].strip().splitlines()[-1])   # the daemon settled each call once
    assert (stats["placed"], stats["ended"], stats["open"]) == (DEBTORS, DEBTORS, 0), stats
    assert verify(store).ok


def test_the_carrier_received_each_recorded_call_once(run):
    ids = [row.rsplit(",", 1)[-1].strip().strip('"') for row in run["carrier_cdr"].splitlines() if row.strip()]
    attempts = [r["id"] for r in run["store"].query("SELECT id FROM attempts")]
    assert sorted(i for i in ids if i) == sorted(attempts)
