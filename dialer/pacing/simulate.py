"""Seeded discrete-event simulator of a collections floor, replaying the same call stream against any pacer.

A seeded `CallStream` fixes every debtor's behaviour by call index (answers or not, ring time,
AMD time, greeting, talk time, collector connect time), so each pacer meets the same people in
the same order. `simulate(pacer, scenario, seed)` runs one shift and returns `SimResult`;
abandoned = no collector connected within `patience` seconds of the end of the greeting (AMD's
HUMAN decision). Pacers only see what a dialer would observe: the snapshot and, for learning
pacers, an `Estimator` fed with observed outcomes. `dialer simulate pacing` is the CLI."""
from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import asdict, dataclass, replace
from typing import Callable

import click
import numpy as np

from dialer.pacing.estimator import Estimator, warm
from dialer.pacing.pacers import (
    LOGGED_OUT,
    PAUSED,
    READY,
    TALKING,
    WRAPUP,
    AbandonBudget,
    CollectorView,
    Pacer,
    PacingSnapshot,
    PredictivePacer,
    ProgressivePacer,
    VicidialAdaptTapered,
    window_budget,
)

SHIFT_START = 9 * 3600.0  # the shift starts at 09:00 local (VICIdial's taper reads the clock)


@dataclass(frozen=True)
class Scenario:
    """One floor and its callers. Times in seconds."""

    name: str = "standard"
    agents: int = 20
    hours: float = 8.0
    p_human: float = 0.25  # answered by a person (the "answer probability")
    p_machine: float = 0.08  # answered by a machine (AMD hangs up, no collector needed)
    drift: float = 0.0  # person-answer probability swings ±drift over the shift (peak at start/end)
    ring: tuple[float, float] = (5.0, 25.0)  # ring time to answer, uniform
    no_answer_timeout: float = 30.0
    busy_share: float = 0.3  # of unanswered calls, fail fast (busy/unreachable) in `fail_fast` s
    fail_fast: tuple[float, float] = (2.0, 8.0)  # seconds a busy/unreachable call rings before it fails, uniform
    greeting: tuple[float, float] = (1.5, 2.8)  # AMD HUMAN decision after answer, uniform
    machine_amd: tuple[float, float] = (2.0, 4.0)
    connect: tuple[float, float] = (0.2, 0.8)  # collector's phone bridged after assignment
    handle_mean: float = 120.0
    handle_sd: float = 60.0
    bimodal: bool = False  # handle time: 50 % short (mean 40, sd 15), 50 % long (mean 200, sd 60)
    wrapup: float = 5.0  # profile's wrap-up seconds per collector
    patience: float = 2.0  # abandoned = no collector within this after the end of greeting
    limit: float = 0.03
    breaks: bool = False  # collectors take 10-min pauses; two log out mid-call and leave
    lines_per_agent: float = 4.0
    prior_answered: int = 0  # answered earlier in the abandon window, none abandoned (a live run's history)

    def p_human_at(self, t: float) -> float:
        """Person-answer probability `t` seconds into the shift."""
        if not self.drift:
            return self.p_human
        return self.p_human + self.drift * math.cos(2 * math.pi * t / (self.hours * 3600.0))


SCENARIOS: dict[str, Scenario] = {
    "standard": Scenario(),
    "bimodal": Scenario(name="bimodal", bimodal=True),
    "drift": Scenario(name="drift", drift=0.1),
    "breaks": Scenario(name="breaks", breaks=True),
    # the run quoted in docs/PACING.md: no machines, AMD time, connect time or wrap-up
    "reference": Scenario(name="reference", p_machine=0.0, greeting=(0.0, 0.0), connect=(0.0, 0.0),
                          wrapup=0.0),
}


def scenario(name: str, **overrides) -> Scenario:
    if name not in SCENARIOS:
        raise click.BadParameter(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}",
                                 param_hint="--scenario")
    return replace(SCENARIOS[name], **overrides)


class CallStream:
    """The seeded callers, by call index, and the collectors' pause/logout schedule."""

    def __init__(self, sc: Scenario, seed: int):
        self.scenario, self.seed = sc, seed
        n = int(sc.agents * sc.hours * 3600 / 10) + 1000  # ample: ≤ one dial per agent per 10 s
        rng = np.random.default_rng([seed, 6])
        self.u_answer = rng.random(n).tolist()
        self.ring = rng.uniform(*sc.ring, n).tolist()
        fail_fast = rng.random(n) < sc.busy_share
        self.fail = np.where(fail_fast, rng.uniform(*sc.fail_fast, n), sc.no_answer_timeout).tolist()
        self.greeting = rng.uniform(*sc.greeting, n).tolist()
        self.machine_amd = rng.uniform(*sc.machine_amd, n).tolist()
        self.connect = rng.uniform(*sc.connect, n).tolist()
        if sc.bimodal:
            short = rng.random(n) < 0.5
            h = np.where(short, _lognormal(rng, 40.0, 15.0, n), _lognormal(rng, 200.0, 60.0, n))
        else:
            h = _lognormal(rng, sc.handle_mean, sc.handle_sd, n)
        self.handle = h.tolist()
        self.events: list[tuple[float, int, str]] = []  # (t, agent, "pause"|"logout")
        if sc.breaks:
            arng = np.random.default_rng([seed, 7])
            shift = sc.hours * 3600
            for a in range(sc.agents):
                for k in range(int(sc.hours // 2)):
                    self.events.append((float(arng.uniform(k * 7200 + 1800, (k + 1) * 7200)), a, "pause"))
            for a in arng.choice(sc.agents, size=min(2, sc.agents), replace=False):
                self.events.append((float(arng.uniform(0.3, 0.7) * shift), int(a), "logout"))
            self.events.sort()

    def __len__(self) -> int:
        return len(self.u_answer)


def _lognormal(rng: np.random.Generator, mean: float, sd: float, n: int) -> np.ndarray:
    s2 = math.log(1 + (sd / mean) ** 2)
    return rng.lognormal(math.log(mean) - s2 / 2, math.sqrt(s2), n)


@dataclass
class SimResult:
    """One shift's outcome for one pacer."""

    pacer: str
    scenario: str
    agents: int
    seed: int
    occupancy: float  # talk ÷ available (logged in, not paused) collector time
    abandon_rate: float  # abandoned ÷ answered by a person (greeting ended)
    worst_hour_abandon: float  # worst rolling 60-min window (windows with ≥ 20 answered)
    placed: int
    answered: int
    abandoned: int
    connects: int
    connects_per_agent_hour: float
    max_prefix_abandon: float  # worst day-so-far rate after the first 100 answered
    decide_ms_mean: float = 0.0
    decide_ms_p99: float = 0.0


PACE_STEP = 1.0  # the simulator asks the pacer every second (VICIdial keeps its own 2.5-s step)


def simulate(pacer: Pacer, sc: Scenario, seed: int, stream: CallStream | None = None,
             *, timer: Callable[[], float] | None = None, history: list[dict] | None = None) -> SimResult:
    """Run one shift of `sc` with `pacer` against the seeded stream; deterministic for a seed. `history`: the
    campaign's earlier calls (estimator.warm's rows), which warm the estimator when the shift starts, as the
    daemon warms it from the store."""
    st = stream if stream is not None and stream.seed == seed and stream.scenario == sc else CallStream(sc, seed)
    est = Estimator(patience=sc.patience) if pacer.uses_estimates else None
    t0 = SHIFT_START
    if est is not None and history:
        warm(est, history, t0)
    T = t0 + sc.hours * 3600.0
    heap: list = []
    seq = 0

    def push(t: float, kind: int, data: int) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(heap, (t, seq, kind, data))

    RING_END, AMD_END, DEADLINE, CONNECT, TALK_END, WRAP_END, PAUSE, LOGOUT, PAUSE_OVER = range(9)
    n_agents = sc.agents
    views = [CollectorView(READY, t0)] * n_agents
    state = [READY] * n_agents
    call_of = [-1] * n_agents  # call being talked, or -1
    pending = [None] * n_agents  # "pause"/"logout" to apply when the collector frees up
    ready_order: deque[int] = deque(range(n_agents))  # longest-idle first
    avail_since = [t0] * n_agents  # start of current available (not paused, logged in) stretch
    avail_total = 0.0
    talk_total = 0.0
    ringing: dict[int, float] = {}
    screening: dict[int, float] = {}
    waiting: dict[int, float] = {}  # call -> greeting end
    wait_q: deque[int] = deque()
    next_call = 0
    placed = answered = abandoned = connects = 0
    greet_times: list[float] = []
    greet_abandoned: list[bool] = []
    greet_index: dict[int, int] = {}
    talk_start: dict[int, float] = {}
    decide_times: list[float] = []
    for t_evt, a, what in st.events:
        push(t0 + t_evt, LOGOUT if what == "logout" else PAUSE, a)

    def set_state(a: int, s_: str, t: float, leaving: bool = False) -> None:
        state[a] = s_
        views[a] = CollectorView(s_, t, leaving)

    def end_avail(a: int, t: float) -> None:
        nonlocal avail_total
        avail_total += t - avail_since[a]

    def assign(a: int, call: int, t: float) -> None:
        nonlocal connects
        del waiting[call]
        ready_order.remove(a)
        set_state(a, TALKING, t, leaving=pending[a] is not None)
        call_of[a] = call
        c = st.connect[call]
        push(t + c, CONNECT, a)
        if est is not None:
            est.observe_connect(t + c, c)
        connects += 1

    def free_collector(a: int, t: float) -> None:
        """A collector became ready: apply a pending pause/logout, or serve the queue."""
        what = pending[a]
        if what is not None:
            pending[a] = None
            end_avail(a, t)
            if what == "pause":
                set_state(a, PAUSED, t)
                push(t + 600.0, PAUSE_OVER, a)
            else:
                set_state(a, LOGGED_OUT, t)
            return
        set_state(a, READY, t)
        ready_order.append(a)
        serve_queue(t)

    def serve_queue(t: float) -> None:
        while wait_q and ready_order:
            call = wait_q[0]
            if call not in waiting:
                wait_q.popleft()
                continue
            a = ready_order[0]
            if t + st.connect[call] > waiting[call] + sc.patience:
                break  # its DEADLINE event will abandon it
            wait_q.popleft()
            assign(a, call, t)

    def budget() -> AbandonBudget:  # the daemon's definition (pacers.window_budget)
        return window_budget(limit=sc.limit, placed=placed, answered=answered + sc.prior_answered,
                             abandoned=abandoned, waiting=len(waiting), patience=sc.patience)

    tick = t0
    while tick < T:
        while heap and heap[0][0] <= tick:
            t, _, kind, data = heapq.heappop(heap)
            if kind == RING_END:
                call = data
                placed_at = ringing.pop(call)
                u = st.u_answer[call]
                ph = sc.p_human_at(placed_at - t0)
                if u < ph + sc.p_machine:
                    screening[call] = t
                    human = u < ph
                    if est is not None:
                        est.observe_dial(t, True, t - placed_at)
                    push(t + (st.greeting[call] if human else st.machine_amd[call]), AMD_END,
                         call if human else -call - 1)
                elif est is not None:
                    est.observe_dial(t, False, t - placed_at)
            elif kind == AMD_END:
                human = data >= 0
                call = data if human else -data - 1
                t_ans = screening.pop(call)
                if est is not None:
                    est.observe_screen(t, human, t - t_ans)
                if human:
                    answered += 1
                    greet_index[call] = len(greet_times)
                    greet_times.append(t)
                    greet_abandoned.append(False)
                    waiting[call] = t
                    wait_q.append(call)
                    push(t + sc.patience - st.connect[call], DEADLINE, call)
                    serve_queue(t)
            elif kind == DEADLINE:
                call = data
                if call in waiting:
                    del waiting[call]
                    abandoned += 1
                    greet_abandoned[greet_index[call]] = True
            elif kind == CONNECT:
                a = data
                if state[a] == TALKING and call_of[a] >= 0:
                    call = call_of[a]
                    talk_start[a] = t
                    push(t + st.handle[call], TALK_END, a * 1_000_000 + call)
            elif kind == TALK_END:
                a, call = divmod(data, 1_000_000)
                if call_of[a] != call:
                    continue  # the collector left mid-call: already accounted
                dur = t - talk_start.pop(a)
                talk_total += dur
                call_of[a] = -1
                if est is not None:
                    est.observe_talk(t, dur, True)
                set_state(a, WRAPUP, t, leaving=pending[a] is not None)
                push(t + sc.wrapup, WRAP_END, a)
            elif kind == WRAP_END:
                a = data
                if est is not None:
                    est.observe_wrap(t, sc.wrapup)
                free_collector(a, t)
            elif kind == PAUSE_OVER:
                a = data
                if state[a] == PAUSED:
                    avail_since[a] = t
                    free_collector(a, t)
            elif kind in (PAUSE, LOGOUT):
                a = data
                what = "logout" if kind == LOGOUT else "pause"
                if state[a] in (PAUSED, LOGGED_OUT):
                    continue
                if what == "logout" and state[a] == TALKING:
                    # logs out mid-call: the call ends now, its talk time is censored
                    call = call_of[a]
                    call_of[a] = -1
                    if a in talk_start:
                        dur = t - talk_start.pop(a)
                        talk_total += dur
                        if est is not None:
                            est.observe_talk(t, dur, False)
                    end_avail(a, t)
                    set_state(a, LOGGED_OUT, t)
                    pending[a] = None
                    continue
                if state[a] == READY:
                    ready_order.remove(a)
                    pending[a] = what
                    free_collector(a, t)
                    continue
                pending[a] = what
                views[a] = CollectorView(state[a], views[a].since, True)
        # ask the pacer
        snap = PacingSnapshot(
            now=tick,
            ringing=tuple(ringing.values()),
            screening=tuple(screening.values()),
            waiting=tuple(waiting.values()),
            collectors=tuple(views),
            budget=budget(),
            line_limit=int(sc.lines_per_agent * n_agents),
            estimates=est.estimates(tick) if est is not None else None,
        )
        if timer is not None:
            t0 = timer()
            n = pacer.decide(snap)
            decide_times.append(timer() - t0)
        else:
            n = pacer.decide(snap)
        for _ in range(n):
            if next_call >= len(st):
                break
            call = next_call
            next_call += 1
            placed += 1
            ringing[call] = tick
            u = st.u_answer[call]
            answers = u < sc.p_human_at(tick - t0) + sc.p_machine
            push(tick + (st.ring[call] if answers else st.fail[call]), RING_END, call)
        tick += PACE_STEP

    # close the books at the end of the shift
    for a in range(n_agents):
        if a in talk_start:
            talk_total += T - talk_start[a]
        if state[a] != PAUSED and state[a] != LOGGED_OUT:
            end_avail(a, T)
    occupancy = talk_total / avail_total if avail_total else 0.0
    gt = np.asarray(greet_times)
    ga = np.asarray(greet_abandoned, dtype=float)
    worst = _worst_window(gt - t0, ga, 3600.0, T - t0)
    cum_a = np.cumsum(ga)
    k = np.arange(1, len(ga) + 1)
    prefix = float((cum_a / k)[100:].max()) if len(ga) > 100 else (float(ga.mean()) if len(ga) else 0.0)
    dt = np.asarray(decide_times) * 1000.0
    return SimResult(
        pacer=pacer.name, scenario=sc.name, agents=sc.agents, seed=seed,
        occupancy=occupancy, abandon_rate=abandoned / answered if answered else 0.0,
        worst_hour_abandon=worst, placed=placed, answered=answered, abandoned=abandoned,
        connects=connects, connects_per_agent_hour=connects / (avail_total / 3600.0) if avail_total else 0.0,
        max_prefix_abandon=prefix,
        decide_ms_mean=float(dt.mean()) if len(dt) else 0.0,
        decide_ms_p99=float(np.percentile(dt, 99)) if len(dt) else 0.0,
    )


def _worst_window(times: np.ndarray, abandoned: np.ndarray, width: float, T: float,
                  min_answered: int = 20) -> float:
    """Worst abandon rate over rolling windows of `width` s (step 5 min) with enough answered calls."""
    if len(times) == 0:
        return 0.0
    cum = np.concatenate(([0.0], np.cumsum(abandoned)))
    worst = 0.0
    for start in np.arange(0.0, max(T - width, 0.0) + 1.0, 300.0):
        lo, hi = np.searchsorted(times, [start, start + width])
        if hi - lo >= min_answered:
            worst = max(worst, (cum[hi] - cum[lo]) / (hi - lo))
    return float(worst)


# --------------------------------------------------------------------------- baselines tuned in hindsight


def tune_vicidial_target(sc: Scenario, seed: int, stream: CallStream,
                         defaults: SimResult | None = None) -> tuple[SimResult, float]:
    """The largest integer difference target (−agents…0) whose shift stays ≤ the limit, by bisection."""
    lo, hi = -sc.agents, 0  # lo assumed safe, hi maybe not
    best: SimResult | None = None
    r = defaults or simulate(VicidialAdaptTapered(target=hi), sc, seed, stream)
    if r.abandon_rate <= sc.limit:
        return replace(r, pacer="vicidial tuned"), 0.0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        r = simulate(VicidialAdaptTapered(target=mid, name="vicidial tuned"), sc, seed, stream)
        if r.abandon_rate <= sc.limit:
            lo, best = mid, r
        else:
            hi = mid
    if best is None:
        best = simulate(VicidialAdaptTapered(target=lo, name="vicidial tuned"), sc, seed, stream)
    return best, float(lo)


def tune_fixed_level(sc: Scenario, seed: int, stream: CallStream, steps: int = 6,
                     top: float = 2.5) -> tuple[SimResult, float]:
    """The highest fixed dial level in [1, top] whose shift stays ≤ the limit, by bisection."""
    def run(level: float) -> SimResult:
        return simulate(VicidialAdaptTapered(fixed_level=level, name="best fixed level"), sc, seed, stream)

    lo, hi = 1.0, top
    best: SimResult | None = None
    for _ in range(steps):
        mid = (lo + hi) / 2
        r = run(mid)
        if r.abandon_rate <= sc.limit:
            lo, best = mid, r
        else:
            hi = mid
    return (best if best is not None else run(lo)), lo


PACERS: dict[str, Callable[[], Pacer]] = {
    "progressive": ProgressivePacer,
    "vicidial": lambda: VicidialAdaptTapered(name="vicidial defaults"),
    "ours": PredictivePacer,
}


def compare(sc: Scenario, seed: int, *, tuned: bool = True,
            timer: Callable[[], float] | None = None) -> dict[str, dict]:
    """Every pacer on the same stream: {pacer: SimResult as dict (+ the tuned parameter)}."""
    stream = CallStream(sc, seed)
    out: dict[str, dict] = {}
    for key, make in PACERS.items():
        r = simulate(make(), sc, seed, stream, timer=timer if key == "ours" else None)
        out[key] = asdict(r)
    if tuned:
        r, target = tune_vicidial_target(sc, seed, stream, SimResult(**out["vicidial"]))
        out["vicidial_tuned"] = asdict(r) | {"param": target}
        r, level = tune_fixed_level(sc, seed, stream)
        out["fixed_best"] = asdict(r) | {"param": level}
    order = ["progressive", "vicidial", "vicidial_tuned", "fixed_best", "ours"]
    return {k: out[k] for k in order if k in out}
