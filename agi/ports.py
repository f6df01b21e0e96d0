"""What a call needs from outside `agi/`, as one set of small protocols, and `InMemoryPorts`, their reference implementation.

`CallPorts` is the store side of a call (who is called, where the results go), `CallChannel` the AGI
commands, `PromptRenderer` text to speech, `PlaybackControl` stopping a prompt (barge-in), `AudioTap`
streaming the caller's audio into a socket of ours (ChanSpy → UnicastRTP). `dialer/`
implements them (`dialer/calls/ports.py` on the store) and hands them to each call; `agi/` never
imports `dialer/`. `InMemoryPorts` keeps everything in lists; the tests and offline demos use it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class CallContext:
    """What a call flow may know about the callee; the debt fields are used only after verification."""

    call_id: str
    debtor_id: str
    name: str
    birth_year: int | None
    institution: str
    amount_owed: str
    currency: str
    days_past_due: int
    locale: str = "en-US"
    phone: str = ""
    account_id: str | None = None
    callback_number: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class CallPorts(Protocol):
    """The store side of a call: who it is for, and where what happened on it goes."""

    async def lookup(self, call_id: str) -> CallContext | None: ...
    async def record_outcome(self, call_id: str, kind: str, data: dict[str, Any]) -> None: ...
    async def record_transcript_turn(self, call_id: str, speaker: str, text: str, start: float,
                                     end: float, meta: dict[str, Any] | None = None) -> None: ...
    # `meta` (optional; only passed for a recognised callee turn): the recognizer's hearing — backend,
    # confidence, no_speech_prob, asr_start/asr_end, how it was matched (agi.media.speech.transcript_meta).
    async def transfer_context(self, call_id: str, context: dict[str, Any]) -> None: ...
    async def mark_phone(self, debtor_id: str, phone: str, status: str) -> None: ...
    async def add_cease(self, debtor_id: str) -> None: ...


class CallChannel(Protocol):
    """The AGI commands a call flow uses (implemented by `agi.channel.AGIChannel`).

    Every method raises `agi.channel.Hangup` when the caller hangs up."""

    async def stream_file(self, path: str, escape_digits: str = "") -> tuple[str | None, int | None]: ...
    async def control_stream_file(self, path: str, escape_digits: str = "",
                                  offset_ms: int = 0) -> tuple[str | None, int | None]: ...
    async def get_data(self, path: str, timeout_ms: int, max_digits: int) -> str | None: ...
    async def wait_for_digit(self, timeout_ms: int) -> str | None: ...
    async def set_variable(self, name: str, value: object) -> None: ...
    async def exec(self, app: str, args: str = "") -> str: ...
    async def hangup(self) -> None: ...


class PromptRenderer(Protocol):
    """Text -> an 8 kHz mono 16-bit WAV on disk (path ends in .wav)."""

    def render(self, text: str, locale: str) -> Path: ...


class PlaybackControl(Protocol):
    """Stops the prompt a call is playing now (barge-in); AMI `ControlPlayback` in `dialer/telephony/`.

    `channel` is the call's Asterisk channel name (AGI's `agi_channel`). A stop that finds nothing playing
    is not an error."""

    async def stop(self, call_id: str, channel: str = "") -> None: ...


class AudioTap(Protocol):
    """Streams the caller's audio (what the callee says, not the prompts) to `host:port` as 20 ms µ-law RTP,
    from now until `stop` or the end of the call; AMI ChanSpy → UnicastRTP in `dialer/telephony/`."""

    async def start(self, call_id: str, channel: str, host: str, port: int) -> None: ...
    async def stop(self, call_id: str) -> None: ...


@dataclass(frozen=True)
class CallMedia:
    """What a call needs for live audio: the tap and the prompt stopper (both None: keys only)."""

    tap: AudioTap
    playback: PlaybackControl


@dataclass
class InMemoryPorts:
    """`CallPorts` and `PlaybackControl` in lists: callees by call id, and everything each call reported."""

    contexts: dict[str, CallContext] = field(default_factory=dict)
    outcomes: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    turns: list[tuple[str, str, str, float, float]] = field(default_factory=list)
    transfers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    turn_meta: dict[int, dict[str, Any]] = field(default_factory=dict)  # index in `turns` -> the recognizer's meta
    phones: list[tuple[str, str, str]] = field(default_factory=list)
    ceased: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)

    async def lookup(self, call_id: str) -> CallContext | None:
        return self.contexts.get(call_id)

    async def record_outcome(self, call_id: str, kind: str, data: dict[str, Any]) -> None:
        self.outcomes.append((call_id, kind, dict(data)))

    async def record_transcript_turn(self, call_id: str, speaker: str, text: str, start: float,
                                     end: float, meta: dict[str, Any] | None = None) -> None:
        if meta:
            self.turn_meta[len(self.turns)] = dict(meta)
        self.turns.append((call_id, speaker, text, start, end))

    async def transfer_context(self, call_id: str, context: dict[str, Any]) -> None:
        self.transfers.append((call_id, dict(context)))

    async def mark_phone(self, debtor_id: str, phone: str, status: str) -> None:
        self.phones.append((debtor_id, phone, status))

    async def add_cease(self, debtor_id: str) -> None:
        self.ceased.append(debtor_id)

    async def stop(self, call_id: str, channel: str = "") -> None:
        self.stopped.append(call_id)

    def outcomes_of(self, call_id: str) -> list[tuple[str, dict[str, Any]]]:
        """(kind, data) of every outcome one call reported, in order."""
        return [(kind, data) for cid, kind, data in self.outcomes if cid == call_id]

    def turns_of(self, call_id: str) -> list[tuple[str, str, float, float]]:
        """(speaker, text, start, end) of one call's transcript."""
        return [(speaker, text, start, end) for cid, speaker, text, start, end in self.turns if cid == call_id]

    def heard_of(self, call_id: str) -> list[tuple[str, float, float, dict[str, Any]]]:
        """(text, start, end, meta) of each recognised callee turn of one call."""
        return [(t[2], t[3], t[4], self.turn_meta[i]) for i, t in enumerate(self.turns)
                if t[0] == call_id and i in self.turn_meta]

    def transfer_of(self, call_id: str) -> dict[str, Any] | None:
        """The context one call handed to the collector, if it was transferred."""
        return next((ctx for cid, ctx in reversed(self.transfers) if cid == call_id), None)
