"""What Asterisk tells the daemon about a call, as typed events: one small frozen dataclass per AMI event or
dialplan UserEvent the daemon reacts to, each with its `NAME` and `from_ami(msg)`. `parse(msg)` picks the class;
every other message is None. The dialplan's side of the contract is dialplans/pbx.conf (and the BotTransfer
that agi/flows/scripted.py sends); the names come from common/vocab.py."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Union

from common import vocab


def _member(msg: Mapping[str, Any]) -> str:
    """The queue member's name (MemberName, else the last part of Interface: PJSIP/agent1 → agent1)."""
    return msg.get("MemberName") or str(msg.get("Interface", "")).split("/")[-1]


def _seconds(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


# -- AMI events ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DialAnswered:
    """DialEnd with DialStatus ANSWER: the callee picked up (before AMD and the dialplan)."""

    NAME: ClassVar[str] = "DialEnd"
    call_id: str

    @classmethod
    def from_ami(cls, msg: Mapping[str, Any]) -> DialAnswered | None:
        if msg.get("DialStatus") != "ANSWER":
            return None
        return cls(msg.get("DestUniqueid", ""))


@dataclass(frozen=True)
class ChannelHangup:
    """A channel is gone (inbound calls end here; outbound calls end through their TrackedCall)."""

    NAME: ClassVar[str] = "Hangup"
    uniqueid: str
    cause: int | None

    @classmethod
    def from_ami(cls, msg: Mapping[str, Any]) -> ChannelHangup:
        cause = _seconds(msg.get("Cause"))
        return cls(msg.get("Uniqueid", ""), None if cause is None else int(cause))


@dataclass(frozen=True)
class AgentConnect:
    """A collector took the call from the queue."""

    NAME: ClassVar[str] = "AgentConnect"
    uniqueid: str
    member: str
    hold_time: str | None
    ring_time: float

    @classmethod
    def from_ami(cls, msg: Mapping[str, Any]) -> AgentConnect:
        return cls(msg.get("Uniqueid", ""), _member(msg), msg.get("HoldTime"), _seconds(msg.get("RingTime")) or 0.0)


@dataclass(frozen=True)
class AgentComplete:
    """A collector's call ended (wrap-up starts); `talk_time` None when Asterisk did not say."""

    NAME: ClassVar[str] = "AgentComplete"
    uniqueid: str
    member: str
    talk_time: float | None

    @classmethod
    def from_ami(cls, msg: Mapping[str, Any]) -> AgentComplete:
        return cls(msg.get("Uniqueid", ""), _member(msg), _seconds(msg.get("TalkTime")))


# -- the dialplan's UserEvents ---------------------------------------------------------------------
def _call_id(msg: Mapping[str, Any]) -> str:
    return msg.get(vocab.CALL_ID_HEADER, "")


@dataclass(frozen=True)
class DialerAMD:
    """AMD() finished: HUMAN, MACHINE, NOTSURE or HANGUP, and why."""

    NAME: ClassVar[str] = vocab.DIALER_AMD
    call_id: str
    status: str
    cause: str | None

    @classmethod
    def from_ami(cls, msg: Mapping[str, Any]) -> DialerAMD:
        return cls(_call_id(msg), msg.get("Status", ""), msg.get("Cause"))

    @property
    def screened(self) -> bool:
        """AMD reached a verdict the pacer learns from."""
        return self.status in ("HUMAN", "MACHINE", "NOTSURE")


@dataclass(frozen=True)
class DialerHuman:
    """End of the greeting in collector modes: the abandon clock starts. `at` is the PBX's epoch."""

    NAME: ClassVar[str] = vocab.DIALER_HUMAN
    call_id: str
    at: str | None

    @classmethod
    def from_ami(cls, msg: Mapping[str, Any]) -> DialerHuman:
        return cls(_call_id(msg), msg.get("At"))


@dataclass(frozen=True)
class DialerQueueResult:
    """The Queue() application returned: QUEUESTATUS (TIMEOUT, FULL, …; empty when a collector took it)."""

    NAME: ClassVar[str] = vocab.DIALER_QUEUE_RESULT
    call_id: str
    status: str

    @classmethod
    def from_ami(cls, msg: Mapping[str, Any]) -> DialerQueueResult:
        return cls(_call_id(msg), msg.get("Status") or "")


@dataclass(frozen=True)
class DialerInfoPlayed:
    """The abandoned-call information message was played to the end."""

    NAME: ClassVar[str] = vocab.DIALER_INFO_PLAYED
    call_id: str

    @classmethod
    def from_ami(cls, msg: Mapping[str, Any]) -> DialerInfoPlayed:
        return cls(_call_id(msg))


@dataclass(frozen=True)
class DialerTransfer:
    """The dialplan is putting the call into a queue (after the bot asked for a person, or a call-back)."""

    NAME: ClassVar[str] = vocab.DIALER_TRANSFER
    call_id: str
    queue: str

    @classmethod
    def from_ami(cls, msg: Mapping[str, Any]) -> DialerTransfer:
        return cls(_call_id(msg), msg.get("Queue", ""))


@dataclass(frozen=True)
class BotTransfer:
    """The voice bot handed the call to a queue (sent by agi/flows/scripted.py)."""

    NAME: ClassVar[str] = vocab.BOT_TRANSFER
    call_id: str
    queue: str
    verified: bool

    @classmethod
    def from_ami(cls, msg: Mapping[str, Any]) -> BotTransfer:
        return cls(_call_id(msg), msg.get("Queue", ""), str(msg.get("Verified", "")).lower() in ("true", "1"))


@dataclass(frozen=True)
class DialerPreviewReady:
    """Preview: the collector's phone answered the call placed for an accepted offer; `channel` is that leg,
    which the debtor's leg is bridged to when the debtor answers."""

    NAME: ClassVar[str] = vocab.DIALER_PREVIEW_READY
    call_id: str
    channel: str

    @classmethod
    def from_ami(cls, msg: Mapping[str, Any]) -> DialerPreviewReady:
        return cls(_call_id(msg), msg.get("Channel", ""))


@dataclass(frozen=True)
class DialerMachineMessage:
    """Collector modes, AMD said MACHINE and the campaign's policy is `message`: the information message was
    left after the greeting's end (`complete`: played to the end)."""

    NAME: ClassVar[str] = vocab.DIALER_MACHINE_MESSAGE
    call_id: str
    complete: bool

    @classmethod
    def from_ami(cls, msg: Mapping[str, Any]) -> DialerMachineMessage:
        return cls(_call_id(msg), str(msg.get("Status", "")).upper() == "SUCCESS")


@dataclass(frozen=True)
class DialerNoticePlayed:
    """The profile's recording notice was played to the callee (docs/RECORDINGS.md): `complete` when it ran
    to its end (Playback's status SUCCESS)."""

    NAME: ClassVar[str] = vocab.DIALER_NOTICE_PLAYED
    call_id: str
    complete: bool

    @classmethod
    def from_ami(cls, msg: Mapping[str, Any]) -> DialerNoticePlayed:
        return cls(_call_id(msg), str(msg.get("Status", "")).upper() == "SUCCESS")


UserEventType = Union[DialerAMD, DialerHuman, DialerQueueResult, DialerInfoPlayed, DialerTransfer, BotTransfer,
                      DialerPreviewReady, DialerMachineMessage, DialerNoticePlayed]
CallEvent = Union[DialAnswered, ChannelHangup, AgentConnect, AgentComplete, UserEventType]

_AMI = {c.NAME: c for c in (DialAnswered, ChannelHangup, AgentConnect, AgentComplete)}
_USER = {c.NAME: c for c in (DialerAMD, DialerHuman, DialerQueueResult, DialerInfoPlayed, DialerTransfer,
                             BotTransfer, DialerPreviewReady, DialerMachineMessage, DialerNoticePlayed)}


def parse(msg: Mapping[str, Any]) -> CallEvent | None:
    """The typed event for one AMI message, or None when the daemon does not react to it."""
    name = msg.get("Event")
    if name == "UserEvent":
        cls = _USER.get(msg.get("UserEvent", ""))
    else:
        cls = _AMI.get(name or "")
    return cls.from_ami(msg) if cls is not None else None
