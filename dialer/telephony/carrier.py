"""The carrier simulator's behaviour file (docs/CONTRACTS.md) and the dialplan it becomes.

Each dialled E.164 number maps to what the simulated debtor does: answer and speak a WAV,
stay silent, be busy, not answer, be unallocated, hang up after N s, play an answering-machine
greeting, send DTMF at given seconds after answer. Every answered call is recorded on the
carrier side (what the callee hears) under the run directory.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers

from common.yamlfile import Located, load_file, load_text

KNOWN_KEYS = {"answer_after", "then", "audio", "dtmf", "hangup_after", "busy", "no_answer",
              "unallocated", "congestion", "note", "speech"}
SPEECH_KEYS = {"at", "after_silence", "audio", "say", "voice", "cough", "noise", "door", "label"}
SPEECH_SOUNDS = ("audio", "say", "cough", "noise", "door")
DEFAULT_VOICES = {"en": "en-us", "zh": "cmn-latn-pinyin"}  # espeak-ng; never plain `cmn` (English phonemes)
THEN = ("speak", "silent", "machine")
DTMF_DIGIT_MS, DTMF_GAP_MS = 150, 100
# the carrier's own call record (its CDR, asterisk-conf/carrier/cdr.conf) names the dialer's call id
CDR_TAG = "Set(CDR(userfield)=${PJSIP_HEADER(read,X-Dialer-Call)})"


@dataclass(frozen=True)
class DtmfAt:
    digits: str
    at: float  # seconds after answer


@dataclass(frozen=True)
class SpeechAt:
    """One thing the simulated debtor says or does into the call, at `at` seconds after answer, or
    `after_silence` ms after the bot goes silent (it spoke, then was quiet that long).

    `sound` names the audio: `audio:<wav>`, `say:<voice>:<text>` (espeak-ng voice), `cough`, `door`, or
    `noise:<seconds>` (a burst of hiss)."""

    sound: str
    at: float | None = None
    after_silence: int | None = None
    label: str = ""


@dataclass(frozen=True)
class Behaviour:
    number: str
    kind: str  # answer | busy | no_answer | unallocated | congestion
    answer_after: float = 0.0
    then: str = "silent"
    audio: str | None = None
    dtmf: tuple[DtmfAt, ...] = ()
    hangup_after: float | None = None
    speech: tuple[SpeechAt, ...] = ()

    @property
    def answers(self) -> bool:
        return self.kind == "answer"


@dataclass
class BehaviourFile:
    path: str
    behaviours: dict[str, Behaviour] = field(default_factory=dict)


def _number(loc: Located, key: Any) -> str:
    s = str(key)
    try:
        parsed = phonenumbers.parse(s, None)
    except phonenumbers.NumberParseException as exc:
        raise loc.error((key,), f"not an E.164 number: {s!r} ({exc})") from None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if e164 != s:
        raise loc.error((key,), f"write the number in E.164 form: {e164!r}")
    return s


def _seconds(loc: Located, path: tuple, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise loc.error(path, f"expected a number of seconds ≥ 0, got {value!r}")
    return float(value)


def parse_behaviours(loc: Located) -> BehaviourFile:
    data = loc.data or {}
    if not isinstance(data, dict):
        raise loc.error((), "expected a mapping of E.164 numbers to behaviours")
    out = BehaviourFile(path=loc.file)
    for key, spec in data.items():
        number = _number(loc, key)
        if not isinstance(spec, dict):
            raise loc.error((key,), "expected a mapping, e.g. {answer_after: 2, then: speak, audio: hello.wav}")
        unknown = set(spec) - KNOWN_KEYS
        if unknown:
            bad = sorted(unknown)[0]
            raise loc.error((key, bad), f"unknown key (known: {', '.join(sorted(KNOWN_KEYS))})")
        flags = [k for k in ("busy", "no_answer", "unallocated", "congestion") if spec.get(k)]
        if len(flags) > 1:
            raise loc.error((key, flags[1]), f"conflicts with {flags[0]}")
        if flags:
            out.behaviours[number] = Behaviour(number=number, kind=flags[0])
            continue
        then = spec.get("then", "silent")
        if then not in THEN:
            raise loc.error((key, "then"), f"expected one of {', '.join(THEN)}, got {then!r}")
        audio = spec.get("audio")
        if then in ("speak", "machine") and not audio:
            raise loc.error((key, "audio"), f"'then: {then}' needs an audio WAV")
        dtmf = []
        for i, item in enumerate(spec.get("dtmf") or []):
            if not isinstance(item, dict) or set(item) - {"digits", "at"} or "digits" not in item or "at" not in item:
                raise loc.error((key, "dtmf", i), "expected {digits: \"1\", at: <seconds after answer>}")
            digits = str(item["digits"])
            if not digits or any(c not in "0123456789*#ABCD" for c in digits):
                raise loc.error((key, "dtmf", i, "digits"), f"not DTMF digits: {digits!r}")
            dtmf.append(DtmfAt(digits, _seconds(loc, (key, "dtmf", i, "at"), item["at"])))
        speech = _speech(loc, key, spec.get("speech"))
        hangup_after = spec.get("hangup_after")
        out.behaviours[number] = Behaviour(
            number=number,
            kind="answer",
            answer_after=_seconds(loc, (key, "answer_after"), spec.get("answer_after", 0)),
            then=then,
            audio=str(audio) if audio else None,
            dtmf=tuple(sorted(dtmf, key=lambda d: d.at)),
            hangup_after=_seconds(loc, (key, "hangup_after"), hangup_after) if hangup_after is not None else None,
            speech=speech,
        )
    return out


def _speech(loc: Located, key: Any, items: Any) -> tuple[SpeechAt, ...]:
    """`speech:` — a list of {at: s | after_silence: ms, and one of audio / say (+ voice) / cough / door / noise}."""
    if items is None:
        return ()
    if not isinstance(items, list):
        raise loc.error((key, "speech"), "expected a list, e.g. [{at: 6.5, say: \"Yes, speaking\", voice: en-us}]")
    out = []
    for i, item in enumerate(items):
        path = (key, "speech", i)
        if not isinstance(item, dict):
            raise loc.error(path, "expected {at: <s> or after_silence: <ms>, and audio / say / cough / door / noise}")
        unknown = set(item) - SPEECH_KEYS
        if unknown:
            raise loc.error(path + (sorted(unknown)[0],), f"unknown key (known: {', '.join(sorted(SPEECH_KEYS))})")
        when = [k for k in ("at", "after_silence") if k in item]
        if len(when) != 1:
            raise loc.error(path, "give exactly one of at (seconds after answer) or after_silence (ms after the bot stops)")
        sounds = [k for k in SPEECH_SOUNDS if k in item]
        if len(sounds) != 1:
            raise loc.error(path, "give exactly one of audio, say, cough, door, noise")
        kind = sounds[0]
        if kind == "audio":
            sound = f"audio:{item['audio']}"
        elif kind == "say":
            text = str(item["say"]).strip()
            voice = str(item.get("voice") or ("cmn-latn-pinyin" if any("\u4e00" <= c <= "\u9fff" for c in text) else "en-us"))
            if voice in ("cmn", "zh"):
                raise loc.error(path + ("voice",), "espeak-ng `cmn` reads Chinese through English phonemes: use cmn-latn-pinyin")
            if not text:
                raise loc.error(path + ("say",), "empty text")
            sound = f"say:{voice}:{text}"
        elif kind == "noise":
            sound = f"noise:{_seconds(loc, path + ('noise',), item['noise'])}"
        else:
            if item[kind] is not True:
                raise loc.error(path + (kind,), "expected true")
            sound = kind
        if "voice" in item and kind != "say":
            raise loc.error(path + ("voice",), "a voice goes with say:")
        at = _seconds(loc, path + ("at",), item["at"]) if "at" in item else None
        after = None
        if "after_silence" in item:
            v = item["after_silence"]
            if isinstance(v, bool) or not isinstance(v, int) or not 50 <= v <= 10000:
                raise loc.error(path + ("after_silence",), "expected milliseconds, 50..10000")
            after = v
        out.append(SpeechAt(sound, at, after, str(item.get("label") or f"s{i}")))
    return tuple(out)


def load_behaviours(path: str | Path) -> BehaviourFile:
    return parse_behaviours(load_file(path))


def behaviours_from_dict(data: dict[str, Any], name: str = "<behaviours>") -> BehaviourFile:
    import yaml

    return parse_behaviours(load_text(yaml.safe_dump(data, allow_unicode=True), name))


# -- audio ----------------------------------------------------------------------------------

def prepare_audio(src: Path, sounds_dir: Path) -> Path:
    """Convert any WAV to 8 kHz mono 16-bit in the run's sounds dir; returns the path without extension."""
    sounds_dir.mkdir(parents=True, exist_ok=True)
    dst = sounds_dir / (src.stem + ".wav")
    if not dst.exists() or dst.stat().st_mtime < src.stat().st_mtime:
        subprocess.run(["sox", str(src), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(dst)],
                       check=True, capture_output=True)
    return dst.with_suffix("")


def render_sound(sound: str, sounds_dir: Path, base: Path) -> Path:
    """A `SpeechAt.sound` → an 8 kHz mono 16-bit WAV in the run's sounds dir (made once); returns the path
    without extension. Text is spoken by espeak-ng; a cough is an amplitude-modulated burst of brown noise
    (~0.3 s, voiced-like, which webrtcvad calls speech), a door a 0.12 s thud, noise a burst of hiss."""
    import hashlib

    sounds_dir.mkdir(parents=True, exist_ok=True)
    kind, _, rest = sound.partition(":")
    if kind == "audio":
        src = Path(rest)
        found = next((c for c in ([src] if src.is_absolute() else [base / src, sounds_dir / src]) if c.exists()), None)
        if found is None:
            raise FileNotFoundError(f"speech audio {rest!r} not found (looked in {base})")
        return prepare_audio(found, sounds_dir)
    name = "sp-" + hashlib.sha256(sound.encode()).hexdigest()[:16]
    dst = sounds_dir / f"{name}.wav"
    if not dst.exists():
        tmp = sounds_dir / f"{name}.tmp.wav"
        fmt = ["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"]
        if kind == "say":
            voice, _, text = rest.partition(":")
            raw = sounds_dir / f"{name}.raw.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True, capture_output=True)
            subprocess.run(["sox", str(raw), *fmt, str(tmp)], check=True, capture_output=True)
            raw.unlink(missing_ok=True)
        elif kind == "cough":
            subprocess.run(["sox", "-R", "-n", *fmt, str(tmp), "synth", "0.32", "brownnoise", "synth", "0.32", "sine",
                            "amod", "120", "fade", "q", "0.005", "0.32", "0.25", "highpass", "200", "gain", "-n", "-3"],
                           check=True, capture_output=True)
        elif kind == "door":
            subprocess.run(["sox", "-R", "-n", *fmt, str(tmp), "synth", "0.12", "brownnoise", "fade", "q", "0.002", "0.12",
                            "0.1", "gain", "-n", "-1"], check=True, capture_output=True)
        elif kind == "noise":
            subprocess.run(["sox", "-R", "-n", *fmt, str(tmp), "synth", rest, "whitenoise", "gain", "-n", "-12"],
                           check=True, capture_output=True)
        else:
            raise ValueError(f"unknown sound {sound!r}")
        tmp.rename(dst)
    return dst.with_suffix("")


# -- dialplan -------------------------------------------------------------------------------

def _fmt(t: float) -> str:
    return f"{t:.2f}".rstrip("0").rstrip(".") or "0"


def render_dialplan(bf: BehaviourFile, audio_for: dict[str, tuple[Path, float]], rec_dir: Path,
                    default_hangup_after: float = 60.0) -> str:
    """The carrier's [from-pbx] context: one extension per number, unknown numbers unallocated.

    `audio_for` maps a behaviour's audio name to (path without extension, duration in s).
    Recordings: <rec_dir>/<number>/<call id or uniqueid>-heard.wav is what the callee hears."""
    lines = [
        "[general]", "static=yes", "writeprotect=yes", "",
        "[from-pbx]",
    ]
    for number, b in sorted(bf.behaviours.items()):
        ext = f"exten => {number},1,NoOp(carrier {b.kind})"
        lines.append(ext)
        add = lines.append
        add(f" same => n,{CDR_TAG}")
        if b.kind == "busy":
            add(" same => n,Busy(10)")
        elif b.kind == "no_answer":
            add(" same => n,Ringing()")
            add(" same => n,Wait(600)")
        elif b.kind == "unallocated":
            add(" same => n,Hangup(1)")
        elif b.kind == "congestion":
            add(" same => n,Congestion(10)")
        else:
            add(" same => n,Set(CALLID=${PJSIP_HEADER(read,X-Dialer-Call)})")
            add(" same => n,Set(CALLID=${IF($[\"${CALLID}\" = \"\"]?${UNIQUEID}:${CALLID})})")
            if b.answer_after > 0:
                add(" same => n,Ringing()")
                add(f" same => n,Wait({_fmt(b.answer_after)})")
            add(" same => n,Answer()")
            heard = rec_dir / number / "${CALLID}-heard.wav"
            said = rec_dir / number / "${CALLID}-said.wav"
            mix = rec_dir / number / "${CALLID}-mix.wav"
            add(f" same => n,MixMonitor({mix},r({heard})t({said}))")
            add(" same => n,Set(T0=${STRFTIME(,,%s.%3q)})")
            add(" same => n,UserEvent(CarrierAnswered,Number: ${EXTEN},CallID: ${CALLID},T0: ${T0})")
            if b.speech:
                _speech_steps(b, audio_for, add, default_hangup_after)
                lines.append("")
                continue
            steps: list[tuple[float, str, float]] = []
            if b.then in ("speak", "machine") and b.audio:
                path, dur = audio_for[b.audio]
                steps.append((0.0, f"Playback({path})", dur))
            for d in b.dtmf:
                dur = len(d.digits) * (DTMF_DIGIT_MS + DTMF_GAP_MS) / 1000.0
                steps.append((d.at, f"SendDTMF({d.digits},{DTMF_GAP_MS},{DTMF_DIGIT_MS})", dur))
            cursor = 0.0
            for at, app, dur in sorted(steps, key=lambda s: s[0]):
                if at > cursor + 0.005:
                    add(f" same => n,Wait({_fmt(at - cursor)})")
                    cursor = at
                if app.startswith("SendDTMF"):
                    add(f" same => n,UserEvent(CarrierDTMF,Number: ${{EXTEN}},CallID: ${{CALLID}},Digits: {app[9:app.index(',')]})")
                add(f" same => n,{app}")
                cursor += dur
            total = b.hangup_after if b.hangup_after is not None else max(default_hangup_after, cursor + 1)
            if total > cursor:
                add(f" same => n,Wait({_fmt(total - cursor)})")
            add(" same => n,Hangup(16)")
        lines.append("")
    lines += [
        "; any other number does not exist",
        "exten => _[+0-9].,1,NoOp(carrier unallocated)",
        f" same => n,{CDR_TAG}",
        " same => n,Hangup(1)",
        "",
    ]
    return "\n".join(lines)


def _speech_steps(b: Behaviour, audio_for: dict[str, tuple[Path, float]], add: Any,
                  default_hangup_after: float) -> None:
    """A talking debtor: each step waits until its time on the call's own clock (T0, set at answer, in ms
    precision) or for the bot's silence, then plays. `CarrierSpeech` UserEvents say when each sound began
    (epoch seconds), for tests and bench/voice.py."""
    steps: list[tuple[float, int, str, Any]] = []
    last_at = 0.0
    for i, sp in enumerate(b.speech):
        key = sp.at if sp.at is not None else last_at
        last_at = key
        steps.append((key, i, "speech", sp))
    for j, d in enumerate(b.dtmf):
        steps.append((d.at, 10_000 + j, "dtmf", d))
    if b.then in ("speak", "machine") and b.audio:
        steps.append((0.0, -1, "audio", b.audio))
    end_known = 0.0
    for at, _, kind, item in sorted(steps, key=lambda s: (s[0], s[1])):
        if kind == "speech" and item.after_silence is not None:
            add(" same => n,WaitForNoise(60,1,60)")
            add(f" same => n,WaitForSilence({item.after_silence},1,60)")
        else:
            add(f" same => n,Set(W=$[{_fmt(at)} - (${{STRFTIME(,,%s.%3q)}} - ${{T0}})])")
            add(" same => n,ExecIf($[${W} > 0]?Wait(${W}))")
        if kind == "speech":
            path, dur = audio_for[item.sound]
            add(f" same => n,UserEvent(CarrierSpeech,Number: ${{EXTEN}},CallID: ${{CALLID}},Label: {item.label},"
                f"Sound: {item.sound.split(':')[0]},At: ${{STRFTIME(,,%s.%3q)}},Seconds: {dur:.3f})")
            add(f" same => n,Playback({path})")
        elif kind == "dtmf":
            add(f" same => n,UserEvent(CarrierDTMF,Number: ${{EXTEN}},CallID: ${{CALLID}},Digits: {item.digits})")
            add(f" same => n,SendDTMF({item.digits},{DTMF_GAP_MS},{DTMF_DIGIT_MS})")
        else:
            path, dur = audio_for[item]
            add(f" same => n,Playback({path})")
        end_known = max(end_known, at)
    total = b.hangup_after if b.hangup_after is not None else default_hangup_after
    add(f" same => n,Set(W=$[{_fmt(total)} - (${{STRFTIME(,,%s.%3q)}} - ${{T0}})])")
    add(" same => n,ExecIf($[${W} > 0]?Wait(${W}))")
    add(" same => n,Hangup(16)")
