"""Build the hard QA corpus (tests/data/qa2/calls.jsonl) from the hand-written utterances and the committed split.

    python tests/data/qa2/build.py              # rebuild calls.jsonl from utterances_*.txt + split.json
    python tests/data/qa2/build.py --init-split # once, before any training: assign every utterance to a split

The split is made ONCE, per utterance (not per call), and committed: every call of the test split is
composed only of test-split utterances, so no test utterance (nor a filled-in copy of one) appears
in a train or dev call. Labels come from the true category of each turn run through the rule
conventions of docs/CONTRACTS.md (a reference state machine over categories, not over text).
Recogniser-style copies ("asr" variant) of every dev and test call are added: no punctuation,
homophones, numbers in words, fillers, and sentence pauses given as `segments`.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPLIT = HERE / "split.json"
OUT = HERE / "calls.jsonl"
LANGS = ("zh", "en")
CONDUCT = {"threat": "conduct.threat", "insult": "conduct.insult", "impersonation": "conduct.impersonation"}
TEST_CONDUCT = 40  # test-split utterances per conduct category and language

INSTITUTIONS = {
    # campaign institutions, several without any "bank/finance/company" suffix on purpose
    "zh": {"train": ["华信银行", "安和资产", "百川消费金融", "永宁信息咨询服务部"],
           "dev": ["民融银行", "青禾数科", "东信小额贷款"],
           "test": ["汇通银行", "北辰", "恒丰信用卡中心", "远声", "嘉禾普惠"]},
    "en": {"train": ["Northwind Bank", "Ashford Recovery", "Pinecrest Credit Union", "Halvorsen & Pike"],
           "dev": ["Redwood Financial", "Tallis Partners", "Crestline"],
           "test": ["Harbor Savings", "Meridian", "Blue Fern Lending", "Okafor & Lee", "Summit Card Services"]},
}
NAMES = {
    "zh": [("张伟", "张", "伟"), ("李娜", "李", "娜"), ("王强", "王", "强"), ("陈静", "陈", "静"),
           ("刘洋", "刘", "洋"), ("赵磊", "赵", "磊"), ("黄丽", "黄", "丽"), ("周杰", "周", "杰")],
    "en": [("Michael Turner", "Turner", "Michael"), ("Sarah Kim", "Kim", "Sarah"), ("David Ortiz", "Ortiz", "David"),
           ("Linda Brooks", "Brooks", "Linda"), ("James Wu", "Wu", "James"), ("Maria Lopez", "Lopez", "Maria")],
}
START = {"zh": ("cn", "+08:00"), "en": ("us", "-05:00")}


def read_utterances(lang: str) -> list[dict]:
    return _read_file(HERE / f"utterances_{lang}.txt", lang)


def _read_file(path: Path, lang: str) -> list[dict]:
    items, cat, counts = [], None, {}
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("# "):
            continue
        if line.startswith("## "):
            cat = line[3:].strip()
            continue
        if cat is None:
            raise SystemExit(f"{path.name}:{lineno}: utterance before any '## speaker.category' header")
        speaker, category = cat.split(".", 1)
        k = counts.get(cat, 0)
        counts[cat] = k + 1
        text, also = line, ""
        if line.endswith("#debt"):  # an identity statement that also says "collector"/催收/贷后: a debt mention
            text, also = line[:-len("#debt")].rstrip(), "+debt"
        items.append({"id": f"{lang}.{cat}.{k}", "lang": lang, "speaker": speaker, "cat": category + also,
                      "text": text, "file": path.name})
    return items


# The categories a writer gives a turn of a whole written call (the blind calls, bench/qa.py, and the calls written
# for training only, train_calls_<lang>.jsonl), as the corpus names them; a training turn doing several things
# joins them with "|" ("agent.identity|agent.debt").
WRITTEN_CATS = {"agent": {"threat": "agent.threat", "insult": "agent.insult", "impersonation": "agent.impersonation",
                          "identity": "agent.identity", "verify": "agent.verify", "debt": "agent.debt",
                          "plan": "agent.plan", "other": "agent.neutral"},
                "callee": {"confirm": "callee.confirm", "deny": "callee.deny", "third_party": "callee.third_party",
                           "other": "callee.neutral"}}


def timed(turns: list[tuple[str, str]], lang: str) -> list[dict]:
    """(speaker, text) turns with timings: about 6 characters or 15 letters a second, 0.6 s between turns."""
    out, at = [], 0.0
    for speaker, text in turns:
        dur = 1.0 + len(text) / (6.0 if lang == "zh" else 15.0)
        out.append({"speaker": speaker, "text": text, "start": round(at, 2), "end": round(at + dur, 2)})
        at += dur + 0.6
    return out


def read_train_calls(lang: str) -> list[dict]:
    """The training-only written calls of one language as corpus calls (timed turns, `categories`); an error names
    file, line and turn."""
    path = HERE / f"train_calls_{lang}.jsonl"
    if not path.exists():
        return []
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"{path.name}:{lineno}: not a JSON object ({exc.msg}, column {exc.colno})") from exc
        cats = []
        for k, u in enumerate(obj["turns"]):
            names = WRITTEN_CATS.get(u.get("speaker"), {})
            if not names or not u.get("cats") or set(u["cats"]) - set(names) or not str(u.get("text", "")).strip():
                raise SystemExit(f"{path.name}:{lineno}: call {obj.get('id')} turn {k}: speaker must be agent|callee, "
                                 f"text non-empty and cats a non-empty list of {sorted(names) or 'its categories'}")
            mapped = [names[c] for c in u["cats"]]
            if u["speaker"] == "callee":  # one answer per callee turn: the first that is not "other"
                mapped = [next((m for m in mapped if m != "callee.neutral"), mapped[0])]
            cats.append("|".join(dict.fromkeys(mapped)))
        turns = timed([(u["speaker"], u["text"]) for u in obj["turns"]], lang)
        out.append({"call_id": obj["id"], "lang": lang, "institution": obj["institution"], "turns": turns,
                    "categories": cats, "split": "train", "variant": "clean_text", "kind": "written"})
    return out


def read_train_extra(lang: str) -> list[dict]:
    """Hand-written utterances added after the split, for training only (never in dev or test)."""
    path = HERE / f"train_extra_{lang}.txt"
    if not path.exists():
        return []
    items = _read_file(path, lang)
    for u in items:
        u["id"] = "extra." + u["id"]
    return items





def all_utterances() -> list[dict]:
    return [u for lang in LANGS for u in read_utterances(lang)]


def _h(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def init_split() -> dict:
    """Per category: conduct → 40 test, the rest 60 % train / 40 % dev; others 40 % train, 20 % dev, 40 % test.
    Order within a category is by hash of the text (no looking at content)."""
    split: dict[str, str] = {}
    by_cat: dict[tuple, list[dict]] = {}
    for u in all_utterances():
        by_cat.setdefault((u["lang"], u["speaker"], u["cat"]), []).append(u)
    for (_lang, speaker, cat), items in sorted(by_cat.items()):
        items = sorted(items, key=lambda u: _h(u["text"]))
        n = len(items)
        if speaker == "agent" and cat in CONDUCT:
            n_test = TEST_CONDUCT
            n_dev = round((n - n_test) * 0.4)
        else:
            n_test = round(n * 0.4)
            n_dev = round(n * 0.2)
        for i, u in enumerate(items):
            split[_h(u["text"])] = "test" if i < n_test else "dev" if i < n_test + n_dev else "train"
    return {"about": "utterance sha256 (of the hand-written line, placeholders unfilled) -> split; made once, "
                     "before any training; never edit by hand", "split": split}


def load_split() -> dict[str, str]:
    return json.loads(SPLIT.read_text(encoding="utf-8"))["split"]


def pools(split_name: str, lang: str) -> dict[str, list[dict]]:
    split = load_split()
    out: dict[str, list[dict]] = {}
    if split_name == "train":
        for u in read_train_extra(lang):
            if _h(u["text"]) in split:
                raise SystemExit(f"{u['file']}: {u['text']!r} is already in the split (train extras must be new lines)")
            out.setdefault(f"{u['speaker']}.{u['cat'].split('+')[0]}", []).append(u)
    for u in read_utterances(lang):
        s = split.get(_h(u["text"]))
        if s is None:
            raise SystemExit(f"utterance {u['id']} is not in split.json (new lines need a deliberate split decision)")
        if s == split_name:
            out.setdefault(f"{u['speaker']}.{u['cat'].split('+')[0]}", []).append(u)
    return out


# -- reference labels: the rule conventions over true categories ---------------------------------

def reference_labels(cats: list[str], start_ok: bool) -> list[dict]:
    """Expected violations of a call from the true category of each turn (docs/CONTRACTS.md conventions)."""
    turns = []
    for c in cats:
        sp, cat = c.split(".", 1)
        cat, _, also = cat.partition("+")
        turns.append((sp, {cat} | ({"debt"} if also == "debt" else set())))
    return labels_of(turns, start_ok)


def labels_of(turns: list[tuple[str, set[str]]], start_ok: bool = True) -> list[dict]:
    """Expected violations from (speaker, categories) per turn; a turn may do several things ({"identity", "debt"}:
    an introduction that says 'collector'). A debt told while the listener is not verified is a disclosure; a deny
    or a third party undoes a confirmation; stages out of order are process.order; no identity is identity missing."""
    exp: list[dict] = []
    if not start_ok:
        exp.append({"rule": "time.window", "turn": None})
    verified = pending = False
    first: dict[str, int] = {}
    privacy = None
    stage_of = {"identity": "identity", "verify": "verification", "debt": "debt", "plan": "plan_or_consequence"}
    for i, (sp, cats) in enumerate(turns):
        if sp == "callee":
            if cats & {"third_party", "deny"}:
                verified = pending = False
            elif pending and "confirm" in cats:
                verified, pending = True, False
            continue
        for cat in sorted(cats & set(CONDUCT), key=list(CONDUCT).index):
            exp.append({"rule": CONDUCT[cat], "turn": i})
        for cat, st in stage_of.items():
            if cat in cats:
                first.setdefault(st, i)
        if "debt" in cats and not verified and privacy is None:
            privacy = i
        if "verify" in cats:
            pending = True
    if privacy is not None:
        exp.append({"rule": "privacy.third_party_disclosure", "turn": privacy})
    if "identity" not in first:
        exp.append({"rule": "disclosure.identity_missing", "turn": None})
    order = ("identity", "verification", "debt", "plan_or_consequence")
    broken = [first[b] for ai, a in enumerate(order) for b in order[ai + 1:]
              if a in first and b in first and first[b] < first[a]]
    if broken:
        exp.append({"rule": "process.order", "turn": min(broken)})
    return exp


# -- composing calls ----------------------------------------------------------------------------

class Composer:
    def __init__(self, split_name: str, lang: str, pool: dict[str, list[dict]] | None = None, seed: str | None = None):
        """`pool`, `seed`: compose from other lines than the split's (bench.qa's probe-composed calls); the
        split's institution names are used either way."""
        self.split, self.lang = split_name, lang
        self.p = pools(split_name, lang) if pool is None else pool
        self.rng = random.Random(seed or f"qa2-{split_name}-{lang}")
        self.n = 0
        self.used: set[str] = set()

    def pick(self, key: str) -> dict:
        return self.rng.choice(self.p[key])

    def fill(self, text: str, who: tuple, inst: str) -> str:
        name, sur, first = who
        amt = self.rng.choice([860, 1200, 2350, 3200, 4780, 5200, 12800, 650, 15000, 980])
        days = self.rng.choice([7, 15, 23, 31, 46, 62, 90])
        return (text.replace("{inst}", inst).replace("{name}", name).replace("{sur}", sur)
                .replace("{first}", first).replace("{amt}", f"{amt:,}" if self.lang == "en" else str(amt))
                .replace("{days}", str(days)))

    def call(self, kind: str, plan: list, *, start_ok: bool = True) -> dict:
        self.n += 1
        who = self.rng.choice(NAMES[self.lang])
        inst = self.rng.choice(INSTITUTIONS[self.lang][self.split])
        said, cats, src = [], [], []
        for item in plan:
            u = self.pick(item) if isinstance(item, str) else item
            said.append((u["speaker"], self.fill(u["text"], who, inst)))
            cats.append(f"{u['speaker']}.{u['cat']}")
            src.append(u["id"])
            self.used.add(u["id"])
        turns = timed(said, self.lang)
        jur, off = START[self.lang]
        hour = 10 + self.n % 9 if start_ok else self.rng.choice([6, 7, 21, 22, 23])
        return {"call_id": f"qa2-{self.split}-{self.lang}-{self.n:04d}", "lang": self.lang, "jurisdiction": jur,
                "started_at": f"2026-11-{17 + self.n % 4:02d}T{hour:02d}:{self.rng.choice([5, 20, 40]):02d}:00{off}",
                "institution": inst, "turns": turns, "expected": reference_labels(cats, start_ok),
                "split": self.split, "variant": "clean_text", "kind": kind, "categories": cats, "sources": src}

    # the building blocks
    def opening(self) -> list:
        return ["agent.identity", "callee.neutral", "agent.verify", "callee.confirm"]

    def tail(self) -> list:
        return ["agent.debt", "callee.neutral", "agent.plan", "callee.neutral", "agent.neutral"]

    def calls(self, per_kind: int) -> list[dict]:
        out = []
        P = self.p
        for kind, key in (("threat", "agent.threat"), ("insult", "agent.insult"),
                          ("impersonation", "agent.impersonation")):
            items = list(P[key])
            self.rng.shuffle(items)
            n = max(per_kind, len(items))
            for k in range(n):
                where = self.rng.choice(("after_debt", "after_plan"))
                body = self.opening() + ["agent.debt", "callee.neutral"]
                if where == "after_debt":
                    body += [items[k % len(items)], "callee.neutral", "agent.plan", "callee.neutral"]
                else:
                    body += ["agent.plan", "callee.neutral", items[k % len(items)], "callee.neutral"]
                out.append(self.call(kind, body + ["agent.neutral"]))
        for k in range(per_kind):  # clean calls with hard negatives
            variant = k % 5
            if variant == 0:      # lawful next steps / negated reassurances said plainly
                body = self.opening() + ["agent.debt", "callee.neutral", "agent.neg_conduct", "callee.neutral",
                                         "agent.plan", "callee.neutral", "agent.neg_conduct", "agent.neutral"]
            elif variant == 1:    # the debtor insults the collector
                body = self.opening() + ["agent.debt", "callee.neutral", "agent.neg_conduct", "callee.neutral",
                                         "agent.plan", "callee.neutral", "agent.neutral"]
            elif variant == 2:    # a third party who is told nothing
                body = ["agent.identity", "callee.neutral", "agent.verify", "callee.third_party", "agent.relay",
                        "callee.neutral", "agent.neutral"]
            elif variant == 3:    # wrong number, told nothing
                body = ["agent.greeting", "callee.neutral", "agent.identity", "agent.verify", "callee.deny",
                        "agent.relay"]
            else:                 # greeting first, then identity; plan stated as amounts and dates
                body = ["agent.greeting", "callee.neutral", "agent.identity", "callee.neutral", "agent.verify",
                        "callee.confirm", "agent.debt", "callee.neutral", "agent.plan", "callee.neutral",
                        "agent.neg_conduct", "agent.neutral"]
            out.append(self.call("clean", body))
        for k in range(per_kind):  # identity never stated
            body = ["agent.greeting", "callee.neutral", "agent.verify", "callee.confirm"] + self.tail()
            out.append(self.call("identity_missing", body))
        for k in range(per_kind):  # privacy
            v = k % 3
            if v == 0:   # debt before the verification question: process.order + privacy
                body = ["agent.identity", "callee.neutral", "agent.debt", "callee.neutral", "agent.verify",
                        "callee.confirm", "agent.plan", "callee.neutral", "agent.neutral"]
            elif v == 1:  # told to a third party: privacy only
                body = ["agent.identity", "callee.neutral", "agent.verify", "callee.third_party", "agent.debt",
                        "callee.neutral", "agent.relay"]
            else:         # told to someone who said it is not them: privacy only
                body = ["agent.identity", "callee.neutral", "agent.verify", "callee.deny", "agent.debt",
                        "callee.neutral", "agent.neutral"]
            out.append(self.call("privacy", body))
        for k in range(per_kind):  # process.order without disclosure
            if k % 2 == 0:  # plan before debt
                body = self.opening() + ["agent.plan", "callee.neutral", "agent.debt", "callee.neutral", "agent.neutral"]
            else:           # identity only after the verification question
                body = ["agent.greeting", "callee.neutral", "agent.verify", "callee.confirm", "agent.identity",
                        "callee.neutral"] + self.tail()
            out.append(self.call("order", body))
        for k in range(per_kind):  # outside the calling window, otherwise clean
            out.append(self.call("time", self.opening() + self.tail(), start_ok=False))
        return out

    def coverage(self) -> list[dict]:
        """One more call for every line of the pool that no call above drew (the random draws leave
        about half of the hand-written hard negatives and third-party answers out): train only, so that
        every hand-written training line is read at least once. Appended after the other calls, so those
        stay what they were."""
        out = []
        for key in sorted(self.p):
            for k, u in enumerate(x for x in self.p[key] if x["id"] not in self.used):
                alt = k % 2 == 1
                if key == "agent.relay":
                    kind, body = "clean", ["agent.identity", "callee.neutral", "agent.verify", "callee.third_party", u,
                                           "callee.neutral", "agent.neutral"]
                elif key == "callee.third_party":
                    kind, body = (("privacy", ["agent.identity", "callee.neutral", "agent.verify", u, "agent.debt",
                                               "callee.neutral", "agent.relay"]) if alt else
                                  ("clean", ["agent.identity", "callee.neutral", "agent.verify", u, "agent.relay",
                                             "callee.neutral", "agent.neutral"]))
                elif key == "callee.deny":
                    kind, body = (("privacy", ["agent.identity", "callee.neutral", "agent.verify", u, "agent.debt",
                                               "callee.neutral", "agent.neutral"]) if alt else
                                  ("clean", ["agent.greeting", "callee.neutral", "agent.identity", "agent.verify", u,
                                             "agent.relay"]))
                else:
                    kind, body = "clean", ["agent.greeting", "callee.neutral", "agent.identity", "callee.neutral",
                                           "agent.verify", "callee.confirm", "agent.debt", "callee.neutral",
                                           "agent.plan", "callee.neutral", "agent.neg_conduct", "agent.neutral"]
                    if key not in body:
                        raise SystemExit(f"no coverage call for {key} (line {u['id']})")
                    body[body.index(key)] = u
                out.append(self.call(kind, body))
        return out


# -- recogniser-style copies --------------------------------------------------------------------

HOMOPHONES_ZH = [("坐牢", "做牢"), ("欠款", "欠宽"), ("逾期", "余期"), ("法院", "发院"), ("公安", "工安"),
                 ("起诉", "起素"), ("本人", "本仁"), ("还款", "环款"), ("征信", "正信"), ("拘留", "居留"),
                 ("检察院", "检查院"), ("警察", "井察"), ("律师", "律诗"), ("派出所", "派出锁"), ("牢饭", "劳饭"),
                 ("废物", "废务"), ("不要脸", "不要连"), ("执行局", "执行居"), ("借款", "接款"), ("老赖", "老来")]
FILLERS = {"zh": ["嗯", "那个", "就是", "呃", "然后"], "en": ["uh", "um", "like", "you know", "so"]}
_ZH_D = "零一二三四五六七八九"
_EN_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
            "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_EN_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def zh_number(n: int) -> str:
    if n == 0:
        return "零"
    units = [(10000, "万"), (1000, "千"), (100, "百"), (10, "十")]
    out, zero = "", False
    for v, u in units:
        q, n = divmod(n, v)
        if q:
            if zero:
                out += "零"
            out += (zh_number(q) if v == 10000 else _ZH_D[q]) + u
            zero = False
        elif out:
            zero = True
    if n:
        out += ("零" if zero and out else "") + _ZH_D[n]
    return out[1:] if out.startswith("一十") else out


def en_number(n: int) -> str:
    if n < 20:
        return _EN_ONES[n]
    if n < 100:
        return _EN_TENS[n // 10] + ("-" + _EN_ONES[n % 10] if n % 10 else "")
    if n < 1000:
        return _EN_ONES[n // 100] + " hundred" + (" " + en_number(n % 100) if n % 100 else "")
    return en_number(n // 1000) + " thousand" + (" " + en_number(n % 1000) if n % 1000 else "")


def _numbers(text: str, lang: str, rng: random.Random) -> str:
    def rep(m: re.Match) -> str:
        s = m.group(0).replace(",", "")
        if len(s) == 4 and (s.startswith("19") or s.startswith("20") or rng.random() < 0.5):
            # years, codes: digit by digit (zh) / in pairs or digits (en)
            return ("".join(_ZH_D[int(c)] for c in s) if lang == "zh"
                    else " ".join(_EN_ONES[int(c)] for c in s) if not s.startswith(("19", "20"))
                    else f"{en_number(int(s[:2]))} {en_number(int(s[2:]))}")
        n = int(s)
        return zh_number(n) if lang == "zh" else en_number(n)
    text = re.sub(r"\$(\d[\d,]*)", lambda m: m.group(1) + " dollars", text) if lang == "en" else text
    return re.sub(r"\d[\d,]*\d|\d", rep, text)


_SENT = re.compile(r"(?<=[。！？!?；;])|(?<=\.)\s")
_PUNCT = re.compile(r"[，。！？、；：,.!?;:…“”\"（）()'’]")


def asr_copy(call: dict) -> dict:
    rng = random.Random("asr-" + call["call_id"])
    lang = call["lang"]
    turns = []
    for t in call["turns"]:
        text = t["text"]
        if lang == "zh":
            for a, b in HOMOPHONES_ZH:
                if a in text and rng.random() < 0.8:
                    text = text.replace(a, b)
        text = _numbers(text, lang, rng)
        sentences = [s for s in _SENT.split(text) if s and s.strip()]
        segs, at = [], t["start"]
        per = (t["end"] - t["start"]) / max(len(sentences), 1)
        for k, s in enumerate(sentences):
            s = _PUNCT.sub(" ", s)
            s = re.sub(r"\s+", " ", s.lower() if lang == "en" else s.replace(" ", "")).strip()
            if rng.random() < 0.35:
                f = rng.choice(FILLERS[lang])
                s = f"{f} {s}" if lang == "en" else f + s
            if s:
                segs.append({"text": s, "start": round(at, 2), "end": round(at + per - 0.45, 2)})
            at += per
        joined = (" " if lang == "en" else "").join(s["text"] for s in segs)
        turn = {"speaker": t["speaker"], "text": joined, "start": t["start"], "end": t["end"]}
        if len(segs) > 1:
            turn["segments"] = segs
        turns.append(turn)
    return {**call, "call_id": call["call_id"] + "-asr", "turns": turns, "variant": "asr"}


def build() -> list[dict]:
    out = []
    for split_name, per_kind in (("train", 60), ("dev", 40), ("test", 40)):
        for lang in LANGS:
            comp = Composer(split_name, lang)
            calls = comp.calls(per_kind)
            if split_name == "train":
                calls += comp.coverage()
            out += calls
            if split_name != "train":
                out += [asr_copy(c) for c in calls]
    return out


def main(argv: list[str]) -> int:
    if "--init-split" in argv:
        if SPLIT.exists():
            raise SystemExit(f"{SPLIT.name} exists: the split is made once; delete it only to start over, before training")
        SPLIT.write_text(json.dumps(init_split(), ensure_ascii=False, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    calls = build()
    with OUT.open("w", encoding="utf-8") as f:
        for c in calls:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    from collections import Counter
    cnt = Counter()
    for c in calls:
        for e in c["expected"]:
            cnt[(c["split"], c["lang"], c["variant"], e["rule"])] += 1
    print(f"{len(calls)} calls → {OUT.name}")
    for k in sorted(cnt):
        print(" ", *k, cnt[k])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
