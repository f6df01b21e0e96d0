"""A crash never erases a conversation, end to end through real Asterisk.

Four debtors are called by a daemon that is stopped with SIGTERM mid-call (it lets the calls finish: the
clean run) and four twins with the same carrier behaviour by a daemon SIGKILLed at one moment when
(a) the debt has been disclosed to a verified debtor, (b) a debtor talks to a collector, (c) a number
rings and (d) an answering machine hears the bot's message; a new daemon is started. Each twin's attempt
must end with the outcome and facts of the clean run, and `dialer compliance explain` must block the next
call exactly as for the clean twin (in (a): the US 7-day quiet period)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
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
# (a) verifies and hears the debt, presses nothing; (b) verifies, asks for a collector (2) during the debt
# and talks to them; (c) rings out; (d) an answering machine
SITUATIONS = {
    "a": {"answer_after": 1, "then": "speak", "audio": "hello.wav",
          "dtmf": [{"digits": "1", "at": 6}, {"digits": "1984", "at": 10}], "hangup_after": 40},
    "b": {"answer_after": 1, "then": "speak", "audio": "hello.wav",
          "dtmf": [{"digits": "1", "at": 6}, {"digits": "1984", "at": 10}, {"digits": "2", "at": 14}],
          "hangup_after": 42},
    "c": {"no_answer": True},
    "d": {"answer_after": 11, "then": "machine", "audio": "voicemail_greeting.wav", "hangup_after": 40},
}
NUMBER = {("clean", "a"): "+12125550201", ("clean", "b"): "+12125550202", ("clean", "c"): "+12125550203",
          ("clean", "d"): "+12125550204", ("crash", "a"): "+12125550211", ("crash", "b"): "+12125550212",
          ("crash", "c"): "+12125550213", ("crash", "d"): "+12125550214"}
FACTS = ("outcome", "disposition", "conversation", "machine", "abandoned", "agent", "state")


def _debtor_id(run: str, s: str) -> str:
    return f"{run[:2].upper()}{s.upper()}"


def _csv(run: str) -> str:
    return HEADER + "".join(
        f"{_debtor_id(run, s)},Dana {s.upper()},{NUMBER[run, s]},1234,1984,ACC-{_debtor_id(run, s)},300.00,USD,10,"
        f"2026-11-13,America/New_York,first,en,\n" for s in SITUATIONS)


class Run:
    def __init__(self, tmp: Path, at: datetime):
        self.tmp, self.at, self.t0 = tmp, at, time.monotonic()
        self.db = tmp / "dialer.db"
        self.procs: list[subprocess.Popen] = []

    def clock(self) -> str:
        """The daemons' clock goes on where the last one's was (an earlier one is refused)."""
        return (self.at + timedelta(seconds=time.monotonic() - self.t0)).isoformat()

    def daemon(self) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dialer.cli", "run", "--db", str(self.db), "--run-dir", str(self.tmp / "run"),
             "--at", self.clock(), "--until-idle", "--max-seconds", "150", "--campaign", "dur", "-v"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        return proc

    def kill_all(self) -> None:
        for proc in self.procs:  # a daemon left running by a failed step is stopped by its PID
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def _wait(store: Store, proc: subprocess.Popen, what: str, cond, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited before {what}: {proc.stderr.read()[-3000:]}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"timed out waiting for {what}: "
                         f"{[dict(r) for r in store.query('SELECT id, debtor_id, state, outcome FROM attempts')]}")


def _attempt(store: Store, debtor: str) -> dict | None:
    rows = core.attempts_for_debtor(store, debtor)
    return rows[-1] if rows else None


def _has(store: Store, debtor: str, event: str, **data) -> bool:
    att = _attempt(store, debtor)
    return att is not None and any(all(e["data"].get(k) == v for k, v in data.items())
                                   for e in core.call_events(store, att["id"], event))


def _in_situation(store: Store, run: str) -> bool:
    d = {s: _debtor_id(run, s) for s in SITUATIONS}
    c, m = _attempt(store, d["c"]), _attempt(store, d["d"])
    return (_has(store, d["a"], "verified") and _has(store, d["b"], "agent_connect")
            and c is not None and c["state"] == "ringing"
            and _has(store, d["d"], "outcome", kind="machine") and m["state"] == "answered")


def _explain(db: Path, debtor: str, at: datetime) -> dict:
    res = CliRunner().invoke(cli, ["compliance", "explain", "--debtor", debtor, "--db", str(db),
                                   "--at", at.isoformat(), "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def _failing(explained: dict) -> set[str]:
    return {c["rule_id"] for n in explained["numbers"] for c in n["checks"] if not c["passed"]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("durability")
    camp_file = tmp / "dur.yaml"
    camp_file.write_text((REPO / "campaigns" / "en_demo.yaml").read_text().replace("name: en_demo", "name: dur")
                         + "ring_seconds: 40\n")
    harness = Harness(tmp / "run", agents=1, queue_timeout=20, behaviours=behaviours_from_dict(
        {NUMBER[run, s]: b for (run, s) in NUMBER for s2, b in SITUATIONS.items() if s2 == s}))
    run = Run(tmp, default_demo_time())
    store = Store(run.db)
    camp = load_campaign(camp_file)
    core.upsert_campaign(store, camp)
    (tmp / "clean.csv").write_text(_csv("clean"))
    core.import_debtors(store, read_debtors_csv(tmp / "clean.csv"), camp.name)
    harness.up()
    out: dict = {"store": store, "run": run}
    try:
        # the clean run, stopped by SIGTERM while all four calls are up: they finish, then it exits
        clean = run.daemon()
        _wait(store, clean, "the clean run's four situations", lambda: _in_situation(store, "clean"))
        clean.send_signal(signal.SIGTERM)
        out["clean_out"], out["clean_err"] = clean.communicate(timeout=150)
        out["clean_rc"] = clean.returncode
        # the crash run: the twins, one SIGKILL while all four are in their situation, then a new daemon
        (tmp / "crash.csv").write_text(_csv("crash"))
        core.import_debtors(store, read_debtors_csv(tmp / "crash.csv"), camp.name)
        first = run.daemon()
        _wait(store, first, "the crash run's four situations", lambda: _in_situation(store, "crash"))
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        out["open_after_kill"] = {s: _attempt(store, _debtor_id("crash", s))["state"] for s in SITUATIONS}
        out["conversation_after_kill"] = _attempt(store, _debtor_id("crash", "a"))["conversation"]
        second = run.daemon()
        out["second_out"], out["second_err"] = second.communicate(timeout=170)
        out["second_rc"] = second.returncode
        out["carrier_cdr"] = (tmp / "run" / "carrier" / "log" / "cdr-csv" / "Master.csv").read_text()
    finally:
        run.kill_all()
        harness.down()
    return out


def test_sigterm_lets_live_calls_finish_and_prints_a_summary(runs):
    assert runs["clean_rc"] == 0, runs["clean_err"][-3000:]
    err = runs["clean_err"]
    assert "Traceback" not in err and "CancelledError" not in err, err[-3000:]
    assert "stopped:" in err
    summary = json.loads(runs["clean_out"].strip().splitlines()[-1])
    assert summary["drained"] == 4 and summary["hung_up"] == 0 and summary["open"] == 0, summary
    store = runs["store"]
    got = {s: _attempt(store, _debtor_id("clean", s)) for s in SITUATIONS}
    assert {s: (r["outcome"], r["disposition"]) for s, r in got.items()} == {
        "a": ("answered", "verified_no_choice"), "b": ("answered", "transfer"), "c": ("no_answer", None),
        "d": ("machine", "machine")}


def test_a_sigkill_in_each_situation_settles_as_the_clean_run(runs):
    store = runs["store"]
    assert runs["second_rc"] == 0, runs["second_err"][-3000:]
    assert set(runs["open_after_kill"].values()) <= {"ringing", "answered"}
    # (a): the conversation was durable the moment it happened, before any recovery
    assert runs["conversation_after_kill"] == 1
    for s in SITUATIONS:
        clean, crash = _attempt(store, _debtor_id("clean", s)), _attempt(store, _debtor_id("crash", s))
        assert {k: crash[k] for k in FACTS} == {k: clean[k] for k in FACTS}, s
        assert len(core.attempts_for_debtor(store, _debtor_id("crash", s))) == 1, f"{s}: dialled again"
    a = _attempt(store, _debtor_id("crash", "a"))
    assert a["conversation"] == 1 and _has(store, _debtor_id("crash", "a"), "verified")
    b = _attempt(store, _debtor_id("crash", "b"))
    assert b["agent"] == "agent1"
    assert any(e["data"]["source"] == "ami" for e in core.call_events(store, b["id"], "reconciled")), \
        "the call with the collector was adopted and followed to its end"
    stats = json.loads(runs["second_out"].strip().splitlines()[-1])
    assert stats["placed"] == 0 and stats["reconciled"] == 4 and stats["adopted"] >= 1, stats


def test_compliance_explain_blocks_the_next_call_as_without_the_crash(runs):
    db = runs["run"].db
    next_morning = (runs["run"].at + timedelta(days=1)).replace(hour=10)
    for s in SITUATIONS:
        clean = _explain(db, _debtor_id("clean", s), next_morning)
        crash = _explain(db, _debtor_id("crash", s), next_morning)
        assert (crash["allowed"], _failing(crash)) == (clean["allowed"], _failing(clean)), s
    a_in_6_days = _explain(db, _debtor_id("crash", "a"), next_morning + timedelta(days=5))
    assert not a_in_6_days["allowed"] and "conv.7day" in _failing(a_in_6_days)


def test_the_carrier_received_each_call_once(runs):
    ids = [row.rsplit(",", 1)[-1].strip().strip('"') for row in runs["carrier_cdr"].splitlines() if row.strip()]
    attempts = [r["id"] for r in runs["store"].query("SELECT id FROM attempts")]
    assert sorted(i for i in ids if i) == sorted(attempts)
