"""The bot's vocabulary: slots, events, actions, and scripts as data (Script, Node, Prompt, Debtor)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Iterable, Mapping

from common.vocab import DISPOSITIONS

# ------------------------------------------------------------------ vocabulary

DEBT_SLOTS = frozenset({"amount", "due_date", "days_past_due", "instalments", "instalment_amount",
                        "promise_date", "promise_amount"})
"""Slots that reveal the debt: never rendered before right-party verification."""
IDENTITY_SLOTS = frozenset({"institution", "collector_name", "debtor_name", "callback_number"})
STATIC_SLOTS = frozenset({"institution", "collector_name", "callback_number"})
"""Known at campaign load: prompts using only these are rendered once per campaign."""
SLOTS = DEBT_SLOTS | IDENTITY_SLOTS

OUTCOMES = DISPOSITIONS  # what a node's `record:` may name
VERIFY_FACTORS = ("birth_year", "id_last4", "either")
VERIFY_EDGES = ("verified", "failed")
DTMF_KEYS = frozenset("0123456789*#")

_OFFSET = re.compile(r"\+(\d{1,3})d")
_SLOT_RE = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)\}")


def slots_in(text: str) -> list[str]:
    return _SLOT_RE.findall(text)


# ------------------------------------------------------------------ events

@dataclass(frozen=True)
class Speech:
    text: str
    confidence: float = 1.0
    cues: tuple[str, ...] = ()  # "agitated" / "distressed" (agi/media/cues.py): the script's `on_cue` routes


@dataclass(frozen=True)
class Dtmf:
    digit: str  # one key, or several collected at once ("1984")


@dataclass(frozen=True)
class NoInput:
    pass


@dataclass(frozen=True)
class BargeIn:
    pass


@dataclass(frozen=True)
class CallerHangup:
    pass


Event = Speech | Dtmf | NoInput | BargeIn | CallerHangup


# ------------------------------------------------------------------ actions

@dataclass(frozen=True)
class Say:
    prompt_id: str
    text: str
    must_finish: bool = False


@dataclass(frozen=True)
class Grammar:
    """What a Listen waits for: intents by voice, keys by DTMF (key -> intent), or a number of digits."""

    intents: tuple[str, ...] = ()
    dtmf: tuple[tuple[str, str], ...] = ()
    digits: int = 0  # > 0: collect this many digits (verification)


@dataclass(frozen=True)
class VoiceParams:
    """How a node hears the caller's voice: VAD, barge-in and endpointing (script `voice:`, node `voice:`).

    Defaults suit a yes/no question on a phone line; a node asking for a date or an amount sets a longer
    `end_silence_ms`. Frames are 20 ms. See docs/VOICE.md for what each one trades."""

    barge_in: bool = True  # the caller's voice stops this node's interruptible prompts
    vad_mode: int = 3  # webrtcvad aggressiveness 0 (most speech) .. 3 (least noise)
    start_frames: int = 4  # this many voiced frames ...
    start_window: int = 6  # ... among the last this many confirm speech (4 of 6: 80-120 ms of audio)
    min_level_db: float = -40.0  # frames quieter than this (dBFS) are never speech
    max_flatness: float = 0.4  # frames spectrally flatter than this (hiss, white noise) are never speech
    end_silence_ms: int = 700  # endpointing: this much silence ends the caller's turn
    early_decode_ms: int = 250  # a provisional endpoint: decoding starts after this much silence (0: off)
    answer_silence_ms: int = 450  # end of turn on a yes/no node without its own `voice:` (0: end_silence_ms)
    false_interruption_ms: int = 600  # speech shorter than this after a prompt was stopped: a cough, 嗯, a door
    resume_silence_ms: int = 300  # silence after such a short sound before the prompt resumes
    resume_rewind_ms: int = 0  # resume this much before where the prompt stopped
    max_utterance_s: float = 15.0  # a turn longer than this is cut into utterances

    def problems(self) -> list[tuple[str, str]]:
        """(field, message) for every value out of range."""
        out = []
        if self.vad_mode not in (0, 1, 2, 3):
            out.append(("vad_mode", "expected 0, 1, 2 or 3"))
        if not 1 <= self.start_window <= 50:
            out.append(("start_window", "expected 1..50 frames"))
        if not 1 <= self.start_frames <= self.start_window:
            out.append(("start_frames", f"expected 1..start_window ({self.start_window}) frames"))
        if not -90.0 <= self.min_level_db <= 0.0:
            out.append(("min_level_db", "expected -90..0 dBFS"))
        if not 0.0 < self.max_flatness <= 1.0:
            out.append(("max_flatness", "expected 0..1"))
        if not 100 <= self.end_silence_ms <= 5000:
            out.append(("end_silence_ms", "expected 100..5000 ms"))
        if not (self.early_decode_ms == 0 or 60 <= self.early_decode_ms < self.end_silence_ms):
            out.append(("early_decode_ms", f"expected 0 (off) or 60..end_silence_ms ({self.end_silence_ms}) ms"))
        if not (self.answer_silence_ms == 0 or 100 <= self.answer_silence_ms <= 5000):
            out.append(("answer_silence_ms", "expected 0 (off) or 100..5000 ms"))
        if not 0 <= self.false_interruption_ms <= 3000:
            out.append(("false_interruption_ms", "expected 0..3000 ms"))
        if not 60 <= self.resume_silence_ms <= 2000:
            out.append(("resume_silence_ms", "expected 60..2000 ms"))
        if not 0 <= self.resume_rewind_ms <= 3000:
            out.append(("resume_rewind_ms", "expected 0..3000 ms"))
        if not 1.0 <= self.max_utterance_s <= 60.0:
            out.append(("max_utterance_s", "expected 1..60 s"))
        return out


VOICE_FIELDS = frozenset(f for f in VoiceParams.__dataclass_fields__)


@dataclass(frozen=True)
class Listen:
    grammar: Grammar
    timeout: float
    voice: VoiceParams = VoiceParams()


@dataclass(frozen=True)
class Transfer:
    queue: str
    context: Mapping[str, Any]


@dataclass(frozen=True)
class End:
    reason: str


@dataclass(frozen=True)
class Record:
    outcome: str
    data: Mapping[str, Any]


Action = Say | Listen | Transfer | End | Record


# ------------------------------------------------------------------ scripts as data

@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    must_finish: bool = False

    @property
    def slots(self) -> list[str]:
        return slots_in(self.text)

    @property
    def is_static(self) -> bool:
        return all(s in STATIC_SLOTS for s in self.slots)


@dataclass(frozen=True)
class Retry:
    retries: int = 2
    say: tuple[str, ...] = ()  # re-prompt; empty -> the node's own prompts again
    then: str | None = None  # None -> the script's fallback


@dataclass(frozen=True)
class Node:
    id: str
    say: tuple[str, ...] = ()
    listen: tuple[str, ...] | None = None  # intents by voice; None: this node does not listen
    dtmf: Mapping[str, str] = field(default_factory=dict)
    on: Mapping[str, str] = field(default_factory=dict)
    verify: str | None = None  # a factor: birth_year | id_last4 | either
    max_attempts: int = 2
    next: str | None = None
    end: str | None = None
    transfer: str | None = None
    record: str | None = None
    timeout: float | None = None
    no_input: Retry = Retry()
    no_match: Retry = Retry()
    voice: VoiceParams | None = None  # None: the script's

    @property
    def listens(self) -> bool:
        return self.listen is not None or self.verify is not None

    def targets(self) -> list[tuple[tuple[Any, ...], str]]:
        """(field path, target node) for every transition out of this node."""
        out: list[tuple[tuple[Any, ...], str]] = [(("on", k), v) for k, v in self.on.items()]
        if self.next:
            out.append((("next",), self.next))
        for name, retry in (("no_input", self.no_input), ("no_match", self.no_match)):
            if retry.then:
                out.append(((name, "then"), retry.then))
        return out


@dataclass(frozen=True)
class Script:
    id: str
    lang: str
    locale: str
    start: str
    prompts: Mapping[str, Prompt]
    nodes: Mapping[str, Node]
    fallback: str  # where exhausted retries go when a node names no `then`
    on_any: Mapping[str, str] = field(default_factory=dict)  # intent -> node, at any time
    on_any_verified: Mapping[str, str] = field(default_factory=dict)  # only after verification
    on_cue: Mapping[str, str] = field(default_factory=dict)  # voice cue (agitated, distressed) -> node, once a call
    timeout: float = 6.0
    min_confidence: float = 0.0
    instalments: int = 3
    voice: VoiceParams = VoiceParams()
    file: str | None = None

    def voice_of(self, node: Node) -> VoiceParams:
        return node.voice or self.voice

    def prompt_texts(self, node: Node, ids: Iterable[str] | None = None) -> list[Prompt]:
        return [self.prompts[p] for p in (node.say if ids is None else ids) if p in self.prompts]


@dataclass(frozen=True)
class Debtor:
    """What a call knows about the person it is for. Verification factors are compared, never spoken."""

    debtor_id: str
    name: str
    phone: str = ""
    birth_year: str | None = None
    id_last4: str | None = None
    amount_owed: Decimal | None = None
    currency: str = "CNY"
    due_date: date | None = None
    days_past_due: int | None = None
    payday: int | None = None
    institution: str = ""
    collector_name: str = ""
    callback_number: str = ""
    account_id: str | None = None
    verify_failures_today: int = 0  # wrong verification answers already given today (all calls)
