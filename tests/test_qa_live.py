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
