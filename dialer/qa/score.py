"""Scoring a call: save the transcript, check it against the rules, record the score (each step audited).

The checker decides, the store only stores: `dialer.store.qa` saves transcripts and results,
`dialer.qa.checker.check` scores them, and this module puts the two together.
"""
from __future__ import annotations

from typing import Any, Mapping

from dialer.qa.checker import Result, Transcript, check, parse_transcript
from dialer.qa.rules import RuleSet
from dialer.store import Store
from dialer.store.qa import record_result, save_transcript


def score_transcript(store: Store, transcript: Transcript, rules: RuleSet, *, actor: str = "qa",
                     at: float | None = None, detectors: Any = None) -> Result:
    """Check a saved transcript and record its score (audited, with the rules file's sha256).
    With `detectors` (dialer.qa.detect.load()), QA 2: detectors + lexicons, needs-review items kept."""
    result = check(transcript, rules, detectors)
    record_result(store, result, rules.sha256, actor=actor, at=at,
                  engine="lexicon" if detectors is None else "model")
    return result


def score_call(store: Store, transcript: Transcript | Mapping[str, Any], rules: RuleSet, *, source: str = "bot",
               actor: str = "qa", at: float | None = None, detectors: Any = None) -> Result:
    """What the daemon does at the end of a bot call: save the transcript, check it, record the score
    (three audited steps). The old signature still works and scores with the lexicons alone; pass
    `detectors=dialer.qa.detect.load()` (load once, at start-up: about 2 s) for the QA 2 detectors."""
    t = transcript if isinstance(transcript, Transcript) else parse_transcript(transcript, rules)
    save_transcript(store, t, source=source, actor=actor, at=at)
    return score_transcript(store, t, rules, actor=actor, at=at, detectors=detectors)
