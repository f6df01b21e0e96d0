"""A real trunk in China and the UK (issue 17, item 7): codec per country, dial strings per trunk, the
rendered PBX config, and the sample pjsip_local.conf."""
from __future__ import annotations

from pathlib import Path

import pytest

from dialer.telephony.harness import Harness
from dialer.telephony.pbx import PbxConnection
from dialer.telephony.trunk import DialPlan, codec_for, dial_string

REPO = Path(__file__).resolve().parent.parent


def test_codec_per_country():
    assert codec_for("CN") == "alaw" and codec_for("GB") == "alaw" and codec_for("US") == "ulaw"
    assert codec_for(None) == "ulaw"


@pytest.mark.parametrize("number, plan, want", [
    ("+8613800138000", None, "+8613800138000"),
    ("+8613800138000", DialPlan("e164"), "+8613800138000"),
    ("+8613800138000", DialPlan("national", "CN"), "13800138000"),        # mobiles: no trunk prefix
    ("+862161234567", DialPlan("national", "CN"), "02161234567"),          # Shanghai landline: 0 + area code
    ("+442079460000", DialPlan("national", "GB"), "02079460000"),
    ("+12125550101", DialPlan("national", "GB"), "0012125550101"),         # foreign from the UK: 00
    ("+8613800138000", DialPlan("international", "US"), "0118613800138000"),  # from the US: 011
    ("+8613800138000", DialPlan("international", "CN"), "008613800138000"),
])
def test_dial_strings(number, plan, want):
    assert dial_string(number, plan) == want


def test_dial_plan_refuses_what_it_cannot_apply():
    with pytest.raises(ValueError, match="needs the trunk's country"):
        DialPlan("national")
    with pytest.raises(ValueError, match="dial format"):
        DialPlan("local", "CN")


def test_rendered_trunk_codec_and_dial_plan(tmp_path):
    h = Harness(tmp_path / "run", agents=0, trunk=("192.0.2.10", 5060), trunk_country="CN", dial_format="national",
                pjsip_extra=REPO / "asterisk-conf" / "pjsip_local.conf.sample")
    try:
        h.render()
        conf = (tmp_path / "run" / "pbx" / "pjsip.conf").read_text()
        section = conf[conf.index("[carrier](ep-common)") + 1:]
        section = section[:section.index("\n[")]
        assert section.rstrip().endswith("disallow=all\nallow=alaw"), section
        assert "contact=sip:192.0.2.10:5060" in conf
        assert "[carrier-reg]" in (tmp_path / "run" / "pbx" / "pjsip_local.conf").read_text()
        plan = h.connection.dial_plan()
        assert plan is not None and dial_string("+8613800138000", plan) == "13800138000"
    finally:
        h._release_ports()
    us = Harness(tmp_path / "us", agents=0, trunk=("192.0.2.10", 5060), trunk_country="US")
    assert us.codec == "ulaw"
    with pytest.raises(ValueError, match="simulator speaks ulaw"):
        Harness(tmp_path / "sim", agents=0, codec="alaw")


def test_old_connection_files_still_load(tmp_path):
    (tmp_path / "pbx.json").write_text('{"ami_port": 1, "ami_user": "u", "ami_secret": "s", "agi_port": 2,'
                                       ' "agi_token": "t", "cdr_path": "c", "members": []}')
    assert PbxConnection.load(tmp_path).dial_plan() is None


def test_sample_pjsip_local_is_commented_and_names_every_part():
    text = (REPO / "asterisk-conf" / "pjsip_local.conf.sample").read_text()
    for section in ("[carrier-auth]", "type=registration", "[carrier](+)", "outbound_auth=carrier-auth"):
        assert section in text
    assert sum(1 for ln in text.splitlines() if ln.startswith(";")) > 15
