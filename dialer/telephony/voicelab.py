"""A bench for the voice path on real Asterisk: the harness (PBX + speaking carrier), one AMI session with
`AmiMedia`, and a FastAGI server that runs a script with live audio on every answered call, with the
results kept in memory; plus the carrier-side measurements (when the debtor began to speak, when the bot
went silent, where a prompt was heard). Used by tests/test_e2e_voice_*.py and bench/voice.py."""
from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from agi.flows.scripted import CallResult, run_script
from agi.ports import CallContext, CallMedia, InMemoryPorts
from agi.script.model import Debtor, Script
from agi.server import AGIRequest, FastAGIServer
from common.wav import read_wav
from dialer.telephony.ami import AMIController, AmiMedia
from dialer.telephony.carrier import BehaviourFile
from dialer.telephony.harness import Harness

WIN = 0.01  # 10 ms analysis windows


@dataclass
class LabCall:
    call_id: str
    number: str
    result: CallResult | None = None
    facts: list[dict[str, Any]] = field(default_factory=list)
    t0: float | None = None  # epoch at AGI start (the flow's clock zero)
    carrier_t0: float | None = None  # epoch at carrier answer
    speech_at: dict[str, float] = field(default_factory=dict)  # carrier label -> epoch the sound began
    done: asyncio.Event = field(default_factory=asyncio.Event)
    hook: Any = None  # the call's recognizer hook (CallSpeech), for its cues and early-decode counts


class VoiceLab:
    """`async with VoiceLab(run_dir, behaviours, script) as lab: call = await lab.call(number)`."""

    def __init__(self, run_dir: Path, behaviours: BehaviourFile, script: Script, tts: Any, *,
                 today: date = date(2026, 11, 23), institution: str = "Acme Finance",
                 recognize: Any = None, scripts: dict[str, Script] | None = None,
                 institutions: dict[str, str] | None = None):
        self.harness = Harness(run_dir, agents=0, behaviours=behaviours)
        # number -> its script (a load test mixes English and Mandarin debtors); others run `script`. With
        # `scripts`, `recognize` is called as recognize(today, locale).
        self.scripts = dict(scripts or {})
        self.institutions = dict(institutions or {})  # locale -> institution (default: `institution`)
        self.script, self.tts, self.today, self.institution = script, tts, today, institution
        self.recognize = recognize  # None: no recognizer; else a factory (today) -> the call's hook (CallSpeech)
        self.ports = InMemoryPorts()
        self.calls: dict[str, LabCall] = {}
        self.ami: AMIController | None = None
        self.carrier_ami: AMIController | None = None
        self.media: AmiMedia | None = None
        self.agi: FastAGIServer | None = None

    async def __aenter__(self) -> "VoiceLab":
        await asyncio.to_thread(self.harness.up)
        try:
            pbx = self.harness.connection
            self.agi = FastAGIServer({"call": self._flow}, token=pbx.agi_token, port=pbx.agi_port)
            await self.agi.start()
            self.ami = AMIController(pbx.ami_host, pbx.ami_port, pbx.ami_user, pbx.ami_secret)
            await self.ami.connect()
            self.media = AmiMedia(self.ami)
            st = self.harness.state
            assert st is not None
            self.carrier_ami = AMIController("127.0.0.1", st.carrier.ami_port, st.carrier.ami_user,
                                             st.carrier.ami_secret)
            self.carrier_ami.listeners.append(self._on_carrier)
            await self.carrier_ami.connect()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        for ami in (self.ami, self.carrier_ami):
            if ami is not None:
                await ami.close()
        if self.agi is not None:
            await self.agi.stop()
        await asyncio.to_thread(self.harness.down)

    def _on_carrier(self, event: dict[str, Any]) -> None:
        if event.get("Event") != "UserEvent":
            return
        call = self.calls.get(event.get("CallID", ""))
        if call is None:
            return
        if event.get("UserEvent") == "CarrierAnswered":
            call.carrier_t0 = float(event.get("T0") or 0) or None
        elif event.get("UserEvent") == "CarrierSpeech":
            call.speech_at[event.get("Label", "")] = float(event.get("At") or 0)

    async def _flow(self, req: AGIRequest, ch: Any) -> None:
        call = self.calls.get(req.call_id)
        if call is None:
            return
        assert self.media is not None
        script = self.scripts.get(call.number, self.script)
        institution = self.institutions.get(script.locale, self.institution)
        ctx = CallContext(call_id=call.call_id, debtor_id="D1", name="Paula Promise", birth_year=1984,
                          institution=institution, amount_owed="420.00", currency="USD", days_past_due=12,
                          locale=script.locale, phone=call.number)
        self.ports.contexts[call.call_id] = ctx
        debtor = Debtor(debtor_id="D1", name="Paula Promise", phone=call.number, birth_year="1984",
                        institution=institution, collector_name="Alex", callback_number="+18005550199")
        call.t0 = time.time()
        extra = {}
        if self.recognize is not None:
            extra["recognize"] = (self.recognize(self.today, script.locale) if self.scripts
                                  else self.recognize(self.today))
        call.hook = extra.get("recognize")
        try:
            call.result = await run_script(ch, script, debtor, self.ports, today=self.today, call_id=call.call_id,
                                           tts=self.tts, queue_app=False,
                                           media=CallMedia(self.media, self.media.playback), voice_facts=call.facts,
                                           **extra)
        finally:
            call.done.set()

    async def call(self, number: str, timeout: float = 60.0) -> LabCall:
        """Place one call and wait for its flow to end and the carrier's channel to hang up."""
        assert self.ami is not None
        call_id = "v" + secrets.token_hex(6)
        call = self.calls[call_id] = LabCall(call_id, number)
        tracked = await self.ami.originate(call_id, number, ring_timeout=10)
        await asyncio.wait_for(tracked.done, timeout)
        await asyncio.wait_for(call.done.wait(), 10)
        await self._recorded(call)
        return call

    async def _recorded(self, call: LabCall, timeout: float = 10.0) -> None:
        """Wait until the carrier has closed the call's recordings (MixMonitor writes the header last)."""
        import wave

        deadline = time.monotonic() + timeout
        paths = [self.heard(call), self.said(call), self.heard(call).with_name(f"{call.call_id}-mix.wav")]
        while True:
            try:
                for p in paths:
                    with wave.open(str(p), "rb"):
                        pass
                return
            except (FileNotFoundError, EOFError, wave.Error):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

    async def channels(self) -> int:
        """Channels the PBX still has (0 when every call and tap is gone)."""
        assert self.harness.pbx is not None
        out = await asyncio.to_thread(self.harness.pbx.rx, "core show channels count")
        return int(out.strip().split()[0])

    def heard(self, call: LabCall) -> Path:
        return self.harness.recording_for(call.number, call.call_id)

    def said(self, call: LabCall) -> Path:
        return self.harness.said_for(call.number, call.call_id)


# -- carrier-side measurements --------------------------------------------------------------------

def envelope(path: Path) -> np.ndarray:
    """RMS level in dBFS per 10 ms of a WAV."""
    x, rate = read_wav(path)
    x = np.asarray(x, dtype=np.float64)
    if x.dtype.kind != "f" or np.max(np.abs(x)) > 2:
        x = x / 32768.0
    n = int(rate * WIN)
    frames = len(x) // n
    if not frames:
        return np.zeros(0)
    seg = x[: frames * n].reshape(frames, n)
    rms = np.sqrt(np.mean(seg * seg, axis=1)) + 1e-9
    return 20 * np.log10(rms)


def onsets(env: np.ndarray, threshold_db: float = -35.0, min_gap: float = 0.3) -> list[float]:
    """Times (s) where sound starts after at least `min_gap` s of quiet."""
    loud = env > threshold_db
    out, quiet = [], int(min_gap / WIN)
    last_loud = -10 ** 9
    for i, v in enumerate(loud):
        if v:
            if i - last_loud > quiet:
                out.append(i * WIN)
            last_loud = i
    return out


def silent_after(env: np.ndarray, t: float, threshold_db: float = -35.0, hold: float = 0.25) -> float | None:
    """The first time >= t - 0.2 s from which the signal stays quiet for `hold` seconds (None if never)."""
    loud = env > threshold_db
    need = int(hold / WIN)
    start = max(0, int((t - 0.2) / WIN))
    run = 0
    for i in range(start, len(loud)):
        run = 0 if loud[i] else run + 1
        if run >= need:
            return (i - need + 1) * WIN
    return None


def loud_at(env: np.ndarray, t: float, threshold_db: float = -35.0, span: float = 0.06) -> bool:
    i, j = int((t - span) / WIN), int(t / WIN)
    return bool(np.any(env[max(0, i):max(0, j) + 1] > threshold_db))


def locate(haystack: Path, needle: np.ndarray, rate: int = 8000) -> tuple[float, float]:
    """(offset s, normalised correlation) of `needle` (float PCM) in the WAV `haystack`."""
    x, _ = read_wav(haystack)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(needle, dtype=np.float64)
    if len(x) < len(y) or not len(y):
        return 0.0, 0.0
    n = 1 << int(np.ceil(np.log2(len(x) + len(y))))
    corr = np.fft.irfft(np.fft.rfft(x, n) * np.conj(np.fft.rfft(y, n)), n)[: len(x) - len(y) + 1]
    c2 = np.concatenate([[0.0], np.cumsum(x * x)])
    energy = np.sqrt(np.maximum(c2[len(y):] - c2[: len(x) - len(y) + 1], 1e-12) * float(np.sum(y * y)))
    score = corr / energy
    i = int(np.argmax(score))
    return i / rate, float(score[i])


def bot_track(mix: Path, said: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """(the bot's audio, the callee's audio, lag in samples) on the carrier mix's timeline.

    MixMonitor's one-direction files (`-heard`, `-said`) advance only when frames arrive, so the prompt a
    barge-in stopped and later resumed shows no gap in `-heard`; the mix is written on the clock of the
    callee's continuous stream (Wait transmits silence). The callee's part of the mix is `-said` shifted by a
    small lag found by correlation; what is left is what the bot sent, on a wall-clock timeline."""
    m, _ = read_wav(mix)
    s, _ = read_wav(said)
    m = np.asarray(m, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    best, lag = -1.0, 0
    loud = np.flatnonzero(np.abs(s) > 300)
    if len(loud):
        a = int(loud[0])
        piece = s[a:a + 4000]
        for k in range(0, 1600, 8):  # up to 200 ms
            w = m[a + k:a + k + len(piece)]
            if len(w) < len(piece):
                break
            c = float(np.dot(w, piece) / (np.sqrt(np.dot(w, w) * np.dot(piece, piece)) + 1e-9))
            if c > best:
                best, lag = c, k
        for k in range(max(0, lag - 8), lag + 9):  # sample-exact
            w = m[a + k:a + k + len(piece)]
            if len(w) == len(piece):
                c = float(np.dot(w, piece) / (np.sqrt(np.dot(w, w) * np.dot(piece, piece)) + 1e-9))
                if c > best:
                    best, lag = c, k
    shifted = np.zeros_like(m)
    n = min(len(m) - lag, len(s))
    if n > 0:
        shifted[lag:lag + n] = s[:n]
    return m - shifted, shifted, lag


def env_of(x: np.ndarray, rate: int = 8000) -> np.ndarray:
    n = int(rate * WIN)
    frames = len(x) // n
    seg = np.asarray(x[: frames * n], dtype=np.float64).reshape(frames, n) / 32768.0
    return 20 * np.log10(np.sqrt(np.mean(seg * seg, axis=1)) + 1e-9)


@dataclass(frozen=True)
class BargeInMeasure:
    onset: float  # the callee's first sound, s into the carrier's mix
    silent: float | None  # when the bot went (and stayed 250 ms) quiet after it
    bot_was_speaking: bool  # the bot was loud within 60 ms before the onset

    @property
    def latency_ms(self) -> float | None:
        return None if self.silent is None else round((self.silent - self.onset) * 1000, 1)


def measure_barge_in(mix: Path, said: Path, after: float = 0.0) -> BargeInMeasure | None:
    """Callee speech onset → bot silent at the callee, from the carrier's own recording."""
    bot, callee, _ = bot_track(mix, said)
    eb, ec = env_of(bot), env_of(callee)
    starts = [t for t in onsets(ec, -35.0) if t >= after]
    if not starts:
        return None
    onset = starts[0]
    return BargeInMeasure(onset, silent_after(eb, onset, -35.0, 0.25), loud_at(eb, onset, -35.0))


@dataclass(frozen=True)
class Cut:
    """One barge-in, timed against the callee's onset in the carrier's recording of what they said."""

    onset_wall: float  # the callee's first sound (carrier answer + onset in `-said`, which is wall-clock)
    stop_wall: float  # when the bot sent ControlPlayback stop
    cut_wall: float  # when the prompt's last sample went out (prompt start + endpos)
    prompt_id: str

    @property
    def latency_ms(self) -> float:
        """Callee onset → bot silent (the prompt's last sample sent; loopback adds well under 1 ms)."""
        return round((self.cut_wall - self.onset_wall) * 1000, 1)

    @property
    def detect_ms(self) -> float:
        return round((self.stop_wall - self.onset_wall) * 1000, 1)


def cuts(lab: VoiceLab, call: LabCall) -> list[Cut]:
    """Every prompt stop of a call, each against the callee onset that caused it.

    Where the cut fell comes from Asterisk (CONTROL STREAM FILE's endpos: ms into the file) and when the
    prompt started (the AGI command's send time); the onset from the carrier's `-said` recording, which
    runs on the wall clock because the carrier always transmits (Wait sends silence). MixMonitor's `-heard`
    file cannot time it: it only advances while frames arrive, so a stopped prompt leaves no gap there."""
    if call.carrier_t0 is None:
        return []
    starts = onsets(envelope(lab.said(call)), -55.0, 0.3)  # the first sound at all: the line is clean
    out = []
    facts = call.facts
    for i, f in enumerate(facts):
        if f["kind"] != "stop":
            continue
        play = next((g for g in reversed(facts[:i]) if g["kind"] == "play"), None)
        played = next((g for g in facts[i:] if g["kind"] == "played"), None)
        if play is None or played is None or played.get("endpos") is None:
            continue
        cut = play["wall"] + (played["endpos"] - play["offset_ms"]) / 1000.0
        before = [call.carrier_t0 + t for t in starts if call.carrier_t0 + t <= f["wall"]]
        if not before:
            continue
        out.append(Cut(before[-1], f["wall"], cut, play["prompt_id"]))
    return out


def heard_whole(lab: VoiceLab, call: LabCall, prompt_wav: Path, piece: float = 0.2,
                min_score: float = 0.9) -> tuple[float, list[float]]:
    """How much of a prompt the callee heard: (fraction of its 0.2 s pieces found in `-heard`, the
    positions (s) of the pieces that were not). µ-law passes the prompt's samples through exactly, so a
    heard piece correlates at ~1.0; silence between words is skipped."""
    x, rate = read_wav(prompt_wav)
    x = np.asarray(x, dtype=np.float64)
    n = int(piece * rate)
    found, missing, total = 0, [], 0
    for a in range(0, len(x) - n + 1, n):
        seg = x[a:a + n]
        if np.sqrt(np.mean(seg * seg)) < 300:  # a pause: nothing to find
            continue
        total += 1
        _, score = locate(lab.heard(call), seg, rate)
        if score >= min_score:
            found += 1
        else:
            missing.append(round(a / rate, 2))
    return (found / total if total else 0.0), missing


@dataclass(frozen=True)
class Response:
    """One callee turn and the bot's answer to it, on the carrier's recording (seconds from carrier answer)."""

    label: str
    speech_end: float  # the callee's last sound of the turn
    bot_start: float | None  # the bot's first audio after it (None: the bot never spoke again)

    @property
    def latency_ms(self) -> float | None:
        return None if self.bot_start is None else round((self.bot_start - self.speech_end) * 1000, 1)


def responses(lab: VoiceLab, call: LabCall, threshold_db: float = -35.0, gap: float = 0.3) -> list[Response]:
    """Response latency, measured where the callee is: for each sound the carrier played (its CarrierSpeech
    event), the end of that sound in `-said` → the first bot audio in the mix after it (the mix minus the
    callee's own part, `bot_track`). Only what reached the callee counts: recognition, the engine, TTS
    and the AGI/RTP path are all inside the figure."""
    if call.carrier_t0 is None or not call.speech_at:
        return []
    bot, callee, lag = bot_track(lab.heard(call).with_name(f"{call.call_id}-mix.wav"), lab.said(call))
    eb, ec = env_of(bot), env_of(callee)
    loud_c, loud_b = ec > threshold_db, eb > threshold_db
    out = []
    for label, at in sorted(call.speech_at.items(), key=lambda kv: kv[1]):
        i = max(0, int((at - call.carrier_t0 + lag / 8000) / WIN))
        # the end of this sound: the last loud window before `gap` s of quiet
        last, quiet = None, 0
        for k in range(i, len(loud_c)):
            if loud_c[k]:
                last, quiet = k, 0
            elif last is not None:
                quiet += 1
                if quiet * WIN >= gap:
                    break
        if last is None:
            continue
        end = (last + 1) * WIN
        j = next((k for k in range(last + 1, len(loud_b)) if loud_b[k]), None)
        out.append(Response(label, round(end, 3), None if j is None else round(j * WIN, 3)))
    return out
