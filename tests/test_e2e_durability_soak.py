"""The short chaos soak in CI (the long one is `python -m bench.chaos`): 5 SIGKILLs of the daemon at random
moments through a campaign of 30 simulated debtors, each restart settling what the last one left; every
attempt is matched against the carrier's own record of the calls it received."""
from __future__ import annotations

import pytest

from bench.chaos import soak

pytestmark = pytest.mark.asterisk


def test_five_sigkills_lose_nothing_and_dial_nothing_twice(tmp_path):
    f = soak(tmp_path, kills=5, debtors=30, seed=5, echo=lambda *_: None)
    assert f["kills_survived"] == 5
    assert f["attempts"] >= 30 and f["carrier_calls"] > 0, f
    assert (f["double_dials"], f["lost_attempts"], f["mis_settled_attempts"], f["cap_violations"]) == (0, 0, 0, 0), f
    assert f["restart_to_dial_median_s"] is not None, "the restarted daemons never dialled again"
