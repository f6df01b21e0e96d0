"""QA checker benchmark: per-rule precision/recall on the labelled corpus (untouched test half by default)
against a naive keyword baseline measured in the same run, plus transcripts scored per second.

    python -m bench.qa [--corpus hard|v1|probe|probe2|probe3|probe4|probe-calls|blind] [--split test|dev|tune|held|all] [--rules compliance_rules.yaml] [--json]

`--corpus hard` (default): the QA 2 detectors beside the lexicon checker on tests/data/qa2 (see the
end of this file and docs/QA.md). `--corpus probe` / `probe2` / `probe3` / `probe4`: the
probe lines (tests/data/qa2/probe_*.txt, probe2_*.txt, probe3_zh.txt, probe4_*.txt, never trained on), one at a time in a fixed
small call and in its recogniser-style copy, detectors beside the lexicon checker. `--corpus probe-calls`:
whole calls composed from those lines by the corpus builder's recipe (as dev and test are), scored per rule.
`--corpus blind`: whole calls written by hands that read no project file (tests/data/qa2/blind_*.jsonl), each
turn labelled by its writer; `--split tune` (= dev) or `held` (= test, the default) half.
`--corpus v1`: the version-1 corpus against a naive keyword baseline:

The baseline uses the same lexicons and normalisation but no negation, no speaker filter and no
call state: a conduct keyword in any turn counts, and any debt phrase before the agent's first
verification question counts as a disclosure. The ASR-style column re-scores the same calls as a
recogniser would hand them over (no punctuation, lower case, Chinese characters space-separated).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from common.normalize import normalize
from dialer.qa.checker import Transcript, _find, _order, _time_window, check, parse_transcript
from dialer.qa.rules import CONDUCT_RULES, RULE_IDS, QARules, RuleSet, load_rules

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "qa_corpus.jsonl"


@dataclass
class Labelled:
    transcript: Transcript
    expected: frozenset[str]
    split: str
    section: str
    turns: tuple[tuple[str, int], ...] = ()  # (rule, turn) of every turn-level label


def load_corpus(path: Path = CORPUS, rules: RuleSet | None = None) -> list[Labelled]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        obj = json.loads(line)
        out.append(Labelled(parse_transcript(obj, rules), frozenset(e["rule"] for e in obj["expected"]),
                            obj["split"], obj.get("section", ""),
                            tuple((e["rule"], e["turn"]) for e in obj["expected"] if e["turn"] is not None)))
    return out


_PUNCT = re.compile(r"[，。！？、；：,.!?;:…“”\"（）()]")


def asr_style(t: Transcript) -> Transcript:
    """The transcript as a recogniser would give it: no punctuation, lower case, Chinese characters spaced."""
    def one(text: str) -> str:
        s = _PUNCT.sub(" ", text).lower()
        if t.lang == "zh":
            s = re.sub(r"([\u3400-\u9fff])", r" \1 ", s)
        return re.sub(r"\s+", " ", s).strip()
    return dataclasses.replace(t, turns=tuple(dataclasses.replace(u, text=one(u.text)) for u in t.turns))


def baseline(t: Transcript, rules: RuleSet) -> set[str]:
    """Naive keyword spotting: no negation, every speaker, no verification state."""
    profile: QARules = rules.for_jurisdiction(t.jurisdiction)
    lex = profile.lexicons[t.lang]
    found: set[str] = set()
    if _time_window(t, profile):
        found.add("time.window")
    first: dict[str, int] = {}
    asked = False
    for i, turn in enumerate(t.turns):
        norm = normalize(turn.text)
        for rule in CONDUCT_RULES:
            if _find(lex.conduct[rule].patterns, norm, lex):
                found.add(rule)
        if turn.speaker != "agent":
            continue
        for stage in lex.stages:
            if _find(lex.stages[stage], norm, lex):
                first.setdefault(stage, i)
        if not asked and _find(lex.stages["debt"], norm, lex):
            found.add("privacy.third_party_disclosure")
        if _find(lex.stages["verification"], norm, lex):
            asked = True
    if "identity" not in first:
        found.add("disclosure.identity_missing")
    if _order(first, profile.required_order):
        found.add("process.order")
    return found


def prf(pairs: Iterable[tuple[frozenset[str], set[str] | frozenset[str]]], rule: str) -> dict[str, Any]:
    tp = fp = fn = 0
    for expected, got in pairs:
        e, g = rule in expected, rule in got
        tp += e and g
        fp += g and not e
        fn += e and not g
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": round(p, 3), "recall": round(r, 3)}


def evaluate(corpus: list[Labelled], rules: RuleSet, predict: Callable[[Transcript], set[str] | frozenset[str]]
             ) -> dict[str, Any]:
    preds = [(c, predict(c.transcript)) for c in corpus]
    out: dict[str, Any] = {}
    for rule in RULE_IDS:
        row = {"all": prf(((c.expected, g) for c, g in preds), rule)}
        for lang in ("zh", "en"):
            row[lang] = prf(((c.expected, g) for c, g in preds if c.transcript.lang == lang), rule)
        out[rule] = row
    out["_exact_calls"] = sum(1 for c, g in preds if set(g) == set(c.expected))
    out["_errors"] = [{"call_id": c.transcript.call_id, "section": c.section, "missed": sorted(c.expected - set(g)),
                       "extra": sorted(set(g) - c.expected)} for c, g in preds if set(g) != set(c.expected)]
    return out


def turn_agreement(corpus: list[Labelled], rules: RuleSet) -> dict[str, int]:
    """Of the turn-labelled violations the checker found in the right call, how many at the labelled turn."""
    same = other = 0
    for c in corpus:
        got = check(c.transcript, rules).violations
        for rule, turn in c.turns:
            turns = {v.turn for v in got if v.rule == rule}
            if not turns or rule == "disclosure.identity_missing":
                continue
            if turn in turns:
                same += 1
            else:
                other += 1
    return {"same_turn": same, "other_turn": other}


def throughput(corpus: list[Labelled], rules: RuleSet, seconds: float = 1.0) -> float:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for c in corpus:
            check(c.transcript, rules)
        n += len(corpus)
    return n / (time.perf_counter() - t0)


def run(split: str = "test", rules_path: str = "compliance_rules.yaml", seconds: float = 1.0) -> dict[str, Any]:
    rules = load_rules(rules_path)
    corpus = [c for c in load_corpus(CORPUS, rules) if split == "all" or c.split == split]
    checker = evaluate(corpus, rules, lambda t: check(t, rules).rules)
    base = evaluate(corpus, rules, lambda t: baseline(t, rules))
    per_sec = throughput(corpus, rules, seconds)
    base_t0 = time.perf_counter()
    for c in corpus:
        baseline(c.transcript, rules)
    base_per_sec = len(corpus) / max(time.perf_counter() - base_t0, 1e-9)
    asr = evaluate([dataclasses.replace(c, transcript=asr_style(c.transcript)) for c in corpus], rules,
                   lambda t: check(t, rules).rules)
    langs = Counter(c.transcript.lang for c in corpus)
    return {
        "split": split,
        "calls": len(corpus),
        "calls_by_lang": dict(langs),
        "rules": {r: {"checker": checker[r], "baseline": base[r], "checker_asr_style": asr[r]} for r in RULE_IDS},
        "exact_calls": {"checker": checker["_exact_calls"], "baseline": base["_exact_calls"]},
        "turn_agreement": turn_agreement(corpus, rules),
        "errors": checker["_errors"],
        "transcripts_per_second": round(per_sec, 1),
        "baseline_transcripts_per_second": round(base_per_sec, 1),
    }


def render(res: dict[str, Any]) -> str:
    lines = [f"QA checker on the {res['split']} split: {res['calls']} calls {res['calls_by_lang']}",
             f"{'rule':32} {'checker P':>9} {'R':>6} {'zh P/R':>11} {'en P/R':>11} | {'baseline P':>10} {'R':>6}  ΔF1"
             f" | {'ASR-style P/R':>13}"]
    for rule, row in res["rules"].items():
        c, b, a = row["checker"], row["baseline"], row["checker_asr_style"]["all"]
        f = lambda d: 2 * d["precision"] * d["recall"] / (d["precision"] + d["recall"]) if d["precision"] + d["recall"] else 0.0  # noqa: E731
        lines.append(
            f"{rule:32} {c['all']['precision']:9.2f} {c['all']['recall']:6.2f} "
            f"{c['zh']['precision']:5.2f}/{c['zh']['recall']:<5.2f} {c['en']['precision']:5.2f}/{c['en']['recall']:<5.2f} | "
            f"{b['all']['precision']:10.2f} {b['all']['recall']:6.2f}  {f(c['all']) - f(b['all']):+.2f}"
            f" | {a['precision']:6.2f}/{a['recall']:<6.2f}")
    lines.append("ASR-style: the same calls without punctuation, lower-cased, Chinese characters space-separated")
    ex = res["exact_calls"]
    lines.append(f"calls with exactly the expected rules: checker {ex['checker']}/{res['calls']}, "
                 f"baseline {ex['baseline']}/{res['calls']}")
    ta = res["turn_agreement"]
    lines.append(f"violations found in the right call and at the labelled turn: {ta['same_turn']}"
                 f"/{ta['same_turn'] + ta['other_turn']}")
    lines.append(f"throughput: {res['transcripts_per_second']:.0f} transcripts/s "
                 f"(baseline {res['baseline_transcripts_per_second']:.0f}/s, ratio "
                 f"{res['transcripts_per_second'] / max(res['baseline_transcripts_per_second'], 1e-9):.2f})")
    if res["errors"]:
        lines.append("checker disagreements:")
        for e in res["errors"]:
            lines.append(f"  {e['call_id']} [{e['section']}] missed={e['missed']} extra={e['extra']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.qa", description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", choices=("hard", "v1") + PROBE_SETS + ("probe-calls", "blind"), default="hard")
    ap.add_argument("--split", choices=("test", "dev", "tune", "held", "all"), default="test",
                    help="--corpus blind: tune (= dev) or held (= test) half")
    ap.add_argument("--rules", default="compliance_rules.yaml")
    ap.add_argument("--seconds", type=float, default=1.0, help="time budget of the v1 throughput run")
    ap.add_argument("--speed-calls", type=int, default=150, help="calls in the QA 2 throughput run")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.corpus in PROBE_SETS:
        res = run_probe(args.rules, args.corpus)
        print(json.dumps(res, ensure_ascii=False) if args.json else render_probe(res))
        return 0
    if args.corpus == "probe-calls":
        res = run_probe_calls(args.rules)
        print(json.dumps(res, ensure_ascii=False) if args.json else render_hard(res))
        return 0
    if args.corpus == "blind":
        res = run_blind({"test": "held", "dev": "tune"}.get(args.split, args.split), args.rules)
        print(json.dumps(res, ensure_ascii=False) if args.json else render_hard(res))
        return 0
    if args.corpus == "hard":
        res = run_hard("dev" if args.split == "tune" else args.split, args.rules, args.speed_calls)
        print(json.dumps(res, ensure_ascii=False) if args.json else render_hard(res))
        return 0
    res = run("tune" if args.split == "dev" else args.split, args.rules, args.seconds)
    print(json.dumps(res, ensure_ascii=False) if args.json else render(res))
    return 0



# == QA 2: the hard corpus (tests/data/qa2), detectors beside the lexicon checker ====================

HARD = Path(__file__).resolve().parent.parent / "tests" / "data" / "qa2" / "calls.jsonl"
VARIANTS = ("clean_text", "asr")


@dataclass
class HardCall:
    transcript: Transcript
    expected: frozenset[str]
    split: str
    variant: str
    kind: str


def load_hard(split: str = "test", rules: RuleSet | None = None, path: Path = HARD) -> list[HardCall]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        obj = json.loads(line)
        if split != "all" and obj["split"] != split:
            continue
        out.append(HardCall(parse_transcript(obj, rules), frozenset(e["rule"] for e in obj["expected"]),
                            obj["split"], obj["variant"], obj["kind"]))
    return out


def score_hard(calls: list[HardCall], predict: Callable[[Transcript], Any]) -> dict[str, Any]:
    """Per variant, language and rule: precision, recall (a needs-review item counts as a miss), the share
    of calls with the rule under review, and the share of calls with any review item."""
    rows: dict[tuple[str, str], list[tuple[HardCall, frozenset[str], frozenset[str]]]] = {}
    for c in calls:
        res = predict(c.transcript)
        got = frozenset(res.rules)
        rev = frozenset(getattr(res, "review_rules", frozenset()))
        rows.setdefault((c.variant, c.transcript.lang), []).append((c, got, rev))
    out: dict[str, Any] = {}
    for (variant, lang), items in sorted(rows.items()):
        per: dict[str, Any] = {}
        for rule in RULE_IDS:
            tp = sum(1 for c, g, _ in items if rule in c.expected and rule in g)
            fp = sum(1 for c, g, _ in items if rule not in c.expected and rule in g)
            fn = sum(1 for c, g, _ in items if rule in c.expected and rule not in g)
            rv = sum(1 for _, _, r in items if rule in r)
            per[rule] = {"tp": tp, "fp": fp, "fn": fn, "positives": tp + fn,
                         "precision": round(tp / (tp + fp), 3) if tp + fp else 1.0,
                         "recall": round(tp / (tp + fn), 3) if tp + fn else 1.0,
                         "review_rate": round(rv / len(items), 3)}
        per["_calls"] = len(items)
        per["_review_rate"] = round(sum(1 for _, _, r in items if r) / len(items), 3)
        out[f"{variant}/{lang}"] = per
    return out


def throughput_hard(calls: list[HardCall], rules: RuleSet, det: Any, n: int = 150) -> dict[str, float]:
    """Transcripts scored per second with the detectors: cold (no embedding cache, every turn embedded)
    and warm (the cache as in service, where scripts repeat), on the first n calls; lexicon beside."""
    from dialer.qa.detect import Detectors, Encoder
    sample = [c.transcript for c in calls[:n]]
    cold = Detectors(det.heads, det.meta, Encoder(cache_size=0), det.softmax)
    t0 = time.perf_counter()
    for t in sample:
        check(t, rules, cold)
    cold_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for t in sample:
        check(t, rules, det)
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for t in sample:
        check(t, rules)
    lex_s = time.perf_counter() - t0
    turns = sum(len(t.turns) for t in sample)
    return {"calls": len(sample), "turns_per_call": round(turns / max(len(sample), 1), 1),
            "model_cold_per_s": round(len(sample) / cold_s, 1), "model_warm_per_s": round(len(sample) / warm_s, 1),
            "lexicon_per_s": round(len(sample) / max(lex_s, 1e-9), 1)}


def run_hard(split: str = "test", rules_path: str = "compliance_rules.yaml", n_speed: int = 150) -> dict[str, Any]:
    from dialer.qa.detect import load
    rules = load_rules(rules_path)
    det = load()
    calls = load_hard(split, rules)
    model = score_hard(calls, lambda t: check(t, rules, det))
    lexicon = score_hard(calls, lambda t: check(t, rules))
    return {"split": split, "calls": len(calls), "model": model, "lexicon": lexicon,
            "speed": throughput_hard([c for c in calls if c.variant == "clean_text"], rules, det, n_speed),
            "heads": {k: {"lo": v["lo"], "hi": v["hi"]} for k, v in det.meta["heads"].items()}}


def probe_calls(rules: RuleSet, per_kind: int = 40) -> list[HardCall]:
    """Calls composed by the corpus builder's own recipe (`Composer.calls`: the same kinds and shapes as dev and
    test, labelled by the same conventions, each with its recogniser-style copy) from the probe lines of every set
    in that language instead of a split's pool: a call-level look at lines no head trained on. The probe sets have
    no callee filler of their own in every category, so the shapes draw from what the sets hold."""
    from dialer.qa.train import _builder
    b = _builder()
    out: list[HardCall] = []
    for lang in b.LANGS:
        pool: dict[str, list[dict]] = {}
        for name in (n for n in PROBE_SETS if lang in PROBE_LANGS[n]):
            for u in b._read_file(PROBE_DIR / f"{name}_{lang}.txt", lang):
                u["id"] = f"{name}.{u['id']}"
                pool.setdefault(f"{u['speaker']}.{u['cat'].split('+')[0]}", []).append(u)
        comp = b.Composer("dev", lang, pool, f"probe-calls-{lang}")  # the dev split's institution names
        calls = comp.calls(per_kind)
        for c in calls:
            c["call_id"] = c["call_id"].replace("qa2-dev-", "probe-calls-")
        for obj in calls + [b.asr_copy(c) for c in calls]:
            out.append(HardCall(parse_transcript(obj, rules), frozenset(e["rule"] for e in obj["expected"]),
                                "probe-calls", obj["variant"], obj["kind"]))
    return out


def run_probe_calls(rules_path: str = "compliance_rules.yaml") -> dict[str, Any]:
    from dialer.qa.detect import load
    rules = load_rules(rules_path)
    det = load()
    calls = probe_calls(rules)
    return {"split": "probe-calls", "calls": len(calls), "model": score_hard(calls, lambda t: check(t, rules, det)),
            "lexicon": score_hard(calls, lambda t: check(t, rules))}


# == Whole calls written blind (tests/data/qa2/blind_*.jsonl) ==========================================

BLIND = {lang: HARD.parent / f"blind_{lang}.jsonl" for lang in ("zh", "en")}


def blind_labels(turns: list[dict]) -> list[dict]:
    """Expected violations of a blind-written call from its writer's categories per turn (a turn may have several:
    ["identity", "debt"]), by the corpus builder's own labeller (`labels_of`, the conventions of docs/QA.md)."""
    from dialer.qa.train import _builder
    return _builder().labels_of([(t["speaker"], set(t["cats"])) for t in turns])


def blind_call(obj: dict[str, Any], where: str = "") -> dict[str, Any]:
    """One written call ({"id", "lang", "institution", "turns": [{"speaker", "text", "cats"}], "split"}) as a
    transcript with timings (daytime, so no time.window) and its expected violations."""
    from dialer.qa.train import _builder
    cats = _builder().WRITTEN_CATS  # the categories a writer may give a turn, per speaker
    for k, t in enumerate(obj["turns"]):
        allowed = set(cats["callee" if t.get("speaker") == "callee" else "agent"])
        if t.get("speaker") not in ("agent", "callee") or not t.get("cats") or set(t["cats"]) - allowed:
            raise ValueError(f"{where}: call {obj.get('id')} turn {k}: speaker must be agent|callee and cats a "
                             f"non-empty list of {sorted(allowed)}")
    call = _timed_call(obj["id"], obj["lang"], obj["institution"], [(t["speaker"], t["text"]) for t in obj["turns"]], 14)
    return {**call, "expected": blind_labels(obj["turns"]), "variant": "clean_text",
            "kind": obj.get("writer", "blind"), "split": obj["split"]}


def load_blind(split: str = "held", rules: RuleSet | None = None) -> list[HardCall]:
    """The blind-written calls of one half ('tune', 'held' or 'all'), as written and as recogniser-style copies
    (the corpus builder's asr_copy)."""
    from dialer.qa.train import _builder
    b = _builder()
    out: list[HardCall] = []
    for lang, path in BLIND.items():
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            obj = json.loads(line)
            if split != "all" and obj["split"] != split:
                continue
            call = blind_call(obj, f"{path.name}:{lineno}")
            for c in (call, b.asr_copy(call)):
                out.append(HardCall(parse_transcript(c, rules), frozenset(e["rule"] for e in c["expected"]),
                                    c["split"], c["variant"], c["kind"]))
    return out


def run_blind(split: str = "held", rules_path: str = "compliance_rules.yaml") -> dict[str, Any]:
    from dialer.qa.detect import load
    rules = load_rules(rules_path)
    det = load()
    calls = load_blind(split, rules)
    return {"split": f"blind/{split}", "calls": len(calls), "model": score_hard(calls, lambda t: check(t, rules, det)),
            "lexicon": score_hard(calls, lambda t: check(t, rules))}


def render_hard(res: dict[str, Any]) -> str:
    title = ("calls composed from the probe lines" if res["split"] == "probe-calls"
             else f"whole calls written blind, {res['split'][6:]} half" if res["split"].startswith("blind/")
             else f"the hard corpus, {res['split']} split")
    lines = [f"QA 2 on {title} ({res['calls']} calls; recall counts needs-review as a miss)",
             f"{'variant/lang':14} {'rule':32} {'pos':>4} | {'model P':>7} {'R':>5} {'review':>6} | {'lexicon P':>9} {'R':>5}"]
    for key, per in res["model"].items():
        lex = res["lexicon"][key]
        for rule in RULE_IDS:
            m, x = per[rule], lex[rule]
            lines.append(f"{key:14} {rule:32} {m['positives']:4d} | {m['precision']:7.2f} {m['recall']:5.2f} "
                         f"{m['review_rate']:6.1%} | {x['precision']:9.2f} {x['recall']:5.2f}")
        lines.append(f"{key:14} {'calls with any review item':32} {per['_calls']:4d} | {'':7} {'':5} "
                     f"{per['_review_rate']:6.1%} |")
    s = res.get("speed")
    if s is None:
        return "\n".join(lines)
    lines.append(f"throughput ({s['calls']} calls, {s['turns_per_call']} turns/call): model cold "
                 f"{s['model_cold_per_s']:.1f}/s ({s['model_cold_per_s'] * 60:.0f}/min, every turn embedded), "
                 f"warm cache {s['model_warm_per_s']:.1f}/s; lexicon {s['lexicon_per_s']:.0f}/s")
    return "\n".join(lines)


# == Probe lines (tests/data/qa2/probe_*.txt): one utterance at a time, never trained on ==============

PROBE_DIR = HARD.parent
PROBE_SLOTS = {"zh": {"inst": "安平银行", "name": "王建国", "sur": "王", "first": "建国", "amt": "2350", "days": "25"},
               "en": {"inst": "Harbor Savings", "name": "Robert Hale", "sur": "Hale", "first": "Robert",
                      "amt": "2,350", "days": "25"}}
# Fixed turns around the probe line, so that the call's verdict answers one question about that line.
PROBE_FRAME = {
    "zh": {"identity": "您好，我是安平银行的客服小周。", "verify": "请问您是王建国先生本人吗？", "confirm": "是我。",
           "debt": "您的借款已经逾期二十五天，欠款两千三百五十元。"},
    "en": {"identity": "Hi, this is Dana calling from Harbor Savings.", "verify": "Am I speaking with Robert Hale?",
           "confirm": "Yes, that's me.", "debt": "Your account is 25 days past due, with $2,350 owed."},
}
CONDUCT_CAT = {"threat": "conduct.threat", "insult": "conduct.insult", "impersonation": "conduct.impersonation"}


# probe2: written later, by other hands, as a third look; probe3: Chinese lawful mentions of courts and police
# beside false claims to be them; probe4: debt mentions and callee answers, written blind. None is trained on.
PROBE_LANGS = {"probe": ("zh", "en"), "probe2": ("zh", "en"), "probe3": ("zh",), "probe4": ("zh", "en")}
PROBE_SETS = tuple(PROBE_LANGS)


def read_probe(lang: str, path: Path | None = None, name: str = "probe") -> list[tuple[str, str, bool]]:
    """(speaker.category, filled text, says 'collector') per line of <name>_<lang>.txt, read by the corpus
    builder's own reader (same format as utterances_<lang>.txt)."""
    from dialer.qa.train import _builder
    items = _builder()._read_file(path or PROBE_DIR / f"{name}_{lang}.txt", lang)
    out = []
    for u in items:
        text = u["text"]
        for k, v in PROBE_SLOTS[lang].items():
            text = text.replace("{" + k + "}", v)
        out.append((f"{u['speaker']}.{u['cat'].split('+')[0]}", text, u["cat"].endswith("+debt")))
    return out


def probe_questions(cat: str, text: str, also_debt: bool, lang: str) -> list[tuple[str, list, str, bool]]:
    """(question, turns, rule, the rule is expected) for one probe line: each is a small call whose
    verdict on one rule answers the question; a needs-review item counts as not found."""
    f = PROBE_FRAME[lang]
    sp, c = cat.split(".", 1)
    opener, verify, confirm, debt = (("agent", f["identity"]), ("agent", f["verify"]), ("callee", f["confirm"]),
                                     ("agent", f["debt"]))
    line = (sp, text)
    qs = []
    if sp == "callee":
        if c == "neutral":  # "嗯，好的。" / "Why is it so much?" as an answer to "are you X?": a person may read either way
            return qs
        # answer to the verification question, then the debt: only a confirmation makes that lawful
        qs.append(("callee answer read right", [opener, verify, line, debt], "privacy.third_party_disclosure",
                   c != "confirm"))
        return qs
    verified = [opener, verify, confirm]
    if c in CONDUCT_CAT:
        qs.append(("conduct caught", verified + [debt, ("callee", "…"), line], CONDUCT_CAT[c], True))
    else:
        for rule in CONDUCT_CAT.values():
            qs.append(("no conduct in a lawful line", verified + [debt, ("callee", "…"), line], rule, False))
    if c in ("debt", "identity", "greeting", "verify", "relay", "neutral"):
        # said before anybody is verified: a disclosure only if the line mentions the debt (lawful cautions
        # and plans are left out: "your family is not responsible for this debt" does mention it)
        qs.append(("debt mention read right", [line, ("callee", "…"), opener, verify, confirm], "privacy.third_party_disclosure",
                   c == "debt" or also_debt))
    if c == "identity":
        qs.append(("identity statement seen", [line, verify, confirm, debt], "disclosure.identity_missing", False))
    return qs


def _timed_call(call_id: str, lang: str, institution: str, turns: list[tuple[str, str]], hour: int) -> dict[str, Any]:
    """A transcript of (speaker, text) turns, timed as the corpus builder times its calls, started at `hour`
    debtor-local time on a fixed day."""
    from dialer.qa.train import _builder
    return {"call_id": call_id, "lang": lang, "jurisdiction": "cn" if lang == "zh" else "us",
            "started_at": f"2026-11-20T{hour:02d}:00:00" + ("+08:00" if lang == "zh" else "-05:00"),
            "institution": institution, "turns": _builder().timed(turns, lang)}


def _probe_call(turns: list, lang: str, asr: bool, n: int) -> dict[str, Any]:
    """The small call of one probe question; `asr`: its recogniser-style copy, made by the corpus builder's
    own asr_copy (no punctuation, homophones, numbers in words, fillers, pauses as segments)."""
    call = _timed_call(f"probe-{lang}-{n}", lang, PROBE_SLOTS[lang]["inst"], turns, 10)
    if asr:
        from dialer.qa.train import _builder
        call = _builder().asr_copy(call)
    return call


def score_probe(predict: Callable[[Transcript], Any], rules: RuleSet, name: str = "probe",
                asr: bool = False) -> dict[str, Any]:
    """Per language and question: right / asked, and the lines it got wrong (to read). `asr`: each small
    call's recogniser-style copy instead (keys 'asr/zh', 'asr/en')."""
    out: dict[str, Any] = {}
    for lang in PROBE_LANGS[name]:
        per: dict[str, list] = {}
        n = 0
        for cat, text, also in read_probe(lang, name=name):
            for q, turns, rule, expected in probe_questions(cat, text, also, lang):
                n += 1
                call = _probe_call(turns, lang, asr, n)
                t = parse_transcript(call, rules)
                got = rule in predict(t).rules
                key = f"{q} ({cat})" if q in ("conduct caught", "callee answer read right") else q
                row = per.setdefault(key, [0, 0, []])
                row[1] += 1
                if got == expected:
                    row[0] += 1
                else:
                    row[2].append(text)
        out[f"asr/{lang}" if asr else lang] = {k: {"right": v[0], "asked": v[1], "wrong": v[2]}
                                               for k, v in sorted(per.items())}
    return out


def run_probe(rules_path: str = "compliance_rules.yaml", name: str = "probe") -> dict[str, Any]:
    """Both languages, as written and as recogniser-style copies, detectors beside the lexicon checker."""
    from dialer.qa import detect
    rules = load_rules(Path(rules_path))
    det = detect.load()
    res: dict[str, Any] = {"set": name, "model": {}, "lexicon": {}}
    for asr in (False, True):
        res["model"].update(score_probe(lambda t: check(t, rules, det), rules, name, asr))
        res["lexicon"].update(score_probe(lambda t: check(t, rules), rules, name, asr))
    return res


def render_probe(res: dict[str, Any]) -> str:
    lines = [f"{res['set']} lines (never trained on), one per small call: right / asked, detectors vs lexicon checker"]
    for lang, per in res["model"].items():
        lines.append(f"[{lang}]")
        for q, v in per.items():
            lx = res["lexicon"][lang][q]
            lines.append(f"  {q:52s} {v['right']:3d}/{v['asked']:<3d}  lexicon {lx['right']:3d}/{lx['asked']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
