"""One reading of compliance_rules.yaml: QA and campaign validation see the file the way the gate does.

Before, QA parsed the profile's call window with its own parser: a window the gate accepted ("8:00",
`days: null`) made QA refuse the whole file, and windows the gate refuses (no days, an unknown key,
overlapping windows) QA took silently; QA defaulted a missing default_profile the gate refuses; and
a rules file whose QA part was broken started the daemon, which then failed to score every call.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from common.yamlfile import ConfigError
from dialer.gate import rules as gate_rules
from dialer.qa import rules as qa_rules
from dialer.qa.rules import QAConfigError
from tests.engines import both_engines, sqlite_only  # noqa: F401

pytestmark = both_engines

REPO = Path(__file__).resolve().parents[1]
RULES_FILE = REPO / "compliance_rules.yaml"
TEXT = RULES_FILE.read_text(encoding="utf-8")
CN_WINDOW = 'window: {start: "08:00", end: "21:00"}'
assert TEXT.count(CN_WINDOW) >= 1 and TEXT.index(CN_WINDOW) < TEXT.index("  us:")


def _cn_window(value: str) -> str:
    return TEXT.replace(CN_WINDOW, f"window: {value}", 1)


@pytest.mark.parametrize("window", [
    '{start: "8:00", end: "21:00"}',                     # one-digit hour
    '{days: null, start: "08:00", end: "21:00"}',        # null days: every day
    '[{days: [mon, fri], start: "08:00", end: "12:00"}, {days: [mon], start: "13:00", end: "24:00"}]',
])
def test_qa_judges_the_window_the_gate_dials_by(window: str):
    text = _cn_window(window)
    gate = gate_rules.rules_from_text(text, "rules.yaml")
    qa = qa_rules.rules_from_text(text, "rules.yaml")
    for name, profile in gate.profiles.items():
        assert qa.profiles[name].windows == profile.gate.windows


@pytest.mark.parametrize("window, field", [
    ('{days: [], start: "08:00", end: "21:00"}', "profiles.cn.gate.window.days"),
    ('{start: "08:00", end: "21:00", zone: UTC}', "profiles.cn.gate.window.zone"),
    ('[{start: "08:00", end: "12:00"}, {start: "11:00", end: "21:00"}]', "profiles.cn.gate.window[1]"),
])
def test_a_window_the_gate_refuses_qa_refuses_too(window: str, field: str):
    text = _cn_window(window)
    for load in (gate_rules.rules_from_text, qa_rules.rules_from_text):
        with pytest.raises(ConfigError) as exc:
            load(text, "rules.yaml")
        assert exc.value.field == field


def test_a_qa_window_of_its_own_is_read_by_the_gate_parser():
    own = TEXT.replace("window: gate", 'window: {start: "9:00", end: "20:00"}', 1)
    assert qa_rules.rules_from_text(own, "rules.yaml").profiles["cn"].windows == (gate_rules.Window(frozenset(range(7)), 540, 1200),)
    overlapping = TEXT.replace("window: gate", 'window: [{start: "08:00", end: "12:00"}, {start: "11:00", end: "20:00"}]', 1)
    with pytest.raises(QAConfigError) as exc:
        qa_rules.rules_from_text(overlapping, "rules.yaml")
    assert exc.value.field == "profiles.cn.qa.window[1]" and "overlaps" in exc.value.message
    with pytest.raises(QAConfigError, match=r'profiles\.cn\.qa\.window: must be "gate"'):
        qa_rules.rules_from_text(TEXT.replace("window: gate", "window: sometimes", 1), "rules.yaml")


def test_default_profile_is_required_by_both():
    text = TEXT.replace("default_profile: cn\n", "", 1)
    for load in (gate_rules.rules_from_text, qa_rules.rules_from_text):
        with pytest.raises(ConfigError, match="default_profile"):
            load(text, "rules.yaml")


def test_qa_rules_come_from_the_gate_reading_with_the_files_hash():
    rules = gate_rules.load_rules(RULES_FILE)
    qa = qa_rules.qa_rules(rules)
    assert qa.default_profile == rules.default_profile and set(qa.profiles) == set(rules.profiles)
    assert qa.sha256 == rules.sha256 == hashlib.sha256(RULES_FILE.read_bytes()).hexdigest()
    assert qa_rules.load_rules(RULES_FILE).sha256 == qa.sha256
    assert qa_rules.DEFAULT_RULES_FILE is gate_rules.DEFAULT_RULES_FILE


def test_campaign_validation_asks_the_gate_for_profile_names(tmp_path: Path):
    from dialer.campaign import config

    assert gate_rules.profile_names(RULES_FILE) == ("cn", "us", "uk")
    assert gate_rules.profile_names(tmp_path / "none.yaml") is None
    assert config.DEFAULT_RULES_FILE is gate_rules.DEFAULT_RULES_FILE


def test_daemon_refuses_a_rules_file_whose_qa_part_is_broken(tmp_path: Path):
    from dialer.cli.run import load_daemon_inputs
    from dialer.store import Store

    bad = tmp_path / "rules.yaml"
    bad.write_text(TEXT.replace("window: gate", "window: sometimes", 1), encoding="utf-8")
    store = Store(tmp_path / "d.db")
    try:
        with pytest.raises(ConfigError, match=r"rules.yaml:\d+: profiles\.cn\.qa\.window: must be"):
            load_daemon_inputs(store, (), bad)
    finally:
        store.close()
