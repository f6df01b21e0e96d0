"""AMI controller on panoramisk: connect and reconnect with backoff, Originate(Async, ChannelId),
follow each call by its id through events, and classify its outcome from DialEnd and Hangup cause."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from panoramisk import Manager

from common.log import log_event

log = logging.getLogger("dialer.telephony.ami")

# Q.850 causes that matter for outcomes (docs/ARCHITECTURE.md: classify from DialEnd + Hangup cause).
CAUSE_UNALLOCATED = 1
CAUSE_NORMAL = 16
CAUSE_BUSY = 17
CAUSE_NO_USER_RESPONSE = 18
CAUSE_NO_ANSWER = 19
CAUSE_CONGESTION = 34


def classify(answered: bool, dial_status: str | None, cause: int | None, reason: int | None = None) -> str:
    """Outcome of one originated call.

    answered → 'answered' (the call flow refines it); otherwise by DialEnd DialStatus first,
    then the Hangup cause, then OriginateResponse Reason (3 = ring timeout, 5 = busy)."""
    if answered:
        return "answered"
    ds = (dial_status or "").upper()
    if ds == "BUSY" or cause == CAUSE_BUSY:
        return "busy"
    if cause == CAUSE_UNALLOCATED:
        return "unallocated"
    if ds == "NOANSWER" or cause in (CAUSE_NO_ANSWER, CAUSE_NO_USER_RESPONSE):
        return "no_answer"
    if ds in ("CONGESTION", "CHANUNAVAIL") or cause == CAUSE_CONGESTION:
        return "failed"
    if reason == 5:
        return "busy"
    if reason == 3 or (cause in (0, None) and not ds and reason is None):
        return "no_answer"  # the ring timeout: Hangup cause 0, no DialEnd
    return "failed"


@dataclass
class TrackedCall:
    call_id: str
    number: str
    placed_at: float
    channel: str | None = None
    dial_status: str | None = None
    hangup_cause: int | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    originate_reason: int | None = None
    outcome: str | None = None
    events: list[str] = field(default_factory=list)
    done: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    def finish(self, outcome: str) -> None:
        if self.outcome is None:
            self.outcome = outcome
            self.ended_at = self.ended_at or time.time()
        if not self.done.done():
            self.done.set_result(self)


class _BackoffManager(Manager):
    """panoramisk's Manager reconnects at a fixed interval; we back off exponentially up to a cap
    (wrapped here rather than patched in site-packages)."""

    def __init__(self, *, backoff_min: float, backoff_max: float, **config: Any):
        super().__init__(**config)
        self._backoff_min = backoff_min
        self._backoff_max = backoff_max
        self._next_delay = backoff_min
        self.closing = False

    def connection_made(self, f: asyncio.Future) -> None:
        if self.closing:
            return
        failed = f.exception() is not None if f.done() and not f.cancelled() else True
        self.reconnect_timeout = self._next_delay
        if failed:
            self._next_delay = min(self._next_delay * 2, self._backoff_max)
        else:
            self._next_delay = self._backoff_min
        super().connection_made(f)

    def connection_lost(self, exc: Any) -> None:
        if self.closing:
            self._connected = False
            return
        self.reconnect_timeout = self._next_delay
        super().connection_lost(exc)

    def connect(self, *args: Any, **kwargs: Any):  # type: ignore[override]
        if self.closing:
            return None
        return super().connect(*args, **kwargs)


class AMIController:
    """One AMI session to the PBX, shared by the dialer. Thread-unsafe; lives in the daemon's loop."""

    def __init__(self, host: str, port: int, username: str, secret: str, *,
                 backoff_min: float = 0.25, backoff_max: float = 8.0, ping_interval: int = 5):
        self.host, self.port = host, port
        self.calls: dict[str, TrackedCall] = {}
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.late_grace = 1.5  # seconds to wait for a failed Originate's channel events
        self._logins = 0
        self.manager = _BackoffManager(
            loop=asyncio.get_running_loop(), host=host, port=port, username=username, secret=secret,
            ping_delay=ping_interval, ping_interval=ping_interval, backoff_min=backoff_min,
            backoff_max=backoff_max, events="on", on_login=self._on_login, on_disconnect=self._on_disconnect,
            log=logging.getLogger("panoramisk"),
        )
        self.manager.register_event("*", self._on_event)

    # -- connection ---------------------------------------------------------------------------
    async def connect(self, timeout: float = 10.0) -> None:
        self.manager.connect()
        await asyncio.wait_for(self.connected.wait(), timeout)

    def _on_login(self, manager: Manager) -> None:
        self._logins += 1
        if self._logins > 1:
            self.reconnects += 1
        self.connected.set()
        log_event(log, "ami.login", host=self.host, port=self.port, reconnects=self.reconnects)

    def _on_disconnect(self, manager: Manager, exc: Any) -> None:
        self.connected.clear()
        log_event(log, "ami.disconnected", level=logging.WARNING, open_calls=len(self.calls))
        # Events for calls in flight are lost with the connection: their outcome is unknown
        # here and must be reconciled (CDR) by the owner of the attempt.
        for call in list(self.calls.values()):
            call.events.append("ami-lost")
            call.finish("unknown")
        self.calls.clear()

    async def close(self) -> None:
        self.manager.closing = True
        self.manager.close()
        self.connected.clear()

    async def send(self, action: dict[str, Any], timeout: float = 10.0) -> Any:
        if not self.connected.is_set():
            await asyncio.wait_for(self.connected.wait(), timeout)
        return await asyncio.wait_for(self.manager.send_action(action), timeout)

    async def command(self, cmd: str) -> str:
        resp = await self.send({"Action": "Command", "Command": cmd})
        out = resp.get("Output") if hasattr(resp, "get") else None
        if isinstance(out, list):
            return "\n".join(out)
        return str(out or "")

    # -- calls --------------------------------------------------------------------------------
    async def originate(self, call_id: str, number: str, *, context: str = "dialer-outbound", exten: str = "bot",
                        trunk: str = "carrier", ring_timeout: float = 30.0, caller_id: str | None = None,
                        variables: dict[str, Any] | None = None) -> TrackedCall:
        """Place one call. Returns at once with a TrackedCall whose `done` resolves with the outcome."""
        call = TrackedCall(call_id=call_id, number=number, placed_at=time.time())
        self.calls[call_id] = call
        variables = dict(variables or {})
        variables.setdefault("DIALER_CALL_ID", call_id)
        variables["PJSIP_HEADER(add,X-Dialer-Call)"] = call_id
        action: dict[str, Any] = {
            "Action": "Originate",
            "Channel": f"PJSIP/{self.dial_string(number)}@{trunk}",
            "Context": context, "Exten": exten, "Priority": "1",
            "Timeout": str(int(ring_timeout * 1000)),
            "ChannelId": call_id,
            "OtherChannelId": f"{call_id}-x",
            "Async": "true",
            "Variable": [f"{k}={v}" for k, v in variables.items()],
        }
        if caller_id:
            action["CallerID"] = caller_id
        fut = self.manager.send_action(action)
        fut.add_done_callback(lambda f, c=call: self._originate_done(c, f))
        log_event(log, "ami.originate", call=call_id, number=number, ring_timeout=ring_timeout)
        return call

    dial_plan: Any = None  # dialer.telephony.trunk.DialPlan of a real trunk (None: E.164 as is)

    def dial_string(self, number: str) -> str:
        """The digits the trunk is dialled with (the trunk's dial plan; E.164 as is by default)."""
        if self.dial_plan is None:
            return number
        from dialer.telephony.trunk import dial_string

        return dial_string(number, self.dial_plan)

    def _originate_done(self, call: TrackedCall, fut: asyncio.Future) -> None:
        if fut.cancelled():
            return
        try:
            res = fut.result()
        except Exception as exc:  # noqa: BLE001
            call.events.append(f"originate-error:{exc}")
            call.finish("failed")
            self.calls.pop(call.call_id, None)
            return
        msgs = res if isinstance(res, list) else [res]
        for m in msgs:
            if m.get("Response") == "Error":
                call.events.append(f"originate-rejected:{m.get('Message')}")
                call.finish("failed")
                self.calls.pop(call.call_id, None)
                return
            if m.get("Event") == "OriginateResponse":
                try:
                    call.originate_reason = int(m.get("Reason", "0"))
                except ValueError:
                    pass
                if m.get("Response") == "Failure" and call.hangup_cause is None:
                    # The channel's own events (DialEnd, Hangup cause) usually come first but may still be
                    # on their way; if none arrives, the channel never came up: classify from what we have.
                    asyncio.get_running_loop().call_later(self.late_grace, self._finish_late, call)

    def _finish_late(self, call: TrackedCall) -> None:
        if call.outcome is None:
            call.finish(classify(False, call.dial_status, call.hangup_cause, call.originate_reason))
            self.calls.pop(call.call_id, None)

    def _on_event(self, manager: Manager, msg: Any) -> None:
        event = dict(msg)
        name = event.get("Event", "")
        uid = event.get("Uniqueid") or event.get("DestUniqueid")
        call = self.calls.get(uid or "")
        if call is None and uid and uid.endswith("-x"):
            call = None  # the local half of an Originate: ignore
        if call is not None:
            call.events.append(name)
            if name == "Newchannel":
                call.channel = event.get("Channel")
            elif name == "DialEnd" and event.get("DestUniqueid") == call.call_id:
                call.dial_status = event.get("DialStatus")
                if call.dial_status == "ANSWER" and call.answered_at is None:
                    call.answered_at = time.time()
            elif name == "Newstate" and event.get("ChannelState") == "6" and call.answered_at is None:
                call.answered_at = time.time()
            elif name == "Hangup" and event.get("Uniqueid") == call.call_id:
                try:
                    call.hangup_cause = int(event.get("Cause", "0"))
                except ValueError:
                    call.hangup_cause = 0
                call.ended_at = time.time()
                call.finish(classify(call.answered, call.dial_status, call.hangup_cause, call.originate_reason))
                self.calls.pop(call.call_id, None)
                log_event(log, "ami.call_end", call=call.call_id, outcome=call.outcome, cause=call.hangup_cause,
                          dial_status=call.dial_status)
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001
                log.exception("AMI listener failed on %s", name)


class AmiMedia:
    """The live-audio ports of `agi/ports.py` on one AMI session: `AudioTap` (ChanSpy → UnicastRTP) and
    `PlaybackControl` (ControlPlayback stop).

    The tap is an Originate of `UnicastRTP/<host>:<port>/c(ulaw)` running `ChanSpy(<channel>,qoE)`: only
    the caller's audio (o), no beep (q), gone with the call (E). Its channel id is `<call id>-tap`, so its
    events name it and `stop` can hang it up when the bot is done before the call is (a transfer).
    `live` holds the tap channels Asterisk still has: empty when every call is torn down."""

    TAP_SUFFIX = "-tap"

    def __init__(self, ami: AMIController):
        self.ami = ami
        self.live: dict[str, str] = {}  # call id -> tap channel name, from Newchannel until Hangup
        self.stops = 0
        ami.listeners.append(self._on_event)

    def _on_event(self, event: dict[str, Any]) -> None:
        uid = event.get("Uniqueid") or ""
        if not uid.endswith(self.TAP_SUFFIX):
            return
        call_id = uid[: -len(self.TAP_SUFFIX)]
        name = event.get("Event")
        if name == "Newchannel":
            self.live[call_id] = event.get("Channel", "")
        elif name == "Hangup":
            self.live.pop(call_id, None)

    async def start(self, call_id: str, channel: str, host: str, port: int) -> None:
        if not channel:
            raise ValueError("the tap needs the call's channel name")
        res = await self.ami.send({
            "Action": "Originate",
            "Channel": f"UnicastRTP/{host}:{port}/c(ulaw)",
            "Application": "ChanSpy",
            "Data": f"{channel},qoE",
            "ChannelId": call_id + self.TAP_SUFFIX,
            "Async": "true",
            "Timeout": "5000",
        })
        msgs = res if isinstance(res, list) else [res]
        for m in msgs:
            if m.get("Response") in ("Error", "Failure"):
                raise RuntimeError(f"tap for {call_id}: {m.get('Message') or m.get('Reason') or 'originate failed'}")
        log_event(log, "ami.tap", call=call_id, port=port)

    async def stop(self, call_id: str, channel: str = "") -> None:
        """`AudioTap.stop` when called with a call id whose tap is live; otherwise nothing to do."""
        name = self.live.get(call_id)
        if name:
            try:
                await self.ami.send({"Action": "Hangup", "Channel": name}, timeout=5.0)
            except Exception as exc:  # noqa: BLE001 - it may have ended with the call meanwhile
                log_event(log, "ami.tap_hangup_failed", level=logging.WARNING, call=call_id, error=str(exc))

    async def stop_prompt(self, call_id: str, channel: str) -> None:
        """`PlaybackControl.stop`: AMI ControlPlayback stop (answered in ~1 ms; 'no playback' is fine)."""
        self.stops += 1
        await self.ami.send({"Action": "ControlPlayback", "Channel": channel, "Control": "stop"}, timeout=5.0)

    @property
    def playback(self) -> "AmiPlayback":
        return AmiPlayback(self)


class AmiPlayback:
    """`PlaybackControl` over `AmiMedia` (a separate object: both ports name their method `stop`)."""

    def __init__(self, media: AmiMedia):
        self.media = media

    async def stop(self, call_id: str, channel: str = "") -> None:
        await self.media.stop_prompt(call_id, channel)
