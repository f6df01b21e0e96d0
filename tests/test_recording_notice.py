"""The recording notice per profile (compliance_rules.yaml `qa.recordings.notice`): what the shipped profiles
say, how a bad notice is refused (file:line), that a campaign whose profile requires one in a locale it lacks
does not validate, and that the daemon renders one per campaign that needs it. The notice heard on a real call
is tested in tests/test_e2e_recordings.py."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from common.lexicon import LANGS, debt_mentions
from dialer.calls.bot import render_notices
from dialer.campaign.config import campaign_errors, load_campaign
from dialer.cli import main
from dialer.gate.rules import RecordingNotice, RulesError, load_rules, recording_notice, rules_from_text
from dialer.qa.rules import rules_from_text as qa_rules_from_text

REPO = Path(__file__).resolve().parent.parent
SHIPPED = (REPO / "compliance_rules.yaml").read_text()
EN = "This call is recorded."
CAMPAIGN = """name: n1
profile: {profile}
locale: {locale}
institution: Acme Finance
callback_number: "+18005550199"
caller_id: "+12125550199"
dial_mode: bot_only
line_limit: 1
segments:
  - name: m1
    dpd: M1
    script: m1_reminder_en
"""


def test_the_shipped_profiles_require_a_notice_that_says_nothing_about_a_debt():
    rules = load_rules(REPO / "compliance_rules.yaml")
    for name in ("cn", "us", "uk"):
        notice = rules.profiles[name].recording_notice
        assert notice.required, name
        assert set(notice.text) >= {"zh-CN", "en-US"}, name
        for text in notice.text.values():
            assert "录音" in text or "recorded" in text
            assert not [w for lang in LANGS for w in debt_mentions(text, lang)], text
    assert rules.profiles["us"].recording_notice.text_for("en-US") == EN
    # the QA parser of the same section still reads the retention beside it
    assert qa_rules_from_text(SHIPPED).for_jurisdiction("cn").retention_days == 1830


def test_a_profile_without_a_notice_plays_none():
    text = SHIPPED.replace(f'notice: {{required: true, text: {{en-US: "{EN}"', f'notice: {{required: false, text: {{en-US: "{EN}"', 1)
    rules = rules_from_text(text)
    assert rules.profiles["us"].recording_notice.text_for("en-US") is None
    assert RecordingNotice().text_for("en-US") is None  # absent: no notice


@pytest.mark.parametrize("bad, message", [
    ("notice: {required: yes please, text: {en-US: 'x'}}", "must be true or false"),
    ("notice: {required: true, text: {english: 'This call is recorded.'}}", "not a locale"),
    ("notice: {required: true, text: {en-US: 'This call about your overdue balance is recorded.'}}", "mentions the debt"),
    ("notice: {required: true, text: {zh-CN: '关于您的欠款，本次通话将被录音。'}}", "mentions the debt"),
    ("notice: {required: true}", "needs the sentence"),
    ("notice: {required: true, text: {en-US: ''}}", "non-empty"),
    ("notice: {required: true, txt: {en-US: 'x'}}", "must be {required"),
])
def test_a_bad_notice_is_refused_naming_file_line_and_field(bad, message):
    lines = SHIPPED.splitlines()
    i = next(n for n, ln in enumerate(lines) if ln.strip().startswith("notice:") and EN in ln
             and n > SHIPPED[:SHIPPED.index("  us:")].count("\n"))
    lines[i] = "        " + bad
    with pytest.raises(RulesError) as exc:
        rules_from_text("\n".join(lines), "r.yaml")
    assert f"r.yaml:{i + 1}:" in str(exc.value) and "profiles.us.qa.recordings.notice" in str(exc.value)
    assert message in str(exc.value)


def _rules_without(tmp: Path, locale: str) -> Path:
    text = SHIPPED.replace(f'notice: {{required: true, text: {{en-US: "{EN}", zh-CN:',
                           'notice: {required: true, text: {zh-CN:', 1)
    assert text != SHIPPED and locale == "en-US"
    path = tmp / "rules.yaml"
    path.write_text(text)
    return path


def test_a_campaign_whose_profile_needs_a_notice_in_its_locale_is_refused(tmp_path):
    rules = _rules_without(tmp_path, "en-US")
    notice, line = recording_notice(rules, "us")
    camp = tmp_path / "n1.yaml"
    camp.write_text(CAMPAIGN.format(profile="us", locale="en-US"))
    errors = campaign_errors(camp, rules_file=rules)
    assert len(errors) == 1, [str(e) for e in errors]
    msg = str(errors[0])
    assert msg.startswith(f"{camp}:3: locale:"), msg  # the campaign's line
    assert f"rules.yaml:{line}" in msg and "recording notice" in msg and "en-US" in msg  # and the profile's
    out = CliRunner().invoke(main, ["campaign", "validate", str(camp), "--rules", str(rules)])
    assert out.exit_code != 0 and f"{camp}:3: locale:" in out.output, out.output
    # a profile whose notice has neither locale: one error, not a second one about the stand-in locale
    (tmp_path / "fr.yaml").write_text(SHIPPED.replace(f'text: {{en-US: "{EN}", zh-CN: "本次通话将被录音。"}}',
                                                      "text: {fr-FR: 'Cet appel est enregistré.'}", 1))
    errors = campaign_errors(camp, rules_file=tmp_path / "fr.yaml")
    assert len(errors) == 1 and "has: fr-FR" in str(errors[0]), [str(e) for e in errors]
    # the same campaign in a locale the notice has, or under a profile whose notice has it, validates
    camp.write_text(CAMPAIGN.format(profile="uk", locale="en-US"))
    assert campaign_errors(camp, rules_file=rules) == []
    assert load_campaign(camp, rules_file=REPO / "compliance_rules.yaml").locale == "en-US"


class _FakeTTS:
    def __init__(self, tmp: Path):
        self.tmp, self.said = tmp, []

    def render(self, text: str, locale: str) -> str:
        self.said.append((text, locale))
        path = self.tmp / f"n{len(self.said)}.wav"
        path.write_bytes(b"")
        return str(path)


def test_the_daemon_renders_one_notice_per_campaign_that_needs_one(tmp_path):
    rules = rules_from_text(SHIPPED.replace(
        "campaign_overrides: {}", "campaign_overrides: {}\n").replace(
        f'notice: {{required: true, text: {{en-US: "{EN}", zh-CN: "本次通话将被录音。"}}}}\n'
        "      live:",
        f'notice: {{required: false, text: {{en-US: "{EN}"}}}}\n      live:', 1))
    (tmp_path / "a.yaml").write_text(CAMPAIGN.format(profile="cn", locale="en-US").replace("name: n1", "name: a"))
    (tmp_path / "b.yaml").write_text(CAMPAIGN.format(profile="us", locale="en-US").replace("name: n1", "name: b"))
    camps = [load_campaign(tmp_path / "a.yaml"), load_campaign(tmp_path / "b.yaml")]
    assert not rules.profiles["us"].recording_notice.required  # the replacement above hit the us profile
    tts = _FakeTTS(tmp_path)
    out = render_notices(tts, camps, lambda c: rules.profile_for(c.profile, c.name).recording_notice.text_for(c.locale))
    assert set(out) == {"a"} and not out["a"].endswith(".wav")  # Asterisk's Playback takes no extension
    assert tts.said == [(EN, "en-US")]


def test_the_script_preview_times_the_notice_before_the_first_prompt(tmp_path):
    """`dialer script preview` and the demo write carrier key timings: the notice comes first, so every key
    moves by its length."""
    from datetime import date

    from agi.script.loader import load_by_id
    from agi.script.model import Debtor
    from dialer.campaign.preview import notice_for, preview_script

    (tmp_path / "c.yaml").write_text(CAMPAIGN.format(profile="us", locale="en-US"))
    camp = load_campaign(tmp_path / "c.yaml")
    assert notice_for(camp) == EN
    debtor = Debtor(debtor_id="D1", name="Paula", birth_year="1984", amount_owed=100, currency="USD",
                    days_past_due=12, institution="Acme Finance", callback_number="+18005550199")
    script = load_by_id("m1_reminder_en")
    seconds = lambda text, locale: len(text) / 10  # noqa: E731
    plain = preview_script(script, debtor, ["1"], date(2026, 11, 20), seconds)
    told = preview_script(script, debtor, ["1"], date(2026, 11, 20), seconds, notice=notice_for(camp))
    assert told.notice == EN and told.notice_seconds == round(len(EN) / 10, 2)
    assert [x.text for x in told.turns if x.speaker == "agent"] == [x.text for x in plain.turns if x.speaker == "agent"]
    assert told.turns[0].start == round(plain.turns[0].start + len(EN) / 10, 2)  # the bot starts after it
    assert told.keys[0]["at"] == round(plain.keys[0]["at"] + len(EN) / 10, 2)


def test_a_collector_call_gets_the_notice_barged_into_both_sides():
    """Once the collector is connected: a Local channel plays the notice into ChanSpy's barge mode on the
    debtor's channel (both parties hear it); the dialplan context is the PBX's (asterisk-conf/pbx)."""
    import asyncio

    from dialer.qa.recordings import NOTICE_CONTEXT, play_notice

    sent: list[dict] = []

    class _Ami:
        async def send(self, action: dict, timeout: float) -> dict:
            sent.append(action)
            return {"Response": "Success"}

    class _Down:
        async def send(self, action: dict, timeout: float) -> dict:
            raise ConnectionError("AMI down")

    assert asyncio.run(play_notice(_Ami(), "c1", "PJSIP/carrier-00000007", "/v/n1")) == "barged"
    (a,) = sent
    assert a["Action"] == "Originate" and a["Channel"] == f"Local/play@{NOTICE_CONTEXT}/n"
    assert a["Application"] == "ChanSpy" and a["Data"] == "PJSIP/carrier-00000007,qBE"
    assert set(a["Variable"]) == {"_DIALER_NOTICE=/v/n1", "_DIALER_CALL_ID=c1"}
    conf = (REPO / "asterisk-conf" / "pbx" / "extensions.conf").read_text()
    assert f"[{NOTICE_CONTEXT}]" in conf and "Playback(${DIALER_NOTICE})" in conf
    assert asyncio.run(play_notice(_Down(), "c1", "PJSIP/x", "/v/n1")).startswith("failed: ")
