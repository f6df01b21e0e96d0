"""The matching form of a text, for QA and the debt lexicon: Traditional→Simplified (OpenCC t2s), full-width→half-width, case-folding.

`normalize(text)` returns the matching form plus, for every character of it, the index of the
original character it came from, so a match can be shown to the reviewer in the words actually said.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import opencc

# Punctuation that NFKC leaves alone but people (and ASR) use interchangeably.
_PUNCT = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u3002": ".", "\u3001": ",",
    "\u2026": "...", "\u2014": "-", "\u2013": "-", "\uff5e": "~",
})
# Honorific "您" is matched as "你" so one lexicon entry covers both registers; 帐 (OpenCC keeps it) as 账.
_FOLD = str.maketrans({"您": "你", "帐": "账"})


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


@dataclass(frozen=True)
class Normalized:
    """Matching form of a text and, per character, the index of its source character."""

    text: str
    source: tuple[int, ...]
    original: str

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original-text span (start, end) covering normalized characters [start, end)."""
        if not self.source or start >= end:
            return (0, 0)
        first = self.source[min(start, len(self.source) - 1)]
        last = self.source[min(end, len(self.source)) - 1]
        return (first, last + 1)

    def original_slice(self, start: int, end: int) -> str:
        a, b = self.span(start, end)
        return self.original[a:b]


def _per_char(text: str) -> tuple[list[str], list[int]]:
    """NFKC (full-width → half-width), punctuation folding and case-folding, one source char at a time."""
    pieces: list[str] = []
    source: list[int] = []
    for i, ch in enumerate(text):
        out = unicodedata.normalize("NFKC", ch).translate(_PUNCT).casefold().translate(_FOLD)
        for piece in out:
            pieces.append(piece)
            source.append(i)
    return pieces, source


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def _drop_cjk_spaces(pieces: list[str], source: list[int]) -> tuple[list[str], list[int]]:
    """ASR output separates Chinese words with spaces ("我们 不会 上门"): drop whitespace next to a Han character."""
    keep = []
    for i, ch in enumerate(pieces):
        if ch.isspace():
            j = i - 1
            while j >= 0 and pieces[j].isspace():
                j -= 1
            k = i + 1
            while k < len(pieces) and pieces[k].isspace():
                k += 1
            if (j >= 0 and _is_cjk(pieces[j])) or (k < len(pieces) and _is_cjk(pieces[k])):
                continue
        keep.append(i)
    return [pieces[i] for i in keep], [source[i] for i in keep]


def normalize(text: str) -> Normalized:
    """Matching form of `text`: t2s, half-width, case-folded, 您→你 and 帐→账, curly quotes straightened,
    no spaces between Chinese words."""
    pieces, source = _drop_cjk_spaces(*_per_char(text))
    half = "".join(pieces)
    simplified = _t2s().convert(half)
    if len(simplified) != len(half):
        # A phrase conversion changed the length: convert char by char so the offsets stay exact.
        simplified = "".join(_t2s().convert(c) or c for c in half)
        if len(simplified) != len(half):  # pragma: no cover - OpenCC t2s maps chars 1:1
            simplified = half
    simplified = simplified.translate(_FOLD)
    return Normalized(text=simplified, source=tuple(source), original=text)


def normalize_text(text: str) -> str:
    """Just the matching form (for lexicon entries and search terms)."""
    return normalize(text).text
