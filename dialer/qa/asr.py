"""Recogniser-text repair before QA reads a turn: sentence boundaries from pauses, Chinese homophones by
pinyin, and numbers said in words (for verification answers).

A recogniser hands over text without punctuation, with words replaced by others that sound the same
(做牢 for 坐牢, 欠宽 for 欠款) and numbers spelled out (三五零七, "four four one seven"). Three repairs:

* `turn_text`: when a turn carries `segments` (the recogniser's timed pieces), a pause of at least
  `PAUSE_S` between two pieces becomes a sentence end, so a negation in one sentence cannot reach a
  phrase in the next.
* `fix_homophones`: a window of Chinese characters whose toneless pinyin (any reading of each
  character) equals a term of the QA vocabulary, and that shares at least one character with it, is
  replaced by the term. The vocabulary is the literal Chinese words of the debt lexicon plus the domain
  words below; sharing a character keeps most ordinary words from being rewritten (not all: see
  default_fixer for why insult words are left out).
* `words_to_digits`: runs of number words become digits (三五零七 → 3507, 一九八八 → 1988, 三千二百 → 3200;
  "four four one seven" → 4417, "nineteen eighty five" → 1985, "two hundred" → 200).
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable, Sequence

PAUSE_S = 0.3

# Domain words a recogniser is likely to mishear and QA must still see (regulations, seeds).
DOMAIN_ZH = (
    "坐牢", "牢饭", "拘留", "起诉", "法院", "公安", "警察", "派出所", "检察院", "执行局", "律师", "律师函", "征信",
    "本人", "欠款", "借款", "还款", "逾期", "老赖", "废物", "不要脸", "家人", "单位", "上门", "冒充", "诈骗",
    "判刑", "经侦", "法官", "传票", "立案", "冻结", "查封", "失信",
)


# -- sentence boundaries from pauses --------------------------------------------------------------

def turn_text(text: str, segments: Sequence[tuple[str, float | None, float | None]] | None, lang: str) -> str:
    """The turn's text with a sentence end wherever the recogniser paused (segments given), else as is."""
    if not segments:
        return text
    stop, glue = ("。", "") if lang == "zh" else (". ", " ")
    out = segments[0][0].strip()
    for (prev, cur) in zip(segments, segments[1:]):
        gap = (cur[1] - prev[2]) if cur[1] is not None and prev[2] is not None else 0.0
        sep = stop if gap >= PAUSE_S and not re.search(r"[。！？.!?]\s*$", out) else glue
        out += sep + cur[0].strip()
    return out


# -- homophones -----------------------------------------------------------------------------------

def _is_han(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff"


@lru_cache(maxsize=20000)
def _readings(ch: str) -> frozenset[str]:
    from pypinyin import Style, pinyin
    if not _is_han(ch):
        return frozenset()
    return frozenset(pinyin(ch, style=Style.NORMAL, heteronym=True)[0])


# Words whose characters a term must not take: "抱歉我们" is not "抱欠我们" (the debt word 欠我们).
KEEP_ZH = ("抱歉", "道歉", "致歉", "歉意")


class HomophoneFixer:
    def __init__(self, terms: Iterable[str]):
        self.terms = sorted({t for t in terms if len(t) >= 2 and all(_is_han(c) for c in t)}, key=len, reverse=True)
        self.by_first: dict[str, list[str]] = {}
        for t in self.terms:
            for r in _readings(t[0]):
                self.by_first.setdefault(r, []).append(t)

    def __call__(self, text: str) -> str:
        chars = list(text)
        i = 0
        while i < len(chars):
            ch = chars[i]
            if not _is_han(ch):
                i += 1
                continue
            done = False
            cands: list[str] = []
            for r in _readings(ch):
                cands += self.by_first.get(r, ())
            for term in sorted(set(cands), key=len, reverse=True):
                window = chars[i:i + len(term)]
                if len(window) < len(term) or "".join(window) == term:
                    continue
                if not any(a == b for a, b in zip(window, term)):
                    continue
                if any("".join(chars[k:k + 2]) in KEEP_ZH for k in range(max(i - 1, 0), i + len(term))):
                    continue
                if all(_readings(a) & _readings(b) for a, b in zip(window, term)):
                    chars[i:i + len(term)] = list(term)
                    i += len(term)
                    done = True
                    break
            if not done:
                i += 1
        return "".join(chars)


_CJK_RUN = re.compile(r"[\u3400-\u9fff]{2,}")


def lexicon_terms(patterns: Iterable[str]) -> set[str]:
    """Literal Chinese words inside regular expressions (alternatives split on |, brackets dropped). A character
    class ("[两三四五六七八九十]") is a choice of one character, not a word."""
    out: set[str] = set()
    for p in patterns:
        p = re.sub(r"\[[^\]]*\]", "|", p)
        for piece in re.split(r"[|()?\[\]{}*+.\\^$]", p):
            out.update(_CJK_RUN.findall(piece))
    return out


@lru_cache(maxsize=4)
def default_fixer() -> HomophoneFixer:
    """The domain words and the debt lexicon's words. Not the conduct lexicons' insult words: with no word
    list to tell a real word from a misrecognition, 出生 (chū shēng, "birth") would become 畜生 (an insult)."""
    from common.lexicon import DEBT
    terms = set(DOMAIN_ZH) | lexicon_terms(DEBT.get("zh", ()))
    return HomophoneFixer(t for t in terms if len(t) <= 4)


def fix_homophones(text: str) -> str:
    return default_fixer()(text)


# -- numbers in words -----------------------------------------------------------------------------

_ZH_DIGIT = {"零": 0, "〇": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
             "八": 8, "九": 9}
_ZH_UNIT = {"十": 10, "百": 100, "千": 1000, "万": 10000}
_ZH_RUN = re.compile(r"[零〇一幺二两三四五六七八九][零〇一幺二两三四五六七八九十百千万]+|十[一二三四五六七八九]")


def _zh_value(run: str) -> str:
    if not any(c in _ZH_UNIT for c in run):
        return "".join(str(_ZH_DIGIT[c]) for c in run)          # digit by digit: 三五零七
    total = section = digit = 0
    for c in run:
        if c in _ZH_DIGIT:
            digit = _ZH_DIGIT[c]
        elif c == "万":
            total += (section + digit) * 10000
            section = digit = 0
        else:
            section += (digit or 1) * _ZH_UNIT[c]
            digit = 0
    return str(total + section + digit)


_EN_SMALL = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                         "fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_EN_SMALL["oh"] = 0
_EN_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i > 1}
_EN_WORD = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|" \
           r"sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand)"
_EN_RUN = re.compile(rf"\b{_EN_WORD}(?:[\s-]+(?:and\s+)?{_EN_WORD})+\b|\b(?:twenty|thirty|forty|fifty|sixty|seventy|"
                     rf"eighty|ninety|hundred|thousand)\b", re.IGNORECASE)


def _en_value(run: str) -> str:
    words = [w for w in re.split(r"[\s-]+", run.lower()) if w and w != "and"]
    if all(w in _EN_SMALL and _EN_SMALL[w] < 10 for w in words):
        return "".join(str(_EN_SMALL[w]) for w in words)          # four four one seven
    groups: list[int] = []
    total, cur, open_ = 0, 0, False
    last = ""
    for w in words:
        if w == "thousand":
            total, cur = total + (cur or 1) * 1000, 0
        elif w == "hundred":
            cur = (cur or 1) * 100
        else:
            v = _EN_TENS.get(w, _EN_SMALL.get(w, 0))
            small_after_small = last in _EN_SMALL and w in _EN_SMALL
            tens_after_unit = w in _EN_TENS and (last in _EN_TENS or (last in _EN_SMALL and cur % 100 != 0))
            teen_after_tens = last in _EN_TENS and w in _EN_SMALL and v >= 10
            if open_ and (small_after_small or tens_after_unit or teen_after_tens):
                groups.append(total + cur)
                total, cur = 0, 0
            cur += v
        open_ = True
        last = w
    if open_:
        groups.append(total + cur)
    return "".join(str(g) for g in groups)


def says_number(text: str, lang: str) -> bool:
    """Digits, or a number in words as `words_to_digits` reads them (三千二, "five hundred"; not 千万别, "one sec")."""
    return bool(re.search(r"\d", text) or (_ZH_RUN if lang == "zh" else _EN_RUN).search(text))


def words_to_digits(text: str, lang: str) -> str:
    if lang == "zh":
        return _ZH_RUN.sub(lambda m: _zh_value(m.group(0)), text)
    return _EN_RUN.sub(lambda m: _en_value(m.group(0)), text)


# A recogniser (or the pipeline after it) that drops punctuation splits English contractions and
# possessives: "i m his wife", "we re not", "don t", "crestline s office". Joined again they read as
# the words the lexicons and the detectors know ("i'm his wife", "don't").
_EN_SPLIT = re.compile(r"\b(i|you|we|they|he|she|it|that|there|here|what|who|where|let)\s(m|re|ve|ll|d|s)\b"
                       r"|\b(do|does|did|ca|can|wo|is|are|was|were|have|has|had|could|would|should|must|ai)n\st\b"
                       r"|\b([a-z]{2,})\ss\b", re.IGNORECASE)


def _join_split(m: re.Match) -> str:
    if m.group(1):
        return f"{m.group(1)}'{m.group(2)}"
    if m.group(3):
        return f"{m.group(3)}n't"
    return f"{m.group(4)}'s"


def join_contractions(text: str) -> str:
    """'i m not him' → "i'm not him"; 'don t' → "don't"; 'crestline s office' → "crestline's office"."""
    return _EN_SPLIT.sub(_join_split, text)


def repair(text: str, lang: str, *, segments=None, numbers: bool = False) -> str:
    """Everything above, in order: pauses → sentences, homophones (zh), split contractions (en), numbers
    (when asked)."""
    out = turn_text(text, segments, lang)
    if lang == "zh":
        out = fix_homophones(out)
    elif lang == "en":
        out = join_contractions(out)
    if numbers:
        out = words_to_digits(out, lang)
    return out
