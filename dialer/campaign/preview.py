"""Script preview: what the bot would say to one debtor, turn by turn, with the second each prompt starts
and ends, for a callee who presses given keys; and the carrier behaviour entry that makes a real call
follow the same path (each key pressed a margin after the question it answers has ended).

Timing model (measured on the harness, the same as the voice-bot end-to-end tests): the bot starts
AMD_SECONDS after answer when answering-machine detection is on (AMD decides HUMAN on a short "hello"),
1 s after otherwise; prompts follow each other without a gap; a key is pressed KEY_MARGIN after the
question ends; with nothing pressed the bot waits the node's timeout and the engine gets NoInput."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Callable

AMD_SECONDS = 3.5
NO_AMD_SECONDS = 1.0
KEY_MARGIN = 2.0
KEY_SECONDS = 0.25      # per digit sent (SendDTMF 150 ms tone + 100 ms gap)
HANGUP_MARGIN = 15.0    # the simulated callee stays on this long after the bot's last prompt
MAX_STEPS = 40
SPEECH_AFTER_SILENCE_MS = 700  # a spoken answer starts this long after the bot goes quiet
ENDPOINT_SECONDS = 0.7         # the VAD's end-of-turn silence before the bot answers


@dataclass
class Turn:
    start: float
    end: float
    speaker: str          # agent | callee
    text: str
    prompt_id: str = ""


@dataclass
class Preview:
    script_id: str
    locale: str
    turns: list[Turn] = field(default_factory=list)
    keys: list[dict[str, Any]] = field(default_factory=list)   # [{digits, at}] seconds after answer
    outcome: str = ""         # the engine's End reason, or "transfer:<queue>"
    records: list[str] = field(default_factory=list)  # outcomes the bot would record (promise, ...)
    unused_answers: list[str] = field(default_factory=list)
    ends_at: float = 0.0
    said: list[str] = field(default_factory=list)  # spoken answers, in order (--say)
    notice: str | None = None  # the recording notice the dialplan plays first (not a bot turn: the bot starts after it)
    notice_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def notice_for(camp: Any, rules_file: Any = None) -> str | None:
    """The recording notice a campaign's calls start with (its profile's `qa.recordings.notice` in its locale),
    or None; read from `rules_file` (default: the campaign validator's rules file)."""
    from dialer.campaign.config import _default_rules_file
    from dialer.gate.rules import load_rules

    path = rules_file if rules_file is not None else _default_rules_file()
    if not Path(path).exists():
        return None
    return load_rules(path).profile_for(camp.profile, camp.name).recording_notice.text_for(camp.locale)


def preview_script(script: Any, debtor: Any, answers: list[str], today: date,
                   duration_of: Callable[[str, str], float], *, amd: bool = True, spoken: bool = False,
                   notice: str | None = None) -> Preview:
    """Run the pure engine on `answers` (DTMF strings, one per question; with `spoken`, phrases the callee
    says, given to the engine as recognised speech) and time every prompt with `duration_of(text, locale)`
    (seconds of the rendered prompt; a spoken answer is timed the same way). `notice`: the recording notice
    the dialplan plays before the bot speaks (notice_for), timed like a prompt."""
    from agi.script.engine import Engine
    from agi.script.model import Dtmf, End, Listen, NoInput, Record, Say, Speech, Transfer

    engine = Engine(script, debtor, today=today)
    out = Preview(script_id=script.id, locale=script.locale)
    t = AMD_SECONDS if amd else NO_AMD_SECONDS
    if notice:
        out.notice, out.notice_seconds = notice, round(duration_of(notice, script.locale), 2)
        t += out.notice_seconds
    pending = list(answers)
    actions = engine.start()
    for _ in range(MAX_STEPS):
        listen = None
        for a in actions:
            if isinstance(a, Say):
                d = duration_of(a.text, script.locale)
                out.turns.append(Turn(round(t, 2), round(t + d, 2), "agent", a.text, a.prompt_id))
                t += d
            elif isinstance(a, Listen):
                listen = a
            elif isinstance(a, Record):
                out.records.append(a.outcome)
            elif isinstance(a, Transfer):
                out.outcome = f"transfer:{a.queue}"
            elif isinstance(a, End):
                out.outcome = a.reason
        if out.outcome or listen is None:
            break
        if pending and spoken:
            phrase = pending.pop(0)
            at = t + SPEECH_AFTER_SILENCE_MS / 1000
            d = duration_of(phrase, script.locale)
            out.said.append(phrase)
            out.turns.append(Turn(round(at, 2), round(at + d, 2), "callee", phrase))
            t = at + d + ENDPOINT_SECONDS
            actions = engine.handle(Speech(phrase, 1.0))
        elif pending:
            key = pending.pop(0)
            at = t + KEY_MARGIN
            out.keys.append({"digits": key, "at": round(at, 2)})
            out.turns.append(Turn(round(at, 2), round(at + KEY_SECONDS * len(key), 2), "callee", f"[DTMF {key}]"))
            t = at + KEY_SECONDS * len(key)
            actions = engine.handle(Dtmf(key))
        else:
            t += listen.timeout
            out.turns.append(Turn(round(t - listen.timeout, 2), round(t, 2), "callee", "[silence]"))
            actions = engine.handle(NoInput())
    out.unused_answers = pending
    out.ends_at = round(t, 2)
    return out


def behaviour_entry(p: Preview, *, answer_after: float = 1.0, audio: str = "hello.wav",
                    note: str | None = None) -> dict[str, Any]:
    """The carrier behaviour (docs/CONTRACTS.md) of a callee who answers, says hello and presses the
    preview's keys at its seconds (the file's `at` counts from answer, as the preview does)."""
    entry: dict[str, Any] = {"answer_after": answer_after, "then": "speak", "audio": audio}
    if p.said:  # spoken answers: each said after the bot's next silence, in order (docs/VOICE.md)
        entry["speech"] = [{"after_silence": SPEECH_AFTER_SILENCE_MS, "say": phrase} for phrase in p.said]
    if p.keys:
        entry["dtmf"] = [dict(k) for k in p.keys]
    entry["hangup_after"] = round(p.ends_at + HANGUP_MARGIN, 1)
    if note:
        entry["note"] = note
    return entry
