"""`dialer asr transcribe`: 8 and 16 kHz WAV, --expect, --json, and one-line errors for bad files."""
import json

import numpy as np
import soxr
from click.testing import CliRunner

from dialer.cli import main
from tests.asr_speakers import espeak_zh, piper, write_wav


def run(*args):
    return CliRunner().invoke(main, ["asr", "transcribe", *map(str, args)])


def test_english_8k_and_16k_json(tmp_path):
    pcm = piper("I already paid.")
    res = run(write_wav(tmp_path / "a8.wav", pcm), "--lang", "en", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert "already paid" in out["text"].lower() and out["intent"] == "dispute"
    assert out["backend"] == "whisper:whisper-tiny.en" and out["no_speech_prob"] < 0.6
    a16 = (np.clip(soxr.resample(np.frombuffer(pcm, "<i2") / 32768, 8000, 16000), -1, 1) * 32767).astype("<i2")
    res = run(write_wav(tmp_path / "a16.wav", a16.tobytes(), 16000), "--lang", "en")
    assert res.exit_code == 0 and "intent: dispute" in res.output and "backend: whisper:whisper-tiny.en" in res.output


def test_mandarin_with_expected_answers(tmp_path):
    res = run(write_wav(tmp_path / "z.wav", espeak_zh("转人工")), "--lang", "zh", "--expect", "是的|不是|转人工|你打错了")
    assert res.exit_code == 0, res.output
    assert "match: 转人工" in res.output and "backend: whisper:whisper-base" in res.output


def test_bad_files_get_one_line_errors(tmp_path):
    res = run(tmp_path / "missing.wav", "--lang", "zh")
    assert res.exit_code == 2 and res.output.strip() == f"error: {tmp_path / 'missing.wav'}: no such file"
    (tmp_path / "t.wav").write_text("not audio")
    res = run(tmp_path / "t.wav", "--lang", "en")
    assert res.exit_code == 2 and "not a PCM WAV file" in res.output and len(res.output.strip().splitlines()) == 1
    write_wav(tmp_path / "r.wav", b"\0\0" * 100, 22050)
    res = run(tmp_path / "r.wav", "--lang", "en")
    assert res.exit_code == 2 and "22050 Hz; expected 8000 or 16000 Hz" in res.output


def test_forcing_vosk_without_an_official_model_says_how_to_fetch_one(tmp_path):
    res = run(write_wav(tmp_path / "s.wav", b"\0\0" * 8000), "--lang", "zh", "--backend", "vosk")
    assert res.exit_code == 2 and "dialer models fetch --asr zh" in res.output
    assert len(res.output.strip().splitlines()) == 1
