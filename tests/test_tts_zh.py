"""The offline Chinese voice speaks Chinese: every zh prompt of every shipped script, with its slots filled the
way a call fills them, goes through espeak-ng `cmn-latn-pinyin` without any Han character switching to the
English voice (`espeak-ng -x -q` prints `(en)` where it does); numbers, dates and amounts read the Chinese way."""
import re
import subprocess
from datetime import date
from decimal import Decimal

import pytest

from agi.media.tts import TTS, espeak_command, zh_pinyin, zh_spoken
from agi.script.loader import load_all
from agi.script.model import Debtor, Script
from agi.script.render import render, slot_values
from common.wav import wav_info

LATIN = re.compile(r"[A-Za-z]+")


def zh_scripts():
    scripts = [s for s in load_all().values() if isinstance(s, Script) and s.lang == "zh"]
    assert len(scripts) >= 3  # m1, m2, m3 ship in Mandarin
    return scripts


def filled_prompts():
    """(script id, prompt id, text) for every zh prompt, slots filled as on a verified call; the institution
    has a Latin part, as real company names often do."""
    debtor = Debtor("d1", "张伟", institution="ABC消费金融", collector_name="小安", callback_number="+864008001234",
                    amount_owed=Decimal("12345.50"), currency="CNY", due_date=date(2026, 3, 5), days_past_due=25)
    out = []
    for script in zh_scripts():
        values = slot_values(script, debtor, True, {"date": date(2026, 12, 1), "amount": Decimal("2000")})
        for pid, prompt in script.prompts.items():
            out.append((script.id, pid, render(prompt, values)))
    return out


def phonemes(text, voice_name="cmn-latn-pinyin"):
    from agi.media.tts import VoiceSpec
    voice = VoiceSpec("t", "espeak", "zh-CN", espeak_voice=voice_name)
    return subprocess.run(espeak_command(voice, text, "-x", "-q"), capture_output=True, text=True, check=True,
                          timeout=30).stdout


def test_no_han_character_of_any_zh_prompt_goes_through_the_english_voice():
    prompts = filled_prompts()
    assert len(prompts) > 40
    bad = []
    for sid, pid, text in prompts:
        han_only = LATIN.sub("", text)  # Latin words (the company name) may legitimately switch voice
        if "(en)" in phonemes(han_only):
            bad.append(f"{sid}.{pid}: {han_only!r} -> {phonemes(han_only)!r}")
        whole = phonemes(text)
        assert whole.count("(en)") <= len(LATIN.findall(text)), f"{sid}.{pid}: {whole!r}"
        assert not re.search(r"\d", zh_spoken(text)), f"{sid}.{pid}: digits left: {zh_spoken(text)!r}"
    assert not bad, "\n".join(bad)


def test_the_check_catches_the_old_cmn_voice():
    """The check above is not vacuous: the voice this project used before (`-v cmn`) fails it."""
    voice_cmn = subprocess.run(["espeak-ng", "-v", "cmn", "-x", "-q", "--", "您好，请问您是张伟本人吗？"],
                               capture_output=True, text=True, check=True).stdout
    assert "(en)" in voice_cmn


@pytest.mark.parametrize("text, spoken", [
    ("账单12345.50元", "账单一万二千三百四十五元五角"),
    ("账单2000元", "账单两千元"),
    ("还款20000元", "还款两万元"),
    ("共1,250.05元", "共一千二百五十元零五分"),
    ("3月5日到期", "三月五日到期"),
    ("2026年3月5日", "二零二六年三月五日"),
    ("逾期105天", "逾期一百零五天"),
    ("请拨打4008001234", "请拨打四零零八零零幺二三四"),
    ("利率3.5%", "利率百分之三点五"),
])
def test_numbers_dates_and_amounts_are_written_the_chinese_way(text, spoken):
    assert zh_spoken(text) == spoken


def test_polyphones_of_the_debt_domain_are_read_right():
    assert zh_pinyin("请问您打算什么时候还款？").split()[-3:-1] == ["huan2", "kuan3"]  # not hai2
    assert "hai2 mei2 huan2" in zh_pinyin("我还没还")
    assert "yin2 hang2" in zh_pinyin("示例银行")  # not yin2 xing2


def test_every_filled_zh_prompt_renders_to_8k_audio_with_the_offline_voice(tmp_path):
    tts = TTS(cache_dir=tmp_path)
    voice = tts.voice_for("zh-CN")
    assert voice.engine == "espeak" and voice.espeak_voice == "cmn-latn-pinyin"
    sid, pid, text = next(p for p in filled_prompts() if p[1] == "debt_notice")
    rate, channels, width, seconds = wav_info(tts.render(text, "zh-CN"))
    assert (rate, channels, width) == (8000, 1, 2) and 3 < seconds < 20
