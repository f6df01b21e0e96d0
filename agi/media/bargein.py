"""Barge-in policy, pure: while an interruptible prompt plays, confirmed speech stops it at once; then the
sound either goes on (a real interruption: the caller has the turn) or stops short (a cough, "嗯", a door:
the prompt resumes from where it stopped). This is LiveKit's false-interruption recovery, decided here on
the VAD's timing alone; a recognizer can refine it later (see docs/VOICE.md).

`VoiceTurns` puts the `VadAnalyzer` and the policy together: 20 ms frames in, commands (`StopPrompt`,
`ResumePrompt`, `Interruption`) and accepted `Utterance`s out. Time comes from the frames; nothing here
reads a clock, so tests feed recorded frames and assert the sequence.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from agi.media.frames import FRAME_MS, AudioIn, EarlyTurn, Frame, Interruption, SpeechStarted, SystemFrame, Utterance
from agi.media.vad import Classifier, VadAnalyzer
from agi.script.model import VoiceParams

FRAME_S = FRAME_MS / 1000.0


@dataclass(frozen=True)
class StopPrompt(SystemFrame):
    """Stop the prompt now (AMI ControlPlayback stop); `onset` is the caller's, `at` the decision."""

    at: float
    onset: float


@dataclass(frozen=True)
class ResumePrompt(SystemFrame):
    """The sound that stopped the prompt was short: play the rest of it."""

    at: float
    onset: float
    speech_ms: int


@dataclass(frozen=True)
class DroppedUtterance(Frame):
    """A turn that is not an answer: a false interruption, or speech over a prompt that could not be cut."""

    utterance: Utterance
    reason: str  # "false_interruption" | "over_prompt"


@dataclass
class PromptState:
    interruptible: bool
    started: float
    stopped_at: float | None = None
    onset: float | None = None
    decided: str | None = None  # "resume" | "interrupt"


@dataclass
class VoiceTurns:
    """One call's voice: analyzer + barge-in policy + which utterances are answers."""

    params: VoiceParams = field(default_factory=VoiceParams)
    classify: Classifier | None = None

    def __post_init__(self) -> None:
        self.vad = VadAnalyzer(self.params, self.classify)
        self.prompt: PromptState | None = None
        self.accept_from: float | None = None  # utterances whose speech starts here or later are answers
        self.false_onsets: list[float] = []
        self.now = 0.0

    # -- what the flow tells us ---------------------------------------------------------------
    def set_params(self, params: VoiceParams) -> None:
        self.params = params
        self.vad.set_params(params)

    def prompt_started(self, at: float, interruptible: bool) -> None:
        """A prompt (or the rest of one) starts playing; speech over it is not an answer unless it interrupts."""
        self.prompt = PromptState(interruptible and self.params.barge_in, at)
        self.accept_from = None

    def prompt_ended(self, at: float) -> None:
        if self.prompt is not None and self.prompt.stopped_at is None:
            self.prompt = None

    def listening(self, at: float) -> None:
        """The bot waits for an answer: speech from now on is one."""
        self.prompt = None
        if self.accept_from is None:
            self.accept_from = at

    # -- frames -------------------------------------------------------------------------------
    def feed(self, frame: AudioIn) -> list[Frame]:
        self.now = frame.at + FRAME_S
        out: list[Frame] = []
        for ev in self.vad.feed(frame):
            if isinstance(ev, SpeechStarted):
                p = self.prompt
                if p is not None and p.interruptible and p.stopped_at is None:
                    p.stopped_at, p.onset = self.now, ev.at
                    out.append(StopPrompt(at=self.now, onset=ev.at))
                out.append(ev)
            elif isinstance(ev, Utterance):
                out.append(self._utterance(ev))
            elif isinstance(ev, EarlyTurn):
                if isinstance(self._utterance(ev.utterance), Utterance):  # only a turn that would be taken
                    out.append(ev)
            else:
                out.append(ev)
        out += self._decide()
        return out

    def _decide(self) -> list[Frame]:
        """After a stop: interrupt once the speech has lasted `false_interruption_ms`; resume if it ended sooner."""
        p = self.prompt
        if p is None or p.stopped_at is None or p.decided is not None or p.onset is None:
            return []
        last = self.vad.last_voiced or p.onset
        speech_ms = (last - p.onset) * 1000
        if speech_ms >= self.params.false_interruption_ms:
            p.decided = "interrupt"
            self.accept_from = p.onset
            return [Interruption(at=p.onset, source="voice")]
        if (self.now - last) * 1000 >= self.params.resume_silence_ms - 1e-6:
            p.decided = "resume"
            self.false_onsets.append(p.onset)
            out: list[Frame] = [ResumePrompt(at=self.now, onset=p.onset, speech_ms=int(round(speech_ms)))]
            return out + [self._utterance(e) if isinstance(e, Utterance) else e for e in self.vad.end_turn()]
        return []

    def _utterance(self, u: Utterance) -> Frame:
        if any(abs(u.speech_start - t) < 1e-6 for t in self.false_onsets):
            return DroppedUtterance(u, "false_interruption")
        if self.accept_from is None or u.speech_start < self.accept_from - 1e-6:
            return DroppedUtterance(u, "over_prompt")
        return u

    def key_pressed(self, at: float, digit: str) -> Interruption:
        """A key during a prompt: the same interruption as voice (pipecat's DTMF aggregator idea)."""
        if self.prompt is not None:
            self.prompt.decided = "interrupt"
        self.accept_from = at
        return Interruption(at=at, source="dtmf", digit=digit)

    def flush(self) -> list[Frame]:
        return [self._utterance(e) if isinstance(e, Utterance) else e for e in self.vad.flush(self.now)]
