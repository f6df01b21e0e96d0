"""Pacers on recorded snapshot sequences: progressive, VICIdial ADAPT_TAPERED, and ours with its estimator."""
from __future__ import annotations

import math

import numpy as np
import pytest

from dialer.pacing.estimator import Estimator
from dialer.pacing.pacers import (
    LOGGED_OUT,
    PAUSED,
    READY,
    TALKING,
    WRAPUP,
    AbandonBudget,
    CollectorView,
    PacingSnapshot,
    PredictiveConfig,
    PredictivePacer,
    ProgressivePacer,
    VicidialAdaptTapered,
)

NOON = 12 * 3600.0


def snap(now=NOON, *, ready=0, talking=(), wrapup=(), paused=0, ringing=(), screening=(), waiting=0,
         budget=AbandonBudget(answered=1000, abandoned=10, placed=4000), estimates=None,
         extra=(), line_limit=10_000) -> PacingSnapshot:
    """A floor: `talking`/`wrapup` are seconds in state; `ringing`/`screening` are call ages."""
    cols = [CollectorView(READY, now - 5)] * ready
    cols += [CollectorView(TALKING, now - e) for e in talking]
    cols += [CollectorView(WRAPUP, now - w) for w in wrapup]
    cols += [CollectorView(PAUSED, now - 60)] * paused
    cols += list(extra)
    return PacingSnapshot(
        now=now, ringing=tuple(now - a for a in ringing), screening=tuple(now - a for a in screening),
        waiting=tuple([now - 0.5] * waiting), collectors=tuple(cols), budget=budget,
        line_limit=line_limit, estimates=estimates)


@pytest.fixture(scope="module")
def trained() -> Estimator:
    """An estimator fed 4,000 observed calls: 25 % reach a person, ring 5–25 s, talk ~120 s."""
    rng = np.random.default_rng(1)
    est = Estimator()
    t = NOON - 4 * 3600
    for _ in range(4000):
        t += 3.0
        u = rng.random()
        if u < 0.33:
            est.observe_dial(t, True, rng.uniform(5, 25))
            human = u < 0.25
            est.observe_screen(t, human, rng.uniform(1.5, 2.8) if human else rng.uniform(2, 4))
            if human:
                est.observe_connect(t, rng.uniform(0.2, 0.8))
                est.observe_talk(t, rng.lognormal(math.log(120) - 0.11, 0.47))
                est.observe_wrap(t, 5.0)
        else:
            est.observe_dial(t, False, 30.0 if rng.random() < 0.7 else rng.uniform(2, 8))
    return est


# --------------------------------------------------------------------------- progressive


def test_progressive_places_one_line_per_ready_collector_without_a_call_coming():
    p = ProgressivePacer()
    assert p.decide(snap(ready=3, talking=(40,), ringing=(2.0,))) == 2
    assert p.decide(snap(ready=1, ringing=(2.0, 3.0))) == 0
    assert p.decide(snap(ready=4, line_limit=2)) == 2


# --------------------------------------------------------------------------- VICIdial


def test_vicidial_raises_its_level_while_agents_sit_idle_and_counts_talking_calls_as_existing():
    v = VicidialAdaptTapered()
    placed = [v.decide(snap(NOON + t, ready=4, talking=(30,) * 6)) for t in range(0, 16)]
    assert v.level > 1.0  # 4 of 10 idle for 15 s: m = 0.4, level 1.4
    assert v.level == pytest.approx(1.4)
    # goal = round(1.4 × 10 agents) = 14; 6 talking + 2 ringing already in progress → 6 more
    v._next_dial = NOON + 20
    assert v.decide(snap(NOON + 20, ready=4, talking=(30,) * 6, ringing=(1, 2))) == 6


def test_vicidial_tapered_brake_late_in_the_day_and_its_level_floor():
    v = VicidialAdaptTapered()
    v.level = 2.5
    over = AbandonBudget(answered=200, abandoned=20, placed=800)  # 10 % > 3 % drop limit
    evening = 20 * 3600.0  # 20:00 → 2100 − 2000 = 100 → × 0.1
    for t in range(0, 16):
        v.decide(snap(evening + t, ready=2, talking=(30,) * 8, budget=over))
    assert v.level == 1.0
    v2 = VicidialAdaptTapered()
    v2.level = 2.5
    for t in range(0, 16):  # 09:00 → 2100 − 900 = 1200 → no taper
        v2.decide(snap(9 * 3600.0 + t, ready=2, talking=(30,) * 8, budget=over))
    assert v2.level == pytest.approx(2.5 * 1.2)


def test_vicidial_fixed_level_does_not_adapt():
    v = VicidialAdaptTapered(fixed_level=1.5)
    for t in range(0, 31):
        n = v.decide(snap(NOON + t, ready=10))
        if t == 0:
            assert n == 15
    assert v.level == 1.5


# --------------------------------------------------------------------------- estimator


def test_estimator_learns_the_answer_rate_from_observations(trained: Estimator):
    assert trained.p_human == pytest.approx(0.25, abs=0.04)
    assert trained.p_human_given_answer == pytest.approx(0.25 / 0.33, abs=0.05)


def test_estimator_follows_a_drifting_answer_rate():
    rng = np.random.default_rng(2)
    est = Estimator(half_life=900)
    t = 0.0
    for p in (0.35, 0.15):
        for _ in range(3000):
            t += 1.0
            answered = rng.random() < p
            est.observe_dial(t, answered, 10.0 if answered else 30.0)
        # once the rate has moved, the estimate follows within a few points
        assert est.p_answer == pytest.approx(p, abs=0.04)


def test_estimates_new_call_reaches_a_person_within_the_ring_window(trained: Estimator):
    e = trained.estimates(NOON)
    g = e.new_call
    x = e.horizons
    assert g[0] == pytest.approx(0.0, abs=1e-6)  # nobody answers at once
    assert np.all(np.diff(g) >= -1e-12)
    assert g[-1] == pytest.approx(trained.p_human, rel=0.05)  # all of them within ~28 s
    assert g[list(x).index(16)] == pytest.approx(trained.p_human * (16 - 2.15 - 5) / 20, abs=0.03)
    # a call that has rung 20 s unanswered is less likely to be a person than a fresh one
    assert e.ring_mean[20, -1] < e.ring_mean[0, -1]


def test_talk_time_survival_is_conditioned_on_elapsed_talk(trained: Estimator):
    e = trained.estimates(NOON)
    free_30s = list(e.horizons).index(28)
    # a collector 10 s into a call rarely frees within 30 s; one 200 s in often does
    assert e.talk_free[10, free_30s] < 0.05
    assert e.talk_free[200, free_30s] > 0.25


def test_censored_talks_do_not_bias_the_talk_time_down():
    rng = np.random.default_rng(3)
    truth = rng.lognormal(math.log(120) - 0.11, 0.47, 4000)
    cut = rng.uniform(0, 300, 4000)
    est = Estimator()
    for d, c in zip(truth, cut):
        if c < d:
            est.observe_talk(0.0, c, ended=False)  # the collector logged out mid-call
        else:
            est.observe_talk(0.0, d)
    s = est.talk.survival(np.zeros(est.talk.nbins), 0.0)
    median = float(np.argmax(s < 0.5))
    assert median == pytest.approx(np.median(truth), rel=0.08)
    naive = float(np.median(np.minimum(truth, cut)))
    assert naive < 0.8 * np.median(truth)  # what ignoring censoring would have said


# --------------------------------------------------------------------------- ours


def test_ours_dials_ahead_of_talking_collectors(trained: Estimator):
    e = trained.estimates(NOON)
    ours = PredictivePacer()
    s = snap(ready=2, talking=(150, 90, 200, 40, 130, 60, 180, 100), estimates=e)
    n = ours.decide(s)
    assert n > ProgressivePacer().decide(s)  # more than one line per ready collector
    assert n <= PredictiveConfig().lines_per_collector * 10


def test_ours_places_nothing_when_callers_already_outnumber_collectors(trained: Estimator):
    e = trained.estimates(NOON)
    s = snap(ready=1, talking=(10, 20, 30), waiting=2, ringing=(5,) * 30, estimates=e)
    assert PredictivePacer().decide(s) == 0


def test_budget_nearly_spent_collapses_to_progressive(trained: Estimator):
    e = trained.estimates(NOON)
    floor = dict(ready=3, talking=(150, 90, 200, 40, 130, 60, 180), ringing=(3,), estimates=e)
    healthy = AbandonBudget(answered=1000, abandoned=10, placed=4000)
    spent = AbandonBudget(answered=1000, abandoned=29.5, placed=4000)  # 0.5 abandons left
    ours = PredictivePacer()
    assert ours.decide(snap(budget=healthy, **floor)) > 2
    assert ours.decide(snap(budget=spent, **floor)) == 2  # one line per ready collector, no more
    assert ours.last_mode == "progressive"
    # the very start of a day: no answered calls yet, no budget to spend
    assert PredictivePacer().decide(snap(budget=AbandonBudget(), **floor)) == 2


def test_target_tightens_as_the_budget_is_spent():
    ours = PredictivePacer(PredictiveConfig(target=0.025, taper_from=0.5))
    rates = [ours.effective_target(AbandonBudget(answered=10_000, abandoned=a)) for a in
             (100, 250, 275, 285, 295, 300)]
    assert rates[0] == rates[1] == rates[2] == 0.025
    assert rates[2] > rates[3] > rates[4] > 0
    assert rates[5] == 0.0
    # early in a window few abandons are left even at a low rate: the target tightens by count too
    early = ours.effective_target(AbandonBudget(answered=100, abandoned=0), collectors=20)  # 3 left
    assert 0 < early < 0.025
    assert ours.effective_target(AbandonBudget(answered=100, abandoned=2)) == 0.0
    # the same budget is tighter for a big floor, whose bursts of abandons are bigger
    assert ours.effective_target(AbandonBudget(answered=200, abandoned=0), collectors=50) < \
        ours.effective_target(AbandonBudget(answered=200, abandoned=0), collectors=5) == 0.025


def test_tighter_budget_never_places_more(trained: Estimator):
    e = trained.estimates(NOON)
    floor = dict(ready=2, talking=tuple(range(20, 420, 20)), estimates=e)
    placed = [PredictivePacer().decide(snap(budget=AbandonBudget(answered=10_000, abandoned=a), **floor))
              for a in (100, 270, 285, 295)]
    assert placed == sorted(placed, reverse=True)
    assert placed[0] > placed[-1]


def test_a_collector_logging_out_mid_call_is_not_counted_as_capacity(trained: Estimator):
    e = trained.estimates(NOON)
    talking = tuple(range(400, 100, -20))  # 15 long calls: several will end soon
    before = snap(ready=1, talking=talking, estimates=e)
    leaving = snap(ready=1, talking=talking[4:], estimates=e,
                   extra=[CollectorView(TALKING, NOON - t, leaving=True) for t in talking[:4]])
    gone = snap(ready=1, talking=talking[4:], estimates=e,
                extra=[CollectorView(LOGGED_OUT, NOON - 1)] * 4)
    ours = PredictivePacer()
    n_before, n_leaving, n_gone = ours.decide(before), ours.decide(leaving), ours.decide(gone)
    assert n_before > n_leaving
    assert n_leaving == n_gone
    everyone_left = snap(ready=0, estimates=e, extra=[CollectorView(LOGGED_OUT, NOON - 1)] * 6)
    assert ours.decide(everyone_left) == 0


def test_paused_collectors_get_no_calls(trained: Estimator):
    e = trained.estimates(NOON)
    assert PredictivePacer().decide(snap(paused=5, estimates=e)) == 0
    assert ProgressivePacer().decide(snap(paused=5)) == 0


def test_recorded_sequence_stays_within_lines_and_reacts_to_waiting_callers(trained: Estimator):
    """A recorded minute: callers pile up waiting → the pacer stops; they are served → it resumes."""
    e = trained.estimates(NOON)
    ours = PredictivePacer()
    seq = [
        snap(NOON + 0, ready=0, talking=(100, 120, 140, 160, 180), ringing=(1, 4, 8), estimates=e),
        snap(NOON + 1, ready=0, talking=(101, 121, 141, 161, 181), ringing=(2, 5, 9), waiting=3, estimates=e),
        snap(NOON + 2, ready=2, talking=(0, 0, 1, 162, 182), estimates=e),
    ]
    placed = [ours.decide(s) for s in seq]
    assert placed[1] == 0
    assert placed[2] >= 2
    assert all(n <= 4 * 5 for n in placed)


def test_pacing_settings_from_yaml_with_errors_naming_line_and_field():
    from common.yamlfile import ConfigError, load_text
    from dialer.pacing.pacers import predictive_config

    ok = load_text("name: m1\npacing:\n  target: 0.02\n  reserve: 2\n", "m1.yaml")
    cfg = predictive_config(ok, ("pacing",))
    assert cfg.target == 0.02 and cfg.reserve == 2.0
    assert predictive_config(load_text("name: m1\n", "m1.yaml"), ("pacing",)) == PredictiveConfig()
    with pytest.raises(ConfigError) as err:
        predictive_config(load_text("name: m1\npacing:\n  reserve: 1\n  target: 0.5\n", "m1.yaml"), ("pacing",))
    assert str(err.value).startswith("m1.yaml:4: pacing.target: must be a number between")
    with pytest.raises(ConfigError) as err:
        predictive_config(load_text("pacing:\n  speed: 3\n", "m1.yaml"), ("pacing",))
    assert "m1.yaml:2: pacing.speed: unknown pacing setting" in str(err.value)


def test_ours_never_places_fewer_than_progressive_the_same_in_the_daemon_and_the_simulator(trained: Estimator):
    """A shy model (tiny target) on one ready collector with nothing coming still gets that collector a call: the
    floor lives in the pacer, so the simulator and the daemon (which calls `decide` as is) dial the same."""
    e = trained.estimates(NOON)
    shy = PredictivePacer(PredictiveConfig(target=0.0001, scale=0.05))
    s = snap(ready=1, talking=(5,), estimates=e)
    assert ProgressivePacer().decide(s) == 1
    assert shy.decide(s) == 1 and shy.last_mode == "predictive"
    assert shy.decide(snap(ready=1, talking=(5,), ringing=(2,), estimates=e)) == 0  # that collector has a call coming


def test_people_waiting_are_charged_to_the_budget_before_they_are_abandoned():
    from dialer.pacing.pacers import window_budget

    b = window_budget(limit=0.03, placed=400, answered=100, abandoned=1, waiting=2, patience=2.0)
    assert (b.answered, b.abandoned, b.placed) == (100, 3, 400) and b.left == pytest.approx(0.0)
