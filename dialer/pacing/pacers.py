"""Pacers: how many calls to place now, as a function of an observed snapshot of the floor.

Three pacers share one interface, `decide(snapshot) -> int`:
- `ProgressivePacer`: one line per ready collector;
- `VicidialAdaptTapered`: a faithful re-implementation of VICIdial's ADAPT_TAPERED (docs/PACING.md);
- `PredictivePacer`: ours, driven by what an `Estimator` has learned from observed calls (answer
  rate, ring time to answer, greeting length, talk-time survival conditioned on elapsed talk,
  wrap-up), kept under an abandon target that tightens as the profile's budget is spent.
Nothing here does I/O or reads a clock: time comes in the snapshot (`now`, seconds since the
local midnight of the profile's window), so the daemon and the simulator drive the same code.

Driving it live (what `dialer/pacing/simulate.py` does, and what the daemon should do): keep one
`Estimator` per campaign; on a call's DialEnd/Hangup before answer call `observe_dial(now, False,
seconds since originate)`, on answer `observe_dial(now, True, seconds)`; on the AMD result
`observe_screen(now, human, seconds since answer)`; when a collector's leg is bridged
`observe_connect(now, seconds since assignment)`; when a talk ends `observe_talk(now, seconds)`
(`ended=False` if the collector left mid-call); when wrap-up ends `observe_wrap(now, seconds)`.
About once a second build a `PacingSnapshot` (estimates=`estimator.estimates(now)`, budget from
the store's counts in the profile's abandon window) and originate `pacer.decide(snapshot)` calls."""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from dialer.pacing.estimator import Estimates

READY, TALKING, WRAPUP, PAUSED, LOGGED_OUT = "ready", "talking", "wrapup", "paused", "logged_out"
COLLECTOR_STATES = (READY, TALKING, WRAPUP, PAUSED, LOGGED_OUT)


# --------------------------------------------------------------------------- snapshot


@dataclass(frozen=True, slots=True)
class CollectorView:
    """One collector as the floor shows it: state, when it was entered, and whether they leave after it."""

    state: str
    since: float  # snapshot clock time the state was entered (talking: when the call was assigned)
    leaving: bool = False  # logs out / pauses when this call ends: not future capacity


@dataclass(frozen=True, slots=True)
class AbandonBudget:
    """The profile's abandon rule and the counts so far in its window (e.g. the calendar day)."""

    limit: float = 0.03  # abandoned ÷ answered-by-a-person, per window
    answered: int = 0  # calls whose greeting ended (AMD said HUMAN) in the window
    abandoned: int = 0  # of those, no collector within `patience` seconds
    placed: int = 0  # calls placed in the window
    patience: float = 2.0  # seconds after the end of the greeting a collector must be there

    @property
    def rate(self) -> float:
        return self.abandoned / self.answered if self.answered else 0.0

    @property
    def left(self) -> float:
        """Abandons still allowed right now without the window's rate going over the limit."""
        return self.limit * self.answered - self.abandoned


def window_budget(*, limit: float, placed: int, answered: int, abandoned: int, waiting: int,
                  patience: float) -> AbandonBudget:
    """The budget a pacer sees, the same in the daemon and the simulator: the window's counts, with every person
    waiting for a collector now charged as abandoned (they still may be), so calls in progress cannot push the
    window over the limit between two decisions."""
    return AbandonBudget(limit=limit, answered=answered, abandoned=abandoned + waiting, placed=placed,
                         patience=patience)


@dataclass(frozen=True, slots=True)
class PacingSnapshot:
    """What the dialer observes at one instant. Times are on the snapshot clock (`now`)."""

    now: float  # seconds since local midnight of the profile's day
    ringing: tuple[float, ...]  # placed-at times of calls not yet answered
    screening: tuple[float, ...]  # answered-at times of calls whose AMD has not decided yet
    waiting: tuple[float, ...]  # greeting-end times of live calls waiting for a collector
    collectors: tuple[CollectorView, ...]
    budget: AbandonBudget = AbandonBudget()
    line_limit: int = 10_000  # trunk lines: calls in progress may not exceed this
    estimates: "Estimates | None" = None
    _counts: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        counts = dict.fromkeys(COLLECTOR_STATES, 0)
        leaving = dict.fromkeys(COLLECTOR_STATES, 0)
        for c in self.collectors:
            counts[c.state] += 1
            if c.leaving:
                leaving[c.state] += 1
        object.__setattr__(self, "_counts", (counts, leaving))

    def count(self, state: str, include_leaving: bool = True) -> int:
        """Collectors in `state` (optionally not counting those who leave when their call ends)."""
        counts, leaving = self._counts
        return counts[state] if include_leaving else counts[state] - leaving[state]

    @property
    def in_progress(self) -> int:
        """Calls in progress on the trunks, including those talking to collectors."""
        return len(self.ringing) + len(self.screening) + len(self.waiting) + self.count(TALKING)


class Pacer(Protocol):
    name: str
    uses_estimates: bool

    def decide(self, snapshot: PacingSnapshot) -> int: ...


def _capped(n: int, s: PacingSnapshot) -> int:
    return max(0, min(n, s.line_limit - s.in_progress))


# --------------------------------------------------------------------------- progressive


class ProgressivePacer:
    """One line per ready collector who does not already have a call coming."""

    name = "progressive"
    uses_estimates = False

    def decide(self, s: PacingSnapshot) -> int:
        ready = s.count(READY, include_leaving=False)
        return _capped(ready - len(s.ringing) - len(s.screening) - len(s.waiting), s)


# --------------------------------------------------------------------------- VICIdial


def _hhmm(seconds_since_midnight: float) -> int:
    t = int(seconds_since_midnight) // 60
    return (t // 60) * 100 + t % 60


class VicidialAdaptTapered:
    """VICIdial's adaptive dial level (AST_VDadapt.pl + AST_VDauto_dial.pl), as docs/PACING.md reads it.

    Samples ready/waiting/agents every 1 s; drop statistics every 60 s; updates the dial level every
    15 s from the last 15 samples; dials every ~2.5 s up to round(level × agents in call or ready)
    minus every call in progress (including those talking to agents). `fixed_level` turns the
    update off (the "fixed dial level" baseline).
    """

    uses_estimates = False

    def __init__(
        self,
        *,
        drop_limit: float = 3.0,  # percent
        max_level: float = 3.0,
        latest: str = "2100",
        intensity: float = 0.0,
        target: float = 0.0,
        mode: str = "tapered",
        dial_every: float = 2.5,
        fixed_level: float | None = None,
        name: str | None = None,
    ):
        if mode not in ("tapered", "average", "hard_limit"):
            raise ValueError(f"mode: unknown ADAPT mode {mode!r}")
        self.drop_limit, self.max_level, self.latest = drop_limit, max_level, int(latest)
        self.intensity, self.target, self.mode, self.dial_every = intensity, target, mode, dial_every
        self.fixed_level = fixed_level
        self.level = fixed_level if fixed_level is not None else 1.0
        self.name = name or ("fixed level %.2f" % fixed_level if fixed_level else "vicidial")
        self._samples: deque[tuple[int, int, int]] = deque(maxlen=15)
        self._next_sample = self._next_update = self._next_drop = self._next_dial = None  # type: ignore
        self._last_counts = (0, 0, 0)  # (placed, answered, abandoned) at the last drop-stat sample
        self._minute = (0, 0, 0)  # calls, answers, drops in the last minute

    def _sample(self, s: PacingSnapshot) -> None:
        ready = s.count(READY)
        waiting = len(s.waiting)
        agents = ready + s.count(TALKING) + s.count(WRAPUP)
        self._samples.append((ready, waiting, agents))

    def _drop_stats(self, s: PacingSnapshot) -> None:
        b = s.budget
        p0, a0, d0 = self._last_counts
        self._minute = (b.placed - p0, b.answered - a0, b.abandoned - d0)
        self._last_counts = (b.placed, b.answered, b.abandoned)

    def _update(self, s: PacingSnapshot) -> None:
        if not self._samples:
            return
        n = len(self._samples)
        ready = sum(x[0] for x in self._samples) / n
        waiting = sum(x[1] for x in self._samples) / n
        agents_avg = sum(x[2] for x in self._samples) / n
        if agents_avg == 0:
            return  # only while agents are logged in
        d = (ready - waiting) + self.target
        m = d / agents_avg if d and agents_avg else 0.0
        i = self.intensity / 100.0
        m = m * abs(i - 1) if m < 0 else m * (1 + i)
        level = min(max(self.level * (1 + m), 1.0), self.max_level)
        calls_min, answers_min, drops_min = self._minute
        if calls_min > 20 and answers_min and 100.0 * drops_min / answers_min > 50:
            level /= 2
        b = s.budget
        if b.placed > 50 and b.answered and 100.0 * b.abandoned / b.answered > self.drop_limit:
            if self.mode == "hard_limit":
                level = 1.0
            elif self.mode == "average":
                level /= 2
            else:
                left = self.latest - _hhmm(s.now)
                level = 1.0 if left < 0 else level * min(1.0, left / 1000.0)
        self.level = max(level, 1.0)

    def decide(self, s: PacingSnapshot) -> int:
        if self._next_sample is None:
            self._next_sample = self._next_drop = self._next_dial = s.now
            self._next_update = s.now + 15.0
        while s.now >= self._next_sample:
            self._sample(s)
            self._next_sample += 1.0
        if s.now >= self._next_drop:
            self._drop_stats(s)
            self._next_drop += 60.0 * max(1, math.floor((s.now - self._next_drop) / 60.0) + 1)
        if s.now >= self._next_update:
            if self.fixed_level is None:
                self._update(s)
            self._next_update += 15.0 * max(1, math.floor((s.now - self._next_update) / 15.0) + 1)
        if s.now < self._next_dial:
            return 0
        self._next_dial += self.dial_every * max(1, math.floor((s.now - self._next_dial) / self.dial_every) + 1)
        agents = s.count(READY) + s.count(TALKING)
        goal = int(math.floor(self.level * agents + 0.5))
        return _capped(goal - s.in_progress, s)


# --------------------------------------------------------------------------- ours


@dataclass
class PredictiveConfig:
    """Operator settings of the predictive pacer (the profile's limit comes with the snapshot)."""

    target: float = 0.025  # aim below the legal limit
    reserve: float = 1.0  # abandons to keep in hand: below this budget, dial progressively
    taper_calls: float = 0.15  # …and as fewer than this many abandons per available collector
    #                            (at least 1; above `reserve`) are left in the window
    taper_from: float = 0.5  # the target tapers to 0 as the window's rate goes from here (0 = target,
    #                          1 = limit) to the limit
    max_new: int = 64  # never place more than this in one decision
    lines_per_collector: float = 4.0  # in-flight calls per available collector, hard cap
    scale: float = 1.0  # marginal abandon share allowed per unit of target, at the start
    calibrate_every: float = 300.0  # seconds between corrections of `scale` from the realized rate
    calibrate_gain: float = 0.2
    calibrate_after: int = 100  # recent answered calls needed before calibrating
    calibrate_half_life: float = 3600.0  # memory of the recent rate
    aim: float = 0.9  # calibration aims at this share of the target
    scale_range: tuple[float, float] = (0.3, 3.0)
    continuity: float = 0.5  # normal approximation of integer counts: P(X ≥ 0) ≈ Φ((μ + ½)/σ)
    var_floor: float = 0.25


_CONFIG_RANGES: dict[str, tuple[float, float]] = {
    "target": (0.0, 0.2), "reserve": (0.0, 100.0), "taper_from": (0.0, 1.0), "max_new": (1, 1000),
    "lines_per_collector": (1.0, 20.0), "scale": (0.05, 20.0), "calibrate_every": (10.0, 86400.0),
    "calibrate_gain": (0.0, 2.0), "calibrate_after": (0, 100_000), "calibrate_half_life": (60.0, 864000.0),
    "aim": (0.1, 1.0),
}


def predictive_config(located, path: tuple = ()) -> PredictiveConfig:
    """Build a `PredictiveConfig` from the YAML mapping at `path` in an `common.yamlfile.Located`.

    Unknown keys and out-of-range values raise `ConfigError` naming file, line and field, e.g.
    `campaigns/m1.yaml:12: pacing.target: must be between 0.0 and 0.2, got 0.5`.
    """
    data = located.data
    for part in path:
        data = data.get(part) if isinstance(data, dict) else None
    if data is None:
        return PredictiveConfig()
    if not isinstance(data, dict):
        raise located.error(path, "must be a mapping of pacing settings")
    values: dict = {}
    for key, value in data.items():
        if key not in _CONFIG_RANGES:
            raise located.error(path + (key,), f"unknown pacing setting; known: {', '.join(_CONFIG_RANGES)}")
        lo, hi = _CONFIG_RANGES[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise located.error(path + (key,), f"must be a number between {lo} and {hi}, got {value!r}")
        values[key] = int(value) if isinstance(lo, int) and isinstance(hi, int) else float(value)
    return PredictiveConfig(**values)


class PredictivePacer:
    """Ours: places the most calls whose predicted abandon share stays under an adaptive target.

    For each horizon x (0–36 s) it forms, from the snapshot and the learned estimates, the live
    callers who will have reached the end of their greeting by x (callers waiting now, callers in
    AMD, ringing calls weighted by their age-conditioned chance of a person answering) and the
    collectors free by x + slack (ready now; talking ones by the talk-time survival given elapsed
    talk, plus wrap-up), slack = patience − connect time. Calls are added one at a time: the next
    call's caller, arriving at x with the learned ring + greeting distribution, is lost if the
    callers ahead of it (including the calls already added) are at least the collectors free by
    then; with a normal approximation of these Bernoulli sums, the pacer keeps adding calls while
    that loss probability, as a share of its chance of reaching a person, is at most the target
    (× a slowly calibrated scale). The target tightens as the window's budget is spent (by rate
    above `taper_from`, and by count as fewer than `taper_calls` abandons are left); with less
    than `reserve` left it dials progressively. Collectors paused, logged out or leaving after
    their call are not capacity. Never fewer calls than the progressive pacer's (one line per ready
    collector with no call coming: those callers cannot be abandoned; on a small floor the model is
    shyer than that).
    """

    name = "ours"
    uses_estimates = True

    def __init__(self, config: PredictiveConfig | None = None):
        self.config = config or PredictiveConfig()
        self._progressive = ProgressivePacer()
        self.last_mode = "none"
        self.scale = self.config.scale
        self._cal_at: float | None = None
        self._cal_seen = (0, 0)  # window's (answered, abandoned) at the last calibration
        self._recent = (0.0, 0.0)  # decayed (answered, abandoned)

    def _calibrate(self, s: PacingSnapshot) -> None:
        """Nudge the threshold so the recent abandon rate settles on `aim` × target.

        Slow integral control on a decayed count of recent answered and abandoned calls: it corrects
        the model's bias (normal approximation, callers counted after they abandoned), which
        depends on the floor's size. Early on, with few answered calls, it barely moves.
        """
        c, b = self.config, s.budget
        if self._cal_at is None or s.now < self._cal_at:
            self._cal_at, self._cal_seen = s.now, (b.answered, b.abandoned)
            return
        if s.now - self._cal_at < c.calibrate_every:
            return
        f = 0.5 ** ((s.now - self._cal_at) / c.calibrate_half_life)
        d_ans, d_ab = b.answered - self._cal_seen[0], b.abandoned - self._cal_seen[1]
        if d_ans < 0 or d_ab < 0:  # a new window began
            d_ans, d_ab = b.answered, b.abandoned
        self._recent = (self._recent[0] * f + d_ans, self._recent[1] * f + d_ab)
        self._cal_at, self._cal_seen = s.now, (b.answered, b.abandoned)
        answered, abandoned = self._recent
        if answered < c.calibrate_after or self.last_mode != "predictive":
            return
        aim = c.aim * min(c.target, b.limit)
        err = max(-1.0, min(1.0, (aim - abandoned / answered) / aim))
        weight = min(1.0, answered / (3.0 * c.calibrate_after))
        lo, hi = c.scale_range
        self.scale = min(hi, max(lo, self.scale * math.exp(c.calibrate_gain * err * weight)))

    def effective_target(self, b: AbandonBudget, collectors: int = 20) -> float:
        """The abandon share allowed now, given what the window's budget has left (0 = progressive).

        A burst of abandons grows with the floor, so the count taper scales with `collectors`.
        """
        c = self.config
        target = min(c.target, b.limit)
        if b.left < c.reserve:
            return 0.0
        soft = target + c.taper_from * (b.limit - target)
        r = b.rate
        by_rate = 1.0 if r <= soft else max(0.0, (b.limit - r) / (b.limit - soft))
        taper = max(1.0, c.taper_calls * collectors) if c.taper_calls > 0 else 0.0
        by_count = min(1.0, (b.left - c.reserve) / taper) if taper else 1.0
        return target * min(by_rate, by_count)

    def decide(self, s: PacingSnapshot) -> int:
        """Calls to place now."""
        c = self.config
        est = s.estimates
        available = len(s.collectors) - s.count(PAUSED) - s.count(LOGGED_OUT)
        tau = self.effective_target(s.budget, available)
        self._calibrate(s)
        if est is None or tau <= 0.0:
            self.last_mode = "progressive"
            return self._progressive.decide(s)
        self.last_mode = "predictive"
        now = s.now
        o_ring, o_screen, o_talk, o_wrap, o_wait, o_ready = est.offsets
        n_ring, n_screen = len(est.ring_mean) - 1, len(est.screen_mean) - 1
        n_talk, n_wrap = len(est.talk_free) - 1, len(est.wrap_free) - 1
        rb, sb, tb, wb = est.ring_bin, est.screen_bin, est.talk_bin, est.wrap_bin
        idx = [o_wait] * len(s.waiting)
        capacity = 0
        talking = 0
        for col in s.collectors:
            if col.leaving:
                if col.state == TALKING:
                    talking += 1
                continue
            st = col.state
            if st == READY:
                idx.append(o_ready)
            elif st == TALKING:
                talking += 1
                idx.append(o_talk + min(int((now - col.since) / tb), n_talk))
            elif st == WRAPUP:
                idx.append(o_wrap + min(int((now - col.since) / wb), n_wrap))
            else:
                continue
            capacity += 1
        floor = self._progressive.decide(s)
        if capacity == 0:
            return floor
        idx.extend(o_ring + min(int((now - t) / rb), n_ring) for t in s.ringing)
        idx.extend(o_screen + min(int((now - t) / sb), n_screen) for t in s.screening)
        in_flight = len(s.ringing) + len(s.screening) + len(s.waiting)
        n_max = min(c.max_new, s.line_limit - in_flight - talking,
                    int(c.lines_per_collector * capacity) - in_flight)
        if n_max <= floor:
            return floor
        k = len(est.horizons)
        tot = est.table[idx].sum(axis=0)
        base_mu = tot[:k] - tot[2 * k:3 * k]
        base_var = tot[k:2 * k] + tot[3 * k:] + c.var_floor
        g, gv, dg = est.new_call, est.new_call_var, est.new_call_pmf
        limit = tau * self.scale * max(float(g[-1]), 1e-9)
        lo = 0
        while lo < n_max:  # evaluate in chunks of 8: most decisions place a few calls at most
            hi = min(n_max, lo + 8)
            n = np.arange(lo, hi)[:, None]  # calls already decided before the next one
            mu = base_mu + n * g
            var = base_var + n * gv
            z = (mu + c.continuity) / np.sqrt(var)
            # the next call's caller finds no collector if callers ahead of it ≥ collectors by then
            p_lost = 0.5 * (1.0 + np.tanh(0.7978845608 * (z + 0.044715 * z * z * z)))
            bad = np.nonzero(p_lost @ dg > limit)[0]
            if len(bad):
                return max(floor, lo + int(bad[0]))
            lo = hi
        return n_max
