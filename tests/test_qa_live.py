"""Live QA's decision on one collector phrase (the post-call checker on that turn) and the alert hook
the wallboard subscribes to. The live path through Asterisk: tests/test_e2e_live_qa.py."""
from __future__ import annotations

import pytest

from dialer.qa import detect, live
from dialer.qa.rules import load_rules


@pytest.fixture(scope="module")
def us():
    return load_rules().for_jurisdiction("us")


@pytest.mark.parametrize("text, rules", [
    ("We will come to your house and hurt your family.", ["conduct.threat"]),
    ("Nobody will come to your house, and nothing we do will hurt your family.", []),
    ("Hello, this is Sam calling from Acme Finance.", []),
])
def test_a_phrase_is_judged_like_post_call_qa(us, text, rules):
    assert [r for r, _ in live.phrase_hits(text, "en", us)] == rules  # lexicons alone
    assert [r for r, _ in live.phrase_hits(text, "en", us, detect.load())] == rules  # with the detectors


def test_only_per_phrase_rules_are_live(us):
    # a debt named with nobody verified is a whole-call finding (process order): post-call QA's, not live's
    assert live.phrase_hits("You owe five hundred dollars on your Acme card.", "en", us) == []


def test_policies_come_from_the_rules_file(us):
    assert us.live["conduct.threat"] == "whisper" and us.live["conduct.impersonation"] == "end"


def test_publish_reaches_subscribers_and_survives_a_failing_one():
    got = []

    def bad(_a):
        raise RuntimeError("boom")

    off1, off2 = live.subscribe(bad), live.subscribe(got.append)
    try:
        a = live.LiveAlert("c1", "agent1", "conduct.threat", "whisper", "text", 0.9, 1.0, 2.0, 0.5, 100.0)
        live.publish(a)
        assert got == [a]
    finally:
        off1(), off2()
    live.publish(a)
    assert got == [a]


@pytest.mark.parametrize("with_detectors", [False, True])
def test_a_sentence_cut_in_two_is_judged_whole(us, with_detectors):
    det = detect.load() if with_detectors else None
    # the second half read with the first: the threat it completes, and nothing the fragment alone might suggest
    joined = live.join_phrases("We will come to your house", "and hurt your family.", "en")
    assert joined == "We will come to your house and hurt your family."
    assert [r for r, _ in live.phrase_hits(joined, "en", us, det)] == ["conduct.threat"]
    lawful = live.join_phrases("Nobody will come to your house,", "and nothing we do will hurt your family.", "en")
    assert [r for r, _ in live.phrase_hits(lawful, "en", us, det)] == []


class _Ami:
    def __init__(self):
        self.listeners, self.sent = [], []

    async def send(self, action, timeout=5.0):
        self.sent.append(action)


class _Heard:
    """A recogniser that returns the next scripted text for each utterance (the monitor's own logic under test)."""

    def __init__(self, texts):
        self.texts = list(texts)

    def recognize(self, pcm, rate, *, start, end, prompt=None):
        from agi.media.asr import Recognition
        return Recognition(self.texts.pop(0), 0.9, 0.0, start, end, "script", "en", 0.0)


def _monitor_alerts(tmp_path, us, phrases):
    """Feed (text, start, end) phrases of one collector call through CollectorMonitor._phrase."""
    import asyncio

    from agi.media.frames import Utterance
    from dialer.qa.rules import load_rules
    from dialer.store import Store

    store = Store(tmp_path / "d.db")
    mon = live.CollectorMonitor(_Ami(), store, load_rules(), detectors=detect.load())
    w = live._Watch("c1", "PJSIP/agent1-1", "PJSIP/carrier-1", "agent1", fired=set())
    heard = _Heard([t for t, _, _ in phrases])

    async def go():
        for _t, start, end in phrases:
            await mon._phrase(w, Utterance(pcm=b"\0\0" * 80, start=start, end=end), heard, "en", us, None)
    asyncio.run(go())
    store.close()
    return [(a.rule, a.evidence) for a in mon.alerts]


def test_the_monitor_joins_a_phrase_to_the_sentence_it_continues(tmp_path, us):
    # 0.5 s apart, the first left open: one sentence, judged as such (neither half alone is a threat)
    assert _monitor_alerts(tmp_path, us, [("Pay today", 1.0, 1.8), ("or your family gets hurt.", 2.3, 3.6)]) == \
        [("conduct.threat", "Pay today or your family gets hurt.")]
    # the recogniser closed the first with a full stop but began the second in lower case: a continuation
    assert _monitor_alerts(tmp_path / "b", us, [("Pay today.", 1.0, 1.8), ("or your family gets hurt.", 2.3, 3.6)]) \
        == [("conduct.threat", "Pay today. or your family gets hurt.")]


def test_a_finished_sentence_is_not_joined_to_the_next(tmp_path, us):
    # 0.8 s apart, as a collector goes from the greeting to the next sentence: each is judged alone
    assert _monitor_alerts(tmp_path, us, [("Hello, this is Sam calling from Acme Finance.", 1.0, 3.0),
                                          ("We will come to your house and hurt your family.", 3.8, 6.0)]) == \
        [("conduct.threat", "We will come to your house and hurt your family.")]
    assert live.continues("这边是安信金融", "您的账单已经逾期")
    assert not live.continues("您好。", "我是小王")


def test_the_monitor_does_not_join_phrases_a_long_pause_apart(tmp_path, us):
    # 6 s apart: two turns; the second is judged alone
    alerts = _monitor_alerts(tmp_path, us, [("We will come to your house and hurt your family.", 1.0, 4.0),
                                            ("Have a good day.", 10.0, 11.0)])
    assert alerts == [("conduct.threat", "We will come to your house and hurt your family.")]
    assert _monitor_alerts(tmp_path / "x", us, [("Hello, this is Sam calling from Acme Finance.", 1.0, 3.0),
                                                 ("You are a worthless idiot.", 9.0, 10.5)]) == \
        [("conduct.insult", "You are a worthless idiot.")]
