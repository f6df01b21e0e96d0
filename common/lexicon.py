"""The debt lexicon: what, said before the right party is verified, tells a third party about a debt.

One list for both ends of a call. QA (`dialer/qa`) flags an agent turn before verification that matches
`DEBT` (privacy.third_party_disclosure; the `debt` stage of its lexicons). The script validator
(`agi/script/validate.py`) refuses any prompt that can play before verification and matches `DEBT` or
`NEAR_DEBT`, so what QA would flag never reaches a call. Entries are regular expressions over the
matching form both read (`common.normalize`: Traditional as Simplified, half-width, case-folded, 您 as 你).
"""
from __future__ import annotations

import re
from functools import lru_cache

from common.normalize import normalize_text

DEBT: dict[str, tuple[str, ...]] = {
    "zh": (
        "欠款|欠费|欠钱|欠了|欠我们|拖欠|逾期|未还|没还|待还|应还|还款额",
        "贷款(?!公司|中心|部)|借款|借了|房贷|账单|催收|贷后|还款提醒|提醒.{0,2}还款",
        r"差(我们|你们|银行|公司|平台)[^,.!?;]{0,6}(钱|块|元|\d|[两三四五六七八九十百千万])",
        r"欠[^,.!?;]{0,8}(钱|款|贷|账|块|元|\d|[两三四五六七八九十百千万])|(你|他|她)借(的)(那(个|笔)|这(笔))?(钱|款)",
    ),
    "en": (
        r"\b(debt|overdue|past[- ]due|arrears|outstanding|owe[sd]?|owing|behind on|in arrears|collections?|collector)\b",
        r"\blate (car |loan )?payments?\b",
        r"\bmissed payments?\b",
        r"\b(balance|amount) (of|is|due)\b",
        r"\brecover(y|ies) (department|team|unit|division|specialist|agent|officer)s?\b",
    ),
}
"""Says there is a debt: QA scores it as a disclosure when the right party is not verified."""

NEAR_DEBT: dict[str, tuple[str, ...]] = {
    "zh": ("欠", "还款", "债", "贷款", "金额", "分期", "违约"),
    "en": (r"\bdebt", r"\bowe", r"\bbalance", r"\bpayment", r"\bcollect", r"\bloan", r"\bbill",
           r"\binstal{1,2}ment"),
}
"""Money words a script keeps for after verification as well; QA does not score them alone (its corpus
holds innocent uses), so only the validator refuses them."""

LANGS = tuple(DEBT)

@lru_cache(maxsize=None)
def _compiled(lang: str, strict: bool) -> tuple[re.Pattern[str], ...]:
    entries = DEBT.get(lang, ()) + (NEAR_DEBT.get(lang, ()) if strict else ())
    return tuple(re.compile(e, re.IGNORECASE) for e in entries)


def debt_mentions(text: str, lang: str, *, strict: bool = True) -> list[str]:
    """The words of `text` that speak of a debt, in lexicon order; `strict` adds `NEAR_DEBT`."""
    form = normalize_text(text)
    return [m.group(0) for rx in _compiled(lang, strict) if (m := rx.search(form))]
