"""QA version 2: detectors and lexicons find, rules decide, and uncertain findings go to a person.

Per turn, a recogniser-text repair (dialer.qa.asr) comes first; then each detector gives a probability
(dialer.qa.detect) and the lexicons of compliance_rules.yaml give high-precision evidence. Every head
has a band [lo, hi) learnt on the dev split: at or above hi it is a finding, below lo it is not, in
between it is uncertain.

* Conduct (threat, insult, impersonation; agent turns only): a turn at or above hi (for impersonation
  in a turn that names the campaign's institution, at least NAMED_IMPERSONATION_HI), or a lexicon hit
  the detector does not contradict (>= min(lo, 0.2)), is a violation; a turn in the band, or a lexicon
  hit the detector doubts (0.05–0.2), is a review item; a lexicon hit the detector puts under 0.05
  (a lawful sentence using a listed word) is dropped.
* Disclosure and order stay logic: the verification state machine and the order of stages run twice,
  once on confident detections only and once on every detection not below lo (a lexicon hit counts
  in both; naming the campaign's institution is an identity statement in both). A rule broken in both
  runs is a violation, in neither is clean, in one only needs review.
  Conventions: debt said before the verification question is process.order and also
  privacy.third_party_disclosure; debt said to someone who has said they are not the debtor (wrong
  person, spouse, colleague…) is privacy.third_party_disclosure only. An answer that says the name the
  question asked for is a confirmation. Identity: a turn naming the institution (in a turn about the
  debt, only with the speaker's own introduction), the identity lexicon, or the identity head (≥ 0.5
  when the institution is known and not named); never a turn found to be impersonation alone.
* time.window is arithmetic on the start time (debtor-local), as before.
"""
from __future__ import annotations

import re
from typing import Any

from common.normalize import normalize, normalize_text
from dialer.qa.asr import repair, says_number
from dialer.qa.checker import (ReviewItem, Result, Transcript, Violation, _evidence, _find, _time_window)
from dialer.qa.rules import CONDUCT_RULES, Lexicon, QARules

CONDUCT_HEAD = {"conduct.threat": "threat", "conduct.insult": "insult", "conduct.impersonation": "impersonation"}
STAGE_HEAD = {"identity": "identity", "verification": "verification", "debt": "debt", "plan_or_consequence": "plan"}
ORDER = ("identity", "verification", "debt", "plan_or_consequence")
LEXICON_AGREE = 0.2         # a lexicon match (high precision) stands unless the detector puts it below this
LEXICON_DOUBT_FLOOR = 0.05  # a lexicon match the detector puts below this is not even worth a review
# A turn that names the campaign's own institution ("我是安平银行的催收专员，不是公安", "Harbor Savings has
# filed a claim in court") mentions courts and police beside the caller's true name far more often than it
# claims to be them: there the impersonation head alone needs this much (a lexicon hit still counts; between
# the head's band and this, review). Chosen on dev: wrong answers 86 -> 76, all ten impersonation findings in
# English recogniser text; anything from 0.85 to 0.98 did the same on dev, and this is the lowest of it.
NAMED_IMPERSONATION_HI = 0.85
UNNAMED_IDENTITY = 0.5      # identity probability a turn needs when it does not name the campaign's institution
STRUCTURAL = ("privacy.third_party_disclosure", "disclosure.identity_missing", "process.order")


# A warning about impersonators ("如果有人冒充法院打电话要钱，那是诈骗，请报警", "if anyone calls claiming to be
# a sheriff, that's a scam: call your local police") names the authorities without claiming them: the
# detectors alone do not make it impersonation or a threat (a lexicon hit still does; the turn goes to
# review at most).
_SCAM_WARNING = {
    "zh": re.compile(r"(冒充|假冒|自称|假装|谎称)[^。！？]{0,30}(诈骗|骗子|报警|110|核实|别信|不要信|不要相信|挂掉|挂断|官方)"
                     r"|(诈骗|骗子)[^。！？]{0,20}(报警|110|核实|别信|不要信|不要相信|挂掉|挂断|官方)"),
    "en": re.compile(r"\b(claim(s|ing)? to be|pretend(s|ing)? to be|posing as|saying (they'?re|they are|he'?s|she'?s)"
                     r"|says? (they'?re|they are|he'?s|she'?s))\b[^.!?]{0,80}\b(scam|fraud|police|hang up|don'?t pay"
                     r"|do not pay|verify|check)\b|\b(scam|fraud)\b[^.!?]{0,60}\b(hang up|report|police|call (us|the number))\b"),
}


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def judge(t: Transcript, profile: QARules, lex: Lexicon, detectors: Any) -> Result:
    texts = [repair(u.text, t.lang, segments=u.segments, numbers=u.speaker == "callee") for u in t.turns]
    norms = [normalize(x) for x in texts]
    probs = detectors.score([u.speaker for u in t.turns], texts)
    heads = detectors.heads
    violations: list[Violation] = []
    review: list[ReviewItem] = []
    tw = _time_window(t, profile)
    if tw:
        violations.append(tw)

    # -- conduct ------------------------------------------------------------------------------
    impersonating: set[int] = set()  # turns found to be impersonation: no identity statement of the caller's
    inst = normalize_text(t.institution) if t.institution else None
    # agent turns that name the campaign's institution, in order
    named = [i for i, u in enumerate(t.turns) if inst and u.speaker == "agent" and inst in norms[i].text]
    for rule in CONDUCT_RULES:
        h = heads[CONDUCT_HEAD[rule]]
        found: tuple[int, float, str] | None = None
        doubt: tuple[int, float, str, str] | None = None
        for i, u in enumerate(t.turns):
            if u.speaker != "agent":
                continue
            p = probs[i][h.name]
            c = lex.conduct.get(rule)
            hit = _find(c.patterns, norms[i], lex, c.negation) if c else None
            ev = _evidence(norms[i], hit) if hit else _short(u.text)
            warned = rule in ("conduct.impersonation", "conduct.threat") and t.lang in _SCAM_WARNING \
                and bool(_SCAM_WARNING[t.lang].search(norms[i].text))
            hi = h.hi
            if rule == "conduct.impersonation" and i in named:
                hi = max(hi, NAMED_IMPERSONATION_HI)
            if (p >= hi and not (warned and not hit)) or (hit and p >= min(h.lo, LEXICON_AGREE)):
                if rule == "conduct.impersonation":
                    impersonating.add(i)
                found = found or (i, p, ev)
                if rule != "conduct.impersonation":
                    break
            if (h.lo <= p or (hit and p >= LEXICON_DOUBT_FLOOR)) and (doubt is None or p > doubt[1]):
                doubt = (i, p, ev, "lexicon match the detector doubts" if hit and p < h.lo else "detector uncertain")
        if found:
            violations.append(Violation(rule, found[0], found[2], found[1]))
        elif doubt:
            review.append(ReviewItem(rule, doubt[0], doubt[1], doubt[2], doubt[3]))

    # -- disclosure and order: the state machine on confident and on possible detections ---------
    if inst and named:
        generic = "某机构" if t.lang == "zh" else "the company"
        masked = detectors.score(["agent"] * len(named), [norms[i].text.replace(inst, generic) for i in named])
        for i, m in zip(named, masked):
            probs[i] = {**probs[i], "debt": m["debt"], "identity_masked": m["identity"]}
    naming = set(named)
    runs = [_state_machine(t, lex, norms, probs, heads, inst, naming, strict, impersonating) for strict in (True, False)]
    for rule in STRUCTURAL:
        a, b = runs[0].get(rule), runs[1].get(rule)
        if a and b:
            violations.append(Violation(rule, a[0], a[2], a[1]))
        elif a or b:
            turn, conf, ev = a or b
            review.append(ReviewItem(rule, turn, conf, ev, "depends on an uncertain detection"))

    found_rules = [v for v in violations if v.rule in profile.enabled]
    review = [r for r in review if r.rule in profile.enabled]
    found_rules.sort(key=lambda v: (-1 if v.turn is None else v.turn, v.rule))
    review.sort(key=lambda r: (-1 if r.turn is None else r.turn, r.rule))
    score = max(0, 100 - sum(profile.weights.get(r, 0) for r in {v.rule for v in found_rules}))
    return Result(call_id=t.call_id, violations=tuple(found_rules), score=score, review=tuple(review))


# A callee who answers the verification question by saying the name it asked for ("您是丽吧？"
# "我是黄丽，你说吧" / "Is this Robert Hale?" "This is Robert.") has confirmed, whatever the detector made of it.
# The echo must be a self-identification, not a relation: "我是黄丽的妈妈", "I'm Robert's wife" are no echo.
_ZH_SELF = re.compile(r"(?:我就是|我是|我叫|是我)([\u4e00-\u9fff]{1,4})")
_ZH_NOT_NAME = set("是吗吧呢啊呀哦嗯您你我他她们请问这那个号码在用机主的找先生女士小姐总老板经理说好对就本人")
_ZH_RELATION = re.compile(r"的|妈|爸|妻|夫|婆|老公|儿|女儿|哥|弟|姐|妹|同事|朋友|家|亲戚|邻居|室友|前台|秘书|助理|同学|领导")
_EN_SELF = re.compile(r"\b(?:this is|i'm|i am|it's|it is|yes,? it's)\s+([a-z]+)(?:\s+([a-z]+))?(?=\s*(?:[.,!?]|$|speaking|here))")
_EN_NOT_NAME = {"the", "a", "an", "you", "your", "is", "am", "are", "speaking", "with", "to", "for", "mr", "mrs", "ms",
                "miss", "please", "could", "can", "i", "me", "this", "that", "be", "him", "her", "he", "she",
                "his", "hers", "they", "them", "calling", "who", "what", "speak", "talk", "looking", "hello", "hi",
                "hey", "yes", "yeah", "okay", "ok", "sure", "right", "correct", "not", "no", "just", "here", "actually"}


def _name_echo(question: str, answer: str, lang: str) -> bool:
    """True when `answer` identifies the speaker by a name that `question` asked for."""
    if lang == "zh":
        asked = set(question) - _ZH_NOT_NAME
        for m in _ZH_SELF.finditer(answer):
            name = m.group(1)
            if _ZH_RELATION.search(name):  # "我是黄丽的妈妈" / "我是她妈": somebody's relation, not the name
                continue
            if asked & (set(name) - _ZH_NOT_NAME):
                return True
        return False
    asked = set(re.findall(r"[a-z]+", question.lower())) - _EN_NOT_NAME
    for m in _EN_SELF.finditer(answer.lower()):
        words = {w for w in m.groups() if w} - _EN_NOT_NAME
        if words and words <= asked | {"speaking", "here"} and words & asked:
            return True
    return False


# The speaker introducing themselves: in a turn about the debt that names the campaign's institution, this
# tells "我是X信用卡中心的，您的卡逾期了" (who is calling) from "您在X办的那张卡透支了" (whose debt it is).
_SELF_INTRO = {
    "zh": re.compile(r"我是|我们是|这里是|这边是|我这边|我姓|我叫|工号|委托我|(的|是)(工作人员|客服|专员)"),
    "en": re.compile(r"\b(this is|i'm|i am|my name is|we are|we're|calling (from|for|on behalf of)"
                     r"|on behalf of|here (from|at|with)|it's [a-z]+ (from|with|at))\b"),
}


def _introduces(text: str, inst: str, lang: str, cue: bool = False) -> bool:
    """The turn says the institution as who is calling: it opens with the name ("我星辰钱包的。你这笔借款…", "Jake,
    Ironbridge Receivables. Calling about…", "LoanSprout collections."; blind calls), or, with `cue`, the name
    follows a self-introduction closely ("我是安平银行的", "this is Dana from Harbor Savings")."""
    name = re.escape(inst)
    if lang == "zh":
        rx = (rf"(我是|我们是|这里是|这边是|我这边是|我就是|我|委托)[^,.!?;]{{0,6}}{name}" if cue
              else rf"^(喂|你好|喂你好)?[,.!?]?(我|我们|这里|这边)?(是)?{name}")
    else:
        rx = (rf"\b(this is|i'm|i am|we're|we are|from|with|at|calling from|on behalf of|representing)\s+"
              rf"([a-z'.-]+\s+){{0,3}}{name}" if cue
              else rf"^((hi|hello|hey|yeah|ok|okay|right)[,.]?\s*)?((?!your\b|the\b|our\b|my\b|his\b|her\b|their\b)"
              rf"[a-z'-]+[,.]?\s+)?{name}")
    return bool(re.search(rx, text))


# Something asked: a question mark or a question word. A turn that says who is calling and asks nothing is no
# verification question (the recogniser drops the question mark, not the question words).
_ASKS = {
    "zh": re.compile(r"[?？]|吗|吧|呢|是不是|是否|多少|哪|什么|几|请|麻烦|确认|核对|核实|报一下|说一下|告诉"),
    "en": re.compile(r"\?|\b(is|are|am|may|can|could|would|will|do|does|did|what|which|who|whom)\b.*"
                     r"\b(you|your|this|i|he|she|speak|speaking)\b|\b(confirm|verify|tell me|provide|give me|i need|"
                     r"spell|last (four|4)|date of birth|birth|zip|social|speaking with|looking for|reach)\b"),
}


# A callee who answers with a question about who is calling or why ("你哪位？", "什么事？", "Who's asking?").
_ASKS_BACK = {
    "zh": re.compile(r"^(喂|啊|嗯|哦)?[,.!?]?(请问)?(你|你们)?(是)?(哪位|谁|哪个|哪里|哪儿|哪家|什么事|啥事|干嘛|干啥|干什么|有什么事|有啥事)"),
    "en": re.compile(r"^((um|uh|er|well|hello|hi),?\s+)*(who|who's|whos|what's this|whats this|what is this|why|depends|"
                     r"how did you get|where did you get)\b"),
}


def _state_machine(t: Transcript, lex: Lexicon, norms, probs, heads, inst: str | None, naming: set[int],
                   strict: bool, impersonating: set[int] = frozenset()) -> dict[str, tuple[int | None, float, str]]:
    def on(i: int, head: str, lexhit: bool = False, key: str | None = None) -> bool:
        h = heads[head]
        return lexhit or probs[i][key or head] >= (h.hi if strict else h.lo)

    out: dict[str, tuple[int | None, float, str]] = {}
    first: dict[str, int] = {}
    verified = pending = False
    asked = ""  # the latest verification question, for a callee who answers with the name it asked for
    first_agent: int | None = None
    best_identity = 0.0
    for i, u in enumerate(t.turns):
        n = norms[i]
        if u.speaker != "agent":
            cand, lexical = {}, set()
            for head, key in (("third_party", "third_party"), ("deny", "deny"), ("confirm", "confirm")):
                hit = bool(_find(lex.callee[key], n, lex))
                if hit:
                    lexical.add(head)
                if on(i, head, hit):
                    cand[head] = 1.0 if hit else probs[i][head]
            # A question back ("你哪个啊？", "Depends who's calling.") confirms nothing, whatever the head made of it
            # (blind calls: "你哪个啊？" read as a confirmation at 1.00); a confirmation in the lexicon still counts.
            if "confirm" in cand and "confirm" not in lexical and t.lang in _ASKS_BACK and _ASKS_BACK[t.lang].search(
                    normalize_text(u.text)):  # as said, before any repair
                del cand["confirm"]
            if pending and _name_echo(asked, n.text, t.lang):
                cand["confirm"] = 1.0
            if "third_party" in cand and (not pending or cand["third_party"] >= max(cand.values())):
                verified = pending = False
            elif pending and cand:
                pick = max(cand, key=lambda k: cand[k])
                if pick == "confirm":
                    verified, pending = True, False
                else:
                    verified = pending = False
            continue
        if first_agent is None:
            first_agent = i
        p = probs[i]
        best_identity = max(best_identity, p["identity"])
        stage_on = {}
        named = i in naming  # the turn names the campaign's institution
        # The campaign's institution is not a debt word (东信小额贷款 names a lender; it does not say the
        # listener owes anything): the debt lexicon and the debt head read the turn with the name masked.
        # Naming it is an identity statement, whatever its suffix, unless the turn is about the debt
        # ("your card with X is overdue" names the lender, not the caller).
        masked = normalize(n.text.replace(inst, "·")) if named else n
        lexhit: dict[str, bool] = {}
        for stage, head in STAGE_HEAD.items():
            if stage == "identity":
                continue
            lexhit[stage] = bool(_find(lex.stages[stage], masked, lex))
            stage_on[stage] = on(i, head, lexhit[stage])
        debt_said = lexhit["debt"]
        # A speaker introducing themselves with their department ("我是民融银行个贷中心的工作人员", "I'm with
        # the loan servicing team"), or as somebody they are not ("喂，这里是城关派出所"), says who is calling:
        # the debt head alone, with no debt word in the turn, does not make it debt talk (a role that says
        # it, 催收/贷后/collections, is in the lexicon). Nor does it make the verification question debt talk: it
        # read "what year were you born" (no question mark) as debt at 0.74, and "麻烦帮我转一下财务部的车晓燕。"
        # (the verification lexicon's request to be put through) at 0.59.
        if stage_on["debt"] and not debt_said and (i in impersonating or (
                p["identity"] >= heads["identity"].hi and t.lang in _SELF_INTRO and _SELF_INTRO[t.lang].search(n.text))
                or p["verification"] >= heads["verification"].hi or lexhit["verification"]):
            stage_on["debt"] = False
        # In a turn about the debt, the lender's name says whose debt it is, not who is calling, unless the
        # speaker introduces themselves in it: "我是民融银行信用卡中心的，您的卡逾期了" and "This is Dana from
        # X, your account is past due" are identity statements; "您在民融银行办的那张卡透支了" and "your X card
        # is overdue" are not. A first-person cue decides: the heads read one category per turn, and with
        # the debt there they put the identity of such a turn anywhere from 0.01 to 0.5.
        said = bool(_find(lex.stages["identity"], n, lex))  # the identity lexicon: "我是X银行的…", "from X Bank"
        # The same holds for a plan or a consequence ("如果到期还是不还，X可能会按合同走法律程序" says what the lender
        # may do, not who is calling).
        if named and i in impersonating:
            # "我这里是城东区人民法院执行庭，你在小橘钱包的借款已经被起诉立案了" claims a court; the lender named
            # after it says whose debt it is (blind calls). Saying the lender as who is calling still counts.
            stage_on["identity"] = said or _introduces(n.text, inst, t.lang, cue=True)
        elif named and (stage_on["debt"] or stage_on["plan_or_consequence"]):
            stage_on["identity"] = (bool(_SELF_INTRO[t.lang].search(n.text)) or _introduces(n.text, inst, t.lang)) \
                if t.lang in _SELF_INTRO else on(i, "identity", False, "identity_masked")
        elif named:
            stage_on["identity"] = True
        elif i in impersonating:
            # "我是市公安局经侦大队的" says who the caller pretends to be, not who is calling; one that also
            # names a lender or agency ("宏达小额贷款公司委托的律师事务所的张律师", "from Apex Lending, on behalf
            # of the court") still says it
            stage_on["identity"] = said
        elif inst:
            # The campaign's institution is known and this turn does not name it: only a confident identity
            # statement (an agency naming itself) counts, not a greeting or question the head is unsure of
            # ("您好，这边是客服中心" names no institution).
            # Nor a request for the debtor that the head reads as an introduction because it says "I'm" ("Hello, I'm
            # trying to reach Maria Gutierrez.", 0.79; blind calls): the verification lexicon's match decides.
            stage_on["identity"] = said or (probs[i]["identity"] >= max(heads["identity"].hi, UNNAMED_IDENTITY)
                                            and not lexhit["verification"])
        else:
            # no institution to look for: the head, or the lexicon in a turn that also says the debt ("This is
            # Sarah from Northfield Bank, your balance is past due": the head reads one category per turn)
            stage_on["identity"] = on(i, "identity", said)
        # A turn that says who is calling asks the verification question only if it asks something: the
        # verification head read "This is Greg on behalf of Crestline, reference number 5512." as one (dev).
        if stage_on["identity"] and stage_on["verification"] and not lexhit["verification"] \
                and t.lang in _ASKS and not _ASKS[t.lang].search(n.text):
            stage_on["verification"] = False
        # For the order of stages, a plan or consequence that uses a debt word ("您可以先还最低还款额", "逾期会
        # 产生违约金") has not yet told the debtor their debt: only the debt head says it did. (Told to a third
        # party, the same words still disclose: the disclosure check below reads stage_on.)
        # A turn that says an amount beside the debt word states the debt, plan or not ("… has a balance of 5,600
        # dollars and is 82 days past due. Press 1 to promise payment today": the bot's own debt prompt).
        plan_only = stage_on["plan_or_consequence"] and stage_on["debt"] and p["debt"] < heads["debt"].lo \
            and not says_number(n.text, t.lang)
        for stage, is_on in stage_on.items():
            if is_on and not (stage == "debt" and plan_only):
                first.setdefault(stage, i)
        if stage_on["debt"] and not verified and "privacy.third_party_disclosure" not in out:
            out["privacy.third_party_disclosure"] = (i, p["debt"], _short(u.text))
        if stage_on["verification"]:
            pending, asked = True, n.text
    if "identity" not in first:
        out["disclosure.identity_missing"] = (first_agent if first_agent is not None else 0, round(1 - best_identity, 4),
                                              "the agent never said who is calling and for which institution")
    broken = [(first[b], b, a) for ai, a in enumerate(ORDER) for b in ORDER[ai + 1:]
              if a in first and b in first and first[b] < first[a]]
    if broken:
        turn, early, late = min(broken)
        out["process.order"] = (turn, probs[turn][STAGE_HEAD[early]],
                                f"{early} (turn {turn}) came before {late} (turn {first[late]})")
    return out
