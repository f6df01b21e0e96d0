"""Speech drives the script in live calls, English, end to end through real Asterisk: the carrier plays a
debtor's voice (Piper-made speech, and Debian's real recorded Asterisk prompts — one human speaker), the bot
hears it through the tap, Whisper tiny.en recognises it (agi.media.speech.CallSpeech) and the script follows.
What the callee said reaches the transcript as the recognizer's words, with timing and backend — never the
text the carrier was told to say. Silence and low hiss give no Speech event.

All calls run at once (one PBX); the recognizer is loaded once for the process."""
from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agi.media.speech import CallSpeech, preload
from agi.script.loader import load_by_id
from common.wav import duration
from dialer.telephony.carrier import behaviours_from_dict
from dialer.telephony.voicelab import VoiceLab, responses
from tests.asr_speakers import piper, real, write_wav

pytestmark = pytest.mark.asterisk
SCRIPTS = Path(__file__).resolve().parent / "data" / "voice_scripts"
ZONE = ZoneInfo("Pacific/Honolulu")  # the debtor's zone: its date is not UTC's for 10 hours a day
PROMISE, PAID, PERSON, REAL_NO, REAL_YES_TOMORROW, SHORT_YES, COUGH, SILENT, HISS = (
    f"+1212555017{i}" for i in range(9))
GAP = 900  # ms of bot silence before the debtor speaks (the prompts' own pauses are shorter)


@pytest.fixture(scope="module")
def speech_calls(tmp_path_factory, tts):
    script = load_by_id("speech_test_en", SCRIPTS)
    today = datetime.now(ZONE).date()
    for p in script.prompts.values():  # rendered before the calls, as the daemon's prerender does
        tts.render(p.text.format(institution="Acme Finance"), script.locale)
    audio = tmp_path_factory.mktemp("debtor-audio")

    def wav(name, pcm):
        return str(write_wav(audio / f"{name}.wav", pcm))

    yes, year = wav("en-yes", piper("Yes.")), wav("en-1984", piper("Nineteen eighty-four."))
    said = {"promise": wav("en-promise", piper("I will pay tomorrow.")),
            "paid": wav("en-paid", piper("I already paid.")),
            "person": wav("en-person", piper("Let me talk to a person.")),
            "real_no": wav("real-no", real("vm-no")),
            "real_year": wav("real-1984", real("digits/1", "digits/9", "digits/8", "digits/4")),
            "real_tomorrow": wav("real-tomorrow", real("digits/tomorrow"))}
    values = {"institution": "Acme Finance"}
    identity = duration(tts.render(script.prompts["identity"].text.format(**values), script.locale))
    into_question = round(0.2 + identity + 1.2, 2)  # 1 s into "Am I speaking with Paula Promise? …"

    def turns(*wavs):
        return [{"after_silence": GAP, "audio": w, "label": f"t{i}"} for i, w in enumerate(wavs)]

    bf = behaviours_from_dict({
        PROMISE: {"speech": turns(yes, year, said["promise"]), "hangup_after": 40},
        PAID: {"speech": turns(yes, year, said["paid"]), "hangup_after": 40},
        PERSON: {"speech": turns(said["person"]), "hangup_after": 30},
        REAL_NO: {"speech": turns(said["real_no"]), "hangup_after": 30},
        REAL_YES_TOMORROW: {"speech": turns(yes, said["real_year"], said["real_tomorrow"]), "hangup_after": 40},
        SHORT_YES: {"speech": [{"at": into_question, "audio": yes, "label": "short"}], "hangup_after": 30},
        COUGH: {"speech": [{"at": into_question, "cough": True, "label": "cough"}], "hangup_after": 30},
        SILENT: {"hangup_after": 30},
        HISS: {"speech": [{"after_silence": GAP, "noise": 3, "label": "hiss"}], "hangup_after": 30},
    })
    numbers = (PROMISE, PAID, PERSON, REAL_NO, REAL_YES_TOMORROW, SHORT_YES, COUGH, SILENT, HISS)

    async def run():
        await preload("en")
        async with VoiceLab(tmp_path_factory.mktemp("speech-en"), bf, script, tts, today=today,
                            recognize=lambda day: CallSpeech("en", day)) as lab:
            calls = await asyncio.gather(*(lab.call(n, timeout=90) for n in numbers))
            dump_facts(lab, calls)
            return lab, dict(zip(numbers, calls))

    lab, calls = asyncio.run(run())
    return lab, calls, today


def dump_facts(lab, calls):
    """What each call saw, next to the run's logs (for a failure's post-mortem)."""
    import json

    out = {c.number: {"facts": c.facts, "speech_at": c.speech_at, "carrier_t0": c.carrier_t0, "t0": c.t0,
                      "path": c.result.path if c.result else None, "turns": lab.ports.turns_of(c.call_id)}
           for c in calls}
    (Path(lab.harness.run_dir) / "facts.json").write_text(json.dumps(out, ensure_ascii=False, indent=1, default=str))


def heard(lab, call):
    return lab.ports.heard_of(call.call_id)


def outcome(lab, call, kind):
    return next((data for k, data in lab.ports.outcomes_of(call.call_id) if k == kind), None)


def test_yes_year_and_a_promise_in_words_get_tomorrow_in_the_debtors_zone(speech_calls):
    lab, calls, today = speech_calls
    call = calls[PROMISE]
    assert call.result.path == ["greet", "verify", "ask_pay", "promise"], (call.result, heard(lab, call))
    assert call.result.verified
    promise = outcome(lab, call, "promise")
    assert promise and promise["date"] == (today + timedelta(days=1)).isoformat(), promise
    print(f"promise said in words on {today} (Pacific/Honolulu) -> {promise['date']}")


def test_i_already_paid_is_a_dispute(speech_calls):
    lab, calls, _ = speech_calls
    call = calls[PAID]
    assert call.result.path == ["greet", "verify", "ask_pay", "dispute"], heard(lab, call)
    assert outcome(lab, call, "dispute") is not None


def test_let_me_talk_to_a_person_transfers(speech_calls):
    lab, calls, _ = speech_calls
    call = calls[PERSON]
    assert call.result.transferred_to == "collectors", heard(lab, call)
    assert call.result.path == ["greet", "to_collector"]


def test_real_recorded_speech_no_and_tomorrow(speech_calls):
    lab, calls, today = speech_calls
    assert calls[REAL_NO].result.path == ["greet", "deny"], heard(lab, calls[REAL_NO])
    call = calls[REAL_YES_TOMORROW]  # "one nine eight four" and "tomorrow" from the human recordings
    assert call.result.path == ["greet", "verify", "ask_pay", "promise"], (heard(lab, call), call.facts)
    assert outcome(lab, call, "promise")["date"] == (today + timedelta(days=1)).isoformat()


def test_transcripts_carry_the_recognizers_words_timing_and_backend(speech_calls):
    lab, calls, _ = speech_calls
    turns = heard(lab, calls[PROMISE])
    assert len(turns) == 3
    for text, start, end, meta in turns:
        assert meta["backend"] == "whisper:whisper-tiny.en"
        assert 0 < start < end and meta["asr_end"] == pytest.approx(end, abs=0.01)
        assert 0 < meta["confidence"] <= 1
    # the recognizer's own words (its casing and punctuation), not the carrier's script text
    assert "tomorrow" in turns[2][0].lower()
    real_turn = heard(lab, calls[REAL_NO])[0]
    assert real_turn[0].strip(" .").lower() == "no"


def test_a_short_yes_over_the_question_is_an_answer_and_a_cough_still_resumes(speech_calls):
    lab, calls, _ = speech_calls
    call = calls[SHORT_YES]
    facts = call.facts
    assert any(f["kind"] == "short_answer" for f in facts), facts
    assert not any(f["kind"] == "resume" for f in facts)
    assert call.result.path[:2] == ["greet", "verify"], heard(lab, call)
    cough = calls[COUGH]
    assert any(f["kind"] == "resume" for f in cough.facts), (cough.facts, call.speech_at, call.carrier_t0)
    assert not any(f["kind"] == "short_answer" for f in cough.facts)
    assert cough.result.path == ["greet", "no_response"]


def test_silence_and_hiss_give_no_speech(speech_calls):
    lab, calls, _ = speech_calls
    for number in (SILENT, HISS):
        call = calls[number]
        assert call.result.path == ["greet", "no_response"], (number, heard(lab, call))
        assert not any(t[0] != "[no speech]" for t in heard(lab, call))


def test_response_latency_on_the_carrier_side(speech_calls):
    lab, calls, _ = speech_calls
    got = [r.latency_ms for n in (PROMISE, PAID, PERSON, REAL_NO, REAL_YES_TOMORROW) for r in responses(lab, calls[n])]
    got = [g for g in got if g is not None]
    assert got, "no callee turn was followed by bot audio"
    got.sort()
    print("response latencies (ms):", got)
    print(f"response latency (end of callee speech → first bot audio at the callee): n={len(got)} "
          f"p50 {got[len(got) // 2]} ms, max {got[-1]} ms")
    assert all(-500 < g < 5000 for g in got), got  # a functional bound; bench/voice.py reports p50/p95
