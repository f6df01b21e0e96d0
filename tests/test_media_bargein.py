"""Interruption and resume as event sequences with injected time: frames in (their `at` is the clock),
commands out, as pipecat's run_test does it. Also the system-first queue and the RTP tap's decoding."""
from __future__ import annotations

import asyncio
import struct

import numpy as np

from agi.media.bargein import DroppedUtterance, ResumePrompt, StopPrompt, VoiceTurns
from agi.media.frames import AudioIn, Interruption, MustFinishPrompt, PromptAudio, SpeechStarted, Utterance
from agi.media.pipeline import FrameQueue
from agi.media.tap import RtpReceiver, parse_rtp, pcm_to_ulaw, ulaw_to_pcm
from agi.media.vad import frames_of
from agi.script.model import VoiceParams
from tests.media_audio import cough, speech, timeline


def run(turns: VoiceTurns, frames, events: dict[int, str] | None = None):
    """Feed frames; at frame index i do events[i] ('prompt', 'must', 'listen', 'end'); return (kind, t) pairs."""
    out = []
    for i, f in enumerate(frames):
        ev = (events or {}).get(i)
        if ev == "prompt":
            turns.prompt_started(f.at, interruptible=True)
        elif ev == "must":
            turns.prompt_started(f.at, interruptible=False)
        elif ev == "listen":
            turns.listening(f.at)
        elif ev == "end":
            turns.prompt_ended(f.at)
        for o in turns.feed(f):
            t = getattr(o, "at", None)
            if isinstance(o, Utterance):
                t = o.speech_start
            out.append((type(o).__name__ if not isinstance(o, DroppedUtterance) else f"Dropped:{o.reason}", t))
    return out


def names(seq):
    return [n for n, _ in seq if n not in ("SpeechStopped", "EarlyTurn")]  # EarlyTurn: a provisional endpoint


def test_speech_over_an_interruptible_prompt_stops_it_then_interrupts():
    s = speech("This is Paula speaking", "en-us")
    frames = frames_of(timeline(1.5 + len(s) / 8000 + 1.5, [(1.5, s)]))
    seq = run(VoiceTurns(VoiceParams()), frames, {0: "prompt"})
    assert names(seq)[:4] == ["StopPrompt", "SpeechStarted", "Interruption", "Utterance"]
    stop = next(t for n, t in seq if n == "StopPrompt")
    onset = next(t for n, t in seq if n == "SpeechStarted")
    interrupt = next(t for n, t in seq if n == "Interruption")
    assert 0.08 <= stop - onset <= 0.16  # the stop goes out as soon as speech is confirmed
    assert interrupt == onset  # the interruption is dated at the caller's onset


def test_a_cough_stops_the_prompt_and_it_resumes():
    frames = frames_of(timeline(3.0, [(1.0, cough())]))
    seq = run(VoiceTurns(VoiceParams()), frames, {0: "prompt"})
    assert names(seq) == ["StopPrompt", "SpeechStarted", "ResumePrompt", "Dropped:false_interruption"]
    resume = next(t for n, t in seq if n == "ResumePrompt")
    assert resume - 1.0 < 0.75  # back to the prompt within the cough plus the resume silence


def test_a_mandarin_backchannel_is_a_false_interruption_and_a_sentence_is_not():
    en = speech("嗯", "cmn-latn-pinyin")
    sentence = speech("对，我就是王先生本人", "cmn-latn-pinyin")
    seq = run(VoiceTurns(VoiceParams()), frames_of(timeline(2.5, [(1.0, en)])), {0: "prompt"})
    assert "ResumePrompt" in names(seq) and "Interruption" not in names(seq)
    seq = run(VoiceTurns(VoiceParams()), frames_of(timeline(1.0 + len(sentence) / 8000 + 1.5, [(1.0, sentence)])),
              {0: "prompt"})
    assert "Interruption" in names(seq) and "ResumePrompt" not in names(seq)


def test_a_must_finish_prompt_is_never_stopped_and_speech_over_it_is_not_an_answer():
    s = speech("Yes, this is Paula speaking", "en-us")
    frames = frames_of(timeline(1.0 + len(s) / 8000 + 1.5, [(1.0, s)]))
    seq = run(VoiceTurns(VoiceParams(end_silence_ms=1500)), frames, {0: "must"})
    assert "StopPrompt" not in names(seq) and "Interruption" not in names(seq)
    assert names(seq) == ["SpeechStarted", "Dropped:over_prompt"]


def test_a_node_without_barge_in_lets_its_prompt_play():
    s = speech("This is Paula speaking", "en-us")
    frames = frames_of(timeline(4.0, [(1.0, s)]))
    seq = run(VoiceTurns(VoiceParams(barge_in=False)), frames, {0: "prompt"})
    assert "StopPrompt" not in names(seq)


def test_speech_while_listening_is_an_answer_and_silence_gives_none():
    s = speech("Yes", "en-us")
    frames = frames_of(timeline(3.0, [(1.0, s)]))
    seq = run(VoiceTurns(VoiceParams()), frames, {0: "listen"})
    assert names(seq) == ["SpeechStarted", "Utterance"]
    assert run(VoiceTurns(VoiceParams()), frames_of(timeline(3.0, [])), {0: "listen"}) == []


def test_a_key_is_the_same_interruption_as_voice():
    turns = VoiceTurns(VoiceParams())
    turns.prompt_started(0.0, interruptible=True)
    key = turns.key_pressed(0.7, "1")
    assert isinstance(key, Interruption) and key.source == "dtmf" and key.digit == "1" and key.at == 0.7
    voice = Interruption(at=0.7, source="voice")
    assert type(key) is type(voice)


def test_system_frames_jump_the_queue_and_an_interruption_keeps_must_finish_prompts():
    q = FrameQueue()
    a, b = PromptAudio("/p/a", "a"), MustFinishPrompt("/p/m", "m")
    q.put(a)
    q.put(b)
    q.put(AudioIn(b"\0" * 320, 0.0))
    q.put(SpeechStarted(at=0.1, decided_at=0.2))
    assert isinstance(asyncio.run(q.get()), SpeechStarted)
    dropped = q.interrupt()
    assert a in dropped and b not in dropped
    assert q.get_nowait() is b


def _rtp(seq: int, ts: int, payload: bytes, pt: int = 0) -> bytes:
    return struct.pack("!BBHII", 0x80, pt, seq, ts, 0x1234) + payload


def test_the_tap_decodes_ulaw_rtp_into_timed_frames_and_fills_a_lost_packet():
    tone = (np.sin(np.arange(480) * 2 * np.pi * 440 / 8000) * 8000).astype("<i2").tobytes()
    ulaw = pcm_to_ulaw(tone)
    back = np.frombuffer(ulaw_to_pcm(ulaw), "<i2").astype(float)
    assert np.corrcoef(back, np.frombuffer(tone, "<i2"))[0, 1] > 0.999
    assert parse_rtp(_rtp(1, 160, b"x" * 160))[:3] == (0, 1, 160)
    clock = iter([10.0, 99.0, 99.0, 99.0])
    rx = RtpReceiver(lambda: next(clock))
    rx.datagram_received(_rtp(1, 1000, ulaw[:160]), ("127.0.0.1", 5000))
    rx.datagram_received(_rtp(3, 1320, ulaw[320:480]), ("127.0.0.1", 5000))  # seq 2 lost
    rx.datagram_received(_rtp(2, 1160, ulaw[160:320]), ("127.0.0.1", 5000))  # too late: dropped
    rx.datagram_received(_rtp(4, 1480, ulaw[:160]), ("127.0.0.1", 5001))  # another sender: ignored
    frames = []
    while not rx.queue.empty():
        frames.append(rx.queue.get_nowait())
    assert [f.at for f in frames] == [10.0, 10.02, 10.04]
    assert frames[1].pcm == bytes(320) and rx.filled == 1
