"""The Mandarin M1 script end to end through real Asterisk (espeak-ng cmn-latn-pinyin audio, CN profile):
identity → name → birth year → only then the debt → promise; a relative who answers hears nothing."""
from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest

from agi.media.tts import TTS
from agi.script.model import Debtor
from common.clock import Clock
from common.wav import active_seconds
from dialer.calls.bot import BOT_NAMES
from dialer.calls.daemon import Dialer
from dialer.campaign.config import load_campaign
from dialer.campaign.imports import read_debtors_csv
from dialer.gate.rules import load_rules
from dialer.store import Store, core
from dialer.telephony.carrier import behaviours_from_dict
from dialer.telephony.harness import Harness
from common.wav import duration
from tests.voicebot_util import AMD_SECONDS, notice, timeline

pytestmark = pytest.mark.asterisk
REPO = Path(__file__).resolve().parent.parent
SH = ZoneInfo("Asia/Shanghai")

DEBTORS = """debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,timezone,customer_type,lang,contacts
Z101,张伟,+8613800000101,3821,1986,CN-1,3200.00,CNY,15,2026-11-08,Asia/Shanghai,first,zh,
Z102,李娜,+8613800000102,5517,1990,CN-2,8650.50,CNY,15,2026-11-08,Asia/Shanghai,first,zh,
"""
CAMPAIGN = """name: zh_bot
profile: cn
locale: zh-CN
institution: 示例消费金融
callback_number: "+864008001234"
caller_id: "+862161234567"
dial_mode: bot_only
line_limit: 2
retry: {busy: 30m, no_answer: 2h, machine: 4h, failed: 4h, callee_hangup: 1d, max_attempts: 9}
segments:
  - {name: m1, dpd: M1, script: m1_reminder}
"""


def cn_business_morning() -> datetime:
    day = datetime.now(SH).date()
    cn = holidays.CN(years=[day.year, day.year + 1])
    while day.weekday() >= 5 or day in cn:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=SH)


def _debtor(did: str, name: str, phone: str, birth: str, amount: str) -> Debtor:
    return Debtor(debtor_id=did, name=name, phone=phone, birth_year=birth, amount_owed=Decimal(amount),
                  currency="CNY", due_date=date(2026, 11, 8), days_past_due=15, institution="示例消费金融",
                  collector_name=BOT_NAMES["zh-CN"], callback_number="+864008001234")


GREETING_KEY_WORDS = ("您好", "消费", "金融", "智能", "语音", "助手", "小安", "先生")


def _greeting_key_words(recording: Path, notice_seconds: float) -> list[str]:
    """The greeting's key words Whisper base hears in what the callee heard. The cn profile's recording notice
    (docs/RECORDINGS.md) comes first, after AMD's "hello": Whisper hears a 10 s window from the start and one
    from about where the notice ends (a long window with the notice in it is sometimes cut short after 您好)."""
    import subprocess
    import wave

    from pypinyin import lazy_pinyin

    from agi.media.asr import recognizer_for

    said = []
    for n, start in enumerate((0.0, max(0.0, AMD_SECONDS - 1.5 + notice_seconds))):
        pcm16 = recording.with_name(f"{recording.stem}-pcm16-{n}.wav")
        subprocess.run(["sox", str(recording), "-r", "8000", "-c", "1", "-e", "signed", "-b", "16", str(pcm16),
                        "trim", f"{start:.2f}", "10"], check=True, capture_output=True)
        with wave.open(str(pcm16)) as w:
            pcm = w.readframes(w.getnframes())
        heard = recognizer_for("zh").recognize(pcm, sample_rate=8000)
        said.append(" ".join(lazy_pinyin(heard.raw_text or heard.text or "")))
    return [k for k in GREETING_KEY_WORDS if any(" ".join(lazy_pinyin(k)) in s for s in said)]


def test_mandarin_m1_promise_and_relative(tmp_path):
    at = cn_business_morning()
    tts = TTS()
    zhang = _debtor("Z101", "张伟", "+8613800000101", "1986", "3200.00")
    li = _debtor("Z102", "李娜", "+8613800000102", "1990", "8650.50")
    z_keys, z_end = timeline(tts, "m1_reminder", zhang, ["1", "1986", "1"], at.date(), amd=True)
    l_keys, l_end = timeline(tts, "m1_reminder", li, ["2", "1"], at.date(), amd=True)  # a relative answers
    behaviours = behaviours_from_dict({
        "+8613800000101": {"answer_after": 1, "then": "speak", "audio": "hello.wav", "dtmf": z_keys, "hangup_after": z_end},
        "+8613800000102": {"answer_after": 1, "then": "speak", "audio": "hello.wav", "dtmf": l_keys, "hangup_after": l_end},
    })
    (tmp_path / "zh_bot.yaml").write_text(CAMPAIGN, encoding="utf-8")
    (tmp_path / "d.csv").write_text(DEBTORS, encoding="utf-8")
    store = Store(tmp_path / "dialer.db")
    camp = load_campaign(tmp_path / "zh_bot.yaml")
    core.upsert_campaign(store, camp)
    core.import_debtors(store, read_debtors_csv(tmp_path / "d.csv"), camp.name)
    harness = Harness(tmp_path / "run", agents=1, behaviours=behaviours)
    state = harness.up()
    try:
        async def run():
            dialer = Dialer(store, state, load_rules(REPO / "compliance_rules.yaml"), [camp], clock=Clock(at), tts=tts)
            await dialer.start()
            try:
                await dialer.run(until_idle=True, max_seconds=120)
            finally:
                await dialer.stop()
        asyncio.run(run())
    finally:
        harness.down()

    def said(call_id):
        return [r["text"] for r in store.query(
            "SELECT speaker, text FROM transcript_turns WHERE call_id=? ORDER BY idx", (call_id,)) if r["speaker"] == "agent"]

    z = store.query("SELECT * FROM attempts WHERE debtor_id='Z101'")
    assert len(z) == 1 and z[0]["disposition"] == "promise", z
    zs = said(z[0]["id"])
    assert zs[0].startswith("您好，我是示例消费金融的智能语音助手小安")
    assert next(i for i, t in enumerate(zs) if "出生年份" in t) < next(i for i, t in enumerate(zs) if "逾期" in t)
    promise = core.promises_for(store, call_id=z[0]["id"])
    assert promise and Decimal(promise[0]["amount"]) == Decimal("3200.00") and promise[0]["due_date"] == at.date().isoformat()
    assert store.query_one("SELECT score FROM qa_results WHERE call_id=?", (z[0]["id"],))["score"] == 100
    # What the debtor heard is Mandarin: Whisper base, on the carrier-side recording of the greeting, hears
    # its key words (by toneless pinyin: espeak's robotic voice costs characters, not sounds). The old
    # `-v cmn` voice (English phonemes) scored 0 of these; cmn-latn-pinyin 5 (measured offline).
    notice_s = duration(tts.render(notice("zh-CN") or "", "zh-CN")) if notice("zh-CN") else 0.0
    heard_kw = _greeting_key_words(harness.recording_for("+8613800000101", z[0]["id"]), notice_s)
    assert len(heard_kw) >= 3, heard_kw

    li_call = store.query("SELECT * FROM attempts WHERE debtor_id='Z102'")
    assert len(li_call) == 1 and li_call[0]["disposition"] == "third_party"
    ls = said(li_call[0]["id"])
    assert not any("逾期" in t or "8650" in t or "账单" in t for t in ls), ls
    heard = active_seconds(harness.recording_for("+8613800000102", li_call[0]["id"]))
    played = sum(active_seconds(tts.render(t, "zh-CN")) for t in ls)
    assert abs(heard - played) < 0.25 * played + 0.3, (heard, played)
