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
              "unallocated", "congestion", "note"}
THEN = ("speak", "silent", "machine")
DTMF_DIGIT_MS, DTMF_GAP_MS = 150, 100
# the carrier's own call record (its CDR, asterisk-conf/carrier/cdr.conf) names the dialer's call id
CDR_TAG = "Set(CDR(userfield)=${PJSIP_HEADER(read,X-Dialer-Call)})"


@dataclass(frozen=True)
class DtmfAt:
    digits: str
    at: float  # seconds after answer


@dataclass(frozen=True)
class Behaviour:
    number: str
    kind: str  # answer | busy | no_answer | unallocated | congestion
    answer_after: float = 0.0
    then: str = "silent"
    audio: str | None = None
    dtmf: tuple[DtmfAt, ...] = ()
    hangup_after: float | None = None

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
        hangup_after = spec.get("hangup_after")
        out.behaviours[number] = Behaviour(
            number=number,
            kind="answer",
            answer_after=_seconds(loc, (key, "answer_after"), spec.get("answer_after", 0)),
            then=then,
            audio=str(audio) if audio else None,
            dtmf=tuple(sorted(dtmf, key=lambda d: d.at)),
            hangup_after=_seconds(loc, (key, "hangup_after"), hangup_after) if hangup_after is not None else None,
        )
    return out


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
            mix = rec_dir / number / "${CALLID}-mix.wav"
            add(f" same => n,MixMonitor({mix},r({heard}))")
            add(" same => n,UserEvent(CarrierAnswered,Number: ${EXTEN},CallID: ${CALLID})")
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
