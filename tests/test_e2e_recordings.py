"""Every call recorded at the PBX, one file per leg, through real Asterisk: a small progressive campaign
(SIPp collector phones, the carrier simulator as debtors); each answered call has its debtor legs and its
collector legs sealed into the audit log at hang-up; `dialer audit verify` passes, and fails on one changed
byte or a deleted file."""
from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from agi.media.tts import TTS
from common.clock import Clock
from common.wav import active_seconds
from dialer.calls.daemon import Dialer
from dialer.campaign.config import load_campaign
from dialer.campaign.imports import read_debtors_csv
from dialer.cli import main
from dialer.cli.demo import default_demo_time
from dialer.gate.rules import load_rules
from dialer.store import Store, core
from dialer.store import recordings as rec_store
from dialer.telephony.carrier import behaviours_from_dict
from dialer.telephony.harness import Harness

pytestmark = pytest.mark.asterisk
REPO = Path(__file__).resolve().parent.parent
HEADER = ("debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,"
          "timezone,customer_type,lang,contacts\n")
PEOPLE = {"R01": "+12125550401", "R02": "+12125550402"}
BUSY = {"R03": "+12125550403"}
BOT = {"B01": "+12125550411"}  # a bot_only campaign's call: the bot's leg is recorded too
QUIET = {"Q01": "+12125550412"}  # a bot call under a profile that requires no recording notice
CAMPAIGN = """name: rec
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


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rec")
    at = default_demo_time()
    text = (REPO / "compliance_rules.yaml").read_text()
    # `quiet`: the us profile with the recording notice switched off (an operator whose debtors are all in
    # one-party-consent states), for the bot campaign `recquiet`
    us = text[text.index("\n  us:\n") + 1:text.index("\n  uk:\n") + 1]
    quiet = us.replace("  us:\n", "  quiet:\n", 1).replace("notice: {required: true,", "notice: {required: false,", 1)
    assert quiet.count("notice: {required: false") == 1
    text = text.replace(us, us + quiet, 1)
    (tmp / "rules.yaml").write_text(text.replace(
        "campaign_overrides: {}", "campaign_overrides: {rec: {profile: us, abandon: {wrap_up_seconds: 2}},"
                                  " recquiet: {profile: quiet}}"))
    rules = load_rules(tmp / "rules.yaml")
    store = Store(tmp / "dialer.db")
    (tmp / "rec.yaml").write_text(CAMPAIGN)
    camp = load_campaign(tmp / "rec.yaml")
    core.upsert_campaign(store, camp)
    rows = "".join(f"{d},Debtor {d},{p},1234,1980,ACC-{d},500.00,USD,12,2026-11-11,America/New_York,first,en,\n"
                   for d, p in {**PEOPLE, **BUSY}.items())
    (tmp / "rec.csv").write_text(HEADER + rows)
    core.import_debtors(store, read_debtors_csv(tmp / "rec.csv"), "rec")
    (tmp / "recbot.yaml").write_text(CAMPAIGN.replace("name: rec", "name: recbot").replace(
        "dial_mode: progressive", "dial_mode: bot_only"))
    botcamp = load_campaign(tmp / "recbot.yaml")
    core.upsert_campaign(store, botcamp)
    (tmp / "recbot.csv").write_text(HEADER + "".join(
        f"{d},Debtor {d},{p},1234,1980,ACC-{d},500.00,USD,12,2026-11-11,America/New_York,first,en,\n"
        for d, p in BOT.items()))
    core.import_debtors(store, read_debtors_csv(tmp / "recbot.csv"), "recbot")
    (tmp / "recquiet.yaml").write_text(CAMPAIGN.replace("name: rec", "name: recquiet").replace(
        "dial_mode: progressive", "dial_mode: bot_only"))
    quietcamp = load_campaign(tmp / "recquiet.yaml")
    core.upsert_campaign(store, quietcamp)
    (tmp / "recquiet.csv").write_text(HEADER + "".join(
        f"{d},Debtor {d},{p},1234,1980,ACC-{d},500.00,USD,12,2026-11-11,America/New_York,first,en,\n"
        for d, p in QUIET.items()))
    core.import_debtors(store, read_debtors_csv(tmp / "recquiet.csv"), "recquiet")
    behaviours = {p: {"answer_after": 1, "then": "speak", "audio": "hello.wav", "hangup_after": 7}
                  for p in PEOPLE.values()}
    behaviours.update({p: {"busy": True} for p in BUSY.values()})
    behaviours.update({p: {"answer_after": 1, "then": "speak", "audio": "hello.wav", "hangup_after": 9}
                       for p in {**BOT, **QUIET}.values()})
    harness = Harness(tmp / "run", agents=1, behaviours=behaviours_from_dict(behaviours))
    state = harness.up()

    async def go() -> None:
        dialer = Dialer(store, state, rules, [camp, botcamp, quietcamp], clock=Clock(at), tts=TTS(), collector_modes=True)
        await dialer.start()
        try:
            await dialer.run(until_idle=True, max_seconds=60)
        finally:
            await dialer.stop()

    try:
        asyncio.run(go())
    finally:
        harness.down()
    return {"store": store, "db": tmp / "dialer.db", "harness": harness, "tmp": tmp}


def test_every_answered_call_has_a_sealed_recording_per_leg(run):
    store, harness = run["store"], run["harness"]
    attempts = store.query("SELECT * FROM attempts WHERE campaign='rec' ORDER BY placed_at")
    answered = [a for a in attempts if a["answered_at"] is not None]
    assert {a["debtor_id"] for a in answered} == set(PEOPLE), [dict(a) for a in attempts]
    assert all(a["agent"] for a in answered), "a person was not put through to the collector"
    for a in attempts:
        legs = {r["leg"]: r for r in rec_store.recordings_for(store, a["id"])}
        if a["answered_at"] is None:
            assert legs == {}  # a busy line has nothing to record
            continue
        assert set(legs) == {"callee", "heard", "mix", "collector", "collector-heard", "collector-mix"}, a["id"]
        for r in legs.values():
            assert Path(r["path"]).name == f"{a['id']}-{r['leg']}.wav"
            assert Path(r["path"]).parent == harness.run_dir.resolve() / "pbx" / "rec"
            assert r["campaign"] == "rec" and r["debtor_id"] == a["debtor_id"] and r["agent"] == a["agent"]
            assert r["started_at"] == a["placed_at"] and r["seconds"] > 3
        # the debtor's voice (the carrier's hello.wav) is in the callee leg; the collector's phone audio in
        # the collector leg and in what the debtor heard
        assert active_seconds(Path(legs["callee"]["path"])) > 0.5
        assert active_seconds(Path(legs["collector"]["path"])) > 1.0
        assert active_seconds(Path(legs["heard"]["path"])) > 1.0
        said = harness.said_for(a["phone"], a["id"])
        assert said.exists()  # the carrier's own record of the same call, for comparison
    entries = store.query("SELECT subject, payload_json FROM audit_log WHERE kind='qa.recording'"
                          " AND subject IN (SELECT id FROM attempts WHERE campaign='rec')")
    assert len(entries) == 6 * len(answered)
    assert {json.loads(e["payload_json"])["leg"] for e in entries} == {"callee", "heard", "mix", "collector",
                                                                        "collector-heard", "collector-mix"}


def test_the_bot_call_is_recorded_per_leg_too(run):
    store = run["store"]
    (a,) = store.query("SELECT * FROM attempts WHERE campaign='recbot'")
    assert a["answered_at"] is not None and a["agent"] is None
    legs = {r["leg"]: r for r in rec_store.recordings_for(store, a["id"])}
    assert set(legs) == {"callee", "heard", "mix"}  # no collector: no collector legs
    assert active_seconds(Path(legs["heard"]["path"])) > 2.0  # the bot's prompts, as the debtor heard them
    assert active_seconds(Path(legs["callee"]["path"])) > 0.5  # the debtor's hello


def _said(path: Path) -> str:
    """What Whisper tiny.en hears in a recording (8 kHz, 9-s windows), lower case."""
    import wave

    from agi.media.asr import recognizer_for

    with wave.open(str(path)) as w:
        rate, pcm = w.getframerate(), w.readframes(w.getnframes())
    rec, step = recognizer_for("en"), 9 * rate * 2
    return " ".join(rec.recognize(pcm[i:i + step], rate).text for i in range(0, len(pcm), step)).lower()


def _pcm(path: Path):
    import wave

    import numpy as np

    with wave.open(str(path)) as w:
        assert w.getframerate() == 8000 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


def _alignment(template: Path, heard: Path) -> float:
    """How well the rendered prompt `template` lines up anywhere in `heard`: the best normalised
    cross-correlation (1.0: the same samples; about 0.9 with another voice over it; about 0.2 for other speech)."""
    import numpy as np

    t, x = _pcm(template), _pcm(heard)
    t, n = t - t.mean(), len(t)
    if len(x) < n:
        return 0.0
    size = 1 << int(np.ceil(np.log2(len(x) + n)))
    corr = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(t, size)), size)[:len(x) - n + 1]
    c1, c2 = (np.concatenate([[0.0], np.cumsum(v)]) for v in (x, x ** 2))
    energy = (c2[n:] - c2[:-n]) - (c1[n:] - c1[:-n]) ** 2 / n
    return float(np.max(corr / (np.linalg.norm(t) * np.sqrt(np.maximum(energy, 1e-9)))))


def _notices(store, call_id: str) -> list[dict]:
    return [e["data"] for e in core.call_events(store, call_id, "recording_notice")]


def test_the_recording_notice_is_heard_first_where_the_profile_requires_it(run):
    store, harness = run["store"], run["harness"]
    (bot,) = store.query("SELECT * FROM attempts WHERE campaign='recbot'")
    (quiet,) = store.query("SELECT * FROM attempts WHERE campaign='recquiet'")
    assert bot["answered_at"] is not None and quiet["answered_at"] is not None
    # us requires it: what the debtor heard (the carrier's recording) starts with it, before the bot's greeting
    heard = _said(harness.recording_for(bot["phone"], bot["id"]))
    assert "call is recorded" in heard and "alex" in heard, heard
    assert heard.index("call is recorded") < heard.index("alex"), heard
    # and the PBX's own recording of the call holds it too (the evidence kept for the retention period)
    legs = {r["leg"]: r for r in rec_store.recordings_for(store, bot["id"])}
    assert "call is recorded" in _said(Path(legs["heard"]["path"]))
    assert [e["complete"] for e in _notices(store, bot["id"])] == [True]
    notice = Path(TTS().render("This call is recorded.", "en-US"))  # the rendered prompt (cached: the daemon's)
    assert _alignment(notice, harness.recording_for(bot["phone"], bot["id"])) > 0.6
    # the quiet profile requires none: the bot's greeting is the first thing heard, and no notice is recorded
    heard = _said(harness.recording_for(quiet["phone"], quiet["id"]))
    assert "alex" in heard and "recorded" not in heard, heard
    assert _alignment(notice, harness.recording_for(quiet["phone"], quiet["id"])) < 0.4
    assert _notices(store, quiet["id"]) == []
    # collector calls: barged in once the collector is connected (both hear it; the 2-s clock is untouched).
    # The SIPp collector talks at once, over it, so the recogniser hears neither well: aligned against the prompt
    for a in store.query("SELECT * FROM attempts WHERE campaign='rec' AND answered_at IS NOT NULL"):
        assert [e["complete"] for e in _notices(store, a["id"])] == [True], a["id"]
        assert not a["abandoned"], a["id"]
        # the collector's voice is mixed over the notice in the carrier's recording: a lower bar than the bot
        # call's 0.6 (CI measured 0.56 on one call), still above the quiet call's < 0.4 with no notice at all
        assert _alignment(notice, harness.recording_for(a["phone"], a["id"])) > 0.45, a["id"]


def test_audit_verify_passes_then_fails_on_a_changed_byte_or_a_deleted_file(run):
    store, db = run["store"], run["db"]
    runner = CliRunner()
    out = runner.invoke(main, ["audit", "verify", "--db", str(db)])
    assert out.exit_code == 0 and "intact" in out.output, out.output
    recs = rec_store.list_recordings(store)
    victim = Path(recs[0]["path"])
    backup = run["tmp"] / "backup.wav"
    shutil.copyfile(victim, backup)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    out = runner.invoke(main, ["audit", "verify", "--db", str(db)])
    assert out.exit_code == 1 and f"changed: {victim}" in out.output, out.output
    shutil.copyfile(backup, victim)
    assert runner.invoke(main, ["audit", "verify", "--db", str(db)]).exit_code == 0
    victim.unlink()
    out = runner.invoke(main, ["audit", "verify", "--db", str(db)])
    assert out.exit_code == 1 and "deleted without a prune entry" in out.output and str(victim) in out.output
    shutil.copyfile(backup, victim)


def test_every_recorded_call_gets_a_transcript_and_a_score(run):
    store, db = run["store"], run["db"]
    answered = [a["id"] for a in store.query("SELECT id FROM attempts WHERE campaign='rec' AND answered_at IS NOT NULL")]
    (bot,) = [a["id"] for a in store.query("SELECT id FROM attempts WHERE campaign='recbot'")]
    runner = CliRunner()
    out = runner.invoke(main, ["qa", "transcribe", "--db", str(db), "--since", "2000-01-01"])
    assert out.exit_code == 0 and f"transcribed {len(answered)} calls" in out.output, out.output
    out = runner.invoke(main, ["qa", "run", "--db", str(db)])
    assert out.exit_code == 0 and f"scored {len(answered)} call(s)" in out.output, out.output
    for call_id in answered:
        t = json.loads(runner.invoke(main, ["qa", "show", call_id, "--db", str(db), "--json"]).output)
        speakers = {x["speaker"] for x in t["transcript"]["turns"]}
        assert speakers == {"agent", "callee"}, t["transcript"]  # the collector's and the debtor's words
        assert t["transcript"]["agent"] == "agent1" and t["result"] is not None
    # the bot's call keeps the bot's own transcript, scored at its end
    t = json.loads(runner.invoke(main, ["qa", "show", bot, "--db", str(db), "--json"]).output)
    assert t["transcript"]["agent"] == "bot" and t["result"] is not None
    assert {r["leg"] for r in t["recordings"]} == {"callee", "heard", "mix"}
    out = runner.invoke(main, ["audit", "verify", "--db", str(db)])
    assert out.exit_code == 0, out.output
