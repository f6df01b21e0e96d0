"""The call flow over a scripted AGI channel: what was played, what was stored, what reached the queue."""
import asyncio
import hashlib
from datetime import date
from decimal import Decimal
from pathlib import Path

from agi.channel import Hangup
from agi.flows.scripted import run_script
from agi.ports import InMemoryPorts
from agi.script.loader import load_by_id
from agi.script.model import Debtor

DEBTOR = Debtor("D1", "张三", phone="+8613800000001", birth_year="1984", amount_owed=Decimal("5000"),
                due_date=date(2026, 11, 1), days_past_due=22, institution="示例银行", collector_name="小安",
                callback_number="4008001234")


class FakeTTS:
    """Returns a distinct path per text and remembers which text each path holds."""

    def __init__(self):
        self.texts: dict[str, str] = {}

    def render(self, text: str, locale: str) -> Path:
        path = f"/cache/{locale}/{hashlib.sha256(text.encode()).hexdigest()[:12]}.wav"
        self.texts[path[:-4]] = text
        return Path(path)


class FakeChannel:
    """Plays nothing; answers GET DATA from a list of key presses (None = timeout); 'HANGUP' raises Hangup."""

    def __init__(self, keys, barge=None):
        self.keys = list(keys)
        self.barge = dict(barge or {})  # prompt index -> digit pressed during it
        self.played: list[str] = []
        self.vars: dict[str, str] = {}
        self.apps: list[tuple[str, str]] = []
        self.hung_up = False

    async def control_stream_file(self, path, escape_digits=""):
        self.played.append(path)
        digit = self.barge.pop(len(self.played) - 1, None)
        return (digit if digit and digit in escape_digits else None), 0

    async def get_data(self, path, timeout_ms, max_digits):
        if path != "silence/1":
            self.played.append(path)
        key = self.keys.pop(0) if self.keys else None
        if key == "HANGUP":
            raise Hangup("caller hung up")
        return key

    async def set_variable(self, name, value):
        self.vars[name] = str(value)

    async def exec(self, app, args=""):
        self.apps.append((app, args))
        return "0"

    async def hangup(self):
        self.hung_up = True


def call(script_id, keys, barge=None, debtor=DEBTOR):
    channel, ports, tts = FakeChannel(keys, barge), InMemoryPorts(), FakeTTS()
    result = asyncio.run(run_script(channel, load_by_id(script_id), debtor, ports, call_id="c1", tts=tts,
                                    today=date(2026, 11, 23)))
    heard = " ".join(tts.texts[p] for p in channel.played)
    return result, channel, ports, heard


def test_verified_promise_is_stored_and_the_call_hangs_up():
    result, channel, ports, heard = call("m1_reminder", ["1", "1984", "1"])
    assert result.verified and result.reason == "promise" and channel.hung_up
    # verification is reported the moment it happens (a fact the gate reads), the promise when it is made
    assert ports.outcomes == [("c1", "verified", {"verified": True}), ("c1", "promise", {"node": "promise", "text": "", "verified": True,
                                                 "date": "2026-11-23", "date_kind": "relative", "amount": "5000",
                                                 "currency": "CNY"})]
    assert "5000元" in heard
    # the transcript has both sides, and the factor typed by the caller is masked
    callee = [t[2] for t in ports.turns if t[1] == "callee"]
    assert callee == ["1", "[verified]", "1"]
    assert not any("1984" in t[2] for t in ports.turns)


def test_third_party_never_hears_the_amount():
    result, _, ports, heard = call("m1_reminder", ["2", "1"])
    assert not result.verified and result.outcomes == ["third_party"]
    assert "5000" not in heard and "逾期" not in heard and "4008001234" in heard
    assert all("5000" not in t[2] for t in ports.turns)


def test_wrong_number_marks_the_phone():
    _, _, ports, _ = call("m1_reminder", ["2", "2"])
    assert ports.phones == [("D1", "+8613800000001", "wrong_number")]


def test_stop_calling_adds_the_debtor_to_the_cease_list():
    result, _, ports, _ = call("m1_reminder", ["1", "1984", "9"])
    assert ports.ceased == ["D1"] and result.outcomes == ["cease"]


def test_request_for_a_human_sets_context_and_enters_the_queue():
    result, channel, ports, _ = call("m1_reminder", ["1", "1984", "0"])
    assert result.transferred_to == "collectors" and not channel.hung_up
    assert channel.vars["BOT_VERIFIED"] == "1" and channel.vars["BOT_DEBTOR_ID"] == "D1"
    assert channel.vars["BOT_INTENTS"] == "confirm_identity,verified,request_human"
    assert channel.apps[0][0] == "UserEvent" and "CallID: c1" in channel.apps[0][1]
    assert channel.apps[-1] == ("Queue", "collectors")
    assert ports.transfers[0][1]["queue"] == "collectors" and ports.transfers[0][1]["verified"] is True


def test_caller_hangup_ends_quietly():
    result, channel, ports, _ = call("m1_reminder", ["1", "HANGUP"])
    assert result.reason == "caller_hangup" and not result.verified and not channel.hung_up
    assert ports.outcomes == []


def test_a_key_during_a_prompt_barges_in_but_must_finish_prompts_still_play():
    # '1' pressed during the must-finish identity statement is not taken: the flow still asks the name
    result, _, _, _ = call("m1_reminder", ["1", "1984", "1"], barge={0: "1"})
    assert result.verified and result.prompts_played[:2] == ["identity", "ask_name"]
    # a wrong factor, then '1' typed during "that did not match": the queued re-prompt is dropped and
    # the other three digits are collected
    result, _, _, _ = call("m1_reminder", ["1", "0000", "984", "1"], barge={3: "1"})
    assert result.verified and result.reason == "promise"
    assert result.prompts_played[:4] == ["identity", "ask_name", "ask_factor", "factor_again"]
    assert result.prompts_played.count("ask_factor") == 1
    # a key during "thank you for confirming", before the account notice and the menu, is not an answer
    result, _, _, _ = call("m1_reminder", ["1", "1984", "0"], barge={3: "1"})
    assert result.prompts_played[3:6] == ["thanks_verified", "debt_notice", "ask_pay"]
    assert result.transferred_to == "collectors" and result.outcomes == []


def test_no_input_three_times_ends_with_no_response():
    result, _, ports, _ = call("m1_reminder", [None, None, None])
    assert result.reason == "no_response" and [o[1] for o in ports.outcomes] == ["no_response"]


def test_over_a_real_socket_with_the_agi_channel():
    """The same flow through agi.channel.AGIChannel on 127.0.0.1, against a peer that answers like Asterisk."""
    from agi.channel import AGIChannel

    async def scenario(keys):
        seen: list[str] = []

        async def asterisk(reader, writer):
            while line := (await reader.readline()).decode().rstrip("\n"):
                seen.append(line)
                if line.startswith("GET DATA"):
                    key = keys.pop(0)
                    writer.write(b"200 result=-1\n" if key == "HANGUP" else f"200 result={key or ''}\n".encode())
                elif line.startswith("CONTROL STREAM FILE"):
                    writer.write(b"200 result=0 endpos=12000\n")
                else:
                    writer.write(b"200 result=1\n")
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(asterisk, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        channel = AGIChannel(reader, writer, {"agi_channel": "PJSIP/trunk-1"}, command_timeout=5)
        ports = InMemoryPorts()
        result = await run_script(channel, load_by_id("m1_reminder"), DEBTOR, ports, call_id="c9", tts=FakeTTS(),
                                  today=date(2026, 11, 23))
        writer.close()
        server.close()
        await server.wait_closed()
        return result, ports, seen

    result, ports, seen = asyncio.run(scenario(["1", "1984", "0"]))
    assert result.transferred_to == "collectors" and ports.transfers[0][1]["verified"] is True
    # prompts play with CONTROL STREAM FILE (barge-in can stop them); a must-finish one takes no keys,
    # and skipping is off with A/B as skip keys, so '*' and '#' stay ordinary keys
    assert seen[0].startswith('CONTROL STREAM FILE "/cache/zh-CN/') and seen[0].endswith('" "" "0" "A" "B"')
    assert seen[1].startswith('GET DATA "/cache/zh-CN/') and seen[1].endswith('" "6000" "1"')
    assert any(s.endswith('" "6000" "4"') for s in seen)  # four digits for the factor
    assert 'SET VARIABLE "BOT_VERIFIED" "1"' in seen and seen[-1] == 'EXEC "Queue" "collectors"'

    result, ports, seen = asyncio.run(scenario(["1", "HANGUP"]))
    assert result.reason == "caller_hangup" and ports.outcomes == [] and not any("HANGUP" == s for s in seen)


def test_dtmf_call_transcripts_score_clean_in_the_qa_checker():
    """What the bot stores for its own DTMF calls is what QA scores: no violation on any of these paths."""
    from dialer.qa.checker import check
    from dialer.qa.rules import load_rules

    rules = load_rules()
    paths = [["1", "1984", "1"], ["1", "1984", "2"], ["1", "1984", "3"], ["1", "1984", "4"], ["1", "1984", "9"],
             ["1", "1984", "0"], ["2", "1"], ["2", "2"], ["1", "0000", "1111"], [None, None, None],
             ["1", "1984", "5", "6", "7"]]
    en = Debtor("D2", "Jane Roe", phone="+14155550100", birth_year="1984", amount_owed=Decimal("1250"),
                currency="USD", due_date=date(2026, 10, 1), days_past_due=53, institution="Example Bank",
                collector_name="Ava", callback_number="800 555 0199")
    for script_id in ("m1_reminder", "m2_firm_instalment", "m3_plan_or_notice", "m1_reminder_en",
                      "m2_firm_instalment_en", "m3_plan_or_notice_en"):
        lang = "en" if script_id.endswith("_en") else "zh"
        for keys in paths:
            _, _, ports, _ = call(script_id, list(keys), debtor=en if lang == "en" else DEBTOR)
            turns = [{"speaker": sp, "text": text, "start": a, "end": b} for _, sp, text, a, b in ports.turns]
            result = check({"call_id": "c1", "lang": lang, "jurisdiction": "cn" if lang == "zh" else "us",
                            "started_at": "2026-11-23T10:00:00+08:00", "turns": turns}, rules)
            assert result.violations == (), (script_id, keys, result.violations)
