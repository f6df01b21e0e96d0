"""Live QA of collector calls through real Asterisk. Two SIPp collectors play English recordings (Piper
voice): agent1 says "We will come to your house and hurt your family."; agent2 says the same words in a
compliant sentence. During agent1's call an alert is raised (stored, audited, AMI UserEvent) and, by the
`us` profile's policy (conduct.threat: whisper), a warning is whispered to the collector only: it is in the
audio that reached agent1's phone (a packet capture on loopback) and absent from the carrier-side
recording of what the debtor heard. agent2's call raises none. Post-call QA of both recordings
(`dialer qa transcribe` + `dialer qa run`) agrees."""
from __future__ import annotations

import asyncio
import json
import wave
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from agi.media.asr import recognizer_for
from agi.media.tts import TTS
from common.clock import Clock
from dialer.calls.daemon import Dialer
from dialer.campaign.config import load_campaign
from dialer.campaign.imports import read_debtors_csv
from dialer.cli import main
from dialer.cli.demo import default_demo_time
from dialer.gate.rules import load_rules
from dialer.qa import live
from dialer.store import Store, core
from dialer.store import recordings as rec_store
from dialer.store.audit import audit_entries
from dialer.store.outbox import outbox_events
from dialer.telephony.carrier import behaviours_from_dict
from dialer.telephony.harness import Harness
from tests.asr_speakers import piper
from tests.rtp_capture import LoopbackRtp

pytestmark = pytest.mark.asterisk
REPO = Path(__file__).resolve().parent.parent
HEADER = ("debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,"
          "timezone,customer_type,lang,contacts\n")
PEOPLE = {"L01": "+12125550501", "L02": "+12125550502", "L03": "+12125550503"}  # L03: held by a complaint
GREETING = "Hello, this is Sam calling from Acme Finance."
FORBIDDEN = "We will come to your house and hurt your family."
COMPLIANT = "Nobody will come to your house, and nothing we do will hurt your family."
CAMPAIGN = """name: live
profile: us
locale: en-US
institution: Acme Finance
callback_number: "+18005550199"
caller_id: "+12125550199"
dial_mode: progressive
line_limit: 2
retry: {busy: 2h, no_answer: 2h, machine: 1d, failed: 4h, callee_hangup: 1d, max_attempts: 6}
segments:
  - name: m1
    dpd: M1
    script: m1_reminder_en
"""


def _speech(path: Path, lines: list[str]) -> Path:
    gap = np.zeros(6400, dtype="<i2").tobytes()  # 0.8 s between sentences
    pcm = gap.join(piper(t) for t in lines) + np.zeros(24000, dtype="<i2").tobytes()  # then 3 s of silence
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(pcm)
    return path


def _text(pcm: bytes) -> str:
    """Whisper tiny.en over a stretch of 8 kHz audio, in 9-s windows that overlap by half, so that a phrase
    cut by one window's edge is whole in the next (the recording notice at the start moves every phrase)."""
    rec = recognizer_for("en")
    size, step = 9 * 8000 * 2, 9 * 8000
    return " ".join(rec.recognize(pcm[i:i + size], 8000).text
                    for i in range(0, max(len(pcm) - step, 1), step)).lower()


def _wav_pcm(path: Path) -> bytes:
    with wave.open(str(path)) as w:
        return w.readframes(w.getnframes())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("live")
    at = default_demo_time()
    text = (REPO / "compliance_rules.yaml").read_text()
    (tmp / "rules.yaml").write_text(text.replace(
        "campaign_overrides: {}", "campaign_overrides: {live: {profile: us, abandon: {wrap_up_seconds: 2}}}"))
    rules = load_rules(tmp / "rules.yaml")
    store = Store(tmp / "dialer.db")
    (tmp / "live.yaml").write_text(CAMPAIGN)
    camp = load_campaign(tmp / "live.yaml")
    core.upsert_campaign(store, camp)
    rows = "".join(f"{d},Debtor {d},{p},1234,1980,ACC-{d},500.00,USD,12,2026-11-11,America/New_York,first,en,\n"
                   for d, p in PEOPLE.items())
    (tmp / "live.csv").write_text(HEADER + rows)
    core.import_debtors(store, read_debtors_csv(tmp / "live.csv"), "live")
    held = CliRunner().invoke(main, ["complaints", "add", "--phone", PEOPLE["L03"], "--channel", "regulator_hotline",
                                     "--category", "harassment", "--text", "they call my family every day",
                                     "--at", (at - timedelta(hours=1)).isoformat(), "--db", str(tmp / "dialer.db")])
    assert held.exit_code == 0 and "harassment_hold" in held.output, held.output
    audio = {"agent1": _speech(tmp / "agent1.wav", [GREETING, FORBIDDEN]),
             "agent2": _speech(tmp / "agent2.wav", [GREETING, COMPLIANT])}
    behaviours = {p: {"answer_after": 1, "then": "speak", "audio": "hello.wav", "hangup_after": 17}
                  for p in PEOPLE.values()}
    harness = Harness(tmp / "run", agents=["agent1", "agent2"], agent_audio=audio,
                      behaviours=behaviours_from_dict(behaviours))
    state = harness.up()
    events: list[dict] = []
    published: list[live.LiveAlert] = []
    unsubscribe = live.subscribe(published.append)
    capture = LoopbackRtp()
    capture.start()

    async def go() -> None:
        dialer = Dialer(store, state, rules, [camp], clock=Clock(at), tts=TTS(), collector_modes=True)
        await dialer.start()
        dialer.ami.listeners.append(lambda e: events.append(e) if e.get("Event") == "UserEvent" else None)
        try:
            await dialer.run(until_idle=True, max_seconds=60)
        finally:
            await dialer.stop()

    try:
        asyncio.run(go())
    finally:
        try:
            harness.down()  # first: nothing below may leave the PBX and the phones running
        finally:
            unsubscribe()
            capture.stop()
    return {"store": store, "db": tmp / "dialer.db", "harness": harness, "events": events, "capture": capture,
            "published": published, "audio": audio, "ports": harness.ports}


def _calls(store) -> dict[str, dict]:
    rows = store.query("SELECT * FROM attempts WHERE campaign='live' ORDER BY placed_at")
    return {r["agent"]: dict(r) for r in rows}


def test_a_forbidden_phrase_raises_an_alert_during_the_call_and_a_compliant_one_none(run):
    calls = _calls(run["store"])
    assert set(calls) == {"agent1", "agent2"}, "each collector should have taken one call"
    bad, good = calls["agent1"], calls["agent2"]
    alerts = rec_store.live_alerts(run["store"])
    assert [(a["call_id"], a["rule"], a["policy"], a["action"]) for a in alerts] == \
        [(bad["id"], "conduct.threat", "whisper", "whispered")], alerts
    a = alerts[0]
    assert "house" in a["evidence"].lower() and a["agent"] == "agent1"
    assert bad["answered_at"] < a["raised_at"] < bad["ended_at"]  # while the call was up
    assert 0 < a["latency"] < 5, a  # recorded; the 1-s goal is measured by bench/qa_audio.py
    # AMI UserEvent, audit entry, and the publish hook the wallboard subscribes to
    ev = [e for e in run["events"] if e.get("UserEvent") == "DialerQaAlert"]
    assert [(e.get("CallID"), e.get("Rule"), e.get("Policy")) for e in ev] == [(bad["id"], "conduct.threat", "whisper")]
    assert [e["subject"] for e in audit_entries(run["store"], kind="qa.live_alert")] == [bad["id"]]
    assert [(p.call_id, p.rule) for p in run["published"]] == [(bad["id"], "conduct.threat")]
    assert not [x for x in alerts if x["call_id"] == good["id"]]


def _collector_flows(run) -> dict[str, int]:
    """agent name → the RTP port its phone received on: the PBX sends to the port the phone sends from,
    and what the phone sends is its own recording (matched byte for byte)."""
    cap, ports = run["capture"], run["ports"]
    lo, hi = ports.pbx_rtp
    out = {}
    for name, wav in run["audio"].items():
        ulaw = (run["harness"].sounds_dir() / f"{name}_ulaw.wav").read_bytes()
        for _t, s, d, payload in cap.packets:
            if lo <= d <= hi and not lo <= s <= hi and len(payload) >= 160 and payload[:160] in ulaw:
                out[name] = s
                break
    return out


def test_the_whisper_reaches_the_collector_only(run):
    calls = _calls(run["store"])
    flows = _collector_flows(run)
    assert set(flows) == {"agent1", "agent2"}, run["capture"].flows()
    heard_by_agent1 = _text(run["capture"].pcm_to(flows["agent1"]))
    heard_by_agent2 = _text(run["capture"].pcm_to(flows["agent2"]))
    assert "compliance" in heard_by_agent1 or "warning" in heard_by_agent1, heard_by_agent1
    assert "compliance" not in heard_by_agent2 and "warning" not in heard_by_agent2, heard_by_agent2
    # what the debtor heard, recorded by the carrier: the collector's words, never the whisper
    bad = calls["agent1"]
    debtor_heard = _text(_wav_pcm(run["harness"].recording_for(bad["phone"], bad["id"])))
    assert "house" in debtor_heard, debtor_heard
    assert "compliance" not in debtor_heard and "warning" not in debtor_heard, debtor_heard
    # ... and the PBX's own recording of the debtor's side agrees
    heard_leg = {r["leg"]: r for r in rec_store.recordings_for(run["store"], bad["id"])}["heard"]
    pbx_heard = _text(_wav_pcm(Path(heard_leg["path"])))
    assert "compliance" not in pbx_heard and "warning" not in pbx_heard, pbx_heard


def test_post_call_qa_of_both_recordings_agrees_with_the_live_result(run):
    db, store = run["db"], run["store"]
    calls = _calls(store)
    runner = CliRunner()
    out = runner.invoke(main, ["qa", "transcribe", "--db", str(db)])
    assert out.exit_code == 0 and "transcribed 2 calls" in out.output, out.output
    out = runner.invoke(main, ["qa", "run", "--db", str(db), "--json"])
    assert out.exit_code == 0, out.output
    results = {r["call_id"]: r for r in map(json.loads, out.output.splitlines()) if r.get("call_id")}
    conduct = {cid: {v["rule"] for v in r["violations"] if v["rule"].startswith("conduct.")}
               for cid, r in results.items()}
    assert conduct == {calls["agent1"]["id"]: {"conduct.threat"}, calls["agent2"]["id"]: set()}, results


def test_a_harassment_complaint_blocks_the_next_dial_with_the_holds_rule_id(run):
    """L03 was put on hold by a harassment complaint before the run: the daemon never dialled it."""
    store = run["store"]
    assert not store.query("SELECT id FROM attempts WHERE debtor_id='L03'")
    blocks = store.query("SELECT rule_id, reason, next_allowed_at FROM gate_blocks WHERE debtor_id='L03'")
    assert blocks and {b["rule_id"] for b in blocks} == {"complaint.harassment_hold"}, [dict(b) for b in blocks]
    assert "harassment_hold" in blocks[0]["reason"] and blocks[0]["next_allowed_at"] is None


def test_a_complaint_about_the_threat_opens_a_review_of_that_call_and_ends_on_the_coaching_list(run):
    db, store = run["db"], run["store"]
    bad = _calls(store)["agent1"]
    runner = CliRunner()
    # the recordings' transcripts (done by the test before; a no-op then, needed when this test runs alone)
    assert runner.invoke(main, ["qa", "transcribe", "--db", str(db)]).exit_code == 0
    received = bad["ended_at"] + 3600  # the debtor rang the regulator an hour later
    at = datetime.fromtimestamp(received, timezone.utc).isoformat()
    out = runner.invoke(main, ["complaints", "add", "--phone", bad["phone"], "--channel", "regulator_hotline",
                               "--category", "attitude", "--text", "the collector said they would hurt my family",
                               "--at", at, "--db", str(db), "--json"])
    assert out.exit_code == 0, out.output
    complaint = json.loads(out.output)
    assert [c["call_id"] for c in complaint["calls"]] == [bad["id"]] and complaint["review"]["status"] == "open"
    assert complaint["severity"] == "serious" and complaint["link_scope"] == "answered"   # attitude, via the regulator
    queue = runner.invoke(main, ["qa", "report", "--db", str(db), "--json"])
    items = [q for q in json.loads(queue.output)["review_queue"] if q.get("complaint_id") == complaint["id"]]
    assert [q["call_id"] for q in items] == [bad["id"]]
    # what the reviewer opens: the call's recordings (every leg on disk) and transcripts
    shown = json.loads(runner.invoke(main, ["complaints", "show", str(complaint["id"]), "--db", str(db),
                                            "--json"]).output)
    call = shown["calls"][0]
    assert call["agent"] == "agent1" and {"callee", "heard"} <= {r["leg"] for r in call["recordings"]}, call
    assert all(Path(r["path"]).exists() for r in call["recordings"])
    said = " ".join(t["text"] for turns in call["leg_transcripts"].values() for t in turns).lower()
    assert "house" in said, call["leg_transcripts"]
    assert [a["rule"] for a in call["live_alerts"]] == ["conduct.threat"]
    out = runner.invoke(main, ["complaints", "review", str(complaint["id"]), "--finding", "substantiated",
                               "--by", "qa.officer", "--db", str(db), "--json"])
    assert out.exit_code == 0, out.output
    review = json.loads(out.output)["review"]
    assert (review["agent"], review["call_id"], review["rule"]) == ("agent1", bad["id"], "conduct.threat")
    coaching = runner.invoke(main, ["qa", "coaching", "--collector", "agent1", "--db", str(db), "--json"])
    assert [(c["agent"], c["call_id"], c["rule"]) for c in map(json.loads, coaching.output.splitlines())] == \
        [("agent1", bad["id"], "conduct.threat")]
    assert runner.invoke(main, ["qa", "coaching", "--collector", "agent2", "--db", str(db)]).output.strip() == \
        "nobody on the coaching list"
    report = json.loads(runner.invoke(main, ["report", "--db", str(db), "--json"]).output.splitlines()[0])
    assert report["complaints"]["by_collector"]["agent1"]["complaints"] == 1
    assert report["complaints"]["by_rule"] == {"conduct.threat": {"complaints": 1, "per_10k_calls": 5000.0}}
    kinds = [e["kind"] for e in outbox_events(store) if e["kind"].startswith("complaint.")]
    assert kinds == ["complaint.received", "complaint.received", "complaint.reviewed"]

