"""Supervisor monitoring: a supervisor's phone joins a collector's live call through Asterisk's ChanSpy —
`listen` (hears both sides, says nothing to anyone), `whisper` (the collector hears the supervisor, the debtor
does not), `barge` (both hear the supervisor). Each use is written to the audit log before the phone rings."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from dialer.store import Store
from dialer.store.audit import audit

MODES = {"listen": "q", "whisper": "qw", "barge": "qB"}  # ChanSpy options (q: no beep / name announcement)


class SuperviseError(Exception):
    pass


@dataclass(frozen=True)
class Session:
    session_id: str
    mode: str
    collector: str
    collector_channel: str
    phone_channel: str


def collector_channel(concise: str, collector: str) -> str | None:
    """The collector's channel in a call now (`core show channels concise`): PJSIP/<collector>-…, bridged."""
    best = None
    for line in concise.splitlines():
        fields = line.strip().split("!")
        if len(fields) < 13:
            continue
        name = fields[0]
        if not name.startswith(f"PJSIP/{collector}-"):
            continue
        if fields[4] == "Up" and fields[12]:  # state Up and in a bridge: talking to someone
            return name
        best = best or (name if fields[4] == "Up" else None)
    return best


def phone_channel(phone: str, dial_string: Any = None) -> str:
    """The supervisor's phone as a dial string: an E.164 number goes out through the trunk, a channel
    (PJSIP/sup1) as given, a bare name is a PJSIP endpoint of the PBX."""
    if phone.startswith("+") or phone.isdigit():
        return f"PJSIP/{dial_string(phone) if dial_string else phone}@carrier"
    if "/" in phone:
        return phone
    return f"PJSIP/{phone}"


async def supervise(ami: Any, store: Store, mode: str, collector: str, phone: str, *, actor: str,
                    ring_timeout: float = 30.0) -> Session:
    # Returns once the supervisor's phone answered (ChanSpy runs from then on) or raises SuperviseError.
    """Ring the supervisor's phone and, when answered, spy on the collector's live call in `mode`."""
    if mode not in MODES:
        raise SuperviseError(f"unknown mode {mode!r} (listen, whisper or barge)")
    concise = await ami.command("core show channels concise")
    chan = collector_channel(concise, collector)
    if chan is None:
        raise SuperviseError(f"{collector} is not on a call now (no live PJSIP/{collector}- channel on the PBX); "
                             "`dialer top` shows who is talking")
    sid = f"sup-{uuid.uuid4().hex[:12]}"
    dial = phone_channel(phone, getattr(ami, "dial_string", None))
    audit(store, actor, f"supervise.{mode}", collector,
          {"session": sid, "phone": phone, "collector_channel": chan, "mode": mode})
    resp = await ami.send(timeout=ring_timeout + 10, action={
        "Action": "Originate", "Channel": dial, "Application": "ChanSpy",
        "Data": f"{chan},{MODES[mode]}ES",  # E: leave when the collector's call ends; S: when nothing to spy
        "Timeout": str(int(ring_timeout * 1000)), "Async": "true", "ChannelId": sid,
        "CallerID": f'"{mode} {collector}" <{collector}>',
        "Variable": [f"PJSIP_HEADER(add,X-Dialer-Call)={sid}", f"DIALER_SUPERVISE={mode}"],
    })
    msgs = resp if isinstance(resp, list) else [resp]  # the queued reply, then OriginateResponse (answered?)
    last = msgs[-1] if msgs else None
    if last is None or not hasattr(last, "get") or last.get("Response") != "Success":
        msg = last.get("Message") or last.get("Reason") if hasattr(last, "get") else last
        raise SuperviseError(f"{phone} did not answer or the PBX refused to ring it: {msg}")
    return Session(sid, mode, collector, chan, dial)
