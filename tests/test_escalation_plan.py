"""The escalation plan's shape: stage selection (pure), the campaign YAML's `escalation:` and the rules file's
`channels:` refused with file:line: field when wrong (docs/ESCALATION.md)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from common.yamlfile import ConfigError
from dialer.campaign.config import DpdRange, load_campaign, load_campaign_text
from dialer.campaign.escalation import Facts, Stage, stage_for
from dialer.gate.rules import RulesError, rules_from_text

REPO = Path(__file__).resolve().parents[1]

PLAN = (
    Stage("sms", "sms", DpdRange("1-3", 1, 3)),
    Stage("bot", "bot_call", DpdRange("4-15", 4, 15)),
    Stage("no_contact", "collector_call", DpdRange("4-15", 4, 15), no_contact_attempts=6),
    Stage("collector", "collector_call", DpdRange("16-60", 16, 60)),
    Stage("broken", "collector_call", broken_promise=True),
    Stage("letter", "letter", DpdRange("61+", 61, None)),
    Stage("legal", "legal_review", DpdRange("91+", 91, None)),
)


@pytest.mark.parametrize("facts, stage", [
    (Facts(0), None),  # not yet past due: no stage, no contact
    (Facts(1), "sms"), (Facts(3), "sms"),
    (Facts(4), "bot"), (Facts(15, attempts_without_contact=5), "bot"),
    (Facts(9, attempts_without_contact=6), "no_contact"),  # the bot reached nobody six times: a collector
    (Facts(16), "collector"), (Facts(60), "collector"),
    (Facts(2, broken_promise=True), "broken"),  # a broken promise escalates from any day
    (Facts(61), "letter"), (Facts(75, broken_promise=True), "letter"),  # later in the file wins
    (Facts(120), "legal"),
])
def test_the_last_matching_stage_in_file_order_is_the_debtors(facts, stage):
    got = stage_for(PLAN, facts)
    assert (got.name if got else None) == stage


CAMPAIGN = """name: esc
profile: us
locale: en-US
institution: Acme Finance
callback_number: "+18005550199"
caller_id: "+12125550199"
dial_mode: {mode}
line_limit: 2
segments:
  - name: all
    dpd: 0+
    script: dtmf_verify
    escalation:
      - {{stage: reminder, dpd: 1-3, action: sms, template: m1_sms, every: 2d}}
      - {{stage: bot, dpd: 4-15, action: bot_call}}
      - {{stage: collector, dpd: 16+, action: {last}}}
"""


def _load(mode: str = "progressive", last: str = "collector_call", text: str | None = None):
    return load_campaign_text(text or CAMPAIGN.format(mode=mode, last=last), "esc.yaml",
                              scripts_dir=REPO / "campaigns/scripts")


def test_a_plan_parses_into_stages():
    camp = _load()
    plan = camp.segment("all").escalation
    assert [(s.name, s.action) for s in plan] == [("reminder", "sms"), ("bot", "bot_call"),
                                                  ("collector", "collector_call")]
    assert plan[0].every == 2 * 86400 and plan[0].template == "m1_sms" and plan[2].dpd.hi is None


@pytest.mark.parametrize("last, line, field, words", [
    ("fax", 16, "segments[0].escalation[2].action", "'fax' is not one of"),
    ("{stage: x}", 16, "segments[0].escalation[2].action", "expected one of sms, letter, legal_review"),
])
def test_an_unknown_action_is_refused_with_its_line(last, line, field, words):
    with pytest.raises(ConfigError) as exc:
        _load(last=last)
    e = exc.value
    assert e.line == line and e.field == field and words in e.message, e.render()


def test_other_mistakes_name_the_field():
    cases = {
        "      - {stage: late, action: bot_call}\n": ("segments[0].escalation[3]", "at least one condition"),
        "      - {stage: bot, dpd: 20+, action: sms}\n": ("segments[0].escalation[3].stage", "duplicate stage"),
        "      - {stage: late, dpd: 20+, action: bot_call, every: 1d}\n": ("segments[0].escalation[3].every",
                                                                        "for task stages"),
        "      - {stage: late, dpd: 20+, action: sms, chanel: x}\n": ("segments[0].escalation[3].chanel",
                                                                    "unknown key"),
    }
    for extra, (field, words) in cases.items():
        with pytest.raises(ConfigError) as exc:
            _load(text=CAMPAIGN.format(mode="progressive", last="collector_call") + extra)
        assert exc.value.field == field and words in exc.value.message and exc.value.line == 17, exc.value.render()


def test_a_collector_stage_needs_collectors():
    with pytest.raises(ConfigError) as exc:
        _load(mode="bot_only")
    assert exc.value.field == "segments[0].escalation[2].action" and "progressive or predictive" in exc.value.message


def test_dialer_campaign_validate_refuses_an_unknown_action(tmp_path):
    path = tmp_path / "esc.yaml"
    path.write_text(CAMPAIGN.format(mode="progressive", last="carrier_pigeon"))
    out = subprocess.run([sys.executable, "-m", "dialer.cli", "campaign", "validate", str(path)],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode != 0
    assert f"{path}:16: segments[0].escalation[2].action" in out.stdout + out.stderr, out.stdout + out.stderr


def test_the_shipped_example_carries_a_plan():
    camp = load_campaign(REPO / "campaigns" / "zh_example.yaml")
    actions = {s.action for seg in camp.segments for s in seg.escalation}
    assert {"sms", "bot_call", "collector_call", "letter", "legal_review"} <= actions


RULES = """version: 1
default_profile: cn
profiles:
  cn:
    gate: {window: {start: "08:00", end: "21:00"}, fallback_zones: [Asia/Shanghai]}
    abandon: {limit: 0.03, window: calendar_day}
    channels:
      sms: {window: {start: "09:00", end: "20:00"}, daily: 1, weekly: 3, min_gap_hours: 48}
%s
"""


def test_channel_rules_parse_and_unknown_channels_are_refused():
    prof = rules_from_text(RULES % "", "r.yaml").profile_for("cn")
    sms = prof.channels["sms"].gate
    assert sms.windows[0].start == 9 * 60 and sms.daily_attempts == 1 and sms.rolling_7day == 3
    assert sms.min_gap_minutes == 48 * 60 and sms.number_daily_attempts is None
    for extra, field, words in (
            ("      fax: {daily: 1}", "profiles.cn.channels.fax", "unknown channel 'fax'"),
            ("      voice: {daily: 1}", "profiles.cn.channels.voice", "voice calls follow the gate"),
            ("      letter: {dayly: 1}", "profiles.cn.channels.letter.dayly", "unknown key"),
            ('      letter: {window: {start: "18:00", end: "09:00"}}', "profiles.cn.channels.letter.window.end",
             "must be after start")):
        with pytest.raises(RulesError) as exc:
            rules_from_text(RULES % extra, "r.yaml")
        e = exc.value.errors[0]
        assert e.field == field and words in e.message and e.line == 9, e.render()


def test_the_shipped_rules_have_every_channel_in_every_profile():
    from dialer.gate.rules import load_rules

    rules = load_rules(REPO / "compliance_rules.yaml")
    for name in ("cn", "us", "uk"):
        assert set(rules.profile_for(name).channels) == {"sms", "letter", "legal_review"}
