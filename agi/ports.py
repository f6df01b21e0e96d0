"""What a call needs from outside `agi/` (store, AMI, the AGI channel, prompts), as small protocols.

`dialer/` implements these and hands them to each call; `agi/` never imports `dialer/`.
`InMemoryPorts` is the reference implementation used by tests and offline demos.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Protocol


class CallChannel(Protocol):
    """The AGI commands a scripted call uses (implemented by `agi.channel.AGIChannel`).

    Every method raises `agi.channel.Hangup` when the caller hangs up."""

    async def stream_file(self, path: str, escape_digits: str = "") -> tuple[str | None, int | None]: ...
    async def control_stream_file(self, path: str, escape_digits: str = "") -> tuple[str | None, int | None]: ...
    async def get_data(self, path: str, timeout_ms: int, max_digits: int) -> str | None: ...
    async def set_variable(self, name: str, value: object) -> None: ...
    async def exec(self, app: str, args: str = "") -> str: ...
    async def hangup(self) -> None: ...


class VoiceBotPorts(Protocol):
    """Where a call's results go. Methods may be plain or async (the call flow awaits what it gets)."""

    def record_outcome(self, call_id: str, kind: str, data: dict[str, Any]) -> Awaitable[None] | None: ...
    def record_transcript_turn(self, call_id: str, speaker: str, text: str, start: float,
                               end: float) -> Awaitable[None] | None: ...
    def transfer_context(self, call_id: str, context: dict[str, Any]) -> Awaitable[None] | None: ...
    def mark_phone(self, debtor_id: str, phone: str, status: str) -> Awaitable[None] | None: ...
    def add_cease(self, debtor_id: str) -> Awaitable[None] | None: ...


class PromptRenderer(Protocol):
    """Text -> an 8 kHz mono 16-bit WAV on disk (path ends in .wav)."""

    def render(self, text: str, locale: str) -> Path: ...


@dataclass
class InMemoryPorts:
    """Collects everything a call reports; for tests and the offline demo."""

    outcomes: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    turns: list[tuple[str, str, str, float, float]] = field(default_factory=list)
    transfers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    phones: list[tuple[str, str, str]] = field(default_factory=list)
    ceased: list[str] = field(default_factory=list)

    def record_outcome(self, call_id: str, kind: str, data: dict[str, Any]) -> None:
        self.outcomes.append((call_id, kind, dict(data)))

    def record_transcript_turn(self, call_id: str, speaker: str, text: str, start: float, end: float) -> None:
        self.turns.append((call_id, speaker, text, start, end))

    def transfer_context(self, call_id: str, context: dict[str, Any]) -> None:
        self.transfers.append((call_id, dict(context)))

    def mark_phone(self, debtor_id: str, phone: str, status: str) -> None:
        self.phones.append((debtor_id, phone, status))

    def add_cease(self, debtor_id: str) -> None:
        self.ceased.append(debtor_id)
