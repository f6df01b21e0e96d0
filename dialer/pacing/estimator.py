"""What the floor has taught us: talk, answer and wait distributions, learned online."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# --------------------------------------------------------------------------- estimator


@dataclass(frozen=True, eq=False)
class Estimates:
    """What the estimator has learned, in the shape the predictive pacer needs.

    For horizons `x` (seconds from now): `ring_mean[a, k]` = P(a call ringing for a·ring_bin seconds
    becomes a live caller waiting for a collector within x[k] s); `*_var` its Bernoulli variance;
    `screen_*` the same for calls in AMD; `talk_free[e, k]` = P(a collector talking for e seconds is
    ready within x[k] + slack s), `wrap_free` likewise for wrap-up; slack = patience − connect time.
    """

    horizons: np.ndarray
    ring_bin: float
    screen_bin: float
    talk_bin: float
    wrap_bin: float
    ring_mean: np.ndarray
    ring_var: np.ndarray
    screen_mean: np.ndarray
    screen_var: np.ndarray
    talk_free: np.ndarray
    wrap_free: np.ndarray
    p_human: float  # P(a placed call reaches a live person)
    p_answer: float
    p_human_given_answer: float
    connect_mean: float
    observations: int

    table: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        # one row per observable state, columns [demand mean | demand var | supply mean | supply var]
        k = len(self.horizons)
        sizes = [len(self.ring_mean), len(self.screen_mean), len(self.talk_free), len(self.wrap_free), 1, 1]
        off = np.cumsum([0] + sizes)
        o_ring, o_screen, o_talk, o_wrap, o_wait, o_ready = (int(o) for o in off[:-1])
        if self.table is None:
            table = np.zeros((int(off[-1]), 4 * k))
            table[o_talk:o_wrap, 2 * k:3 * k] = self.talk_free
            table[o_talk:o_wrap, 3 * k:] = self.talk_free * (1 - self.talk_free)
            table[o_wrap:o_wait, 2 * k:3 * k] = self.wrap_free
            table[o_wrap:o_wait, 3 * k:] = self.wrap_free * (1 - self.wrap_free)
            table[o_wait, :k] = 1.0  # a caller waiting now
            table[o_ready, 2 * k:3 * k] = 1.0  # a collector ready now
        else:
            table = self.table.copy()
        table[o_ring:o_screen, :k] = self.ring_mean
        table[o_ring:o_screen, k:2 * k] = self.ring_var
        table[o_screen:o_talk, :k] = self.screen_mean
        table[o_screen:o_talk, k:2 * k] = self.screen_var
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "offsets", (o_ring, o_screen, o_talk, o_wrap, o_wait, o_ready))
        g = self.ring_mean[0]
        object.__setattr__(self, "new_call", g)
        object.__setattr__(self, "new_call_var", g * (1 - g))
        object.__setattr__(self, "new_call_pmf", np.diff(g, prepend=0.0))


class _Hist:
    """A fixed-bin histogram with optional right-censored counts (for Kaplan–Meier)."""

    def __init__(self, width: float, nbins: int):
        self.width, self.nbins = width, nbins
        self.events = np.zeros(nbins)
        self.censored = np.zeros(nbins)
        self.n = 0

    def add(self, x: float, censored: bool = False) -> None:
        i = min(max(int(x / self.width), 0), self.nbins - 1)
        (self.censored if censored else self.events)[i] += 1.0
        self.n += 1

    def survival(self, prior: np.ndarray, prior_weight: float) -> np.ndarray:
        """S(t) at the upper edge of each bin, Kaplan–Meier with a pseudo-count prior pmf."""
        ev = self.events + prior_weight * prior
        ce = self.censored
        at_risk = np.cumsum((ev + ce)[::-1])[::-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            h = np.where(at_risk > 0, ev / at_risk, 1.0)
        s = np.cumprod(1.0 - h)
        s[-1] = 0.0
        return s


def _prior_pmf(width: float, nbins: int, lo: float, hi: float) -> np.ndarray:
    t = (np.arange(nbins) + 0.5) * width
    p = ((t >= lo) & (t <= hi)).astype(float)
    return p / p.sum()


def _lognormal_pmf(width: float, nbins: int, mean: float, sd: float) -> np.ndarray:
    s2 = math.log(1 + (sd / mean) ** 2)
    mu = math.log(mean) - s2 / 2
    t = (np.arange(nbins) + 0.5) * width
    p = np.exp(-((np.log(t) - mu) ** 2) / (2 * s2)) / t
    return p / p.sum()


class Estimator:
    """Learns the call and collector distributions online, from what a dialer really observes.

    Feed it `observe_dial` (a call stopped ringing: answered or not, after how long),
    `observe_screen` (AMD decided: person or machine, seconds after answer), `observe_connect`,
    `observe_talk` (talk seconds; `ended=False` when the collector left mid-call: censored) and
    `observe_wrap`. Rates forget with a half-life (the answer rate drifts through the day); the
    shapes are cumulative. `estimates(now)` returns a cached `Estimates`, refreshed every
    `refresh` seconds. Weak priors stand in until data arrives.
    """

    HORIZONS = np.array([0.0, 1, 2, 3, 4, 6, 8, 10, 12, 14, 16, 19, 22, 25, 28, 32, 36])

    def __init__(self, *, patience: float = 2.0, half_life: float = 900.0, refresh: float = 30.0,
                 shape_refresh: float = 900.0, prior_weight: float = 5.0):
        self.patience, self.half_life, self.refresh = patience, half_life, refresh
        self.shape_refresh, self.prior_weight = shape_refresh, prior_weight
        self.ring_ans = _Hist(1.0, 60)  # time to answer, answered calls
        self.ring_fail = _Hist(1.0, 60)  # time to give up, unanswered calls
        self.screen_h = _Hist(0.25, 40)  # AMD → person, seconds after answer (end of greeting)
        self.screen_m = _Hist(0.25, 40)  # AMD → machine
        self.talk = _Hist(1.0, 1800)
        self.wrap = _Hist(0.5, 240)
        # decayed counts (answered, unanswered), (person, machine); prior: 20 %, 80 % person
        self._dial = [2.0, 8.0]
        self._screen = [8.0, 2.0]
        self._decay_at: float | None = None
        self._connect = [0.5 * 5, 5.0]  # sum, count (prior 0.5 s)
        self._cached: Estimates | None = None
        self._cached_at = -math.inf
        self._shapes: tuple | None = None
        self._shapes_at = -math.inf
        self._shape_n = 0
        self._table: np.ndarray | None = None
        self.n_observed = 0

    # -- observations
    def _decay(self, now: float) -> None:
        if self._decay_at is not None and now > self._decay_at:
            f = 0.5 ** ((now - self._decay_at) / self.half_life)
            self._dial = [x * f for x in self._dial]
            self._screen = [x * f for x in self._screen]
        self._decay_at = now if self._decay_at is None else max(now, self._decay_at)

    def observe_dial(self, now: float, answered: bool, seconds: float) -> None:
        self._decay(now)
        self._dial[0 if answered else 1] += 1.0
        (self.ring_ans if answered else self.ring_fail).add(seconds)
        self.n_observed += 1

    def observe_screen(self, now: float, human: bool, seconds: float) -> None:
        self._decay(now)
        self._screen[0 if human else 1] += 1.0
        (self.screen_h if human else self.screen_m).add(seconds)
        self.n_observed += 1

    def observe_connect(self, now: float, seconds: float) -> None:
        self._connect[0] += seconds
        self._connect[1] += 1.0
        self.n_observed += 1

    def observe_talk(self, now: float, seconds: float, ended: bool = True) -> None:
        self.talk.add(seconds, censored=not ended)
        self.n_observed += 1

    def observe_wrap(self, now: float, seconds: float) -> None:
        self.wrap.add(seconds)
        self.n_observed += 1

    # -- summaries
    @property
    def p_answer(self) -> float:
        return self._dial[0] / (self._dial[0] + self._dial[1])

    @property
    def p_human_given_answer(self) -> float:
        return self._screen[0] / (self._screen[0] + self._screen[1])

    @property
    def p_human(self) -> float:
        return self.p_answer * self.p_human_given_answer

    def _shape_due(self, now: float) -> bool:
        n = self.ring_ans.n + self.talk.n + self.screen_h.n
        if self._shapes is None:
            return True
        early = n >= 2 * max(self._shape_n, 10)  # refresh quickly while data doubles
        return early or now - self._shapes_at >= self.shape_refresh

    def _compute_shapes(self) -> tuple:
        x = self.HORIZONS
        pw = self.prior_weight
        # survival functions on each histogram's grid (value at upper bin edge)
        s_ra = self.ring_ans.survival(_prior_pmf(1.0, 60, 5, 25), pw)
        s_rf = self.ring_fail.survival(_prior_pmf(1.0, 60, 2, 30), pw)
        s_sh = self.screen_h.survival(_prior_pmf(0.25, 40, 1.5, 3.0), pw)
        s_sm = self.screen_m.survival(_prior_pmf(0.25, 40, 2.0, 4.5), pw)
        s_t = self.talk.survival(_lognormal_pmf(1.0, 1800, 120, 90), pw)
        s_w = self.wrap.survival(_prior_pmf(0.5, 240, 2, 15), pw)
        slack = self.patience - self._connect[0] / self._connect[1]

        # greeting length (person): cdf on 0.25-s grid
        def cdf_at(surv: np.ndarray, width: float, t: np.ndarray) -> np.ndarray:
            grid = np.concatenate(([0.0], (np.arange(len(surv)) + 1) * width))
            return 1.0 - np.interp(t, grid, np.concatenate(([1.0], surv)), left=1.0, right=0.0)

        # ring block: P(R + A ≤ a + x | R > a) for answered calls, on the ring grid
        a = np.arange(60) * 1.0  # age at bin start
        r = (np.arange(60) + 0.5) * 1.0  # ring time mid-bin
        f_r = -np.diff(np.concatenate(([1.0], s_ra)))  # pmf
        t = a[:, None, None] + x[None, :, None] - r[None, None, :]
        fa = cdf_at(s_sh, 0.25, t)  # (a, x, r)
        mask = (r[None, :] > a[:, None]).astype(float)  # (a, r)
        num = np.einsum("axr,ar,r->ax", fa, mask, f_r)
        surv_ra = np.maximum(1.0 - cdf_at(s_ra, 1.0, a), 1e-12)
        surv_rf = np.maximum(1.0 - cdf_at(s_rf, 1.0, a), 1e-12)
        ring_arrive = np.clip(num / surv_ra[:, None], 0.0, 1.0)
        # screen block: P(A ≤ s + x | A > s), person greeting
        sgrid = np.arange(40) * 0.25
        surv_sh = np.maximum(1.0 - cdf_at(s_sh, 0.25, sgrid), 1e-12)
        surv_sm = np.maximum(1.0 - cdf_at(s_sm, 0.25, sgrid), 1e-12)
        screen_arrive = np.clip(
            (cdf_at(s_sh, 0.25, sgrid[:, None] + x[None, :]) - (1.0 - surv_sh)[:, None])
            / surv_sh[:, None], 0.0, 1.0)
        # talk + wrap: P(T + W ≤ e + y | T > e), y = x + slack; W at five quantiles of wrap-up
        wgrid = np.concatenate(([0.0], (np.arange(240) + 1) * 0.5))
        w_q = np.interp([0.1, 0.3, 0.5, 0.7, 0.9], 1.0 - np.concatenate(([1.0], s_w)), wgrid)
        e = np.arange(1800) * 1.0
        surv_te = np.maximum(1.0 - cdf_at(s_t, 1.0, e), 1e-12)
        y = x + slack
        talk_free = np.zeros((1800, len(x)))
        for wq in w_q:
            talk_free += 0.2 * (cdf_at(s_t, 1.0, e[:, None] + y[None, :] - wq) - (1.0 - surv_te)[:, None])
        talk_free = np.clip(talk_free / surv_te[:, None], 0.0, 1.0)
        wg = np.arange(240) * 0.5
        surv_w = np.maximum(1.0 - cdf_at(s_w, 0.5, wg), 1e-12)
        wrap_free = np.clip(
            (cdf_at(s_w, 0.5, wg[:, None] + y[None, :]) - (1.0 - surv_w)[:, None]) / surv_w[:, None], 0.0, 1.0)
        return ring_arrive, surv_ra, surv_rf, screen_arrive, surv_sh, surv_sm, talk_free, wrap_free

    def estimates(self, now: float) -> Estimates:
        if self._cached is not None and now - self._cached_at < self.refresh:
            return self._cached
        if self._shape_due(now):
            self._shapes = self._compute_shapes()
            self._shapes_at = now
            self._table = None  # talk and wrap-up rows change with the shapes
            self._shape_n = self.ring_ans.n + self.talk.n + self.screen_h.n
        ring_arrive, surv_ra, surv_rf, screen_arrive, surv_sh, surv_sm, talk_free, wrap_free = self._shapes
        self._decay(now)
        pa, ph = self.p_answer, self.p_human_given_answer
        # P(person | still ringing at age a), P(person | still in AMD at age s)
        w_ring = ph * pa * surv_ra / (pa * surv_ra + (1 - pa) * surv_rf)
        w_screen = ph * surv_sh / (ph * surv_sh + (1 - ph) * surv_sm)
        ring_mean = w_ring[:, None] * ring_arrive
        screen_mean = w_screen[:, None] * screen_arrive
        self._cached = Estimates(
            horizons=self.HORIZONS, ring_bin=1.0, screen_bin=0.25, talk_bin=1.0, wrap_bin=0.5,
            ring_mean=ring_mean, ring_var=ring_mean * (1 - ring_mean),
            screen_mean=screen_mean, screen_var=screen_mean * (1 - screen_mean),
            talk_free=talk_free, wrap_free=wrap_free,
            p_human=pa * ph, p_answer=pa, p_human_given_answer=ph,
            connect_mean=self._connect[0] / self._connect[1], observations=self.n_observed,
            table=self._table,
        )
        self._table = self._cached.table
        self._cached_at = now
        return self._cached


NOT_ANSWERED = ("busy", "no_answer", "failed", "unallocated")


def warm(estimator: Estimator, history: list[dict[str, Any]], now: float, limit: int = 2000) -> int:
    """Teach an estimator what the campaign's earlier calls showed (dict rows: placed_at, answered_at, ended_at,
    outcome, machine, agent, connected_at, screened_at; times in any one clock), all observed at `now`, so the
    day starts from the campaign's own rates and shapes and the live floor takes over as it decays. Pure.
    Returns how many calls were used."""
    used = 0
    for r in history[-limit:]:
        placed, answered, ended = r.get("placed_at"), r.get("answered_at"), r.get("ended_at")
        if placed is None or ended is None:
            continue
        if answered is not None:
            estimator.observe_dial(now, True, max(0.0, answered - placed))
            if r.get("screened_at") is not None:
                estimator.observe_screen(now, not r.get("machine"), max(0.0, r["screened_at"] - answered))
            if r.get("connected_at") is not None:
                estimator.observe_talk(now, max(0.0, ended - r["connected_at"]))
        elif r.get("outcome") in NOT_ANSWERED:
            estimator.observe_dial(now, False, max(0.0, ended - placed))
        else:
            continue
        used += 1
    return used
