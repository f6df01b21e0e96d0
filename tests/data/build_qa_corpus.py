"""Build tests/data/qa_corpus.jsonl (transcript JSONL + expected labels + tune/test split) from qa_corpus.txt."""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).parent
SRC = HERE / "qa_corpus.txt"
OUT = HERE / "qa_corpus.jsonl"

ALIASES = {
    "threat": "conduct.threat",
    "insult": "conduct.insult",
    "imp": "conduct.impersonation",
    "privacy": "privacy.third_party_disclosure",
    "identity": "disclosure.identity_missing",
    "order": "process.order",
    "time": "time.window",
}
RULES = set(ALIASES.values())
DEFAULTS = {
    "zh": ("cn", "2026-11-20T10:00:00+08:00"),
    "en": ("us", "2026-11-20T10:00:00-05:00"),
}
TURN_SECONDS = 4.0


def _rule(word: str, where: str) -> str:
    rule = ALIASES.get(word, word)
    if rule not in RULES:
        raise SystemExit(f"{where}: unknown label {word!r}")
    return rule


def parse(text: str, src: str = str(SRC)) -> list[dict]:
    calls: list[dict] = []
    section, index_in_section = "", 0
    current: dict | None = None
    call_labels: list[str] = []

    def finish() -> None:
        nonlocal current
        if current is None:
            return
        if not current["turns"]:
            raise SystemExit(f"{src}: call {current['call_id']} has no turns")
        first_agent = next((i for i, t in enumerate(current["turns"]) if t["speaker"] == "agent"), 0)
        for rule in call_labels:
            turn = None if rule == "time.window" else first_agent
            current["expected"].insert(0, {"rule": rule, "turn": turn})
        calls.append(current)
        current = None

    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        where = f"{src}:{lineno}"
        if not line or (line.startswith("#") and not line.startswith("###")):
            continue
        if line.startswith("###"):
            finish()
            section, index_in_section = line.lstrip("#").strip(), 0
            continue
        if line.startswith("=="):
            finish()
            words = line[2:].split()
            lang = words[0]
            if lang not in DEFAULTS:
                raise SystemExit(f"{where}: unknown language {lang!r}")
            jur, at = DEFAULTS[lang]
            call_labels = []
            for w in words[1:]:
                if w.startswith("jur="):
                    jur = w[4:]
                elif w.startswith("at="):
                    at = w[3:]
                else:
                    call_labels.append(_rule(w, where))
            n = sum(1 for c in calls if c["lang"] == lang) + 1
            current = {
                "call_id": f"qa-{lang}-{n:03d}",
                "lang": lang,
                "jurisdiction": jur,
                "started_at": at,
                "turns": [],
                "expected": [],
                "split": "tune" if index_in_section % 2 == 0 else "test",
                "section": section,
            }
            index_in_section += 1
            continue
        if current is None or line[:2] not in ("A:", "C:"):
            raise SystemExit(f"{where}: expected '== LANG', 'A: …' or 'C: …'")
        speaker = "agent" if line[0] == "A" else "callee"
        body = line[2:].strip()
        labels = []
        if "#" in body:
            body, _, tail = body.partition("  #")
            labels = [_rule(w.lstrip("#"), where) for w in tail.split()]
        turn_index = len(current["turns"])
        start = turn_index * TURN_SECONDS
        current["turns"].append({"speaker": speaker, "text": body.strip(), "start": start, "end": start + TURN_SECONDS - 0.5})
        for rule in labels:
            current["expected"].append({"rule": rule, "turn": turn_index})
    finish()
    return calls


def main() -> int:
    calls = parse(SRC.read_text(encoding="utf-8"))
    with OUT.open("w", encoding="utf-8") as fh:
        for call in calls:
            fh.write(json.dumps(call, ensure_ascii=False) + "\n")
    per = Counter((c["lang"], e["rule"]) for c in calls for e in {e["rule"]: e for e in c["expected"]}.values())
    clean = Counter(c["lang"] for c in calls if not c["expected"])
    print(f"{len(calls)} calls → {OUT}")
    for (lang, rule), n in sorted(per.items()):
        print(f"  {lang} {rule:34} {n:3d} calls")
    for lang, n in sorted(clean.items()):
        print(f"  {lang} {'(no violation)':34} {n:3d} calls")
    short = [(lang, r) for lang in DEFAULTS for r in sorted(RULES) if per[(lang, r)] < 10]
    if short:
        print("fewer than 10 calls:", short, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
