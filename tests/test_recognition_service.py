"""The shared recognition service (agi/media/recognition.py) and bot capacity as a pacing input
(dialer/pacing/bots.py): with the decoder artificially slowed, every call still gets its answer or the
"sorry, could you repeat" path by its deadline, and the hopper places fewer bot calls."""
from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from agi.media.asr import Recognition
from agi.media.recognition import DeadlineMissed, PoolLoad, RecognitionService, pool_size
from agi.media.speech import CallSpeech
from agi.script.engine import Engine
from agi.script.loader import load_by_id
from agi.script.model import Debtor, Grammar, Listen, Say, Speech
from common.clock import FixedClock
from dialer.calls.bot import Bots
from dialer.calls.collectors import Collectors
from dialer.calls.hopper import Hopper
from dialer.calls.ports import StorePorts
from dialer.campaign.config import load_campaign
from dialer.campaign.imports import read_debtors_csv
from dialer.gate.rules import load_rules
from dialer.pacing.bots import bot_room
from dialer.store import Store, core


class FakeRecognizer:
    """Says "yes" to everything; counts its decodes."""

    name, lang = "fake", "en"

    def __init__(self):
        self.decodes = 0
        self.lock = threading.Lock()

    def recognize(self, pcm, sample_rate=8000, *, start=0.0, end=None, prompt=None):
        with self.lock:
            self.decodes += 1
        return Recognition("yes", 0.9, 0.01, start, end if end is not None else start + 1, "fake", "en", 0.0, "yes")


def utt(i: int):
    return SimpleNamespace(pcm=b"\x00\x10" * 8000, start=float(i), end=float(i) + 1.0, speech_start=float(i) + 0.3)


def test_pool_follows_the_cores(monkeypatch):
    monkeypatch.delenv("DIALER_ASR_WORKERS", raising=False)
    assert pool_size() >= 1
    monkeypatch.setenv("DIALER_ASR_WORKERS", "3")
    assert pool_size() == 3
    monkeypatch.setenv("DIALER_ASR_WORKERS", "two")
    with pytest.raises(ValueError, match="DIALER_ASR_WORKERS"):
        pool_size()


def test_one_model_per_language_shared_by_every_call():
    loads = []
    svc = RecognitionService(2, loader=lambda lang: loads.append(lang) or FakeRecognizer())

    async def main():
        return await asyncio.gather(*(svc.run(lang, lambda m: m) for lang in ["en", "zh"] * 5))

    models = asyncio.run(main())
    svc.close()
    assert sorted(loads) == ["en", "zh"]
    assert len({id(m) for m in models}) == 2


def test_earliest_deadline_first():
    svc = RecognitionService(1, loader=lambda lang: None)
    order: list[str] = []
    gate = threading.Event()
    now = time.monotonic()
    svc.submit("en", lambda m: gate.wait(5), deadline=now + 10)  # occupies the only decoder
    while svc.load().running == 0:  # taken by the decoder before the others queue (else it is just one of them)
        time.sleep(0.005)
    futs = [svc.submit("en", lambda m, k=k: order.append(k), deadline=now + d)
            for k, d in (("late", 9.0), ("soon", 3.0), ("mid", 6.0))]
    gate.set()
    for f in futs:
        f.result(timeout=5)
    svc.close()
    assert order == ["soon", "mid", "late"]


def test_slowed_decoder_every_call_answered_or_asked_again_by_its_deadline():
    """Eight calls answer at once; one decoder, 0.3 s a decode, 1 s deadline: the first few are heard, the rest
    get Speech("", 0) ("sorry, I did not catch that") — none waits past its deadline, and an utterance whose
    deadline passed in the queue is never decoded."""
    rec = FakeRecognizer()
    svc = RecognitionService(1, loader=lambda lang: rec, slow_s=0.3, deadline_s=1.0)
    listen = Listen(Grammar(intents=("confirm_identity", "deny_identity")), timeout=5.0)

    async def one(i):
        speech = CallSpeech("en", datetime(2026, 3, 10).date(), service=svc)
        t0 = time.monotonic()
        heard = await speech(utt(i), listen, "en-US")
        return heard, time.monotonic() - t0

    async def main():
        return await asyncio.gather(*(one(i) for i in range(8)))

    results = asyncio.run(main())
    time.sleep(0.4)  # let a decode that was running at a deadline finish
    load = svc.load()
    svc.close()
    heard = [h for h, _ in results if h.how != "late"]
    late = [h for h, _ in results if h.how == "late"]
    assert 1 <= len(heard) <= 4 and len(late) == 8 - len(heard)
    assert all(h.event == Speech("", 0.0) and h.recognition.backend == "late" for h in late)
    assert all(h.recognition.text == "yes" for h in heard)
    assert max(t for _, t in results) < 1.0 + 0.5  # nobody hangs: back by the deadline (plus scheduling)
    assert rec.decodes < 8  # what was late in the queue was dropped, not decoded for nobody
    assert load.missed >= len(late) and load.decode_s is not None and load.decode_s >= 0.3


def test_late_hearing_takes_the_nodes_ask_again_path():
    script = load_by_id("m1_reminder_en")
    debtor = Debtor(debtor_id="D1", name="Dana Reyes", birth_year="1984", amount_owed=500, currency="USD",
                    days_past_due=12, institution="Acme Finance", phone="+12125550150",
                    callback_number="+18005550199")
    engine = Engine(script, debtor, today=datetime(2026, 3, 10).date())
    engine.start()
    actions = engine.handle(Speech("", 0.0))  # what a late hearing gives the engine
    said = " ".join(a.text for a in actions if isinstance(a, Say))
    assert "did not catch" in said.lower()


def test_bot_room_from_pool_load():
    def load(**kw):
        base = dict(workers=2, queued=0, running=0, decode_s=0.2, wait_s=0.0, served=10, missed=0, missed_recent=0,
                    deadline_s=2.5)
        base.update(kw)
        return PoolLoad(**base)

    assert bot_room(load(decode_s=None), 5).room is None  # nothing decoded yet: the line limit rules
    fast = bot_room(load(), 10)
    assert fast.capacity == 42 and fast.room == 32  # 2 decoders * 0.7 * 6 s / 0.2 s
    slow = bot_room(load(decode_s=1.0), 10)
    assert slow.capacity == 8 and slow.room == 0
    assert bot_room(load(missed_recent=2), 3).room == 0  # behind: no new call until it recovers
    assert bot_room(load(queued=5), 3).reason == "behind"
    assert bot_room(load(decode_s=3.0), 0).room == 1  # nothing up: one probe call, never a dead stop


HEADER = ("debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,"
          "timezone,customer_type,lang,contacts\n")
CAMPAIGN = """name: ny
profile: us
locale: en-US
institution: Acme Finance
callback_number: "+18005550199"
caller_id: "+12125550199"
dial_mode: bot_only
line_limit: 12
segments:
  - name: m1
    dpd: M1
    script: m1_reminder_en
"""


class FakeAmi:
    def __init__(self):
        self.connected = asyncio.Event()
        self.connected.set()
        self.originated: list[str] = []

    async def originate(self, call_id, phone, **kw):
        self.originated.append(call_id)
        return SimpleNamespace(call_id=call_id)


def placed_with(tmp_path, slow_s: float) -> int:
    """Two bot calls are up and have sent the pool six utterances; how many more does one hopper tick place?"""
    at = datetime(2026, 3, 10, 11, 0, tzinfo=ZoneInfo("America/New_York"))
    clock = FixedClock(at)
    store = Store(tmp_path / "dialer.db")
    (tmp_path / "ny.yaml").write_text(CAMPAIGN)
    camp = load_campaign(tmp_path / "ny.yaml")
    core.upsert_campaign(store, camp)
    rows = "".join(f"N{i},Dana Reyes,+1212555{i:04d},1234,1984,ACC-N{i},500.00,USD,12,2026-03-01,"
                   f"America/New_York,first,en,\n" for i in range(20))
    (tmp_path / "ny.csv").write_text(HEADER + rows)
    core.import_debtors(store, read_debtors_csv(tmp_path / "ny.csv"), "ny")
    rec = FakeRecognizer()
    svc = RecognitionService(1, loader=lambda lang: rec, slow_s=slow_s, deadline_s=0.5)
    bots = Bots(StorePorts(store, clock), clock, tts=object())
    bots.media = object()  # live audio up: the calls use the recogniser
    bots.recognition = svc
    calls: dict = {}
    hopper = Hopper(store, load_rules(), {"ny": camp}, clock, calls, Collectors(store, clock, [], {}, 0.0,
                                                                                  lambda c: None),
                    None, lambda call: None, lambda event: None)  # the bus: nothing listens here
    hopper.ami = FakeAmi()
    hopper.bot_room = bots.bot_room

    async def main():
        first = await hopper._fill(camp, 2)  # two calls up
        speech = CallSpeech("en", at.date(), service=svc)
        await asyncio.gather(*(speech(utt(i), Listen(Grammar(intents=("confirm_identity", "deny_identity")), timeout=5.0), "en-US") for i in range(6)))
        return first, await hopper.tick()

    first, more = asyncio.run(main())
    time.sleep(slow_s)
    svc.close()
    assert first == 2
    return more


def test_slowed_decoder_places_fewer_bot_calls(tmp_path):
    fast = placed_with(tmp_path / "fast", 0.0)
    slow = placed_with(tmp_path / "slow", 0.3)
    assert fast == 10  # the line limit (12) minus the two up: the pool keeps up
    assert slow == 0  # deadlines missed: no new bot call until the pool recovers


def test_a_hearing_started_on_the_provisional_endpoint_is_the_turns_hearing():
    rec = FakeRecognizer()
    svc = RecognitionService(1, loader=lambda lang: rec, slow_s=0.2)
    listen = Listen(Grammar(intents=("confirm_identity", "deny_identity")), timeout=5.0)

    async def main():
        speech = CallSpeech("en", datetime(2026, 3, 10).date(), service=svc)
        speech.listen = listen
        speech.prefetch(utt(1))  # a pause the caller talked on after: cancelled, never used
        part = SimpleNamespace(pcm=b"\x00\x10" * 4000, start=2.0, end=2.5, speech_start=2.3)
        speech.prefetch(part)  # the same turn at an earlier pause: superseded by the next one
        speech.prefetch(utt(2))
        assert len(speech._early) == 2
        await asyncio.sleep(0.45)  # the end-of-turn silence runs out meanwhile
        t0 = time.monotonic()
        heard = await speech(utt(2), listen, "en-US")
        return heard, time.monotonic() - t0, speech.early_used

    heard, waited, used = asyncio.run(main())
    svc.close()
    assert heard.recognition.text == "yes" and used == 1
    assert waited < 0.15  # already decoded: the turn did not wait for the decoder
    assert rec.decodes <= 2  # the turn itself was not decoded again, nor the superseded pause


def test_a_missed_deadline_holds_bot_calls_back_for_a_minute_not_for_ever():
    now = [100.0]
    svc = RecognitionService(1, loader=lambda lang: None, monotonic=lambda: now[0])
    svc._note(False)
    assert svc.load().missed_recent == 1
    now[0] += 61
    assert svc.load().missed_recent == 0 and svc.load().missed == 1


def test_each_decode_is_reported_to_its_observers_with_language_time_and_backend():
    class Heard:
        backend = "whisper:whisper-tiny.en"

    svc = RecognitionService(workers=1, loader=lambda lang: object())
    seen = []
    svc.on_decoded.append(lambda lang, seconds, backend: seen.append((lang, seconds >= 0, backend)))
    svc.on_decoded.append(lambda *a: 1 / 0)  # a broken observer is logged, never stops the decoder
    try:
        assert asyncio.run(svc.run("en", lambda model: Heard())).backend == "whisper:whisper-tiny.en"
        assert asyncio.run(svc.run("zh", lambda model: "text")) == "text"
    finally:
        svc.close()
    assert seen == [("en", True, "whisper"), ("zh", True, "")]
