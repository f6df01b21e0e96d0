"""The voice bot's YAML scripts end to end through real Asterisk: outbound M1 reminder (promise,
wrong number, hardship → collector with context) and an inbound call-back, all verification first."""
from __future__ import annotations

import asyncio
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from agi.media.tts import TTS
from agi.script.model import Debtor
from common.clock import Clock
from common.wav import active_seconds
from dialer.calls.bot import BOT_NAMES
from dialer.calls.daemon import Dialer
from dialer.campaign.config import load_campaign
from dialer.campaign.imports import read_debtors_csv
from dialer.cli.demo import default_demo_time
from dialer.gate.rules import load_rules
from dialer.store import Store, core
from dialer.telephony.ami import AMIController
from dialer.telephony.carrier import behaviours_from_dict
from dialer.telephony.harness import Harness
from tests.voicebot_util import timeline

pytestmark = pytest.mark.asterisk
REPO = Path(__file__).resolve().parent.parent
DID = "+18005550199"  # the campaign's call-back number, dialled by the debtor

DEBTORS = """debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,timezone,customer_type,lang,contacts
V001,Paula Promise,+12125550141,1111,1984,ACC-V1,420.00,USD,12,2026-11-11,America/New_York,first,en,
V002,Wanda Wrong,+12125550142,2222,1975,ACC-V2,310.00,USD,12,2026-11-11,America/New_York,first,en,
V003,Harold Hardship,+12125550143,3333,1969,ACC-V3,980.00,USD,12,2026-11-11,America/New_York,first,en,
V004,Carl Callback,+12125550144,4444,1990,ACC-V4,150.00,USD,12,2026-11-11,America/New_York,first,en,
V005,Tom Thirdparty,+12125550145,5555,1961,ACC-V5,777.00,USD,12,2026-11-11,America/New_York,first,en,
V006,Sam Stop,+12125550146,6666,1977,ACC-V6,640.00,USD,12,2026-11-11,America/New_York,first,en,
"""
CAMPAIGN = """name: bot_m1
profile: us
locale: en-US
institution: Acme Finance
callback_number: "+18005550199"
caller_id: "+12125550199"
dial_mode: bot_only
line_limit: 5
retry: {busy: 30m, no_answer: 2h, machine: 1d, failed: 4h, callee_hangup: 1d, max_attempts: 6}
segments:
  - name: m1
    dpd: M1
    script: m1_reminder_en
"""


def _debtor(did: str, name: str, phone: str, birth: str, amount: str) -> Debtor:
    return Debtor(debtor_id=did, name=name, phone=phone, birth_year=birth, id_last4=None,
                  amount_owed=Decimal(amount), currency="USD", due_date=date(2026, 11, 11), days_past_due=12,
                  institution="Acme Finance", collector_name=BOT_NAMES["en-US"], callback_number=DID,
                  account_id=None)


async def _forged_session(port: int, token: str, path: str, call_id: str) -> list[str]:
    """A client that speaks FastAGI like Asterisk and answers the token challenge: the commands it got."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    header = [f"agi_network_script: {path}?call={call_id}", f"agi_request: agi://127.0.0.1/{path}?call={call_id}",
              "agi_channel: PJSIP/carrier-0000ffff", "agi_uniqueid: 1234.5", "agi_callerid: +12125550141"]
    writer.write(("\n".join(header) + "\n\n").encode())
    got = []
    try:
        while True:
            line = (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
            if not line:
                break
            got.append(line)
            answer = f"200 result=1 ({token})" if line.startswith("GET FULL VARIABLE") else "200 result=0"
            writer.write((answer + "\n").encode())
    finally:
        writer.close()
    return got


@pytest.fixture(scope="module")
def voicebot_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("voicebot")
    at = default_demo_time()
    today = at.date()
    tts = TTS()
    paula = _debtor("V001", "Paula Promise", "+12125550141", "1984", "420.00")
    wanda = _debtor("V002", "Wanda Wrong", "+12125550142", "1975", "310.00")
    harold = _debtor("V003", "Harold Hardship", "+12125550143", "1969", "980.00")
    p_keys, p_end = timeline(tts, "m1_reminder_en", paula, ["1", "1984", "1"], today, amd=True)
    w_keys, w_end = timeline(tts, "m1_reminder_en", wanda, ["2", "2"], today, amd=True)
    h_keys, h_end = timeline(tts, "m1_reminder_en", harold, ["1", "1969", "3"], today, amd=True)
    tom = _debtor("V005", "Tom Thirdparty", "+12125550145", "1961", "777.00")
    t_keys, t_end = timeline(tts, "m1_reminder_en", tom, ["2", "1"], today, amd=True)  # not me; yes I know him
    sam = _debtor("V006", "Sam Stop", "+12125550146", "1977", "640.00")
    s_keys, s_end = timeline(tts, "m1_reminder_en", sam, ["1", "1977", "9"], today, amd=True)  # 9: no further calls
    # the call-back: Carl (not due for a call today) dials the number from a message, verifies, asks
    # for a person (0)
    carl = _debtor("V004", "Carl Callback", "+12125550144", "1990", "150.00")
    i_keys, i_end = timeline(tts, "m1_reminder_en", carl, ["1", "1990", "0"], today, amd=False)
    behaviours = behaviours_from_dict({
        "+12125550141": {"answer_after": 1, "then": "speak", "audio": "hello.wav", "dtmf": p_keys, "hangup_after": p_end},
        "+12125550142": {"answer_after": 1, "then": "speak", "audio": "hello.wav", "dtmf": w_keys, "hangup_after": w_end},
        "+12125550143": {"answer_after": 1, "then": "speak", "audio": "hello.wav", "dtmf": h_keys, "hangup_after": h_end},
        "+12125550145": {"answer_after": 1, "then": "speak", "audio": "hello.wav", "dtmf": t_keys, "hangup_after": t_end},
        "+12125550146": {"answer_after": 1, "then": "speak", "audio": "hello.wav", "dtmf": s_keys, "hangup_after": s_end},
        "+12125550149": {"answer_after": 0, "then": "silent", "dtmf": i_keys, "hangup_after": i_end},
    })
    (tmp / "bot_m1.yaml").write_text(CAMPAIGN)
    (tmp / "d.csv").write_text(DEBTORS)
    store = Store(tmp / "dialer.db")
    camp = load_campaign(tmp / "bot_m1.yaml")
    core.upsert_campaign(store, camp)
    core.import_debtors(store, read_debtors_csv(tmp / "d.csv"), camp.name)
    core.set_next_allowed(store, "V004", at.timestamp() + 7 * 86400)  # called back, not dialled
    harness = Harness(tmp / "run", agents=1, behaviours=behaviours)
    state = harness.up()
    inbound: dict = {}

    async def run() -> None:
        dialer = Dialer(store, state, load_rules(REPO / "compliance_rules.yaml"), [camp], clock=Clock(at), tts=tts)
        await dialer.start()
        async def call_back() -> None:
            sim = harness.state.carrier
            carrier = AMIController("127.0.0.1", sim.ami_port, sim.ami_user, sim.ami_secret)
            await carrier.connect()
            call = await carrier.originate("cb-1", DID, trunk="pbx", context="from-pbx", exten="+12125550149",
                                           ring_timeout=10, caller_id="<+12125550144>")
            await asyncio.wait_for(call.done, i_end + 30)
            await carrier.close()
            inbound["carrier_call"] = call

        try:
            callback = asyncio.create_task(call_back())
            await asyncio.sleep(2.0)  # the call-back is in progress while the dialer works its list
            await dialer.run(until_idle=True, max_seconds=150)
            await callback
            await asyncio.sleep(0.5)
            # Forged FastAGI sessions that know the token: an ended call, an unknown call, a call-back id
            # whose channel is not up. The daemon's admit() must refuse each before any command.
            ended = next(a["id"] for a in core.attempts_for_debtor(store, "V001") if not a["inbound"])
            before = len(core.call_events(store, ended))
            inbound["forged"] = {
                cid: await _forged_session(dialer.agi.port, state.agi_token, path, cid)
                for path, cid in (("call", ended), ("call", "forged-1"), ("inbound", "in-1234.5"))}
            inbound["ended_call"] = (ended, before, len(core.call_events(store, ended)))
        finally:
            await dialer.stop()

    try:
        asyncio.run(run())
    finally:
        harness.down()
    return {"store": store, "harness": harness, "tts": tts, "today": today, "at": at, "inbound": inbound}


def _calls(store, debtor_id):
    return store.query("SELECT * FROM attempts WHERE debtor_id=? ORDER BY placed_at", (debtor_id,))


def _said(store, call_id):
    return [r["text"] for r in store.query("SELECT speaker, text FROM transcript_turns WHERE call_id=? ORDER BY idx",
                                            (call_id,)) if r["speaker"] == "agent"]


def test_promise_through_the_m1_script(voicebot_run):
    store = voicebot_run["store"]
    out = [a for a in _calls(store, "V001") if not a["inbound"]]
    assert len(out) == 1 and out[0]["outcome"] == "answered" and out[0]["disposition"] == "promise"
    said = _said(store, out[0]["id"])
    assert said[0].startswith("Hello, this is Alex, an automated assistant calling on behalf of Acme Finance")
    debt_at = next(i for i, t in enumerate(said) if "days past due" in t)
    ask_factor_at = next(i for i, t in enumerate(said) if "year of birth" in t)
    assert ask_factor_at < debt_at
    promises = core.promises_for(store, call_id=out[0]["id"])
    assert promises and promises[0]["due_date"] == voicebot_run["today"].isoformat()
    assert Decimal(promises[0]["amount"]) == Decimal("420.00")
    qa = store.query_one("SELECT score FROM qa_results WHERE call_id=?", (out[0]["id"],))
    assert qa is not None and qa["score"] == 100
    # the callee really heard the debt notice (carrier side)
    rec = voicebot_run["harness"].recording_for("+12125550141", out[0]["id"])
    notice = next(t for t in said if "days past due" in t)
    assert active_seconds(rec) > active_seconds(voicebot_run["tts"].render(notice, "en-US"))


def test_wrong_number_hears_nothing_and_number_is_marked(voicebot_run):
    store = voicebot_run["store"]
    out = _calls(store, "V002")
    assert len(out) == 1 and out[0]["disposition"] == "wrong_number"
    said = _said(store, out[0]["id"])
    assert not any("past due" in t or "310" in t or "amount" in t for t in said), said
    phones = {p["phone"]: p["status"] for p in core.get_debtor(store, "V002")["phones"]}
    assert phones["+12125550142"] == "wrong_number"


def test_hardship_goes_to_a_collector_with_context(voicebot_run):
    store = voicebot_run["store"]
    out = _calls(store, "V003")
    assert len(out) == 1 and out[0]["disposition"] == "hardship"
    pops = store.query("SELECT * FROM screen_pops WHERE debtor_id='V003'")
    assert len(pops) == 1
    ctx = json.loads(pops[0]["context_json"])
    assert ctx["verified"] is True and ctx["agent"] == "agent1" and "hardship" in json.dumps(ctx)


def test_inbound_call_back_is_verified_then_reaches_a_collector(voicebot_run):
    store = voicebot_run["store"]
    assert not [a for a in _calls(store, "V004") if not a["inbound"]]  # not dialled: only called back
    inbound = [a for a in _calls(store, "V004") if a["inbound"]]
    assert len(inbound) == 1
    call_id = inbound[0]["id"]
    said = _said(store, call_id)
    assert said and "year of birth" in " ".join(said)
    assert next(i for i, t in enumerate(said) if "year of birth" in t) < next(
        i for i, t in enumerate(said) if "days past due" in t)
    pops = store.query("SELECT * FROM screen_pops WHERE call_id=?", (call_id,))
    assert pops and json.loads(pops[0]["context_json"])["verified"] is True
    # the us profile requires the recording notice: played before the bot spoke (docs/RECORDINGS.md)
    assert [e["data"]["complete"] for e in core.call_events(store, call_id, "recording_notice")] == [True]


def test_third_party_never_hears_the_amount(voicebot_run):
    store, harness, tts = voicebot_run["store"], voicebot_run["harness"], voicebot_run["tts"]
    out = _calls(store, "V005")
    assert len(out) == 1 and out[0]["disposition"] == "third_party"
    said = _said(store, out[0]["id"])
    assert said[-1].startswith("Sorry to bother you. Could you please ask Tom Thirdparty to call us back")
    assert not any("777" in t or "past due" in t or "amount" in t for t in said), said
    # on the carrier side: what the third party heard is what the handler says it played, nothing more
    heard = active_seconds(harness.recording_for("+12125550145", out[0]["id"]))
    played = sum(active_seconds(tts.render(t, "en-US")) for t in said)
    assert abs(heard - played) < 0.25 * played + 0.3, (heard, played)


def test_stop_calling_lands_on_cease_list_and_the_gate_blocks_the_next_attempt(voicebot_run):
    from datetime import timedelta

    from dialer.gate.account import take_attempt

    store = voicebot_run["store"]
    out = _calls(store, "V006")
    assert len(out) == 1 and out[0]["disposition"] == "cease"
    assert core.contact_requests(store, "V006", "cease")
    later = voicebot_run["at"] + timedelta(days=3)
    d = take_attempt(store, call_id="after-cease", debtor_id="V006", account_id="ACC-V6", campaign="bot_m1",
                     phone=None, rules=load_rules(REPO / "compliance_rules.yaml"), now=later)
    assert not d.allowed and d.rule_id == "cease"
    assert len(_calls(store, "V006")) == 1


def test_forged_fastagi_sessions_with_the_token_are_refused_while_the_real_call_back_worked(voicebot_run):
    """Right token, but a call that has ended, a call never placed, a call-back whose channel is not up:
    the only command each forged session gets is the token challenge; nothing is recorded for them."""
    store, inbound = voicebot_run["store"], voicebot_run["inbound"]
    for call_id, got in inbound["forged"].items():
        assert [c.split()[0:3] for c in got] == [["GET", "FULL", "VARIABLE"]], (call_id, got)
    _ended, before, after = inbound["ended_call"]
    assert after == before  # nothing added to the ended call
    assert core.get_attempt(store, "forged-1") is None and not core.call_events(store, "forged-1")
    assert [a for a in _calls(store, "V004") if a["inbound"]], "the real call-back was admitted"
