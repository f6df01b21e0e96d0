"""Two dialer servers on one PostgreSQL, end to end through real Asterisk (issue 24).

Two PBX + daemon pairs on 127.0.0.1 (servers `alpha` and `beta`, each `dialer run --server-id … --db
postgresql://…` next to its own PBX) share one PostgreSQL database and one carrier simulator and dial one
campaign with two lines per server. Ten debtors are dialled once each (their numbers ring out), one debtor
(CAP) is busy every time and may be retried at once: the US profile's daily cap of 3 must hold across both
servers. Alpha is SIGKILLed while its calls ring: beta goes on with the debtors nobody holds and never dials
alpha's in-flight debtors; alpha restarts (same server id) while beta still has calls up and settles its own
calls from its own CDR, and nobody else's."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dialer.campaign.config import load_campaign
from dialer.campaign.imports import read_debtors_csv
from dialer.cli import main as cli
from dialer.cli.demo import default_demo_time
from dialer.store import Store, core
from dialer.telephony.carrier import behaviours_from_dict
from dialer.telephony.harness import Harness

pytestmark = pytest.mark.asterisk
REPO = Path(__file__).resolve().parent.parent
HEADER = ("debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,"
          "timezone,customer_type,lang,contacts\n")
ONCE = [f"O{i:02d}" for i in range(10)]
NUMBER = {d: f"+121255503{i:02d}" for i, d in enumerate(ONCE)} | {"CAP": "+12125550399"}
CAMPAIGN = """\
name: scale
profile: us
locale: en-US
institution: Acme Finance
callback_number: "+18005550199"
caller_id: "+12125550199"
dial_mode: bot_only
line_limit: 2
ring_seconds: 12
retry: {busy: 1s, no_answer: 1s, failed: 1s, max_attempts: 10}
segments:
  - {name: once, dpd: 0-30, script: dtmf_verify, retry: {max_attempts: 1}}
  - {name: capped, dpd: 31+, script: dtmf_verify}
"""
OPEN = ("placed", "ringing", "answered")


def _rules(tmp: Path) -> Path:
    """The shipped rules with the US profile's minimum gap and ring time shortened (the daily cap of 3 as
    shipped), so three attempts to one debtor fit in a test."""
    data = yaml.safe_load((REPO / "compliance_rules.yaml").read_text())
    data["profiles"]["us"]["gate"]["min_gap_minutes"] = 0
    data["profiles"]["us"]["abandon"]["min_ring_seconds"] = 5
    path = tmp / "rules.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


class Floor:
    def __init__(self, tmp: Path, url: str, rules: Path):
        self.tmp, self.url, self.rules = tmp, url, rules
        self.at, self.t0 = default_demo_time(), time.monotonic()
        self.procs: list[subprocess.Popen] = []

    def clock(self) -> str:
        """Both servers' clocks run together from one start (a restart goes on where it was)."""
        return (self.at + timedelta(seconds=time.monotonic() - self.t0)).isoformat()

    def daemon(self, server: str, run_dir: Path) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dialer.cli", "run", "--db", self.url, "--run-dir", str(run_dir),
             "--server-id", server, "--rules", str(self.rules), "--at", self.clock(), "--until-idle",
             "--max-seconds", "150", "--grace", "30", "--campaign", "scale", "--no-web", "-v",
             "--log-file", str(self.tmp / f"{server}-{len(self.procs)}.log")],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        return proc

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def _attempts(store: Store) -> list[dict]:
    return [dict(r) for r in store.query("SELECT * FROM attempts ORDER BY placed_at, id")]


def _wait(procs, what: str, cond, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"a daemon exited before {what}: {p.stderr.read()[-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def floor(tmp_path_factory, pg_cluster):
    tmp = tmp_path_factory.mktemp("scaleout")
    url = pg_cluster.create_database("scaleout_e2e", template="dialer_template")
    camp_file = tmp / "scale.yaml"
    camp_file.write_text(CAMPAIGN)
    store = Store(url)
    core.upsert_campaign(store, load_campaign(camp_file))
    (tmp / "debtors.csv").write_text(HEADER + "".join(
        f"{d},Dana {d},{NUMBER[d]},1234,1984,ACC-{d},300.00,USD,{45 if d == 'CAP' else 10},2026-11-13,"
        f"America/New_York,first,en,\n" for d in NUMBER))
    core.import_debtors(store, read_debtors_csv(tmp / "debtors.csv"), "scale")
    for i, d in enumerate(["CAP"] + ONCE):  # best first: CAP's three attempts come while the others ring
        core.set_propensity(store, d, 0.9 - i * 0.05)
    behaviours = {NUMBER[d]: {"no_answer": True} for d in ONCE} | {NUMBER["CAP"]: {"busy": True}}
    a = Harness(tmp / "a", agents=0, behaviours=behaviours_from_dict(behaviours))
    b: Harness | None = None
    fl = Floor(tmp, url, _rules(tmp))
    out: dict = {"store": store}
    try:
        a.up()
        assert a.ports is not None
        b = Harness(tmp / "b", agents=0, trunk=("127.0.0.1", a.ports.carrier_sip))
        b.up()
        assert b.ports is not None
        a.add_carrier_peer("pbx2", b.ports.pbx_sip)  # one carrier for both PBX
        alpha = fl.daemon("alpha", tmp / "a")
        beta = fl.daemon("beta", tmp / "b")

        def ringing(server: str) -> list[dict]:
            return [r for r in _attempts(store) if r["server_id"] == server and r["state"] == "ringing"
                    and r["debtor_id"] != "CAP"]

        _wait([alpha, beta], "both servers ringing", lambda: len(ringing("alpha")) == 2 and ringing("beta"))
        alpha.send_signal(signal.SIGKILL)
        alpha.wait(10)
        out["killed_at"] = time.time()
        out["alpha_inflight"] = sorted(r["debtor_id"] for r in _attempts(store)
                                       if r["server_id"] == "alpha" and r["state"] in OPEN)
        # heartbeats are on the daemons' clock (`--at`): status judges them on the same clock, not the wall's
        res = CliRunner().invoke(cli, ["status", "--db", url, "--json", "--at", fl.clock()])
        out["status_after_kill"] = json.loads(res.output) if res.exit_code == 0 else res.output
        # beta goes on; alpha's calls ring out on the PBX meanwhile (its CDR is written, nobody listens)
        _wait([beta], "alpha's calls to end on its PBX",
              lambda: all(f'"{r}"' in (a.cdr_path().read_text() if a.cdr_path().exists() else "")
                          for r in [x["id"] for x in _attempts(store) if x["server_id"] == "alpha"
                                    and x["state"] in OPEN]), timeout=60)
        # ... and beta has dialled since alpha's calls were placed (on a loaded machine its own calls may
        # still be ringing out when alpha's end: wait for its next one, alpha still down)
        first_inflight = min(x["placed_at"] for x in _attempts(store) if x["server_id"] == "alpha"
                             and x["debtor_id"] in out["alpha_inflight"])
        _wait([beta], "beta to dial after alpha's calls were placed",
              lambda: any(x["server_id"] == "beta" and x["placed_at"] > first_inflight for x in _attempts(store)),
              timeout=90)
        out["attempts_while_alpha_down"] = _attempts(store)
        # alpha comes back while beta still has calls up
        _wait([beta], "beta to have a call up", lambda: bool(ringing("beta")), timeout=60)
        out["beta_up_at_restart"] = [r["id"] for r in ringing("beta")]
        again = fl.daemon("alpha", tmp / "a")
        out["again_out"], out["again_err"] = again.communicate(timeout=170)
        out["again_rc"] = again.returncode
        out["beta_out"], out["beta_err"] = beta.communicate(timeout=170)
        out["beta_rc"] = beta.returncode
        res = CliRunner().invoke(cli, ["status", "--db", url, "--json", "--at", fl.clock()])
        out["status_end"] = json.loads(res.output) if res.exit_code == 0 else res.output
        out["carrier_cdr"] = (tmp / "a" / "carrier" / "log" / "cdr-csv" / "Master.csv").read_text()
        out["logs"] = {p.name: p.read_text() for p in tmp.glob("*.log")}
    finally:
        fl.kill_all()
        if b is not None:
            b.down()
        a.down()
    return out


def test_every_debtor_is_dialled_by_one_server_and_the_cap_holds_across_both(floor):
    store = floor["store"]
    assert floor["beta_rc"] == 0, floor["beta_err"][-3000:]
    assert floor["again_rc"] == 0, floor["again_err"][-3000:]
    rows = _attempts(store)
    assert {r["server_id"] for r in rows} == {"alpha", "beta"}
    for d in ONCE:  # dialled once, by one server: never by both
        mine = [r for r in rows if r["debtor_id"] == d]
        assert len(mine) == 1, (d, [(r["server_id"], r["state"]) for r in mine])
    cap = [r for r in rows if r["debtor_id"] == "CAP"]
    blocks = store.query("SELECT * FROM gate_blocks WHERE debtor_id = 'CAP'")
    assert len(cap) == 3 and {r["outcome"] for r in cap} == {"busy"}, (
        [(r["server_id"], r["outcome"]) for r in cap], [b["rule_id"] for b in blocks])
    assert blocks and {b["rule_id"] for b in blocks} <= {"cap.daily", "cap.number_daily"}, [dict(b) for b in blocks]
    assert all(r["state"] == "ended" for r in rows), [(r["id"], r["state"]) for r in rows if r["state"] != "ended"]
    # the carrier saw each of those calls once: 10 + 3
    placed = [line for line in floor["carrier_cdr"].splitlines() if "+121255503" in line]
    assert len(placed) == 13, placed


def test_after_a_sigkill_the_other_server_never_dials_the_killed_servers_calls(floor):
    inflight = floor["alpha_inflight"]
    assert len(inflight) >= 2 and "CAP" not in inflight
    down = floor["attempts_while_alpha_down"]
    for d in inflight:  # while alpha was down its in-flight debtors had exactly its one attempt
        assert [r["server_id"] for r in down if r["debtor_id"] == d] == ["alpha"]
    after = [r for r in down if r["server_id"] == "beta" and r["placed_at"] > min(
        x["placed_at"] for x in down if x["debtor_id"] in inflight)]
    assert after, "beta went on dialling the debtors nobody held"
    status = {s["server"]: s for s in floor["status_after_kill"]["servers"]}
    assert status["alpha"]["open_calls"] == len(inflight) and status["beta"]["state"] == "running"


def test_the_restarted_server_settles_its_own_calls_from_its_cdr_and_nobody_elses(floor):
    store = floor["store"]
    for d in floor["alpha_inflight"]:
        (row,) = [r for r in _attempts(store) if r["debtor_id"] == d]
        assert (row["state"], row["outcome"]) == ("ended", "no_answer")
        events = core.call_events(store, row["id"], "reconciled")
        assert events and events[0]["data"]["source"] in ("cdr", "cdr+cel"), events
    # beta's calls up while alpha restarted were settled by beta itself, never reconciled by alpha
    for call_id in floor["beta_up_at_restart"]:
        row = core.get_attempt(store, call_id)
        assert row["server_id"] == "beta" and row["state"] == "ended"
        assert core.call_events(store, call_id, "reconciled") == []
    reconciled = store.query("SELECT e.call_id, t.server_id FROM call_events e JOIN attempts t ON t.id = e.call_id"
                             " WHERE e.kind = 'reconciled'")
    assert {r["server_id"] for r in reconciled} == {"alpha"}
    # logs carry the server's id; the status shows both stopped cleanly with no leases left
    assert all(json.loads(line).get("server") == "alpha" for name, text in floor["logs"].items()
               if name.startswith("alpha") for line in text.splitlines() if line.strip())
    end = {s["server"]: s for s in floor["status_end"]["servers"]}
    assert {s["state"] for s in end.values()} == {"stopped"} and {s["leases"] for s in end.values()} == {0}
