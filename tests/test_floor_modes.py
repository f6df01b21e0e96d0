"""`campaign validate` refuses a dial mode it does not know or has not built, naming file:line and field;
it never lets a segment be dialled in another mode than the one written."""
from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from dialer.cli.campaign import campaign as campaign_cmd

REPO = Path(__file__).resolve().parents[1]

CAMPAIGN = """\
name: floor_modes
profile: cn
locale: zh-CN
institution: 示例消费金融
callback_number: "+864001234567"
caller_id: "+862161234567"
dial_mode: {top}
line_limit: 4
segments:
  - name: m1
    dpd: M1
    script: m1_reminder
  - name: m3
    dpd: M3+
    script: m1_reminder
    dial_mode: {seg}
"""


def _validate(tmp_path: Path, top: str, seg: str) -> tuple[int, str]:
    f = tmp_path / "c.yaml"
    f.write_text(CAMPAIGN.format(top=top, seg=seg), encoding="utf-8")
    res = CliRunner().invoke(campaign_cmd, ["validate", str(f), "--scripts-dir", str(REPO / "campaigns/scripts")])
    return res.exit_code, res.output + (res.stderr if res.stderr_bytes is not None else "")


def test_unknown_segment_mode_is_refused_with_file_line_and_field(tmp_path: Path):
    code, out = _validate(tmp_path, "predictive", "previw")
    assert code != 0
    assert f"{tmp_path / 'c.yaml'}:16: segments[1].dial_mode" in out and "did you mean 'preview'" in out


def test_unbuilt_mode_is_refused_by_name_not_replaced(tmp_path: Path):
    code, out = _validate(tmp_path, "power", "preview")
    assert code != 0
    assert f"{tmp_path / 'c.yaml'}:7: dial_mode" in out and "'power' is not built" in out


def test_collector_segment_in_a_bot_campaign_is_refused(tmp_path: Path):
    code, out = _validate(tmp_path, "bot_only", "progressive")
    assert code != 0
    assert f"{tmp_path / 'c.yaml'}:16: segments[1].dial_mode" in out and "not built" in out


def test_mixed_preview_predictive_and_bot_segments_validate(tmp_path: Path):
    code, out = _validate(tmp_path, "predictive", "preview")
    assert code == 0, out
    code, out = _validate(tmp_path, "bot_only", "preview")
    assert code == 0, out
