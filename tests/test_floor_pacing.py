"""The live pacer's estimator starts the day from the campaign's own history (the simulator's Estimator, fed
the same observations), not from its generic priors."""
from __future__ import annotations

from dialer.pacing.estimator import Estimator, warm


def test_warm_moves_the_answer_rate_and_talk_time_to_the_campaigns_history():
    history = []
    for i in range(200):  # 60 % answered (after 6 s), 90 % of those people, collectors talk 40 s
        t = i * 30.0
        if i % 5 < 3:
            machine = i % 10 == 0
            history.append({"placed_at": t, "answered_at": t + 6, "screened_at": t + 8, "machine": machine,
                            "connected_at": None if machine else t + 8.5, "ended_at": t + (12 if machine else 48.5),
                            "outcome": "machine" if machine else "answered"})
        else:
            history.append({"placed_at": t, "answered_at": None, "ended_at": t + 20, "outcome": "no_answer"})
    cold, hot = Estimator(), Estimator()
    assert warm(hot, history, now=36000.0) == 200
    assert abs(cold.p_answer - 0.2) < 0.05  # the generic prior
    assert abs(hot.p_answer - 0.6) < 0.03 and hot.p_human_given_answer > 0.8
    est = hot.estimates(36000.0)
    assert est is not None and hot.n_observed > cold.n_observed
