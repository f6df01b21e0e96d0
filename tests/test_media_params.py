"""Per-node VAD and endpointing parameters: typed, defaulted, merged script → node, and refused with
file:line: field when out of range."""
from __future__ import annotations

from pathlib import Path

import pytest

from agi.script.engine import Engine
from agi.script.loader import ScriptError, load_by_id, load_script_text
from agi.script.model import Debtor, Listen, VoiceParams

SCRIPTS = Path(__file__).resolve().parent / "data" / "voice_scripts"


def test_defaults_script_values_and_node_overrides_reach_the_listen():
    script = load_by_id("voice_test_en", SCRIPTS)
    assert script.voice == VoiceParams(end_silence_ms=600)
    node = script.nodes["greet"]
    assert node.voice is not None and node.voice.end_silence_ms == 500
    assert node.voice.false_interruption_ms == VoiceParams().false_interruption_ms
    engine = Engine(script, Debtor("D1", "Paula Promise", institution="Acme"), today=__import__("datetime").date(2026, 11, 23))
    listen = next(a for a in engine.start() if isinstance(a, Listen))
    assert listen.voice.end_silence_ms == 500
    assert script.voice_of(script.nodes["bye"]).end_silence_ms == 600


@pytest.mark.parametrize("voice,field,message", [
    ("{end_silence_ms: 20}", "voice.end_silence_ms", "expected 100..5000 ms"),
    ("{vad_mode: 5}", "voice.vad_mode", "expected 0, 1, 2 or 3"),
    ("{barge_in: maybe}", "voice.barge_in", "expected true or false"),
    ("{start_frames: 9}", "voice", "start_frames"),
    ("{end_silence_ms: 1.5}", "voice.end_silence_ms", "whole number"),
    ("{silence: 3}", "voice.silence", "unknown field"),
])
def test_bad_values_are_refused_with_the_file_line_and_field(voice, field, message):
    text = (SCRIPTS / "voice_test_en.yaml").read_text().replace("voice: {end_silence_ms: 600}", f"voice: {voice}")
    with pytest.raises(ScriptError) as err:
        load_script_text(text, "voice_test_en.yaml")
    rendered = err.value.render()
    assert f"voice_test_en.yaml:9: {field}" in rendered and message in rendered, rendered


def test_a_yes_no_node_without_its_own_voice_ends_the_turn_sooner():
    """Issue 15's latency lever: the end-of-turn silence. A node that only expects yes / no takes
    `answer_silence_ms` (450) instead of the script's 600; a node asking for a date keeps its own."""
    from dataclasses import replace

    script = load_by_id("speech_test_en", SCRIPTS)
    debtor = Debtor("D1", "Paula Promise", institution="Acme", birth_year="1984")
    listen = next(a for a in Engine(script, debtor, today=__import__("datetime").date(2026, 11, 23)).start()
                  if isinstance(a, Listen))
    assert script.nodes["greet"].voice is None and listen.voice.end_silence_ms == 450
    off = replace(script, voice=replace(script.voice, answer_silence_ms=0))
    listen = next(a for a in Engine(off, debtor, today=__import__("datetime").date(2026, 11, 23)).start()
                  if isinstance(a, Listen))
    assert listen.voice.end_silence_ms == 600
