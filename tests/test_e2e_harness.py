"""End to end through both real Asterisk instances: outcomes per carrier behaviour, what the callee
hears (measured on the carrier-side recording), verification before disclosure, promise, transfer."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from agi.flows.dtmf_verify import DtmfVerifyFlow
from agi.ports import CallContext, InMemoryPorts
from agi.server import FastAGIServer
from common.wav import active_seconds
from dialer.telephony.ami import AMIController

pytestmark = pytest.mark.asterisk

NUMBERS = {
    "promise": "+12125550111",
    "collector": "+12125550112",
    "silent": "+12125550113",
    "wrong_year": "+12125550114",
    "hangs_up": "+12125550115",
    "busy": "+12125550116",
    "no_answer": "+12125550117",
    "machine": "+12125550118",
    "congestion": "+12125550119",
    "unallocated": "+12125550999",
}
GREETING = "This is Acme Finance. If you are Jane Doe, press 1."
SORRY = "We are sorry to have disturbed you. Goodbye."
YEAR = "Please enter your year of birth."
NOT_VERIFIED = "Sorry, we could not verify your identity. Goodbye."
DEBT = ("Thank you. We are calling about your Acme Finance account, which has a balance of 1,250 dollars and "
        "is 45 days past due. Press 1 to promise payment today, or 2 to speak to a collector.")


@pytest.fixture(scope="module")
def batch(harness, tts):
    """Place one call to every behaviour at once and collect what happened."""
    ports = InMemoryPorts()
    flow = DtmfVerifyFlow(ports, tts)
    results: dict[str, dict] = {}
    ami_events: list[dict] = []

    async def run() -> None:
        pbx = harness.connection
        server = FastAGIServer({"call": flow}, token=pbx.agi_token, port=pbx.agi_port)
        await server.start()
        ami = AMIController(pbx.ami_host, pbx.ami_port, pbx.ami_user, pbx.ami_secret)
        ami.listeners.append(ami_events.append)
        await ami.connect()
        calls = {}
        for name, number in NUMBERS.items():
            call_id = f"t-{name}-{uuid.uuid4().hex[:8]}"
            ports.contexts[call_id] = CallContext(
                call_id=call_id, debtor_id="D1", name="Jane Doe", birth_year=1984, institution="Acme Finance",
                amount_owed="1250.00", currency="USD", days_past_due=45, callback_number="+18005550100")
            amd = "1" if name == "machine" else "0"
            calls[name] = await ami.originate(call_id, number, ring_timeout=6, caller_id="Acme <+18005550100>",
                                              variables={"DIALER_AMD": amd})
        await asyncio.wait_for(asyncio.gather(*(c.done for c in calls.values())), 90)
        for name, call in calls.items():
            results[name] = {"call": call, "outcomes": ports.outcomes_of(call.call_id),
                             "turns": ports.turns_of(call.call_id)}
        await asyncio.sleep(0.5)  # let MixMonitor close the carrier-side files
        await ami.close()
        await server.stop()

    asyncio.run(run())
    return {"results": results, "ports": ports, "events": ami_events}


def _rendered_active(tts, text: str) -> float:
    return active_seconds(tts.render(text, "en-US"))


def _heard(harness, batch, name):
    call = batch["results"][name]["call"]
    path = harness.recording_for(NUMBERS[name], call.call_id)
    assert path.exists(), f"no carrier-side recording for {name}"
    return path


@pytest.mark.parametrize("name,outcome", [
    ("busy", "busy"), ("no_answer", "no_answer"), ("unallocated", "unallocated"), ("congestion", "failed"),
    ("promise", "answered"), ("silent", "answered"), ("hangs_up", "answered"), ("machine", "answered"),
])
def test_each_carrier_behaviour_gets_its_outcome(batch, name, outcome):
    call = batch["results"][name]["call"]
    assert call.outcome == outcome, (name, call.outcome, call.dial_status, call.hangup_cause, call.events)


def test_unanswered_calls_reach_no_call_flow(batch):
    for name in ("busy", "no_answer", "unallocated", "congestion"):
        assert batch["results"][name]["outcomes"] == [], name


def test_promise_is_recorded_after_verification(batch, harness, tts):
    res = batch["results"]["promise"]
    kinds = [k for k, _ in res["outcomes"]]
    assert kinds == ["verified_no_choice", "promise"]  # verification is reported when it happens (a crash keeps it)
    said = [t[1] for t in res["turns"] if t[0] == "agent"]
    assert said.index(GREETING) < said.index(YEAR) < said.index(DEBT)
    # what the debtor heard, measured on the carrier side: greeting + year prompt + debt + thanks
    heard = active_seconds(_heard(harness, batch, "promise"))
    debt = _rendered_active(tts, DEBT)
    assert heard > debt  # the debt statement was really played to the callee
    assert heard > 0.7 * (_rendered_active(tts, GREETING) + debt)


def test_callee_who_presses_nothing_hears_no_debt(batch, harness, tts):
    res = batch["results"]["silent"]
    said = [t[1] for t in res["turns"] if t[0] == "agent"]
    assert DEBT not in said and said == [GREETING, SORRY]
    heard = active_seconds(_heard(harness, batch, "silent"))
    expected = _rendered_active(tts, GREETING) + _rendered_active(tts, SORRY)
    debt = _rendered_active(tts, DEBT)
    assert abs(heard - expected) < 0.25 * expected + 0.3, (heard, expected)
    assert heard < expected + 0.5 * debt


def test_wrong_birth_year_hears_no_debt(batch, harness, tts):
    res = batch["results"]["wrong_year"]
    said = [t[1] for t in res["turns"] if t[0] == "agent"]
    assert said == [GREETING, YEAR, NOT_VERIFIED]
    assert res["outcomes"][-1][1].get("verified") is False
    heard = active_seconds(_heard(harness, batch, "wrong_year"))
    expected = sum(_rendered_active(tts, t) for t in (GREETING, YEAR, NOT_VERIFIED))
    assert abs(heard - expected) < 0.25 * expected + 0.3, (heard, expected)


def test_press_2_reaches_a_collector_through_the_queue(batch, harness, tts):
    res = batch["results"]["collector"]
    call = res["call"]
    assert [k for k, _ in res["outcomes"]] == ["verified_no_choice", "transfer"]
    assert batch["ports"].transfer_of(call.call_id)["verified"] is True
    connects = [e for e in batch["events"] if e.get("Event") == "AgentConnect" and e.get("Uniqueid") == call.call_id]
    assert connects, "no collector answered the queued call"
    assert connects[0]["Queue"] == "collectors"
    assert connects[0]["Interface"].startswith("PJSIP/agent")
    # the callee heard the collector's phone (SIPp streams audio after the transfer prompt):
    # more speech than the bot's own prompts account for
    heard = active_seconds(_heard(harness, batch, "collector"))
    bot = sum(_rendered_active(tts, t) for t in (GREETING, YEAR, DEBT, "Please hold while we connect you to a collector."))
    assert heard > bot + 2.0, (heard, bot)


def test_callee_hanging_up_ends_the_flow(batch):
    res = batch["results"]["hangs_up"]
    kind, data = res["outcomes"][-1]
    assert data.get("hangup") == "callee"


def test_answering_machine_gets_neutral_message(batch, harness, tts):
    res = batch["results"]["machine"]
    amd = [e for e in batch["events"] if e.get("Event") == "UserEvent" and e.get("UserEvent") == "DialerAMD"
           and e.get("CallID") == res["call"].call_id]
    assert amd and amd[0]["Status"] == "MACHINE"
    said = " ".join(t[1] for t in res["turns"])
    assert "Jane" not in said and "dollars" not in said and "past due" not in said
    assert res["outcomes"][-1][0] == "machine"


def test_every_listener_of_the_harness_is_on_loopback(harness):
    """Asterisk's SIP, RTP and AMI and the SIPp phones (control ports included) listen on 127.0.0.1 only.

    Not covered: pjproject's DNS resolver in each Asterisk binds an unconnected UDP socket on an
    ephemeral port of every address (it only accepts answers to its own queries)."""
    import re
    import subprocess

    state = harness.state
    base = harness.ports.base
    block = range(base, base + harness.ports.span(len(state.agents)))
    pids = {state.pbx.pid, state.carrier.pid, *state.sipp_pids.values()} - {None}
    assert state.sipp_pids, "the harness started no SIPp phones"
    out = subprocess.run(["ss", "-ltunpH"], capture_output=True, text=True, check=True).stdout
    mine = []
    for line in out.splitlines():
        owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if not owners & pids:
            continue
        proto, local = line.split()[0], line.split()[4]
        port = int(local.rsplit(":", 1)[1])
        sipp = bool(owners & set(state.sipp_pids.values()))
        if proto == "tcp" or sipp or port in block:
            mine.append((proto, local, sipp))
    assert any(s for *_, s in mine), "SIPp listens nowhere?"
    assert any(p == "tcp" for p, *_ in mine), "no AMI listener found"
    wide = [m for m in mine if not m[1].startswith("127.0.0.1:")]
    assert not wide, f"listening beyond loopback: {wide}"


def test_what_the_harness_writes_is_private_and_the_token_is_in_no_log_or_cdr(batch, harness):
    """After real calls: configs (AMI secret, SIP passwords, the AGI token), logs, CDRs, recordings and
    state files are 0600 in 0700 directories; the AGI token is only where it must be (the PBX's AstDB
    and the service's state files), never in a config, a log or a CDR."""
    import stat

    run = harness.run_dir
    token = harness.state.agi_token
    assert stat.S_IMODE(run.stat().st_mode) == 0o700
    looked = {"conf": 0, "log": 0, "cdr": 0, "rec": 0}
    holders = set()
    for path in run.rglob("*"):
        mode = stat.S_IMODE(path.lstat().st_mode)
        rel = path.relative_to(run)
        if rel.parts[0] == "sounds" or path.is_symlink() or path.is_socket():
            continue  # synthetic audio with nothing private in it (inside the 0700 run dir)
        if path.is_dir():
            assert mode & 0o077 == 0, f"{rel} is a directory others can enter ({oct(mode)})"
            continue
        kind = ("conf" if path.suffix == ".conf" else "cdr" if "cdr-csv" in rel.parts
                else "rec" if "rec" in rel.parts else "log" if "log" in rel.parts else None)
        if kind:
            looked[kind] += 1
        if kind or path.suffix in (".json", ".log", ".err", ".xml"):
            assert mode & 0o077 == 0, f"{rel} is readable by others ({oct(mode)})"
        if path.stat().st_size < 50_000_000 and token.encode() in path.read_bytes():
            holders.add(str(rel))
    assert all(looked.values()), looked
    assert holders <= {"pbx/db/astdb.sqlite3", "harness.json", "pbx.json"}, holders
    assert "pbx/db/astdb.sqlite3" in holders
