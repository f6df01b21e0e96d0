"""`dialer asr transcribe FILE.wav --lang zh|en [--expect "是的|不是"] [--json]`: what the recognizer hears in a
WAV file (8 or 16 kHz), and with --expect the answer it matches: operators check a model before going live."""
from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import click


@click.group()
def asr() -> None:
    """Speech recognition: check the installed recognizers on a recording."""


@asr.command("transcribe")
@click.argument("wav", type=click.Path(path_type=Path))
@click.option("--lang", type=click.Choice(["zh", "en"]), required=True, help="The caller's language (forced).")
@click.option("--expect", default=None, help='Expected answers separated by "|", e.g. "是的|不是|转人工".')
@click.option("--backend", type=click.Choice(["whisper", "vosk"]), default=None,
              help="Force a backend (default: Vosk where an official model is fetched, else Whisper).")
@click.option("--prompt", default=None, help="A short domain prompt for Whisper (default: the expected answers).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def transcribe(wav: Path, lang: str, expect: str | None, backend: str | None, prompt: str | None,
               as_json: bool) -> None:
    """Print what the recognizer heard: text, confidence, no-speech probability, timing, backend."""
    from agi.intents import classify
    from agi.media.answers import expected_match
    from agi.media.asr import AudioError, read_wav, recognizer_for
    from agi.media.models import ModelMissing

    try:
        pcm, rate = read_wav(wav)
        rec = recognizer_for(lang, backend=backend)
    except (AudioError, ModelMissing, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    answers = [a.strip() for a in (expect or "").split("|") if a.strip()]
    if prompt is None and answers and lang == "zh":
        prompt = "。".join(answers) + "。"
    r = rec.recognize(pcm, rate, prompt=prompt)
    out = {"file": str(wav), "lang": lang, "text": r.text, "confidence": round(r.confidence, 3),
           "no_speech_prob": round(r.no_speech_prob, 3), "speech": r.is_speech, "start": r.start,
           "end": round(r.end, 3), "cpu_seconds": round(r.cpu_seconds, 3), "backend": r.backend,
           "raw_text": r.raw_text}
    if r.is_speech:
        intent = classify(r.text, lang, today=date.today())
        out["intent"] = intent.name
        out["slots"] = {k: str(v) for k, v in intent.slots.items()}
    if answers:
        m = expected_match(r.text if r.is_speech else "", answers, lang)
        out["match"] = {"answer": m.answer or None, "score": m.score, "decision": m.decision}
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    click.echo(f"text: {r.text or '(no speech)'}")
    click.echo(f"confidence: {out['confidence']}  no_speech_prob: {out['no_speech_prob']}  "
               f"time: {r.start:.2f}-{r.end:.2f} s  cpu: {out['cpu_seconds']} s  backend: {r.backend}")
    if "intent" in out:
        slots = " ".join(f"{k}={v}" for k, v in out["slots"].items())
        click.echo(f"intent: {out['intent']}{'  ' + slots if slots else ''}")
    if answers:
        m = out["match"]
        click.echo(f"match: {m['answer'] or '(none)'}  score: {m['score']}  decision: {m['decision']}")
