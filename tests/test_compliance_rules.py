"""Rules files: the shipped file loads; bad files fail with file:line: field messages; overrides merge."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialer.cli.compliance import compliance
from dialer.gate.rules import RulesError, load_rules, rules_from_text

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "compliance_rules.yaml").read_text(encoding="utf-8")


def line_of(text: str, needle: str, nth: int = 0) -> int:
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return lines[nth]


def bad(old: str, new: str, count: int = 1) -> str:
    assert old in TEXT
    return TEXT.replace(old, new, count)


def errors_of(text: str) -> list[str]:
    with pytest.raises(RulesError) as exc:
        rules_from_text(text, "rules.yaml")
    return [str(e) for e in exc.value.errors]


def test_shipped_file_loads_with_three_profiles():
    rules = load_rules(ROOT / "compliance_rules.yaml")
    assert rules.default_profile == "cn" and {"cn", "us", "uk"} <= set(rules.profiles)
    cn, us, uk = (rules.profile_for(p) for p in ("cn", "us", "uk"))
    assert (cn.gate.windows[0].start, cn.gate.windows[0].end) == (8 * 60, 21 * 60)
    assert cn.gate.daily_attempts == 3 and us.gate.rolling_7day == 7 and us.gate.conversation_quiet_days == 7
    assert uk.gate.abandoned_lockout.hours == 72 and uk.gate.machine_same_day
    assert us.abandon.min_ring_seconds == 15 and us.abandon.limit == 0.03
    assert rules.profile_for(None, None).name == "cn"


def test_unknown_default_profile():
    text = bad("default_profile: cn", "default_profile: fr")
    [msg] = errors_of(text)
    assert msg.startswith(f"rules.yaml:{line_of(text, 'default_profile')}: default_profile: unknown profile 'fr'")


def test_hour_25_is_rejected_with_line_and_field():
    text = bad('window: {start: "08:00", end: "21:00"}', 'window: {start: "08:00", end: "25:00"}')
    [msg] = errors_of(text)
    assert msg == f"rules.yaml:{line_of(text, '25:00')}: profiles.cn.gate.window.end: '25:00' is not a time of day (00:00–23:59, or 24:00 for an end)"


def test_negative_cap_is_rejected():
    text = bad("daily_attempts: 3\n      count", "daily_attempts: -1\n      count")
    [msg] = errors_of(text)
    assert msg == f"rules.yaml:{line_of(text, 'daily_attempts: -1')}: profiles.cn.gate.daily_attempts: must be >= 0, got -1"


def test_overlapping_windows_are_rejected():
    text = bad('- {days: [sun], start: "10:00", end: "18:00"}', '- {days: [sat, sun], start: "10:00", end: "18:00"}')
    [msg] = errors_of(text)
    assert msg.startswith(f"rules.yaml:{line_of(text, 'days: [sat, sun]')}: profiles.uk.gate.window[1]: overlaps window[0] on sat")


def test_unknown_keys_and_several_errors_reported_together():
    text = bad("min_gap_minutes: 30", "min_gap_minutse: 30")
    text = text.replace("limit: 0.03", "limit: 3", 1)
    msgs = errors_of(text)
    assert any("profiles.cn.gate.min_gap_minutse: unknown key" in m for m in msgs)
    assert any("profiles.cn.abandon.limit: must be between 0 and 1, got 3" in m for m in msgs)


def test_campaign_override_merges_over_profile_and_errors_point_at_override():
    text = TEXT.replace("campaign_overrides: {}", "campaign_overrides:\n  m1_bot:\n    profile: us\n"
                        "    gate: {daily_attempts: 1, third_party: {allowed: false}}\n")
    rules = rules_from_text(text, "rules.yaml")
    p = rules.profile_for("cn", "m1_bot")
    assert p.name == "us" and p.gate.daily_attempts == 1 and p.gate.rolling_7day == 7
    assert not p.gate.third_party.allowed and p.gate.third_party.unreachable_after_attempts == 3
    assert rules.profile_for("cn", "other").name == "cn"
    broken = text.replace("daily_attempts: 1,", 'daily_attempts: "x",')
    [msg] = errors_of(broken)
    n = line_of(broken, 'daily_attempts: "x"')
    assert msg.startswith(f"rules.yaml:{n}: campaign_overrides.m1_bot.gate.daily_attempts:")


def test_qa_sections_are_left_to_qa():
    import yaml
    text = TEXT + "qa_zz_extra: {a: 1}\n"  # any qa_* top-level key belongs to QA
    rules = rules_from_text(text, "rules.yaml")
    assert rules.profile_for("cn").qa == (yaml.safe_load(TEXT)["profiles"]["cn"].get("qa") or {})


def test_check_rules_cli(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(compliance, ["check-rules", str(ROOT / "compliance_rules.yaml"), "--json"])
    assert ok.exit_code == 0 and json.loads(ok.output)["ok"] is True
    f = tmp_path / "r.yaml"
    f.write_text(bad('window: {start: "08:00", end: "21:00"}', 'window: {start: "08:00", end: "25:00"}'), encoding="utf-8")
    res = runner.invoke(compliance, ["check-rules", str(f)])
    assert res.exit_code == 2
    assert f"{f}:{line_of(f.read_text(), '25:00')}: profiles.cn.gate.window.end:" in res.output
    res = runner.invoke(compliance, ["check-rules", str(f), "--json"])
    assert res.exit_code == 2
    out = json.loads(res.output)
    assert out["ok"] is False and out["errors"][0]["field"] == "profiles.cn.gate.window.end"
    f.write_text("version: 1\nprofiles: [oops\n", encoding="utf-8")
    res = runner.invoke(compliance, ["check-rules", str(f)])
    assert res.exit_code == 2 and "YAML syntax error" in res.output


def test_unknown_profile_in_an_override_or_at_lookup():
    from common.yamlfile import ConfigError

    text = TEXT.replace("campaign_overrides: {}", "campaign_overrides:\n  m1_bot: {profile: de}\n")
    [msg] = errors_of(text)
    assert msg.startswith(f"rules.yaml:{line_of(text, 'profile: de')}: campaign_overrides.m1_bot.profile: unknown profile 'de'")
    rules = rules_from_text(TEXT, "rules.yaml")
    with pytest.raises(ConfigError, match="unknown compliance profile 'de'"):
        rules.profile_for("de", "some_campaign")
