"""calls/events.py: one typed event per AMI message the daemon reacts to; everything else is None."""
from __future__ import annotations

from common import vocab
from dialer.calls import events as ev


def _user(name: str, **headers: str) -> dict:
    return {"Event": "UserEvent", "UserEvent": name, **headers}


def test_dialplan_user_events_parse_by_name_with_the_callid_header():
    assert ev.parse(_user("DialerAMD", CallID="c1", Status="MACHINE", Cause="INITIALSILENCE-2500-2500")) == \
        ev.DialerAMD("c1", "MACHINE", "INITIALSILENCE-2500-2500")
    assert ev.parse(_user("DialerHuman", CallID="c1", At="1700000000")) == ev.DialerHuman("c1", "1700000000")
    assert ev.parse(_user("DialerQueueResult", CallID="c1", Status="TIMEOUT")) == ev.DialerQueueResult("c1", "TIMEOUT")
    assert ev.parse(_user("DialerQueueResult", CallID="c1")) == ev.DialerQueueResult("c1", "")
    assert ev.parse(_user("DialerInfoPlayed", CallID="c1")) == ev.DialerInfoPlayed("c1")
    assert ev.parse(_user("DialerTransfer", CallID="c1", Queue="collectors")) == ev.DialerTransfer("c1", "collectors")
    assert ev.parse(_user("BotTransfer", CallID="c1", Queue="collectors", Verified="True")) == \
        ev.BotTransfer("c1", "collectors", True)
    assert ev.parse(_user("DialerPreviewReady", CallID="c1", Channel="PJSIP/agent1-0001")) == \
        ev.DialerPreviewReady("c1", "PJSIP/agent1-0001")
    assert {c.NAME for c in (ev.DialerAMD, ev.DialerHuman, ev.DialerQueueResult, ev.DialerInfoPlayed,
                             ev.DialerTransfer, ev.BotTransfer, ev.DialerPreviewReady,
                             ev.DialerMachineMessage, ev.DialerNoticePlayed)} == set(vocab.USER_EVENTS)
    assert ev.parse(_user("DialerMachineMessage", CallID="c1", Status="SUCCESS")) == ev.DialerMachineMessage("c1", True)


def test_ami_events_the_daemon_reads():
    assert ev.parse({"Event": "DialEnd", "DialStatus": "ANSWER", "DestUniqueid": "c1"}) == ev.DialAnswered("c1")
    assert ev.parse({"Event": "DialEnd", "DialStatus": "BUSY", "DestUniqueid": "c1"}) is None
    assert ev.parse({"Event": "Hangup", "Uniqueid": "1.2", "Cause": "16"}) == ev.ChannelHangup("1.2", 16)
    assert ev.parse({"Event": "AgentConnect", "Uniqueid": "c1", "Interface": "PJSIP/agent2", "HoldTime": "1",
                     "RingTime": "0"}) == ev.AgentConnect("c1", "agent2", "1", 0.0)
    assert ev.parse({"Event": "AgentComplete", "Uniqueid": "c1", "MemberName": "agent1", "TalkTime": "7"}) == \
        ev.AgentComplete("c1", "agent1", 7.0)
    assert ev.parse({"Event": "AgentComplete", "Uniqueid": "c1", "MemberName": "agent1"}).talk_time is None


def test_messages_the_daemon_ignores():
    assert ev.parse({"Event": "Newexten", "Uniqueid": "c1"}) is None
    assert ev.parse(_user("CarrierAnswered", CallID="c1")) is None
    assert ev.parse({}) is None
