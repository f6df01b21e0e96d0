"""VAD decisions and endpointing on recorded frames: English and Mandarin speech (espeak-ng), a cough,
hiss and line noise; per-node parameters change where a turn ends."""
from __future__ import annotations

from dataclasses import replace

import pytest

from agi.media.frames import SpeechStarted, SpeechStopped, Utterance
from agi.media.vad import VadAnalyzer, analyze, frames_of
from agi.script.model import VoiceParams
from tests.media_audio import cough, hiss, speech, timeline

EN = ("Yes, this is Paula speaking", "en-us")
ZH = ("对，我就是，请问有什么事", "cmn-latn-pinyin")


def utterances(out):
    return [o for o in out if isinstance(o, Utterance)]


@pytest.mark.parametrize("text,voice", [EN, ZH])
def test_speech_after_a_second_of_line_noise_is_one_utterance_with_its_onset(text, voice):
    s = speech(text, voice)
    pcm = timeline(2.0 + len(s) / 8000 + 1.5, [(2.0, s)])
    out = analyze(frames_of(pcm), VoiceParams(end_silence_ms=900))
    starts = [o for o in out if isinstance(o, SpeechStarted)]
    us = utterances(out)
    assert len(starts) == 1 and 1.98 <= starts[0].at <= 2.2
    assert starts[0].decided_at - starts[0].at >= 0.08  # a multi-frame trigger, not one loud frame
    assert len(us) == 1
    u = us[0]
    assert u.speech_start == starts[0].at and u.start < u.speech_start  # pre-roll kept for the recognizer
    assert abs(u.end - (2.0 + len(s) / 8000)) < 0.35
    assert len(u.pcm) == round((u.end - u.start) / 0.02) * 320 or abs(len(u.pcm) / 16000 - u.seconds) < 0.05


@pytest.mark.parametrize("first,second,voice", [("Yes", "this is Paula", "en-us"),
                                                ("是的", "我就是王先生", "cmn-latn-pinyin")])
def test_a_short_end_silence_cuts_at_a_pause_a_long_one_keeps_the_turn(first, second, voice):
    a, b = speech(first, voice), speech(second, voice)
    gap_at = 1.0 + len(a) / 8000 + 0.45  # the caller pauses 450 ms between the two
    pcm = timeline(gap_at + len(b) / 8000 + 1.5, [(1.0, a), (gap_at, b)])
    short = utterances(analyze(frames_of(pcm), VoiceParams(end_silence_ms=300)))  # a yes/no node
    long = utterances(analyze(frames_of(pcm), VoiceParams(end_silence_ms=1200)))  # a date or an amount
    assert len(short) == 2 and short[1].speech_start >= gap_at - 0.05
    assert len(long) == 1 and long[0].end > gap_at


def test_silence_and_line_noise_give_nothing():
    assert analyze(frames_of(timeline(5.0, []))) == []
    assert analyze(frames_of(timeline(5.0, [], noise_db=-38.0))) == []  # loud line hiss


def test_a_burst_of_hiss_is_not_speech_but_a_cough_is_a_short_sound():
    assert analyze(frames_of(timeline(4.0, [(1.5, hiss(1.0))]))) == []  # too flat for speech
    out = analyze(frames_of(timeline(3.0, [(1.5, cough())])))
    us = utterances(out)
    assert len(us) == 1 and us[0].speech_seconds < 0.45  # short: the barge-in policy resumes after it


def test_the_analyzer_keeps_its_state_when_a_node_changes_its_parameters():
    s = speech(*EN)
    frames = frames_of(timeline(1.0 + len(s) / 8000 + 2.0, [(1.0, s)]))
    vad = VadAnalyzer(VoiceParams(end_silence_ms=1500))
    out = []
    for i, f in enumerate(frames):
        if i == 75:  # mid-turn: the next node wants short turns
            vad.set_params(replace(vad.params, end_silence_ms=200))
        out += vad.feed(f)
    assert isinstance(out[0], SpeechStarted)
    assert sum(isinstance(o, SpeechStopped) for o in out) >= 1
    assert all(isinstance(o, (SpeechStarted, SpeechStopped, Utterance)) for o in out)


def test_too_quiet_speech_is_ignored_by_the_level_gate():
    s = speech(*EN) * 0.005  # about -55 dBFS
    assert analyze(frames_of(timeline(4.0, [(1.0, s)], noise_db=None))) == []


@pytest.mark.parametrize("text,voice", [EN, ZH])
def test_a_provisional_endpoint_comes_early_with_the_turns_own_utterance(text, voice):
    """After `early_decode_ms` of quiet an EarlyTurn carries exactly the Utterance the end of turn will give
    (same pcm, start, end), so a recognizer can start while the endpointing silence runs out."""
    from agi.media.frames import EarlyTurn

    s = speech(text, voice)
    pcm = timeline(1.0 + len(s) / 8000 + 1.5, [(1.0, s)])
    frames = frames_of(pcm)
    vad = VadAnalyzer(VoiceParams(end_silence_ms=700, early_decode_ms=250))
    seen: list[tuple[float, object]] = []
    for f in frames:
        seen += [(f.at, o) for o in vad.feed(f)]
    early = [(at, o) for at, o in seen if isinstance(o, EarlyTurn)]
    final = [(at, o) for at, o in seen if isinstance(o, Utterance)]
    assert len(final) == 1 and early
    at_final, u = final[0]
    last_at, last = early[-1]
    assert last.utterance == u  # the same turn: its hearing can be used as is
    assert 0.4 <= at_final - last_at <= 0.5  # 700 - 250 ms sooner
    assert not [o for o in analyze(frames, VoiceParams(early_decode_ms=0)) if isinstance(o, EarlyTurn)]
