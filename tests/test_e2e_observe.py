"""The operators' view end to end: `dialer run -v` through real Asterisk, its wallboard in headless Chromium
(Debian's /usr/bin/chromium driven by playwright; no browser download — the test fails when it is missing) and
its /metrics scraped while it runs, the calls placed counted independently from the carrier simulator's CDR."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bench.chaos import read_carrier_cdr
from dialer.campaign.config import load_campaign
from dialer.campaign.imports import read_debtors_csv
from dialer.cli.demo import default_demo_time
from dialer.gate.account import add_inconvenient
from dialer.store import Store, core
from dialer.telephony.carrier import behaviours_from_dict
from dialer.telephony.harness import Harness

pytestmark = pytest.mark.asterisk
REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARTEFACTS = REPO / "var" / "test-artefacts"

BEHAVIOURS = {
    "+12125550101": {"answer_after": 2, "then": "speak", "audio": "hello.wav",
                     "dtmf": [{"digits": "1", "at": 6}, {"digits": "1984", "at": 10}, {"digits": "1", "at": 24}],
                     "hangup_after": 34},  # verifies and promises: a right-party contact and a promise
    "+12125550102": {"busy": True},
    "+12125550104": {"answer_after": 1, "then": "speak", "audio": "hello.wav",
                     "dtmf": [{"digits": "1", "at": 6}, {"digits": "1970", "at": 10}], "hangup_after": 16},
    "+12125550105": {"answer_after": 1, "then": "speak", "audio": "hello.wav",
                     "dtmf": [{"digits": "1", "at": 6}, {"digits": "1995", "at": 10}, {"digits": "2", "at": 24}],
                     "hangup_after": 45},  # verifies, asks for a collector: agent1 takes it, then disposes of it
    "+12125550106": {"answer_after": 3, "then": "machine", "audio": "voicemail_greeting.wav", "hangup_after": 25},
    "+12125550107": {"answer_after": 1, "then": "speak", "audio": "hello.wav", "hangup_after": 10},
    "+12125550108": {"answer_after": 1, "then": "silent", "hangup_after": 3},
}
BLOCKED_DEBTOR = "D010"  # asked never to be called at these hours: the gate blocks it (`request.inconvenient`)
RULE = "request.inconvenient"


def _csv(tmp: Path) -> Path:
    lines = (REPO / "campaigns" / "examples" / "demo_debtors.csv").read_text().splitlines()
    keep = [lines[0]] + [ln for ln in lines[1:] if ln.split(",")[2] in BEHAVIOURS or ln.startswith(BLOCKED_DEBTOR)]
    path = tmp / "debtors.csv"
    path.write_text("\n".join(keep) + "\n")
    return path


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _post(url: str, token: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read().decode())


def _metric(text: str, name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include `labels`."""
    total = 0.0
    for m in re.finditer(rf"^{name}(?:\{{([^}}]*)\}})? (\S+)$", text, re.M):
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
    return total


@pytest.fixture(scope="module")
def observed_run(tmp_path_factory):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/setup) — this test never skips")
    from playwright.sync_api import sync_playwright

    tmp = tmp_path_factory.mktemp("observe")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    db = tmp / "dialer.db"
    store = Store(db)
    camp = load_campaign(REPO / "campaigns" / "en_demo.yaml")
    core.upsert_campaign(store, camp)
    core.import_debtors(store, read_debtors_csv(_csv(tmp)), camp.name)
    at = default_demo_time()
    add_inconvenient(store, BLOCKED_DEBTOR, {"start": "00:00", "end": "24:00", "label": "any time"},
                     at=at.timestamp() - 3600)
    harness = Harness(tmp / "run", agents=1, behaviours=behaviours_from_dict(BEHAVIOURS))
    harness.up()
    out: dict = {"store": store, "harness_run": tmp / "run"}
    daemon = None
    try:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "dialer.cli", "run", "--db", str(db), "--run-dir", str(tmp / "run"),
             "--at", at.isoformat(), "--max-seconds", "150", "--grace", "30", "--campaign", camp.name, "-v"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        info_path = tmp / "run" / "web.json"
        deadline = time.monotonic() + 60
        while not info_path.exists() and time.monotonic() < deadline and daemon.poll() is None:
            time.sleep(0.1)
        assert info_path.exists(), daemon.stderr.read() if daemon.poll() is not None else "no web.json"
        base = json.loads(info_path.read_text())["url"]
        token = (tmp / "run" / "web.token").read_text().strip()
        out.update(base=base, token=token, token_mode=oct(os.stat(tmp / "run" / "web.token").st_mode & 0o777))
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                refused = page.goto(base)
                out["refused"] = (refused.status, page.inner_text("body"))
                page.goto(f"{base}?token={token}")
                page.wait_for_selector("#settled-en_demo", timeout=20_000)
                out["first"] = {k: page.inner_text(f"#{k}-en_demo") for k in ("placed", "settled", "contacts")}
                out["first_version"] = int(page.evaluate("document.body.dataset.version"))
                # until every call has ended (the store says so) and the carrier has a record of each
                seen_settled = [out["first"]["settled"]]
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    page.wait_for_timeout(500)
                    seen_settled.append(page.inner_text("#settled-en_demo"))
                    rows = store.query("SELECT state FROM attempts WHERE campaign='en_demo'")
                    carrier = [r for r in read_carrier_cdr(harness.run_dir / "carrier" / "log" / "cdr-csv" /
                                                           "Master.csv") if r["userfield"].startswith("en_demo-")]
                    if rows and len(rows) == len(BEHAVIOURS) and all(r["state"] == "ended" for r in rows) \
                            and len(carrier) == len(rows):
                        break
                page.wait_for_timeout(1500)  # the wallboard's last push
                out["seen_settled"] = seen_settled
                out["carrier"] = carrier
                out["metrics_status"], out["metrics"] = _get(base + "metrics", token)
                out["metrics_no_token"] = _get(base + "metrics")[0]
                # the lender's API is mounted in the same server, behind the same token
                out["api_status"], out["api_campaigns"] = _get(base + "api/campaigns", token)
                out["api_no_token"] = _get(base + "api/campaigns")[0]
                # a dispute hold posted to the daemon's API is taken on the daemon's clock (--at), not the wall's
                out["hold"] = _post(base + f"api/debtors/{BLOCKED_DEBTOR}/holds", token,
                                    {"kind": "dispute", "source": "crm", "note": "letter"})
                out["started_at"] = at.timestamp()
                out["last"] = {k: page.inner_text(f"#{k}-en_demo")
                               for k in ("placed", "settled", "contacts", "rpc", "promises", "blocked", "outcomes")}
                out["last_version"] = int(page.evaluate("document.body.dataset.version"))
                # agent1 had D005's call: its disposition, entered on the wallboard's form (refused first)
                page.select_option("#dispo-collector", "agent1")
                page.select_option("#dispo-outcome", "promise")
                page.click("#dispo-send")
                page.wait_for_selector("#dispo-status.error", timeout=10_000)
                out["dispo_refused"] = page.inner_text("#dispo-status")
                out["dispo_date"] = (at + timedelta(days=5)).date().isoformat()
                page.fill("#dispo-amount", "120.00")
                page.fill("#dispo-date", out["dispo_date"])
                page.fill("#dispo-note", "pays on Friday")
                page.click("#dispo-send")
                page.wait_for_selector("#dispo-status.done", timeout=10_000)
                out["dispo_done"] = page.inner_text("#dispo-status")
                shot = ARTEFACTS / "wallboard.png"
                page.screenshot(path=str(shot), full_page=True)
                out["screenshot"] = shot
            finally:
                browser.close()
        daemon.send_signal(signal.SIGTERM)
        stdout, stderr = daemon.communicate(timeout=60)
        out.update(returncode=daemon.returncode, stdout=stdout, stderr=stderr)
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
            daemon.wait(10)
        harness.down()
    return out


def test_the_wallboard_loads_with_the_token_refuses_without_and_moves_while_calls_run(observed_run):
    r = observed_run
    assert r["refused"][0] == 401 and "access token" in r["refused"][1]
    assert r["token_mode"] == "0o600"
    assert r["base"].startswith("http://127.0.0.1:")
    # the numbers changed while the campaign ran through Asterisk
    assert r["last_version"] > r["first_version"]
    assert int(r["last"]["settled"]) == len(BEHAVIOURS) > int(r["first"]["settled"])
    assert len(set(r["seen_settled"])) >= 3, r["seen_settled"]  # it moved step by step, live
    assert int(r["last"]["placed"]) == len(BEHAVIOURS)
    assert int(r["last"]["rpc"]) >= 1 and int(r["last"]["promises"]) == 1
    assert RULE in r["last"]["blocked"]
    assert "busy 1" in r["last"]["outcomes"] and "machine 1" in r["last"]["outcomes"]
    assert r["screenshot"].stat().st_size > 10_000


def test_a_collector_enters_the_disposition_of_their_call_on_the_wallboard(observed_run):
    r = observed_run
    store = r["store"]
    [call] = store.query("SELECT * FROM attempts WHERE campaign='en_demo' AND agent='agent1'")
    assert call["debtor_id"] == "D005"
    assert "not recorded: a promise needs date" in r["dispo_refused"]
    assert r["dispo_done"].startswith(f"recorded: agent1, call {call['id']} (D005)")
    [d] = store.query("SELECT * FROM collector_dispositions WHERE call_id=?", (call["id"],))
    assert (d["agent"], d["outcome"], d["amount"], d["date"], d["note"], d["source"]) == (
        "agent1", "promise", "120.00", r["dispo_date"], "pays on Friday", "collector")
    [p] = core.promises_for(store, call_id=call["id"])
    assert (p["status"], p["amount"], p["due_date"]) == ("open", "120.00", r["dispo_date"])


def test_metrics_count_the_calls_the_carrier_received(observed_run):
    r = observed_run
    assert r["metrics_status"] == 200 and r["metrics_no_token"] == 401
    text = r["metrics"]
    carrier_calls = {row["userfield"] for row in r["carrier"]}  # the carrier's own record of what reached it
    assert len(carrier_calls) == len(BEHAVIOURS)
    assert _metric(text, "dialer_calls_placed_total", campaign="en_demo") == len(carrier_calls)
    store = r["store"]
    outcomes = {row["outcome"]: row["n"] for row in
                store.query("SELECT outcome, COUNT(*) AS n FROM attempts WHERE campaign='en_demo' GROUP BY outcome")}
    for outcome, n in outcomes.items():
        assert _metric(text, "dialer_calls_total", campaign="en_demo", outcome=outcome) == n, outcome
    assert _metric(text, "dialer_gate_blocks_total", campaign="en_demo", rule=RULE) >= 1
    assert _metric(text, "dialer_agi_sessions_total", result="session") >= 4  # the answered calls' bot sessions
    assert _metric(text, "dialer_abandon_limit", campaign="en_demo") == 0.03
    assert _metric(text, "dialer_last_tick_timestamp_seconds") > time.time() - 600


def test_the_lender_api_is_served_by_the_daemon_behind_its_token(observed_run):
    r = observed_run
    assert r["api_no_token"] == 401
    assert r["api_status"] == 200, r["api_campaigns"]
    assert "en_demo" in {c["name"] for c in json.loads(r["api_campaigns"])["campaigns"]}
    status, hold = r["hold"]
    assert status == 201 and hold["kind"] == "dispute", hold
    started = r["started_at"]
    assert started <= hold["created_at"] <= started + 600, (hold, started)  # the daemon's clock, not the wall's


def test_the_daemon_said_what_it_did_and_kept_its_summary(observed_run):
    r = observed_run
    assert r["returncode"] == 0, r["stderr"][-3000:]
    err = r["stderr"]
    assert "wallboard: http://127.0.0.1:" in err and r["token"] not in err.replace(f"token={r['token']}", "")
    assert re.search(r"placed en_demo-\w+ \(en_demo, bot\)", err)
    assert f"blocked (en_demo) by {RULE}: " in err
    assert re.search(r"settled en_demo-\w+: busy", err)
    assert "stopping (stop requested)" in err
    assert re.search(r"summary: 7 placed, \d+ blocked \(request.inconvenient \d+\), 7 settled", err), err[-2000:]
    assert "stopped: 7 placed, 7 settled" in err
    summary = json.loads(r["stdout"].strip().splitlines()[-1])
    assert summary["placed"] == 7 and summary["blocked_by_rule"].get(RULE, 0) >= 1
