"""From what the recognizer heard to the script engine's event: expected-answer matching and the one call the
audio path makes per turn.

Where a Listen node expects known answers (its grammar's intents), Mandarin text is matched against canonical
answers by toneless pinyin (pypinyin), which tolerates the recognizer's character errors (去的 for 是的, 三人共
for 转人工). A score at or above `accept` is taken; between `confirm` and `accept` the bot should ask "did you
say …?" (`Heard.confirm_question`); below, the intent classifier reads the text as it is. English text goes to
the intent classifier (agi/intents.py), which also fills the date and amount slots in both languages.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any, Iterable, Mapping

from agi.intents import Intent, classify, normalize
from agi.media.asr import Recognition, Recognizer, recognize_utterance
from agi.script.model import Listen, NoInput, Speech

ACCEPT = 0.75
CONFIRM = 0.5
ECHO_MARGIN = 0.1  # the unprompted hearing must be this much closer to another answer to override the prompted one

# Canonical spoken answers per intent (Mandarin): what a debtor says to the bot's questions.
ZH_ANSWERS: Mapping[str, tuple[str, ...]] = {
    "confirm_identity": ("是的", "是我", "对", "对的", "是本人", "我就是", "嗯是的", "对是我"),
    "deny_identity": ("不是", "不是我", "不对", "我不是"),
    "promise_to_pay": ("我明天还款", "我今天还款", "我后天还款", "我下周还款", "明天还", "今天还", "我会还款",
                       "我马上还", "月底还款"),
    "request_human": ("转人工", "人工服务", "我要找人工", "转人工客服"),
    "wrong_number": ("你打错了", "打错了", "没有这个人", "我不认识他"),
    "third_party": ("他不在", "她不在", "我是他家人"),
    "dispute": ("我已经还了", "已经还款了", "我没有借过", "金额不对"),
    "hardship": ("我没钱", "我失业了", "我还不起", "最近很困难"),
    "cease": ("不要再打了", "别再打了", "别给我打电话"),
    "callback_request": ("我现在不方便", "晚点再打", "我在开车"),
    "refuse": ("我不还", "我不会还的"),
}

ZH_CONFIRM_YES = ("是的", "是", "对", "对的", "没错", "嗯")
ZH_CONFIRM_NO = ("不是", "不对", "不", "错了")


@lru_cache(maxsize=4096)
def toneless(text: str) -> str:
    """'我明天还款' -> 'wo ming tian huan kuan' (Simplified first; punctuation and Latin dropped)."""
    from pypinyin import Style, lazy_pinyin

    s = normalize(text)
    han = "".join(re.findall(r"[\u4e00-\u9fff]+", s))
    if not han:
        return ""
    syl = lazy_pinyin(han, style=Style.NORMAL, errors="ignore")
    # 还 in the debt domain is huan ("return money") before 款/钱/了, hai ("still") otherwise: fold both to one key.
    return " ".join("huan" if p == "hai" else p.replace("ü", "v") for p in syl)


def _edit(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


_FILLERS = {"en", "a", "o", "e", "ei", "ng", "m", "wei", "na", "ge", "ya", "ai"}  # 嗯 啊 哦 呃 喂 那个 呀 哎


def pinyin_similarity(heard: str, answer: str) -> float:
    """1 - letter edit distance / length of the longer, over toneless pinyin. Fillers (嗯, 啊, 喂, 那个) around
    the answer are dropped first; a window of the heard syllables may match, at a discount for what it leaves."""
    h, a = toneless(heard).split(), toneless(answer).split()
    while h and h[0] in _FILLERS and h[0] not in a:
        h = h[1:]
    while h and h[-1] in _FILLERS and h[-1] not in a:
        h = h[:-1]
    if not h or not a:
        return 0.0
    joined_a = "".join(a)

    def sim(w: str) -> float:
        return 1.0 - _edit(w, joined_a) / max(len(w), len(joined_a))

    best = sim("".join(h))
    for size in {max(1, len(a) - 1), len(a), len(a) + 1}:
        for i in range(0, max(1, len(h) - size + 1)):
            left = len(h) - len(h[i:i + size])
            best = max(best, sim("".join(h[i:i + size])) * (0.9 ** left))
    return best


@dataclass(frozen=True)
class AnswerMatch:
    intent: str  # the intent whose canonical answer was closest ("" when nothing was expected)
    answer: str  # that canonical answer (the text the engine receives when accepted)
    score: float
    runner_up: float


def match_answer(text: str, intents: Iterable[str], lang: str) -> AnswerMatch:
    """The expected answer closest to `text` by toneless pinyin (zh); for en, AnswerMatch with score 0."""
    best = AnswerMatch("", "", 0.0, 0.0)
    if lang != "zh":
        return best
    scores: list[tuple[float, str, str]] = []
    for intent in intents:
        for answer in ZH_ANSWERS.get(intent, ()):
            scores.append((pinyin_similarity(text, answer), intent, answer))
    if not scores:
        return best
    scores.sort(reverse=True)
    top = scores[0]
    runner = next((s for s, i, _ in scores[1:] if i != top[1]), 0.0)
    return AnswerMatch(top[1], top[2], round(top[0], 3), round(runner, 3))


@dataclass(frozen=True)
class ExpectedMatch:
    answer: str  # "" when nothing matched
    score: float
    decision: str  # "accept" | "confirm" | "reject"


def expected_match(text: str, answers: Iterable[str], lang: str, *, accept: float = ACCEPT,
                   confirm: float = CONFIRM) -> ExpectedMatch:
    """Free answers (`dialer asr transcribe --expect`): zh by toneless pinyin; en by normalised words."""
    answers = list(answers)
    if not text or not answers:
        return ExpectedMatch("", 0.0, "reject")
    if lang == "zh":
        scored = sorted(((pinyin_similarity(text, a), a) for a in answers), reverse=True)
    else:
        words = re.findall(r"[a-z']+", normalize(text))
        scored = sorted(((1.0 - _edit(" ".join(words), " ".join(re.findall(r"[a-z']+", normalize(a))))
                          / max(1, len(" ".join(words)), len(normalize(a))), a) for a in answers), reverse=True)
    score, answer = scored[0]
    runner = scored[1][0] if len(scored) > 1 else 0.0
    decision = "accept" if score >= accept and score > runner else "confirm" if score >= confirm else "reject"
    return ExpectedMatch(answer if decision != "reject" else "", round(score, 3), decision)


@dataclass(frozen=True)
class Heard:
    """One caller turn, understood: what the recognizer returned, the engine event, and how it was decided."""

    recognition: Recognition
    event: Any  # Speech(text, confidence) | NoInput()
    intent: Intent | None  # what the engine will classify event.text as (for logs and transcripts)
    how: str  # "no_speech" | "classifier" | "pinyin" | "confirm" | "unmatched"
    match: AnswerMatch | None = None
    confirm_question: str | None = None  # set when how == "confirm": ask it, then `resolve_confirmation`

    @property
    def candidate(self) -> str | None:
        return self.match.answer if self.match else None


def confirm_question(answer: str, lang: str) -> str:
    return f"请问您是说“{answer}”吗？" if lang == "zh" else f"Did you say “{answer}”?"


def understand(recognition: Recognition, listen: Listen | None, *, lang: str, today: date,
               payday: int | None = None, accept: float = ACCEPT, confirm: float = CONFIRM) -> Heard:
    """Recognition + the node's Listen -> Heard with the engine event. No speech -> NoInput. The classifier
    reads the text first (it knows dates and amounts); if it finds no expected intent and the node expects
    answers, Mandarin is matched by toneless pinyin."""
    if not recognition.is_speech:
        return Heard(recognition, NoInput(), None, "no_speech")
    text = recognition.text
    expected = tuple(listen.grammar.intents) if listen is not None else ()
    conf = recognition.confidence
    if listen is not None and listen.grammar.digits:  # verification: the engine reads the digits itself
        return Heard(recognition, Speech(text, max(conf, 0.0)), None, "classifier")
    intent = classify(text, lang, today=today, payday=payday)
    if intent.name in expected or not expected or lang != "zh":
        return Heard(recognition, Speech(text, conf), intent, "classifier")
    m = match_answer(text, expected, lang)
    if m.score >= accept and m.score > m.runner_up:
        return Heard(recognition, Speech(m.answer, m.score), classify(m.answer, lang, today=today, payday=payday),
                     "pinyin", m)
    if m.score >= confirm:
        return Heard(recognition, None, None, "confirm", m, confirm_question(m.answer, lang))
    return Heard(recognition, Speech(text, conf), intent, "unmatched", m)


def resolve_confirmation(pending: Heard, reply: Heard, *, lang: str, today: date) -> Any:
    """The caller's answer to "did you say …?": yes -> Speech(candidate), no or nothing -> NoInput."""
    if pending.match is None or not reply.recognition.is_speech:
        return NoInput()
    text = reply.recognition.text
    intent = classify(text, lang, today=today)
    if intent.name == "confirm_identity":
        return Speech(pending.match.answer, pending.match.score)
    if lang == "zh" and intent.name not in ("deny_identity",):
        yes = max(pinyin_similarity(text, a) for a in ZH_CONFIRM_YES)
        no = max(pinyin_similarity(text, a) for a in ZH_CONFIRM_NO)
        if yes >= ACCEPT and yes > no:
            return Speech(pending.match.answer, pending.match.score)
    return NoInput()


def hear(utterance: Any, listen: Listen | None, recognizer: Recognizer, *, today: date, payday: int | None = None,
         prompt: str | None = None) -> Heard:
    """The one call the audio path makes per endpointed turn: recognise `utterance` (pcm16 8 kHz, start, end)
    with the call's recognizer and turn it into the engine's event (`heard.event`): Speech(text, confidence),
    NoInput, or None with a `confirm_question` to ask first.

    Mandarin is decoded with the node's expected answers as a domain prompt (it lifts espeak-speech matching
    from 4-5 to 11 of 14 here), but a prompted Whisper sometimes echoes an answer from the prompt for audio it
    cannot read (你打错了 heard as 转人工). So when the prompted text lands on an expected answer, the clip is
    decoded again without the prompt; if that second hearing is closer by pinyin to another answer (by
    ECHO_MARGIN or more), the bot asks "did you say …?" instead of acting."""
    lang = recognizer.lang
    prompt = prompt if prompt is not None else node_prompt(listen, lang)
    rec = recognize_utterance(recognizer, utterance, prompt=prompt)
    heard = understand(rec, listen, lang=lang, today=today, payday=payday)
    if not prompt or lang != "zh" or heard.intent is None or listen is None or heard.how == "no_speech":
        return heard
    expected = tuple(listen.grammar.intents)
    if heard.intent.name not in expected:
        return heard
    plain = recognize_utterance(recognizer, utterance, prompt=None)
    check = match_answer(plain.text, expected, lang) if plain.is_speech else None
    mine = max((pinyin_similarity(plain.text, a) for a in ZH_ANSWERS.get(heard.intent.name, ())), default=0.0)
    if check is None or check.intent == heard.intent.name or check.score - mine < ECHO_MARGIN:
        return dataclasses.replace(heard, recognition=dataclasses.replace(
            rec, cpu_seconds=rec.cpu_seconds + plain.cpu_seconds))
    cpu = rec.cpu_seconds + plain.cpu_seconds
    rec2 = Recognition(rec.text, rec.confidence, rec.no_speech_prob, rec.start, rec.end, rec.backend, lang,
                       cpu, f"{rec.raw_text} | unprompted: {plain.raw_text}")
    if check.score >= ACCEPT:  # the plain hearing clearly says something else: ask about that
        return Heard(rec2, None, None, "confirm", check, confirm_question(check.answer, lang))
    answer = heard.match.answer if heard.match else next(iter(ZH_ANSWERS.get(heard.intent.name, ())), rec.text)
    m = AnswerMatch(heard.intent.name, answer, round(mine, 3), check.score)
    return Heard(rec2, None, None, "confirm", m, confirm_question(answer, lang))


def node_prompt(listen: Listen | None, lang: str) -> str | None:
    """A short domain prompt for Whisper: the expected Mandarin answers of the node (None for English)."""
    if lang != "zh" or listen is None or not listen.grammar.intents:
        return None
    answers = [ZH_ANSWERS[i][0] for i in listen.grammar.intents if i in ZH_ANSWERS]
    return "。".join(answers) + "。" if answers else None
