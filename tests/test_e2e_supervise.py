"""Supervisor monitoring through real Asterisk: a collector-mode call reaches a collector (SIPp phone), then
`dialer supervise listen agent1 --phone +…` rings the supervisor's phone (a number on the carrier simulator, as
a supervisor's mobile would be: the carrier records what that phone heard and said). The supervisor hears the
live call; the debtor hears nothing of the supervisor (who plays a 1400 Hz tone the whole time)."""
from __future__ import annotations

import asyncio
import json
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from common.clock import Clock
from common.wav import active_seconds, read_wav
from dialer.calls.daemon import Dialer
from dialer.campaign.config import load_campaign
from dialer.campaign.imports import read_debtors_csv
from dialer.cli.demo import default_demo_time
from dialer.gate.rules import load_rules
from dialer.store import Store, core
from dialer.store import audit as audit_log
from dialer.telephony.carrier import behaviours_from_dict
from dialer.telephony.harness import Harness

pytestmark = pytest.mark.asterisk
REPO = Path(__file__).resolve().parent.parent
DEBTOR, SUPERVISOR = "+12125550401", "+12125550499"
TONE_HZ = 1400.0

CAMPAIGN = """name: sup
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
CSV = ("debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,"
       "timezone,customer_type,lang,contacts\n"
       f"S01,Sam Spied,{DEBTOR},1234,1980,ACC-S01,500.00,USD,12,2026-11-11,America/New_York,first,en,\n")


def tone_windows(path: Path, hz: float = TONE_HZ, win: float = 0.25) -> int:
    """How many `win`-second windows are a steady tone at `hz` (most of the window's energy in that bin)."""
    data, rate = read_wav(path)
    n = int(rate * win)
    count = 0
    for i in range(0, len(data) - n, n):
        x = data[i:i + n] * np.hanning(n)
        spec = np.abs(np.fft.rfft(x)) ** 2
        total = spec.sum()
        if total < n * 1e3:  # silence
            continue
        k = int(round(hz * n / rate))
        if spec[k - 2:k + 3].sum() / total > 0.6:
            count += 1
    return count


def _tone(path: Path, seconds: float = 12.0) -> Path:
    t = np.arange(int(8000 * seconds)) / 8000
    pcm = (0.4 * 32767 * np.sin(2 * np.pi * TONE_HZ * t)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm.tobytes())
    return path


@pytest.mark.parametrize("mode", ["listen", "barge"])
def test_a_supervisor_listens_to_a_live_collector_call_and_the_debtor_hears_nothing_of_it(tmp_path, mode):
    """listen: the debtor hears nothing of the supervisor. barge is the control that the check can fail: the
    same tone, and the debtor hears it."""
    tone = _tone(tmp_path / "tone.wav")
    behaviours = behaviours_from_dict({
        DEBTOR: {"answer_after": 1, "then": "speak", "audio": "hello.wav", "hangup_after": 26},
        SUPERVISOR: {"answer_after": 1, "then": "speak", "audio": str(tone), "hangup_after": 40},
    })
    (tmp_path / "sup.yaml").write_text(CAMPAIGN)
    camp = load_campaign(tmp_path / "sup.yaml")
    db = tmp_path / "dialer.db"
    store = Store(db)
    core.upsert_campaign(store, camp)
    (tmp_path / "d.csv").write_text(CSV)
    core.import_debtors(store, read_debtors_csv(tmp_path / "d.csv"), "sup")
    text = (REPO / "compliance_rules.yaml").read_text()
    (tmp_path / "rules.yaml").write_text(text.replace(
        "campaign_overrides: {}", "campaign_overrides: {sup: {profile: us, abandon: {wrap_up_seconds: 2}}}"))
    rules = load_rules(tmp_path / "rules.yaml")
    harness = Harness(tmp_path / "run", agents=1, behaviours=behaviours)
    state = harness.up()
    got: dict = {}

    async def scenario() -> None:
        dialer = Dialer(store, state, rules, [camp], clock=Clock(default_demo_time()), tts=None,
                        collector_modes=True)
        await dialer.start()
        try:
            run = asyncio.ensure_future(dialer.run(until_idle=True, max_seconds=70, grace=20))
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and dialer.collectors.live["agent1"].state != "talking":
                await asyncio.sleep(0.1)
            assert dialer.collectors.live["agent1"].state == "talking", "the call never reached the collector"
            got["call_id"] = dialer.collectors.live["agent1"].call
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "dialer.cli", "supervise", mode, "agent1", "--phone", SUPERVISOR,
                "--db", str(db), "--run-dir", str(tmp_path / "run"), "--actor", "sup.lee", "--json",
                cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 0, err.decode()
            got["session"] = json.loads(out.decode())
            await asyncio.wait_for(run, 90)
        finally:
            await dialer.stop()

    try:
        asyncio.run(scenario())
        time.sleep(1.0)  # the carrier closes its recordings
    finally:
        harness.down()
    session = got["session"]
    row = store.query_one("SELECT * FROM attempts WHERE campaign='sup'")
    assert row["agent"] == "agent1" and row["outcome"] == "answered"
    sup_heard = harness.recording_for(SUPERVISOR, session["session_id"])
    sup_said = harness.said_for(SUPERVISOR, session["session_id"])
    debtor_heard = harness.recording_for(DEBTOR, row["id"])
    # the supervisor played the tone into the call (the detector sees it where it is) ...
    assert tone_windows(sup_said) >= 20, "the supervisor's phone did not play its tone"
    # ... heard the live call (the collector's phone streams speech the whole time) ...
    assert active_seconds(sup_heard) >= 4.0, active_seconds(sup_heard)
    # ... and the debtor heard none of it, while hearing the collector as usual
    assert active_seconds(debtor_heard) >= 4.0
    if mode == "listen":
        assert tone_windows(debtor_heard) == 0
    else:
        assert tone_windows(debtor_heard) >= 10
    entries = audit_log.audit_entries(store, kind=f"supervise.{mode}")
    assert [(e["subject"], e["actor"]) for e in entries] == [("agent1", "sup.lee")]
    assert session["collector_channel"].startswith("PJSIP/agent1-")
