"""Strategy table: the example campaign's treatments, and errors that name file, line and field."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from common.yamlfile import ConfigError, load_file, load_text
from dialer.strategy.table import StrategyTable, choose_treatment, parse_strategy

EXAMPLE = Path(__file__).resolve().parents[1] / "campaigns" / "examples" / "strategy_example.yaml"


def test_example_campaign_treatments() -> None:
    from dialer.campaign.config import load_campaign

    table = load_campaign(EXAMPLE).strategy
    assert isinstance(table, StrategyTable) and table.rescore == ("nightly", "on_outcome")
    gentle = choose_treatment(table, 0.8, "willing_able", "M1")
    assert (gentle.script, gentle.dial_mode, gentle.channel_for(5)) == ("m1_reminder", "bot_only", "bot")
    plan = choose_treatment(table, 0.45, "willing_unable", "M2")
    assert plan.script == "m2_firm_instalment"
    assert [plan.channel_for(n) for n in range(5)] == ["bot", "bot", "bot", "collector", "collector"]
    firm = choose_treatment(table, 0.1, "unwilling_able", "M2")
    assert [firm.channel_for(n) for n in (0, 2, 5, 6)] == ["bot", "collector", "collector", "legal_review"]
    late = choose_treatment(table, 0.05, "unwilling_unable", "M3+")
    assert late.dial_mode == "preview" and late.escalation[-1].channel == "legal_review"
    # the same debtor with a higher score but early arrears gets the default, not the legal path
    assert choose_treatment(table, 0.9, "unwilling_unable", "M1").source == "default"
    assert table.script_ids() <= {p.stem for p in (EXAMPLE.parents[1] / "scripts").glob("*.yaml")}


def _parse(text: str, file: str = "camp.yaml") -> StrategyTable:
    return parse_strategy(load_text(textwrap.dedent(text), file), ("strategy",))


BASE_DEFAULT = """
  default: {script: m1_reminder, dial_mode: progressive}
"""


@pytest.mark.parametrize("body, line, field, words", [
    ("""
strategy:
  rows:
    - quadrant: willing_but_broke
      script: m1_reminder
      dial_mode: bot_only
""" + BASE_DEFAULT, 4, "strategy.rows[0].quadrant", "unknown quadrant 'willing_but_broke'"),
    ("""
strategy:
  rows:
    - bucket: M3+
      script: m3_plan_or_notice
      dial_mode: preview
      escalation: [{channel: collector, attempts: 2}, bot]
""" + BASE_DEFAULT, 7, "strategy.rows[0].escalation[1]", "only moves forward"),
    ("""
strategy:
  rows:
    - band: high
      script: m1_reminder
      dial_mode: bot_only
      cadence: {max_attempts_per_day: 0}
""" + BASE_DEFAULT, 7, "strategy.rows[0].cadence.max_attempts_per_day", "integer ≥ 1"),
    ("""
strategy:
  rows:
    - band: [high, mid]
      script: m1_reminder
      dial_mode: progressive
    - band: high
      bucket: M1
      script: m1_reminder
      dial_mode: bot_only
""" + BASE_DEFAULT, 7, "strategy.rows[1]", "never applies"),
    ("""
strategy:
  rows:
    - band: [high, mid]
      script: m1_reminder
      dial_mode: progressive
""", 3, "strategy.rows", "band=low"),
    ("""
strategy:
  rows:
    - script: m1_reminder
      dial_mode: robocall
""", 5, "strategy.rows[0].dial_mode", "unknown dial mode 'robocall'"),
])
def test_errors_name_file_line_and_field(body: str, line: int, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as exc:
        _parse(body)
    err = exc.value
    assert (err.file, err.line, err.field) == ("camp.yaml", line, field), str(err)
    assert words in err.message
    assert str(err).startswith(f"camp.yaml:{line}: {field}:")


def test_unknown_script_id_is_checked_against_the_scripts_folder(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "m1_reminder.yaml").write_text("id: m1_reminder\n")
    path = tmp_path / "c.yaml"
    path.write_text("strategy:\n  default: {script: m1_reminder, dial_mode: progressive}\n"
                    "  rows:\n    - script: m9_unknown\n      dial_mode: preview\n")
    with pytest.raises(ConfigError) as exc:
        parse_strategy(load_file(path), ("strategy",))
    assert exc.value.line == 4 and "unknown script id 'm9_unknown'" in exc.value.message


def test_bands_default_to_the_campaign_thresholds_and_unscored_debtors_get_a_treatment() -> None:
    table = _parse("""
propensity_bands: {high: 0.7, mid: 0.4}
strategy:
  rows:
    - band: high
      script: m1_reminder
      dial_mode: bot_only
    - band: [mid, low]
      script: m2_firm_instalment
      dial_mode: progressive
""")
    assert (table.high, table.mid) == (0.7, 0.4)
    assert choose_treatment(table, 0.65, "willing_able", "M1").script == "m2_firm_instalment"
    assert choose_treatment(table, 0.75, "willing_able", "M1").script == "m1_reminder"
    assert choose_treatment(table, None, "willing_able", "M1").script == "m2_firm_instalment"  # treated as mid
    with pytest.raises(ValueError):
        choose_treatment(table, 0.5, "happy", "M1")
