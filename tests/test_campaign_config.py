"""Campaign YAML: valid files load into typed objects; bad ones fail at the door with file, line, field."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from common.yamlfile import ConfigError
from dialer.campaign.config import (
    load_campaign,
    load_campaign_text,
    parse_delay,
    retry_delay,
    segment_for,
)
from dialer.cli.campaign import campaign as campaign_cmd

REPO = Path(__file__).resolve().parents[1]

GOOD = """\
name: test_zh
profile: cn
locale: zh-CN
institution: 示例消费金融
callback_number: "+864001234567"
caller_id: "+862161234567"
dial_mode: predictive
line_limit: 10
propensity_bands: {high: 0.7, mid: 0.4}
cadence: {max_attempts_per_day: 3, min_gap_minutes: 30}
retry: {busy: 30m, no_answer: 2h, machine: 1d, max_attempts: 6}
segments:
  - name: m1_high
    dpd: M1
    propensity: high
    script: m1_reminder
    dial_mode: bot_only
  - name: m1
    dpd: M1
    script: m1_reminder
    cadence: {max_attempts_per_day: 2}
  - name: m2_wilful
    dpd: M2
    customer_types: [wilful]
    script: m2_firm
    retry: {busy: 1h}
  - name: early_m3
    dpd: 61-75
    script: m2_firm
  - name: late
    dpd: 76+
    script: m2_firm
"""


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    d = tmp_path / "scripts"
    d.mkdir()
    for sid in ("m1_reminder", "m2_firm"):
        (d / f"{sid}.yaml").write_text("handler: dtmf_verify\n")
    return d


def _load(text: str, scripts: Path, rules: Path | None = None):
    return load_campaign_text(text, "c.yaml", scripts_dir=scripts, rules_file=rules or scripts / "none.yaml")


def _err(text: str, scripts: Path, rules: Path | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        _load(text, scripts, rules)
    return err.value


def test_good_campaign_loads_with_inherited_cadence_and_retry(scripts: Path):
    c = _load(GOOD, scripts)
    assert c.name == "test_zh" and c.lang == "zh" and c.line_limit == 10
    m1 = c.segment("m1")
    assert m1.cadence.max_attempts_per_day == 2 and m1.cadence.min_gap_minutes == 30
    w = c.segment("m2_wilful")
    assert w.retry.busy == 3600 and w.retry.no_answer == 7200 and w.retry.machine == 86400
    assert w.retry.max_attempts == 6 and w.customer_types == ("wilful",)
    assert c.dial_mode_for(c.segment("m1_high")) == "bot_only" and c.dial_mode_for(m1) == "predictive"


def test_segment_for_first_match_wins(scripts: Path):
    c = _load(GOOD, scripts)
    assert segment_for(c, 10, "first", 0.9).name == "m1_high"
    assert segment_for(c, 10, "first", 0.5).name == "m1"
    assert segment_for(c, 10, "first", None).name == "m1"       # unscored: only band 'any'
    assert segment_for(c, 45, "wilful", None).name == "m2_wilful"
    assert segment_for(c, 45, "first", None) is None            # M2 only for wilful
    assert segment_for(c, 75, "repeat", None).name == "early_m3"
    assert segment_for(c, 76, "repeat", None).name == "late"
    assert segment_for(c, 0, "first", None) is None


def test_retry_delay_per_outcome_and_max_attempts(scripts: Path):
    c = _load(GOOD, scripts)
    w = c.segment("m2_wilful")
    assert retry_delay(w, "busy", 1) == 3600 and retry_delay(w, "no_answer", 5) == 7200
    assert retry_delay(w, "busy", 6) is None                 # max_attempts 6 reached
    assert retry_delay(w, "callee_hangup", 1) is None         # no delay configured: no retry
    assert retry_delay(w, "answered", 1) is None


@pytest.mark.parametrize("text,value", [("30m", 1800), ("2h", 7200), ("1d", 86400), ("45s", 45), (90, 90)])
def test_parse_delay(text, value):
    assert parse_delay(text) == value


def test_misspelt_key_names_line_field_and_suggests(scripts: Path):
    text = GOOD.replace("    script: m1_reminder\n    cadence", "    scirpt: m1_reminder\n    cadence")
    e = _err(text, scripts)
    assert (e.file, e.line, e.field) == ("c.yaml", 20, "segments[1].scirpt")
    assert "did you mean 'script'" in e.message


def test_misspelt_top_level_key(scripts: Path):
    e = _err(GOOD.replace("line_limit: 10", "line_limt: 10"), scripts)
    assert e.line == 8 and e.field == "line_limt" and "did you mean 'line_limit'" in e.message


def test_wrong_type_names_line_and_field(scripts: Path):
    e = _err(GOOD.replace("line_limit: 10", "line_limit: ten"), scripts)
    assert (e.line, e.field) == (8, "line_limit") and "expected an integer" in e.message
    e = _err(GOOD.replace("cadence: {max_attempts_per_day: 2}", "cadence: {max_attempts_per_day: [2]}"), scripts)
    assert (e.line, e.field) == (21, "segments[1].cadence.max_attempts_per_day")


def test_unknown_script_id_names_line_and_field(scripts: Path):
    e = _err(GOOD.replace("script: m2_firm\n    retry", "script: m2_frim\n    retry"), scripts)
    assert (e.line, e.field) == (25, "segments[2].script")
    assert "unknown script id 'm2_frim'" in e.message and "did you mean 'm2_firm'" in e.message


def test_yaml_syntax_error_names_line(scripts: Path):
    e = _err(GOOD.replace("line_limit: 10", "line_limit: [10"), scripts)
    assert e.file == "c.yaml" and e.line is not None and "YAML syntax error" in e.message


@pytest.mark.parametrize("old,new,field,msg", [
    ("dial_mode: predictive", "dial_mode: predicitve", "dial_mode", "did you mean 'predictive'"),
    ("dpd: 61-75", "dpd: 75-61", "segments[3].dpd", "empty"),
    ("dpd: 76+", "dpd: M4", "segments[4].dpd", "not a bucket"),
    ("customer_types: [wilful]", "customer_types: [wilfull]", "segments[2].customer_types[0]", "did you mean"),
    ("busy: 30m", "busy: soon", "retry.busy", "delay"),
    ("caller_id: \"+862161234567\"", "caller_id: \"12\"", "caller_id", "E.164"),
    ("line_limit: 10", "line_limit: 0", "line_limit", ">= 1"),
    ("propensity: high", "propensity: top", "segments[0].propensity", "not one of"),
])
def test_other_bad_values(scripts: Path, old, new, field, msg):
    assert old in GOOD
    e = _err(GOOD.replace(old, new), scripts)
    assert e.field == field and msg in e.message and e.line is not None


def test_duplicate_segment_name(scripts: Path):
    e = _err(GOOD.replace("name: early_m3", "name: m1"), scripts)
    assert e.field == "segments[3].name" and "duplicate" in e.message


def test_profile_must_exist_in_rules_file(scripts: Path, tmp_path: Path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nprofiles:\n  us: {}\n  uk: {}\n")
    e = _err(GOOD, scripts, rules)
    assert (e.line, e.field) == (2, "profile") and "not in compliance_rules.yaml" in e.message
    assert _load(GOOD.replace("profile: cn", "profile: us"), scripts, rules).profile == "us"


def test_strategy_section_must_be_a_mapping(scripts: Path):
    e = _err(GOOD + "strategy: fast\n", scripts)
    assert e.field == "strategy" and "mapping" in e.message


# -- the example files and the JSON Schema -------------------------------------------------------

EXAMPLES = sorted((REPO / "campaigns").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate_against_schema_and_loader(path: Path, tmp_path: Path):
    schema = json.loads((REPO / "campaigns" / "campaign.schema.json").read_text())
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    jsonschema.validate(data, schema)
    scripts_dir = tmp_path / "scripts"      # placeholders: this test is about the campaign file itself
    scripts_dir.mkdir()
    for seg in data["segments"]:
        (scripts_dir / f"{seg['script']}.yaml").write_text("handler: dtmf_verify\n")
    c = load_campaign(path, scripts_dir=scripts_dir, rules_file=REPO / "compliance_rules.yaml")
    assert c.name == path.stem and len(c.segments) == len(data["segments"])


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_scripts_exist_in_repo(path: Path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    missing = sorted({s["script"] for s in data["segments"]
                      if not (REPO / "campaigns" / "scripts" / f"{s['script']}.yaml").is_file()})
    if missing:
        pytest.skip(f"script files not in campaigns/scripts/ yet: {', '.join(missing)}")
    assert load_campaign(path).name == path.stem


def test_schema_rejects_what_the_loader_rejects(scripts: Path):
    schema = json.loads((REPO / "campaigns" / "campaign.schema.json").read_text())
    good = yaml.safe_load(GOOD)
    jsonschema.validate(good, schema)
    for bad in ({**good, "line_limt": 3}, {**good, "line_limit": "ten"}, {**good, "dial_mode": "fast"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


# -- through the CLI -------------------------------------------------------------------------------

@pytest.mark.parametrize("old,new,line,field", [
    ("    script: m1_reminder\n    cadence", "    scirpt: m1_reminder\n    cadence", 20, "segments[1].scirpt"),
    ("line_limit: 10", "line_limit: ten", 8, "line_limit"),
    ("script: m2_firm\n    retry", "script: nope\n    retry", 25, "segments[2].script"),
    ("line_limit: 10", "line_limit: [10", None, None),
])
def test_cli_validate_bad_campaign_exit_2_with_file_line_field(scripts: Path, tmp_path: Path, old, new, line, field):
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace(old, new), encoding="utf-8")
    res = CliRunner().invoke(campaign_cmd, ["validate", str(path), "--scripts-dir", str(scripts),
                                            "--rules", str(tmp_path / "none.yaml")])
    assert res.exit_code == 2, res.output
    assert str(path) in res.stderr
    if line is not None:
        assert f"{path}:{line}: {field}:" in res.stderr
    else:
        assert "YAML syntax error" in res.stderr


def test_cli_validate_and_load_good_campaign(scripts: Path, tmp_path: Path):
    path = tmp_path / "test_zh.yaml"
    path.write_text(GOOD, encoding="utf-8")
    db = tmp_path / "d.db"
    common = ["--scripts-dir", str(scripts), "--rules", str(tmp_path / "none.yaml")]
    res = CliRunner().invoke(campaign_cmd, ["validate", str(path), "--json", *common])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["ok"] is True and out["name"] == "test_zh" and len(out["segments"]) == 5
    res = CliRunner().invoke(campaign_cmd, ["load", str(path), "--db", str(db), *common])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(campaign_cmd, ["list", "--db", str(db), "--json"])
    assert [c["name"] for c in json.loads(res.stdout)] == ["test_zh"]


def test_amd_ring_and_pacing_settings_are_typed_and_checked(tmp_path):
    import pytest as _pytest

    from common.yamlfile import ConfigError as _ConfigError
    from dialer.campaign.config import load_campaign as _load

    base = (Path(__file__).resolve().parent.parent / "campaigns" / "en_demo.yaml").read_text()
    good = tmp_path / "scripts"
    good.mkdir()
    (good / "dtmf_verify.yaml").write_text("handler: dtmf_verify\n")
    ok = tmp_path / "ok.yaml"
    ok.write_text(base.replace("line_limit: 4", "line_limit: 4\namd: false\nring_seconds: 25\npacing: {target: 0.02}"))
    camp = _load(ok)
    assert (camp.amd, camp.ring_seconds, camp.pacing.target) == (False, 25.0, 0.02)
    for bad, field in (("amd: maybe", "amd"), ("ring_seconds: 2", "ring_seconds"), ("pacing: {target: 0.5}", "pacing.target")):
        f = tmp_path / "bad.yaml"
        f.write_text(base.replace("line_limit: 4", f"line_limit: 4\n{bad}"))
        with _pytest.raises(_ConfigError) as err:
            _load(f)
        assert err.value.field == field and err.value.line == 13, str(err.value)
