"""Text (zh/en, Simplified or Traditional, full-width digits) and DTMF -> intent + slots (date, amount).

Independent of any ASR: it takes the recognised text, a `today` and an optional payday
(day of month), and returns one `Intent`. Pure functions, no I/O.
"""
from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

INTENTS = (
    "confirm_identity",
    "deny_identity",
    "third_party",
    "wrong_number",
    "promise_to_pay",
    "hardship",
    "dispute",
    "request_human",
    "cease",
    "refuse",
    "callback_request",
)
"""Every intent a script may listen for (plus `digits` for a spoken/keyed number)."""


@dataclass(frozen=True)
class Intent:
    """What the caller meant: a name from INTENTS (or 'digits' / 'unknown') and its slots."""

    name: str
    slots: dict[str, Any] = field(default_factory=dict)
    text: str = ""


# ---------------------------------------------------------------- normalising

@lru_cache(maxsize=1)
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def normalize(text: str) -> str:
    """NFKC (full-width digits/letters -> ASCII), Traditional -> Simplified, lower case, trimmed."""
    s = unicodedata.normalize("NFKC", text or "")
    if any("\u4e00" <= ch <= "\u9fff" for ch in s):
        s = _t2s().convert(s)
    return re.sub(r"\s+", " ", s.strip().lower())


# ---------------------------------------------------------------- numbers

_ZH_DIGITS = {"零": 0, "〇": 0, "○": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "三": 3, "四": 4,
              "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_ZH_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}
_ZH_NUM = "零〇○一幺二两三四五六七八九十百千万"


def zh_number(s: str) -> int | None:
    """'五千' 5000, '两千五' 2500, '一万二' 12000, '三百' 300, '十五' 15, '一九八四' 1984."""
    if not s or any(ch not in _ZH_DIGITS and ch not in _ZH_UNITS for ch in s):
        return None
    if all(ch in _ZH_DIGITS for ch in s):  # digit by digit: 一九八四
        return int("".join(str(_ZH_DIGITS[ch]) for ch in s))
    total, section, digit, last_unit = 0, 0, None, None
    for ch in s:
        if ch in _ZH_DIGITS:
            digit = _ZH_DIGITS[ch]
            continue
        unit = _ZH_UNITS[ch]
        if unit == 10000:
            section = (section + (digit or 0)) * unit
            total += section
            section, digit = 0, None
        else:
            section += (1 if digit is None else digit) * unit
            digit = None
        last_unit = unit
    if digit is not None:
        # colloquial tail: 两千五 = 2500, 一万二 = 12000, 三百五 = 350
        if last_unit and last_unit >= 100 and s[-2] in _ZH_UNITS:
            digit *= last_unit // 10
        section += digit
    return total + section


_EN_SMALL = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen".split())}
_EN_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
            "eighty": 80, "ninety": 90}


def en_number(words: list[str]) -> int | None:
    """['two', 'thousand', 'five', 'hundred'] -> 2500."""
    total, current, seen = 0, 0, False
    for w in words:
        if w in _EN_SMALL:
            current += _EN_SMALL[w]
        elif w in _EN_TENS:
            current += _EN_TENS[w]
        elif w == "hundred":
            current = (current or 1) * 100
        elif w == "thousand":
            total += (current or 1) * 1000
            current = 0
        elif w == "and" and seen:
            continue
        else:
            return None
        seen = True
    return total + current if seen else None


def extract_digits(text: str) -> str | None:
    """The digits in an answer: '1984', '１９８４', '一九八四', 'one nine eight four', '八 四'."""
    s = normalize(text)
    ascii_digits = "".join(ch for ch in s if ch.isdigit())
    if ascii_digits:
        return ascii_digits
    zh = "".join(str(_ZH_DIGITS[ch]) for ch in s if ch in _ZH_DIGITS)
    if zh:
        return zh
    words = re.findall(r"[a-z]+", s)
    en = "".join(str(_EN_SMALL[w]) for w in words if w in _EN_SMALL and _EN_SMALL[w] < 10)
    return en or None


# ---------------------------------------------------------------- amounts

_AMOUNT_ZH = re.compile(rf"(\d[\d,]*(?:\.\d+)?|[{_ZH_NUM}]+)\s*(块钱|块|元|rmb)?")
_AMOUNT_EN = re.compile(r"(?:\$|rmb|usd|cny)?\s*(\d[\d,]*(?:\.\d+)?)\s*(dollars|bucks|yuan|usd|rmb)?")
_EN_NUMBER_WORDS = re.compile(
    r"\b((?:(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|"
    r"fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|"
    r"seventy|eighty|ninety|hundred|thousand|and)\s*)+)\s*(dollars|bucks|yuan)\b")


def extract_amount(s: str, lang: str) -> dict[str, Any]:
    """Slots `amount` (Decimal) or `fraction` (0.5 for 'half', 1 for 'all'), from normalised text."""
    if lang == "zh":
        if re.search(r"一半|半数|50%", s):
            return {"fraction": Decimal("0.5")}
        if re.search(r"全部|全额|一次性|结清|还清", s):
            return {"fraction": Decimal("1")}
        for m in _AMOUNT_ZH.finditer(s):
            raw, unit = m.group(1), m.group(2)
            after = s[m.end():m.end() + 1]
            if after in ("号", "日", "天", "月", "周", "点", "期", "个") or s[m.start() - 1:m.start()] in ("周", "期"):
                continue  # a date, a count, not money
            if raw[0].isdigit():
                value = Decimal(raw.replace(",", ""))
            else:
                n = zh_number(raw)
                if n is None:
                    continue
                value = Decimal(n)
            if unit or value >= 10 or not raw[0].isdigit():
                if value > 0 and (unit or value >= 10):
                    return {"amount": value}
        return {}
    if re.search(r"\bhalf\b|50 ?%", s):
        return {"fraction": Decimal("0.5")}
    if re.search(r"\b(in full|full amount|all of it|the whole (amount|thing|balance)|everything)\b", s):
        return {"fraction": Decimal("1")}
    m = _EN_NUMBER_WORDS.search(s)
    if m:
        n = en_number(m.group(1).split())
        if n:
            return {"amount": Decimal(n)}
    for m in _AMOUNT_EN.finditer(s):
        if re.match(r"\s*(st|nd|rd|th|days?|weeks?|months?|am|pm|o'clock)\b", s[m.end():]):
            continue
        if re.search(r"(the|on|in|of|march|april|may|june|july|august|january|february|september|"
                     r"october|november|december)\s*$", s[:m.start()]) and not m.group(2) and "$" not in m.group(0):
            continue
        value = Decimal(m.group(1).replace(",", ""))
        if value >= 10 or m.group(2) or "$" in m.group(0):
            return {"amount": value}
    return {}


# ---------------------------------------------------------------- dates

_ZH_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5}
_EN_WEEKDAYS = {d.lower(): i for i, d in enumerate(calendar.day_name)}
_EN_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
_EN_MONTHS.update({m.lower(): i for i, m in enumerate(calendar.month_abbr) if m})


def next_payday(today: date, payday: int | None) -> date | None:
    """The next date (after today) that falls on the debtor's payday (day of month)."""
    if not payday:
        return None
    return _next_day_of_month(today, payday, strictly_after=True)


def _clamp(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _next_day_of_month(today: date, day: int, strictly_after: bool = False) -> date:
    candidate = _clamp(today.year, today.month, day)
    if candidate < today or (strictly_after and candidate == today):
        y, m = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
        candidate = _clamp(y, m, day)
    return candidate


def _weekday(today: date, wd: int, next_week: bool) -> date:
    if next_week:  # 下周五 / next Friday: the Friday of next week
        monday_next = today + timedelta(days=7 - today.weekday())
        return monday_next + timedelta(days=wd)
    ahead = (wd - today.weekday()) % 7
    return today + timedelta(days=ahead or 7)


def _month_day(today: date, month: int, day: int) -> date | None:
    try:
        d = date(today.year, month, day)
    except ValueError:
        return None
    return d if d >= today else date(today.year + 1, month, min(day, 28 if month == 2 else day))


_ORD = {w: i + 1 for i, w in enumerate(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
    "fifteenth sixteenth seventeenth eighteenth nineteenth".split())}
_ORD_TENS = {"twentieth": 20, "thirtieth": 30}


def _en_ordinals(s: str) -> str:
    """'december, fifth' -> 'december 5th', 'the twenty-first' -> 'the 21st' (a recogniser writes words)."""
    s = re.sub(r"\s*,\s*", " ", s)

    def sub(m: re.Match) -> str:
        tens = {"twenty": 20, "thirty": 30}.get(m.group(1) or "", 0)
        word = m.group(2)
        n = tens + (_ORD.get(word) or _ORD_TENS.get(word, 0))
        return f"{n}th" if n else m.group(0)

    ords = "|".join(list(_ORD) + list(_ORD_TENS))
    return re.sub(rf"\b(?:(twenty|thirty)[\s-])?({ords})\b", sub, s)


def extract_date(s: str, lang: str, today: date, payday: int | None = None) -> dict[str, Any]:
    """Slot `date` (a date) and `date_kind` from normalised text, resolved against `today`."""
    def out(d: date | None, kind: str) -> dict[str, Any]:
        return {"date": d, "date_kind": kind} if d else {"date_kind": kind}

    if lang == "zh":
        if re.search(r"发工资|发薪|工资(到|下来|发)|开工资|领工资|出粮", s):
            stated = extract_date(re.sub(r"发工资|发薪|工资|开工资|领工资|出粮", "", s), lang, today)
            return out(stated.get("date") or next_payday(today, payday), "payday")  # "十号发工资" names the day
        if "大后天" in s:
            return out(today + timedelta(days=3), "relative")
        if "后天" in s:
            return out(today + timedelta(days=2), "relative")
        if "明天" in s or "明日" in s:
            return out(today + timedelta(days=1), "relative")
        if re.search(r"今天|今日|马上|现在|立刻|立即", s):
            return out(today, "relative")
        m = re.search(rf"(\d+|[{_ZH_NUM}]+)\s*天(后|以后|之后|内|之内)", s)
        if m:
            n = int(m.group(1)) if m.group(1).isdigit() else zh_number(m.group(1))
            if n:
                return out(today + timedelta(days=n), "relative")
        m = re.search(r"(下+)(?:个)?(?:周|星期|礼拜)([一二三四五六日天末])", s)
        if m:
            d = _weekday(today, _ZH_WEEKDAYS[m.group(2)], next_week=True)
            d += timedelta(days=7 * (len(m.group(1)) - 1))
            return out(d, "weekday")
        m = re.search(r"(?:这|本)?(?:周|星期|礼拜)([一二三四五六日天末])", s)
        if m:
            return out(_weekday(today, _ZH_WEEKDAYS[m.group(1)], next_week=False), "weekday")
        if re.search(r"下(个)?(周|星期|礼拜)", s):
            return out(today + timedelta(days=7), "relative")
        if "月底" in s:
            d = _clamp(today.year, today.month, 31)
            return out(d, "month_end")
        m = re.search(rf"(\d+|[{_ZH_NUM}]+)\s*月\s*(\d+|[{_ZH_NUM}]+)\s*[号日]", s)
        if m:
            mo = int(m.group(1)) if m.group(1).isdigit() else zh_number(m.group(1))
            dy = int(m.group(2)) if m.group(2).isdigit() else zh_number(m.group(2))
            if mo and dy and 1 <= mo <= 12:
                return out(_month_day(today, mo, dy), "calendar")
        m = re.search(rf"(下个?月)?\s*(\d+|[{_ZH_NUM}]+)\s*[号日]", s)
        if m:
            dy = int(m.group(2)) if m.group(2).isdigit() else zh_number(m.group(2))
            if dy and 1 <= dy <= 31:
                if m.group(1):
                    y, mo = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
                    return out(_clamp(y, mo, dy), "calendar")
                return out(_next_day_of_month(today, dy), "calendar")
        return {}

    s = _en_ordinals(s)
    payday_rx = r"\b(pay ?day|get paid|paycheck|pay check|salary|wages? (come|comes|arrive))\b"
    if re.search(payday_rx, s):
        stated = extract_date(re.sub(payday_rx, " ", s), lang, today)
        return out(stated.get("date") or next_payday(today, payday), "payday")
    m = re.search(r"\b(\d{4})-(\d{2})-(\d{2})\b", s)
    if m:
        try:
            return out(date(int(m.group(1)), int(m.group(2)), int(m.group(3))), "calendar")
        except ValueError:
            return {}
    if re.search(r"\bday after tomorrow\b", s):
        return out(today + timedelta(days=2), "relative")
    if re.search(r"\btomorrow\b", s):
        return out(today + timedelta(days=1), "relative")
    if re.search(r"\b(today|tonight|right now|right away|now)\b", s):
        return out(today, "relative")
    m = re.search(r"\bin (\d+|a|one|two|three|four|five|six|seven|ten) (days?|weeks?)\b", s)
    if m:
        n = int(m.group(1)) if m.group(1).isdigit() else (1 if m.group(1) in ("a", "one") else _EN_SMALL[m.group(1)])
        return out(today + timedelta(days=n * (7 if m.group(2).startswith("week") else 1)), "relative")
    wd = "|".join(_EN_WEEKDAYS)
    m = re.search(rf"\bnext ({wd})\b", s)
    if m:
        return out(_weekday(today, _EN_WEEKDAYS[m.group(1)], next_week=True), "weekday")
    m = re.search(rf"\b(?:this |on |by )?({wd})\b", s)
    if m:
        return out(_weekday(today, _EN_WEEKDAYS[m.group(1)], next_week=False), "weekday")
    if re.search(r"\bnext week\b", s):
        return out(today + timedelta(days=7), "relative")
    if re.search(r"\bend of (the |this )?month\b", s):
        return out(_clamp(today.year, today.month, 31), "month_end")
    months = "|".join(sorted(_EN_MONTHS, key=len, reverse=True))
    m = re.search(rf"\b({months})\.? (\d{{1,2}})(?:st|nd|rd|th)?\b", s) or re.search(
        rf"\b(\d{{1,2}})(?:st|nd|rd|th)? (?:of )?({months})\b", s)
    if m:
        a, b = m.group(1), m.group(2)
        mo, dy = (_EN_MONTHS[a], int(b)) if a in _EN_MONTHS else (_EN_MONTHS[b], int(a))
        return out(_month_day(today, mo, dy), "calendar")
    m = re.search(r"\b(?:on |by )?the (\d{1,2})(?:st|nd|rd|th)\b", s)
    if m and 1 <= int(m.group(1)) <= 31:
        return out(_next_day_of_month(today, int(m.group(1))), "calendar")
    return {}


# ---------------------------------------------------------------- intents

# Ordered: the first rule that matches wins. Most specific / most protective first.
_ZH_RULES: list[tuple[str, str]] = [
    ("cease", r"(别|不要|不准|停止|勿|再也别)(再)?(给我)?(打|联系|骚扰|来电)|不要再打|停止(拨打|联系|来电)|拉黑|取消(联系|来电)"),
    ("request_human", r"(转|找|要|接)(人工|真人|客服|专员|工作人员)|人工(服务|客服)?$|^人工|真人|跟人说|和人说|活人"),
    ("wrong_number", r"打错|没有这个人|没这个人|不认识(这个人|他|她|此人)?|号码(错|不对)|查无此人"),
    ("third_party", r"(我|这)是(他|她)的?(老婆|妻子|丈夫|老公|爸|妈|父亲|母亲|儿子|女儿|朋友|同事|家人|哥|姐|弟|妹|室友)|"
                    r"(他|她)(不在|出去了|没在|在上班|不方便接)|我帮(他|她)(接|转告)|(他|她)现在不在|我不是(他|她)"),
    ("dispute", r"不是我(借|欠|的|办)|我没(借|欠|办|申请)过?|(已经|早就|早已)(还|还清|还过|付|结清)|金额不对|数(目|额)不对|"
                r"有(误|错)|不认(这|这笔)|被盗用|冒用|有争议|不对吧"),
    ("hardship", r"少还|减免|还不了那么多|没钱|没有钱|失业|下岗|生病|住院|(手头|经济|资金)(紧|困难|紧张)|困难|还不起|还不上|收入(没|少|减)|"
                 r"没(工作|收入)|周转不(开|过来)|压力(很)?大|破产"),
    ("callback_request", r"(晚点|稍后|等会|过会|回头|改天|明天|下午|晚上)(再)?(打|联系|来电|回电)|(现在|正在)(不方便|忙|开车|开会)|"
                         r"不方便(接|说话|讲)?|我(再)?回(电|拨|你)|(打|回)(过来|给你)"),
    ("promise_to_pay", r"(会|能|可以|就|去|马上|先|再|准备|打算|争取|尽快|一定|保证|安排)(还|付|交|转|处理|还款)|"
                       r"(还|付|转|交)(你|给你|上|清|掉|款|钱)|还\d|还[一二三四五六七八九十两百千万半]|"
                       r"(明天|后天|今天|下周|周.|星期.|号|日|发工资|发薪).{0,6}(还|付|转|交|处理)|分期|可以接受|同意"),
    ("refuse", r"不(会|想|打算|愿意)还|不还|就不还|拒绝|没(门|空)|随便你|爱咋咋|不(用|必)了|没兴趣"),
    ("deny_identity", r"^(不是|不对|不|没有|错了|否)|不是(我|本人)|我不是|不叫"),
    ("confirm_identity", r"^(是|对|嗯|好|没错|正是|我是|是的|对的|是我|本人|我就是|就是我|请讲|你说|喂.{0,2}是)|是我|本人|我就是|我是.{1,4}$"),
]

_EN_RULES: list[tuple[str, str]] = [
    ("cease", r"\b(stop|quit|don'?t|do not|never) (calling|call|contacting|contact|phoning|ring(ing)?)\b|"
              r"\bcease( and desist)?\b|\bremove (me|my number)\b|\btake me off\b|\bdo not call\b|\bleave me alone\b"),
    ("request_human", r"\b(real|live|actual) (person|human|agent)\b|\b(talk|speak) (to|with) (a |an |someone|somebody|"
                      r"the )?(human|person|agent|representative|operator|someone|somebody|manager|supervisor)\b|"
                      r"^(agent|operator|representative|human)\b"),
    ("wrong_number", r"\bwrong (number|person)\b|\bno one (by|with) that name\b|\bnobody (by|with|here by) that name\b|"
                     r"\bnever heard of\b|\bdon'?t know (who|anyone|anybody|him|her|that person)\b|\bno such person\b"),
    ("third_party", r"\b(this is|i'?m|i am) (his|her|their) (wife|husband|mother|mom|father|dad|son|daughter|friend|"
                    r"roommate|colleague|brother|sister|partner|sitter)\b|\b(he|she)('?s| is) (not (here|home|in|available)|"
                    r"out|at work|busy|away)\b|\b(he|she) can'?t come to the phone\b|\btake a message\b|\bi'?m not (him|her)\b"),
    ("dispute", r"\b(not|isn'?t) my (debt|loan|account|bill)\b|\b(already|already have) paid\b|\bpaid (it|that) (off|already)\b|"
                r"\bi (never|didn'?t) (borrow|take out|open|owe|sign)\b|\bi don'?t owe\b|\b(amount|balance|figure) is wrong\b|"
                r"\bwrong amount\b|\bdispute\b|\bidentity theft\b|\bfraud\b|\bnot mine\b"),
    ("hardship", r"\b(lost|lose|losing) my job\b|\bunemployed\b|\b(laid|let) off\b|\b(sick|ill|illness|hospital)\b|"
                 r"\b(can'?t|cannot|unable to) (afford|pay)\b|\bno (money|income|job)\b|\bbroke\b|\bhardship\b|"
                 r"\b(money|finances|things) (is|are) tight\b|\bstruggling\b|\bbankrupt"),
    ("callback_request", r"\b(call|ring) (me )?(back|later|another time|tomorrow|in an hour)\b|\b(bad|not a good|busy) time\b|"
                         r"\bi'?m (busy|driving|at work|in a meeting)\b|\bcan'?t talk\b|\bi'?ll call (you )?back\b"),
    ("promise_to_pay", r"\b(i'?ll|i will|i can|i could|i'?m going to|i am going to|gonna|let me|i want to|happy to|i'?d like to) "
                       r"(pay|send|transfer|make a payment|settle|clear)\b|\bpay (it |you |that )?(by|on|tomorrow|next|"
                       r"today|this|half|in full|the|\$|\d)|\bhalf now\b|\binstal?lment|\bpayment plan\b|\bi agree\b|"
                       r"\b(sounds good|that works|ok(ay)?,? (i'?ll|let'?s))\b"),
    ("refuse", r"\b(won'?t|will not|not going to|refuse to|never going to) pay\b|\bnot paying\b|\bno way\b|\bnot interested\b|"
               r"\bforget it\b"),
    ("deny_identity", r"^(no|nope|nah|wrong)\b|\b(that'?s|this is) not me\b|\bi'?m not\b|\bnot me\b"),
    ("confirm_identity", r"^(yes|yeah|yep|yup|speaking|correct|right|sure|that'?s me|this is (he|she|him|her|me)|"
                         r"it'?s me|i am|i'?m|ok|okay)\b|\b(speaking|that'?s me|this is me|it'?s me|that'?s right)\b"),
]

_COMPILED = {lang: [(n, re.compile(p)) for n, p in rules] for lang, rules in (("zh", _ZH_RULES), ("en", _EN_RULES))}

_ONLY_DIGITS = re.compile(rf"^[\s\d{''.join(_ZH_DIGITS)}]+$")


def detect_lang(text: str) -> str:
    return "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in text) else "en"


def classify(text: str, lang: str | None = None, *, today: date, payday: int | None = None) -> Intent:
    """Text -> Intent. `lang` 'zh'/'en' (guessed from the text when None); dates resolve against `today`,
    the debtor's local date."""
    s = normalize(text)
    if not s:
        return Intent("unknown", {}, text)
    lang = lang if lang in ("zh", "en") else detect_lang(s)
    if detect_lang(s) != lang:
        lang = detect_lang(s)  # a caller may answer in the other language
    if _ONLY_DIGITS.match(s) or (lang == "en" and re.fullmatch(r"(?:(zero|one|two|three|four|five|six|seven|eight|nine)\s*)+", s)):
        return Intent("digits", {"digits": extract_digits(s)}, text)
    for name, rx in _COMPILED[lang]:
        if rx.search(s):
            slots: dict[str, Any] = {}
            if name == "promise_to_pay":
                slots.update(extract_date(s, lang, today, payday))
                slots.update(extract_amount(s, lang))
            elif name == "callback_request":
                slots.update(extract_date(s, lang, today, payday))
            return Intent(name, slots, text)
    # A bare date or amount after a "when can you pay?" question is a promise.
    slots = {**extract_date(s, lang, today, payday), **extract_amount(s, lang)}
    short = len(s) <= 10 if lang == "zh" else len(s.split()) <= 5
    if re.search(r"不|没|别" if lang == "zh" else r"\b(not|no|never|can'?t|won'?t|don'?t)\b", s):
        short = False  # "not right now" is not a promise
    if short and (slots.get("date") or slots.get("amount") or slots.get("fraction")):
        return Intent("promise_to_pay", slots, text)
    return Intent("unknown", {}, text)


def dtmf_intent(digits: str, mapping: dict[str, str]) -> Intent:
    """A key press -> the intent the node maps it to; unmapped keys are 'digits' (numbers) or 'unknown'."""
    d = unicodedata.normalize("NFKC", digits or "")
    if d in mapping:
        return Intent(mapping[d], {}, d)
    if d and d.isdigit() and len(d) > 1:
        return Intent("digits", {"digits": d}, d)
    return Intent("unknown", {}, d)
