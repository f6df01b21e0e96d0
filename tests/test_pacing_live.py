"""The daemon's pure pacing helpers (snapshot pieces from plain data) and the agents' store."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from dialer.calls.bot import info_text
from dialer.pacing.floor import CollectorLive, call_views, collector_views, window_start
from dialer.pacing.pacers import (
    LOGGED_OUT,
    PAUSED,
    READY,
    TALKING,
    WRAPUP,
    PacingSnapshot,
    ProgressivePacer,
)
from dialer.store import Store
from dialer.store.agents import abandon_counts, agent_states, set_agent_state
from tests.engines import both_engines, sqlite_only  # noqa: F401

pytestmark = both_engines

NAMES = ["agent1", "agent2", "agent3"]


def test_no_recorded_state_means_ready():
    views = collector_views(NAMES, {}, {}, now=100.0, wrap_up=10.0)
    assert [v.state for v in views] == [READY] * 3


def test_wrap_up_lasts_the_profile_seconds_then_ready():
    live = {"agent1": CollectorLive(WRAPUP, 95.0)}
    assert collector_views(["agent1"], live, {}, now=100.0, wrap_up=10.0)[0].state == WRAPUP
    v = collector_views(["agent1"], live, {}, now=106.0, wrap_up=10.0)[0]
    assert v.state == READY and v.since == 105.0


def test_paused_or_logged_out_is_not_capacity_and_a_talking_one_leaves_after_the_call():
    live = {"agent1": CollectorLive(TALKING, 90.0, "c1"), "agent2": CollectorLive(READY, 0.0)}
    desired = {"agent1": "paused", "agent2": "logged_out", "agent3": "paused"}
    views = collector_views(NAMES, live, desired, now=100.0, wrap_up=10.0)
    assert (views[0].state, views[0].leaving) == (TALKING, True)
    assert [views[1].state, views[2].state] == [LOGGED_OUT, PAUSED]
    snap = PacingSnapshot(now=100.0, ringing=(), screening=(), waiting=(), collectors=views)
    assert ProgressivePacer().decide(snap) == 0


def test_calls_are_ringing_screening_or_waiting_until_done():
    calls = [(1.0, None, None, False), (2.0, 5.0, None, False), (3.0, 6.0, 8.0, False), (4.0, 7.0, 9.0, True)]
    assert call_views(calls) == ((1.0,), (5.0,), (8.0,))


def test_progressive_counts_calls_already_coming_against_ready_collectors():
    ringing, screening, waiting = call_views([(1.0, None, None, False)])
    views = collector_views(NAMES, {"agent3": CollectorLive(TALKING, 50.0)}, {}, now=60.0, wrap_up=5.0)
    snap = PacingSnapshot(now=60.0, ringing=ringing, screening=screening, waiting=waiting, collectors=views)
    assert ProgressivePacer().decide(snap) == 1  # two ready, one call already ringing


def test_window_start_day_and_rolling():
    now = datetime(2026, 11, 23, 15, 30, tzinfo=timezone.utc)
    assert window_start(now, "calendar_day") == datetime(2026, 11, 23, tzinfo=timezone.utc).timestamp()
    assert window_start(now, "rolling_30_days") == now.timestamp() - 30 * 86400


def test_information_message_has_no_debt_details():
    text = info_text("zh-CN", "安信金融", "+86 400-800-1234")
    assert "安信金融" in text and "4 0 0 8 0 0 1 2 3 4" in text and "欠" not in text


def test_agent_states_and_abandon_counts(tmp_path):
    store = Store(tmp_path / "d.db")
    assert agent_states(store) == {}
    set_agent_state(store, "agent1", "paused", 10.0, reason="break")
    set_agent_state(store, "agent1", "ready", 20.0)
    set_agent_state(store, "agent2", "logged_out", 30.0)
    st = agent_states(store)
    assert st["agent1"]["state"] == "ready" and st["agent2"]["state"] == "logged_out"
    with pytest.raises(ValueError):
        set_agent_state(store, "agent1", "sleeping", 40.0)
    with pytest.raises(ValueError):
        set_agent_state(store, "bad name", "ready", 40.0)
    assert abandon_counts(store, "c", 0.0) == (0, 0, 0)
