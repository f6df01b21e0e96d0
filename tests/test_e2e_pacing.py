"""The predictive and progressive pacers driving real calls through Asterisk: collectors are SIPp phones,
answered people go straight to the queue, and a person no collector takes within 2 s of the end of the
greeting hears the information message and counts as abandoned."""
from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from agi.media.tts import TTS
from common.clock import Clock
from common.wav import active_seconds
from dialer.calls.bot import info_text
from dialer.calls.daemon import Dialer
from dialer.calls.recovery import read_cdr
from dialer.campaign.config import load_campaign
from dialer.campaign.imports import read_debtors_csv
from dialer.cli.demo import default_demo_time
from dialer.gate.rules import load_rules
from dialer.observe.events import PaceDecision
from dialer.store import Store, core
from dialer.store import audit as audit_log
from dialer.telephony.carrier import behaviours_from_dict
from dialer.telephony.harness import Harness

pytestmark = pytest.mark.asterisk
REPO = Path(__file__).resolve().parent.parent
COLLECTORS = 2
HEADER = ("debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,"
          "timezone,customer_type,lang,contacts\n")


def _row(did: str, phone: str) -> str:
    return f"{did},Debtor {did},{phone},1234,1980,ACC-{did},500.00,USD,12,2026-11-11,America/New_York,first,en,\n"


# store order: three people first (two collectors: the pacer's first decision over-dials, one of them is
# likely to find nobody), then a no-answer, a busy line and an answering machine, then four more people
HUMANS = {f"P{i:02d}": f"+121255502{i:02d}" for i in (1, 2, 3, 7, 8, 9, 10)}
NO_ANSWER = {"P04": "+12125550204"}
BUSY = {"P05": "+12125550205"}
MACHINE = {"P06": "+12125550206"}
PROG_HUMANS = {"G01": "+12125550301", "G02": "+12125550302", "G03": "+12125550303"}
PROG_OTHER = {"G04": "+12125550304"}
HISTORY_ANSWERED = 100  # earlier: answered calls with no abandon (the 3 % budget has room for 3)


def _campaign(name: str, mode: str) -> str:
    return f"""name: {name}
profile: us
locale: en-US
institution: Acme Finance
callback_number: "+18005550199"
caller_id: "+12125550199"
dial_mode: {mode}
line_limit: 8
retry: {{busy: 2h, no_answer: 2h, machine: 1d, failed: 4h, callee_hangup: 1d, max_attempts: 6}}
segments:
  - name: m1
    dpd: M1
    script: m1_reminder_en
"""


def _behaviours() -> dict:
    b: dict = {}
    for i, (_, phone) in enumerate(HUMANS.items()):
        b[phone] = {"answer_after": [1, 2, 3, 1, 2, 3, 4][i], "then": "speak", "audio": "hello.wav",
                    "hangup_after": 12}
    b[MACHINE["P06"]] = {"answer_after": 2, "then": "machine", "audio": "voicemail_greeting.wav", "hangup_after": 25}
    for phone in NO_ANSWER.values():
        b[phone] = {"no_answer": True}
    for phone in BUSY.values():
        b[phone] = {"busy": True}
    for i, phone in enumerate(PROG_HUMANS.values()):
        b[phone] = {"answer_after": 1 + i, "then": "speak", "audio": "hello.wav", "hangup_after": 8}
    b[PROG_OTHER["G04"]] = {"busy": True}
    return b


def _overlap(rows: list[dict]) -> int:
    """Most calls in progress at once, from the store's placed/ended times."""
    edges = sorted([(r["placed_at"], 1) for r in rows] + [(r["ended_at"], -1) for r in rows],
                   key=lambda e: (e[0], e[1]))
    cur = best = 0
    for _, d in edges:
        cur += d
        best = max(best, cur)
    return best


@pytest.fixture(scope="module")
def pacing_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pacing")
    at = default_demo_time()
    # the US profile, with a 3-s wrap-up for these two campaigns (the profile's 10 s only makes the test slow)
    text = (REPO / "compliance_rules.yaml").read_text()
    assert "campaign_overrides: {}" in text
    (tmp / "rules.yaml").write_text(text.replace(
        "campaign_overrides: {}", "campaign_overrides: {pred: {profile: us, abandon: {wrap_up_seconds: 3}},"
        " prog: {profile: us, abandon: {wrap_up_seconds: 3}}}"))
    rules = load_rules(tmp / "rules.yaml")
    store = Store(tmp / "dialer.db")
    camps = {}
    for name, mode, debtors in (("pred", "predictive", {**HUMANS, **MACHINE, **NO_ANSWER, **BUSY}),
                                ("prog", "progressive", {**PROG_HUMANS, **PROG_OTHER})):
        (tmp / f"{name}.yaml").write_text(_campaign(name, mode))
        camps[name] = load_campaign(tmp / f"{name}.yaml")
        core.upsert_campaign(store, camps[name])
        (tmp / f"{name}.csv").write_text(HEADER + "".join(_row(d, p) for d, p in debtors.items()))
        core.import_debtors(store, read_debtors_csv(tmp / f"{name}.csv"), name)
    # the campaign's history: answered, none abandoned (a record nobody dials again)
    (tmp / "hist.csv").write_text(HEADER + _row("H000", "+12125550999"))
    core.import_debtors(store, read_debtors_csv(tmp / "hist.csv"), "pred")
    # eight days ago: inside the US profile's 30-day abandon window (the budget), outside the 7 days the daemon
    # warms its estimator from (this test's pacer starts from the estimator's priors, as it always did)
    t0 = at.timestamp() - 8 * 86400
    for i in range(HISTORY_ANSWERED):
        with store.transaction() as conn:
            core.insert_attempt(conn, call_id=f"hist-{i}", debtor_id="H000", account_id="ACC-H000", campaign="pred",
                                phone="+12125550999", placed_at=t0 + i)
        core.update_attempt(store, f"hist-{i}", state="ended", outcome="answered", answered_at=t0 + i + 5,
                            ended_at=t0 + i + 60, at=t0 + i + 60)
    core.set_debtor_status(store, "H000", "done", at=t0)

    harness = Harness(tmp / "run", agents=COLLECTORS,
                      behaviours=behaviours_from_dict(_behaviours()))
    state = harness.up()
    tts = TTS()
    out: dict = {}

    async def run(name: str) -> None:
        dialer = Dialer(store, state, rules, [camps[name]], clock=Clock(at), tts=tts, collector_modes=True)
        decisions: list[dict] = []  # the pacer's decisions, as the daemon publishes them on its bus
        dialer.bus.subscribe(lambda d: decisions.append(d.as_dict()), PaceDecision)
        await dialer.start()
        try:
            await dialer.run(until_idle=True, max_seconds=85)
            out[name] = {"stats": dialer.stats, "pace": SimpleNamespace(decisions=decisions),
                         "info": dialer.info[name]}
        finally:
            await dialer.stop()

    try:
        asyncio.run(run("pred"))
        asyncio.run(run("prog"))
    finally:
        harness.down()
    return {"store": store, "harness": harness, "tts": tts, "out": out, "rules": rules,
            "cdr": read_cdr(harness.cdr_path())}


def _attempts(store, campaign):
    return store.query("SELECT * FROM attempts WHERE campaign=? AND id NOT LIKE 'hist-%' ORDER BY placed_at",
                       (campaign,))


def test_predictive_over_dials_and_every_person_is_connected_or_informed(pacing_run):
    store, harness = pacing_run["store"], pacing_run["harness"]
    rows = _attempts(store, "pred")
    assert {r["debtor_id"] for r in rows} == set(HUMANS) | set(MACHINE) | set(NO_ANSWER) | set(BUSY)
    assert all(r["state"] == "ended" for r in rows), [(r["debtor_id"], r["state"]) for r in rows]
    # every call was settled by the daemon that placed it (none left for the next start's reconciliation)
    assert not any(core.call_events(store, r["id"], "reconciled") for r in rows)
    # it really over-dials: more calls in progress at once than there are collectors
    assert _overlap(rows) > COLLECTORS
    pace = pacing_run["out"]["pred"]["pace"]
    assert any(d["in_flight"] > d["ready"] and d["mode"] == "predictive" for d in pace.decisions)
    info_wav = Path(pacing_run["out"]["pred"]["info"] + ".wav")
    info_speech = active_seconds(info_wav)
    connected = abandoned = 0
    for r in rows:
        if r["debtor_id"] not in HUMANS:
            continue
        assert r["answered_at"] is not None and r["outcome"] in ("answered", "abandoned"), dict(r)
        kinds = [e["kind"] for e in core.call_events(store, r["id"])]
        assert "greeting_end" in kinds  # AMD said HUMAN: the abandon clock started
        heard = active_seconds(harness.recording_for(HUMANS[r["debtor_id"]], r["id"]))
        if r["agent"]:
            connect = next(e for e in core.call_events(store, r["id"]) if e["kind"] == "agent_connect")
            greeting = next(e for e in core.call_events(store, r["id"]) if e["kind"] == "greeting_end")
            pops = store.query("SELECT * FROM screen_pops WHERE call_id=?", (r["id"],))
            assert pops and pops[0]["agent"] == r["agent"]
            assert r["abandoned"] == (connect["at"] - greeting["at"] > 2.0)
            assert "info_played" not in kinds
            connected += 1
        else:
            # nobody within 2 s: the information message, nothing else, and the attempt counts as abandoned
            assert r["abandoned"] == 1 and r["outcome"] == "abandoned", dict(r)
            assert "info_played" in kinds
            # all of the message, and otherwise only the ring tone of the wait for a collector
            greeting = next(e for e in core.call_events(store, r["id"]) if e["kind"] == "greeting_end")
            gave_up = next(e for e in core.call_events(store, r["id"]) if e["kind"] == "queue_result")
            assert info_speech - 0.3 <= heard <= info_speech + (gave_up["at"] - greeting["at"]) + 0.5, \
                (heard, info_speech)
            abandoned += 1
    assert connected >= COLLECTORS
    assert abandoned >= 1, "no person found every collector busy: the information-message path was not exercised"
    stats = pacing_run["out"]["pred"]["stats"]
    assert stats.abandoned == abandoned
    # the machine is hung up on, never put through to a collector
    m = next(r for r in rows if r["debtor_id"] == "P06")
    assert m["outcome"] == "machine" and m["machine"] == 1 and m["agent"] is None
    assert not store.query("SELECT 1 FROM screen_pops WHERE call_id=?", (m["id"],))
    for d in list(NO_ANSWER) + list(BUSY):
        r = next(r for r in rows if r["debtor_id"] == d)
        assert r["outcome"] in ("no_answer", "busy") and r["answered_at"] is None


def test_a_spent_abandon_budget_stops_over_dialling(pacing_run):
    """The window's budget (3 % of the 100 earlier answered calls, minus today's abandons) is what lets the
    pacer over-dial; with less than one abandon left it dials one line per ready collector."""
    store = pacing_run["store"]
    pace = pacing_run["out"]["pred"]["pace"]
    first = pace.decisions[0]
    assert first["budget_left"] == pytest.approx(0.03 * HISTORY_ANSWERED)
    for d in pace.decisions:
        if d["budget_left"] < 1.0:
            assert d["mode"] == "progressive"
            assert d["ringing"] + d["screening"] + d["waiting"] + d["placed"] <= d["ready"], d
    row = store.query_one("SELECT SUM(abandoned) AS ab, SUM(answered_at IS NOT NULL AND machine=0) AS ans"
                          " FROM attempts WHERE campaign='pred'")
    assert row["ans"] >= HISTORY_ANSWERED + len(HUMANS) and row["ab"] == pacing_run["out"]["pred"]["stats"].abandoned


def test_information_message_names_the_caller_and_number_and_nothing_about_a_debt():
    text = info_text("en-US", "Acme Finance", "+18005550199")
    assert "Acme Finance" in text and "8 0 0 5 5 5 0 1 9 9" in text
    assert not any(w in text.lower() for w in ("debt", "owe", "balance", "past due", "500"))


def test_every_dial_went_through_the_gate(pacing_run):
    store, cdr = pacing_run["store"], pacing_run["cdr"]
    for name in ("pred", "prog"):
        rows = _attempts(store, name)
        ids = {r["id"] for r in rows}
        dialled = {cid for cid in cdr if cid.startswith(f"{name}-")}
        assert dialled and dialled <= ids, dialled - ids  # Asterisk dialled nothing the gate did not record
        assert pacing_run["out"][name]["stats"].placed == len(rows)
        placed = audit_log.audit_entries(store, kind="attempt.placed")
        assert ids <= {e["subject"] for e in placed}
        per_debtor: dict[str, int] = {}
        for r in rows:
            per_debtor[r["debtor_id"]] = per_debtor.get(r["debtor_id"], 0) + 1
        cap = pacing_run["rules"].profile_for("us").gate.daily_attempts
        assert max(per_debtor.values()) <= cap


def test_progressive_never_has_more_calls_than_ready_collectors(pacing_run):
    store = pacing_run["store"]
    rows = _attempts(store, "prog")
    assert {r["debtor_id"] for r in rows} == set(PROG_HUMANS) | set(PROG_OTHER)
    assert _overlap(rows) <= COLLECTORS
    pace = pacing_run["out"]["prog"]["pace"]
    assert all(d["ringing"] + d["screening"] + d["waiting"] + d["placed"] <= d["ready"] for d in pace.decisions)
    humans = [r for r in rows if r["debtor_id"] in PROG_HUMANS]
    assert all(r["agent"] and not r["abandoned"] for r in humans), [dict(r) for r in humans]
