"""The floor as the wallboard, `dialer top` and the metrics show it: per campaign, lines by state, calls waiting
for a collector and the longest wait, the abandon rate in the profile's window against its limit and the budget
left, contacts, right-party contacts, promises, gate blocks by rule, QA alerts; the collectors by state and time
in state. `FloorView` reads the daemon's own state (duck-typed: `calls`, `campaigns`, `collectors`, `rules`,
`store`, `clock`) when asked, and counts what the bus tells it since the daemon started."""
from __future__ import annotations

import time
from collections import Counter, deque
from typing import Any

import dialer.calls.events as ev
from dialer.observe import events as oe
from dialer.pacing.floor import CollectorLive, collector_views, window_start
from dialer.store.agents import abandon_counts

ABANDON_CACHE_SECONDS = 1.0
LINE_STATES = ("ringing", "screening", "bot", "waiting", "talking", "informing")


class Counts:
    """What one campaign did since the daemon started, from the bus."""

    def __init__(self) -> None:
        self.placed = 0
        self.settled = 0
        self.contacts = 0  # answered by a person (not a machine)
        self.rpc = 0  # right-party contacts (verified)
        self.promises = 0
        self.abandoned = 0
        self.outcomes: Counter = Counter()
        self.blocked: Counter = Counter()
        self.last_pace: dict[str, Any] | None = None


def line_state(call: Any) -> str:
    """Where one live call is: ringing, screening (answered, AMD deciding), bot (talking to the voice bot),
    waiting (a person waits for a collector), talking (with a collector), informing (nobody came in time:
    the information message)."""
    if call.answered_t is None:
        return "ringing"
    if call.mode != "agent":
        return "bot"
    if call.connected_t is not None:
        return "talking"
    if call.queue_status is not None or call.info_played:
        return "informing"
    if call.human_t is not None and not call.machine:
        return "waiting"
    return "screening"


class FloorView:
    def __init__(self, source: Any, *, alerts_kept: int = 50):
        self.source = source
        self.counts: dict[str, Counts] = {}
        self.alerts: deque[dict[str, Any]] = deque(maxlen=alerts_kept)
        self.version = 0  # bumped by every event: the wallboard pushes when it moves
        self.event_wall = 0.0  # wall-clock time of the last event (event-to-screen latency)
        self.started = time.time()
        self._abandon: dict[str, tuple[float, dict[str, Any]]] = {}

    def _c(self, campaign: str) -> Counts:
        c = self.counts.get(campaign)
        if c is None:
            c = self.counts[campaign] = Counts()
        return c

    # -- the bus subscriber ---------------------------------------------------------------------------
    def __call__(self, event: Any) -> None:
        if isinstance(event, oe.Tick):
            return
        if isinstance(event, oe.CallPlaced):
            self._c(event.campaign).placed += 1
        elif isinstance(event, oe.GateBlocked):
            self._c(event.campaign).blocked[event.rule] += 1
        elif isinstance(event, oe.CallSettled):
            c = self._c(event.campaign)
            c.settled += 1
            c.outcomes[event.outcome] += 1
            c.abandoned += int(event.abandoned)
            if event.outcome in ("answered", "callee_hangup", "abandoned"):
                c.contacts += 1
            c.rpc += int(event.verified)
            c.promises += int(event.disposition == "promise")
        elif isinstance(event, oe.PaceDecision):
            self._c(event.campaign).last_pace = event.as_dict()
        elif isinstance(event, oe.QaAlert):
            self.alerts.appendleft({"call_id": event.call_id, "campaign": event.campaign, "rules": list(event.rules),
                                    "at": event.at, "score": event.score, "live": event.live,
                                    "detail": event.detail})
        elif not isinstance(event, (ev.DialAnswered, ev.ChannelHangup, ev.AgentConnect, ev.AgentComplete,
                                    ev.DialerAMD, ev.DialerHuman, ev.DialerQueueResult, ev.DialerInfoPlayed,
                                    ev.DialerTransfer, ev.BotTransfer, oe.Stopping, oe.Drained)):
            return  # AGI sessions, recognizer timings: nothing on the floor moves
        self.version += 1
        self.event_wall = time.time()

    # -- what the screens show --------------------------------------------------------------------------
    def abandon(self, camp: Any, now_dt: Any) -> dict[str, Any]:
        """The profile's abandon window from the store, read at most once a second per campaign (the
        wallboard may ask many times a second)."""
        hit = self._abandon.get(camp.name)
        mono = time.monotonic()
        if hit is not None and mono - hit[0] < ABANDON_CACHE_SECONDS:
            return hit[1]
        out = self._abandon_now(camp, now_dt)
        self._abandon[camp.name] = (mono, out)
        return out

    def _abandon_now(self, camp: Any, now_dt: Any) -> dict[str, Any]:
        src = self.source
        ab = src.rules.profile_for(camp.profile, camp.name).abandon
        placed, answered, abandoned = abandon_counts(src.store, camp.name, window_start(now_dt, ab.window))
        rate = abandoned / answered if answered else 0.0
        return {"rate": round(rate, 4), "limit": ab.limit, "answered": answered, "abandoned": abandoned,
                "placed": placed, "budget_left": round(ab.limit * answered - abandoned, 2), "window": ab.window}

    def collectors(self, now: float) -> list[dict[str, Any]]:
        floor = getattr(self.source, "collectors", None)
        if floor is None or not floor.names:
            return []
        wrap = getattr(floor, "wrap_up", 0.0)
        live = {k: CollectorLive(v.state, v.since, v.call) for k, v in floor.live.items()}
        views = collector_views(floor.names, live, floor.desired, now, wrap)
        out = []
        for name, view in zip(floor.names, views):
            cur = floor.live.get(name)
            out.append({"name": name, "state": view.state, "seconds": round(max(0.0, now - view.since), 1),
                        "call": cur.call if cur is not None and view.state == "talking" else None,
                        "leaving": bool(getattr(view, "leaving", False))})
        return out

    def snapshot(self) -> dict[str, Any]:
        src = self.source
        now_dt = src.clock.now()
        now = now_dt.timestamp()
        camps: dict[str, Any] = {}
        for name, camp in src.campaigns.items():
            lines = dict.fromkeys(LINE_STATES, 0)
            waits = []
            for call in list(src.calls.values()):
                if call.campaign != name:
                    continue
                state = line_state(call)
                lines[state] += 1
                if state == "waiting":
                    waits.append(now - call.human_t)
            c = self._c(name)
            camps[name] = {
                "mode": camp.dial_mode, "line_limit": camp.line_limit, "lines": lines,
                "in_use": sum(lines.values()), "waiting": len(waits),
                "longest_wait": round(max(waits), 1) if waits else 0.0,
                "abandon": self.abandon(camp, now_dt), "placed": c.placed, "settled": c.settled,
                "contacts": c.contacts, "rpc": c.rpc, "promises": c.promises, "abandoned": c.abandoned,
                "outcomes": dict(c.outcomes), "blocked": dict(c.blocked), "pacing": c.last_pace,
            }
        cols = self.collectors(now)
        return {"at": now, "clock": now_dt.isoformat(timespec="seconds"), "wall": time.time(),
                "version": self.version, "event_wall": self.event_wall, "campaigns": camps,
                "collectors": cols, "collectors_by_state": dict(Counter(c["state"] for c in cols)),
                "alerts": list(self.alerts), "uptime": round(time.time() - self.started, 1)}
