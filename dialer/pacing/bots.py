"""Bot capacity as an input to pacing: how many more bot calls the recognition pool can serve within each
utterance's deadline (as ready collectors are for collector campaigns). Pure: the pool's load in, a number out.

A bot call sends the pool about one utterance every `turn_period_s` (a prompt, an answer, a reply). A pool of
W decoders taking `decode_s` per utterance sustains W·u·turn_period/decode_s calls at utilisation u (kept
below 1 so that a burst of answers queues briefly instead of missing deadlines). Whenever the pool is behind
now — utterances queued beyond one per decoder, queue waits above half the deadline, deadlines missed among
the last utterances — no new bot call is placed until it recovers: fewer calls, never silent latency growth.
With no bot call up, one call is allowed (a probe: the figures are from calls that have ended).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TURN_PERIOD_S = 6.0  # seconds of call between two utterances sent to the pool (prompt + answer + reply)
UTILISATION = 0.7  # the share of the pool's time planned for; the rest absorbs bursts


@dataclass(frozen=True)
class BotRoom:
    """The decision, with why (logged and shown beside the collector pacer's decisions)."""

    room: int | None  # new bot calls allowed now (None: no limit known yet — no utterance decoded)
    capacity: int | None  # bot calls the pool sustains
    reason: str  # "unknown" | "capacity" | "behind" | "probe"


def bot_room(load: Any, active: int, *, turn_period_s: float = TURN_PERIOD_S,
             utilisation: float = UTILISATION) -> BotRoom:
    """New bot calls allowed given the pool's `load` (agi.media.recognition.PoolLoad) and the bot calls up now."""
    decode_s = load.decode_s
    if decode_s is None or decode_s <= 0:
        return BotRoom(None, None, "unknown")
    capacity = int(load.workers * utilisation * turn_period_s / decode_s + 1e-9)
    if decode_s >= load.deadline_s:
        capacity = 0
    behind = (load.queued > load.workers or load.wait_s > load.deadline_s / 2 or load.missed_recent > 0)
    if active == 0:  # nothing up to learn from: one call probes the pool (its figures are from older calls)
        return BotRoom(max(1, capacity) if not behind else 1, capacity, "probe")
    if behind:
        return BotRoom(0, capacity, "behind")
    return BotRoom(max(0, capacity - active), capacity, "capacity")


__all__ = ["BotRoom", "TURN_PERIOD_S", "UTILISATION", "bot_room"]
