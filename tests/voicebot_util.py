"""Carrier DTMF timelines for voice-bot scripts: run the pure engine on the same inputs, render what it
would say, and press each key a margin after the prompt before it ends (the bot waits 6 s for keys)."""
from __future__ import annotations

from datetime import date
from pathlib import Path

from agi.media.tts import TTS
from agi.script.engine import Engine
from agi.script.loader import load_by_id
from agi.script.model import Debtor, Dtmf, Say
from common.wav import duration
from dialer.gate.rules import load_rules

AMD_SECONDS = 3.5   # AMD on a "hello" decides HUMAN ~2 s after answer
KEY_MARGIN = 2.0    # seconds after the question prompt ends


PROFILE_OF = {"en-US": "us", "zh-CN": "cn"}  # the profiles the voice-bot tests' campaigns dial under


def notice(locale: str) -> str | None:
    """The recording notice the shipped profile of `locale`'s test campaigns plays before the bot speaks."""
    rules = load_rules(Path(__file__).resolve().parent.parent / "compliance_rules.yaml")
    return rules.profiles[PROFILE_OF[locale]].recording_notice.text_for(locale)


def timeline(tts: TTS, script_id: str, debtor: Debtor, keys: list[str], today: date, *,
             amd: bool) -> tuple[list[dict], float]:
    """(carrier dtmf list, hangup_after) for a callee who presses `keys` in turn (a call starts with the
    profile's recording notice, docs/RECORDINGS.md)."""
    script = load_by_id(script_id)
    engine = Engine(script, debtor, today=today)
    steps = [engine.start()] + [engine.handle(Dtmf(k)) for k in keys]

    def spoken(actions) -> float:
        return sum(duration(tts.render(a.text, script.locale)) for a in actions if isinstance(a, Say))

    t = AMD_SECONDS if amd else 1.0
    text = notice(script.locale)
    if text:
        t += duration(tts.render(text, script.locale))
    dtmf = []
    for actions, key in zip(steps, keys):
        t += spoken(actions) + KEY_MARGIN
        dtmf.append({"digits": key, "at": round(t, 2)})
        t += 0.25 * len(key)
    t += spoken(steps[len(keys)])
    return dtmf, t + 15.0
