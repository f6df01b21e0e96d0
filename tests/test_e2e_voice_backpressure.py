"""Backpressure end to end through real Asterisk (issue 19): the daemon runs a speech bot campaign (the shipped
m1_reminder_en script) with its recognition pool artificially slowed — one decoder, every decode 2 s longer
(`RecognitionService(slow_s=…)`, what `DIALER_ASR_SLOW_S` gives `dialer run`) — against debtors who all
answer out loud at about the same time.

What a user checks: once the pool falls behind, the daemon places fewer bot calls than its free lines allow
(the pool's capacity, not the line limit, paces them); every answer of every call is either heard within its
deadline or the bot says "sorry, I did not catch that…" (the node's re-ask); every call ends by itself, none is
left to be hung up at stop."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agi.media.recognition import RecognitionService
from common.clock import Clock
from dialer.calls.daemon import Dialer
from dialer.campaign.config import load_campaign
from dialer.campaign.imports import read_debtors_csv
from dialer.cli.demo import default_demo_time
from dialer.gate.rules import load_rules
from dialer.observe import events as oe
from dialer.store import Store, core
from dialer.telephony.carrier import behaviours_from_dict
from dialer.telephony.harness import Harness
from tests.asr_speakers import piper, write_wav

pytestmark = pytest.mark.asterisk
REPO = Path(__file__).resolve().parent.parent
LINES, DEBTORS = 4, 8
SLOW_S, DEADLINE_S = 2.0, 4.0  # one decoder, each decode >= 2 s: a burst of four answers cannot all be in time
PHONES = [f"+1212555021{i}" for i in range(DEBTORS)]
CAMPAIGN = f"""name: bot_slow
profile: us
locale: en-US
institution: Acme Finance
callback_number: "+18005550199"
caller_id: "+12125550199"
dial_mode: bot_only
line_limit: {LINES}
amd: false
retry: {{busy: 30m, no_answer: 2h, machine: 1d, failed: 4h, callee_hangup: 1d, max_attempts: 6}}
segments:
  - name: m1
    dpd: M1
    script: m1_reminder_en
"""
# the node re-asks that follow an answer not heard in time (m1_reminder_en's no_match prompts)
REASKS = ("Sorry, I did not catch that", "That did not match", "On which day could you pay")


@pytest.fixture(scope="module")
def slowed_run(tmp_path_factory, tts):
    tmp = tmp_path_factory.mktemp("backpressure")
    at = default_demo_time()
    rows = "".join(f"B{i:03d},Debtor {chr(65 + i)}ndrews,{p},{1000 + i},1984,ACC-B{i},420.00,USD,12,2026-11-11,"
                   f"America/New_York,first,en,\n" for i, p in enumerate(PHONES))
    (tmp / "d.csv").write_text("debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,"
                               "days_past_due,due_date,timezone,customer_type,lang,contacts\n" + rows)
    (tmp / "bot_slow.yaml").write_text(CAMPAIGN)
    audio = tmp_path_factory.mktemp("backpressure-audio")
    said = [str(write_wav(audio / f"t{i}.wav", piper(t)))
            for i, t in enumerate(("Yes.", "Nineteen eighty-four.", "I will pay tomorrow."))]
    behaviours = behaviours_from_dict({
        p: {"speech": [{"after_silence": 900, "audio": w, "label": f"t{i}"} for i, w in enumerate(said)],
            "hangup_after": 25} for p in PHONES})
    store = Store(tmp / "dialer.db")
    camp = load_campaign(tmp / "bot_slow.yaml")
    core.upsert_campaign(store, camp)
    core.import_debtors(store, read_debtors_csv(tmp / "d.csv"), camp.name)
    harness = Harness(tmp / "run", agents=1, behaviours=behaviours)
    state = harness.up()
    service = RecognitionService(1, slow_s=SLOW_S, deadline_s=DEADLINE_S, lang_deadline_s={})
    seen: dict = {"placed": [], "settled": set(), "decisions": [], "drained": None}

    async def run() -> None:
        dialer = Dialer(store, state, load_rules(REPO / "compliance_rules.yaml"), [camp], clock=Clock(at), tts=tts,
                        live_qa=False, webhooks=False)
        dialer.bots.recognition = service  # the slowed pool instead of the process's shared one
        await service.preload("en")

        def on_event(ev) -> None:
            if isinstance(ev, oe.CallPlaced) and ev.mode == "bot":
                up = [c for c, _ in seen["placed"] if c not in seen["settled"]]
                seen["placed"].append((ev.call_id, {"up": len(up), "load": service.load()}))
            elif isinstance(ev, oe.CallSettled):
                seen["settled"].add(ev.call_id)
            elif isinstance(ev, oe.Drained):
                seen["drained"] = ev

        dialer.bus.subscribe(on_event)
        room = dialer.hopper.bot_room

        def bot_room(active: int):  # the hopper's question, recorded with the pool's state and the free lines
            got = room(active)
            seen["decisions"].append((active, got, service.load()))
            return got

        dialer.hopper.bot_room = bot_room
        await dialer.start()
        try:
            # a call still talking at the time limit may take a minute more: the speaking carrier waits for the
            # bot's silence before each answer and the script re-asks before it gives up; 120 s is the
            # daemon's own grace, past which a call that had not ended would count as hung up
            await dialer.run(max_seconds=50, grace=120)
        finally:
            await dialer.stop()

    try:
        asyncio.run(run())
    finally:
        harness.down()
        service.close()
    print("placed", [(c[-6:], s["up"], s["load"]) for c, s in seen["placed"]])
    print("pool", service.load())
    return store, seen, service


def _turns(store, call_id):
    return [e["data"] for e in core.call_events(store, call_id) if e["kind"] == "turn"]


def test_a_slowed_pool_places_fewer_bot_calls_than_the_lines_allow(slowed_run):
    store, seen, service = slowed_run
    placed = seen["placed"]
    first = [c for c, s in placed if s["load"].decode_s is None]
    assert len(first) == LINES  # nothing decoded yet: the line limit alone rules
    assert service.load().missed > 0  # the slowed pool fell behind: some answers were past their deadline
    held = [(a, r) for a, r, load in seen["decisions"] if r == 0 and a < LINES and load.missed > 0]
    assert held, "the hopper never held a free line back for the pool"
    # after the first wave, bot calls go out only as the pool can take them (one at a time here: its capacity
    # at >= 2 s a decode is one call), never the four lines again; the run may end before the wave does
    later = [s for c, s in placed if s["load"].decode_s is not None]
    assert all(s["up"] + 1 < LINES for s in later), later
    attempts = store.query("SELECT * FROM attempts WHERE campaign='bot_slow'")
    assert len(attempts) == len(placed) < DEBTORS  # debtors were left due while lines stood free


def test_every_answer_is_heard_in_time_or_asked_again_and_no_call_hangs(slowed_run):
    store, seen, _ = slowed_run
    assert seen["drained"] is not None and seen["drained"].hung_up == 0  # each call ended by itself
    assert {c for c, _ in seen["placed"]} <= seen["settled"]
    hows = []
    for call_id, _ in seen["placed"]:
        att = core.get_attempt(store, call_id)
        assert att["outcome"] and att["ended_at"], att
        turns = _turns(store, call_id)
        for i, t in enumerate(turns):
            if t["speaker"] != "callee" or "asr" not in t:
                continue
            hows.append(t["asr"]["how"])
            if t["asr"]["how"] == "late":  # not decoded by its deadline: the graceful re-ask follows
                after = [u["text"] for u in turns[i + 1:] if u["speaker"] == "agent"]
                assert not after or after[0].startswith(REASKS), (call_id, after[:1])
    assert "late" in hows and any(h != "late" for h in hows), hows
