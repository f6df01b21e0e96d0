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
                     at: float | None = None) -> Result:
    """Check a saved transcript and record its score (audited, with the rules file's sha256)."""
    result = check(transcript, rules)
    record_result(store, result, rules.sha256, actor=actor, at=at)
    return result


def score_call(store: Store, transcript: Transcript | Mapping[str, Any], rules: RuleSet, *, source: str = "bot",
               actor: str = "qa", at: float | None = None) -> Result:
    """What the daemon does at the end of a bot call: save the transcript, check it, record the score
    (three audited steps)."""
    t = transcript if isinstance(transcript, Transcript) else parse_transcript(transcript, rules)
    save_transcript(store, t, source=source, actor=actor, at=at)
    return score_transcript(store, t, rules, actor=actor, at=at)
