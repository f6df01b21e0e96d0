"""The campaign's `strategy:` table: (propensity band × willingness/ability quadrant × days-past-due bucket)
→ script, dial mode, cadence and channel escalation (bot → collector → legal review). Parsing and lookup."""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from common.yamlfile import Located

BANDS = ("high", "mid", "low")
QUADRANTS = ("willing_able", "willing_unable", "unwilling_able", "unwilling_unable")
BUCKETS = ("M0", "M1", "M2", "M3", "M3+")
DIAL_MODES = ("preview", "progressive", "predictive", "bot_only")
CHANNELS = ("bot", "collector", "legal_review")  # escalation only moves forward along this list
CADENCE_KEYS = ("max_attempts_per_day", "max_attempts_per_week", "max_attempts_total", "min_gap_minutes",
                "days_between_contacts")
RESCORE = ("nightly", "on_outcome")
_ROW_KEYS = ("band", "quadrant", "bucket", "script", "dial_mode", "cadence", "escalation", "note")
_TREATMENT_KEYS = ("script", "dial_mode", "cadence", "escalation", "note")
_SCRIPT_ID = re.compile(r"^[a-z0-9][a-z0-9_]*$")


@dataclass(frozen=True)
class Step:
    """One escalation step: the channel, and how many attempts it gets before the next (None = until done)."""

    channel: str
    attempts: int | None = None


@dataclass(frozen=True)
class Treatment:
    """What to do with a debtor: which script, how to dial, how often, and how to escalate."""

    script: str
    dial_mode: str
    cadence: Mapping[str, float] = field(default_factory=dict)
    escalation: tuple[Step, ...] = (Step("bot"),)
    source: str = "default"  # which row chose it: 'rows[3]' or 'default'

    def channel_for(self, attempts_made: int) -> str:
        """The channel for the next attempt after `attempts_made` attempts under this treatment."""
        used = 0
        for step in self.escalation:
            if step.attempts is None or attempts_made < used + step.attempts:
                return step.channel
            used += step.attempts
        return self.escalation[-1].channel

    def as_dict(self) -> dict[str, Any]:
        return {"script": self.script, "dial_mode": self.dial_mode, "cadence": dict(self.cadence),
                "escalation": [{"channel": s.channel, "attempts": s.attempts} for s in self.escalation],
                "source": self.source}


@dataclass(frozen=True)
class Row:
    bands: frozenset[str]
    quadrants: frozenset[str]
    buckets: frozenset[str]
    treatment: Treatment

    def matches(self, band: str, quadrant: str, bucket: str) -> bool:
        return band in self.bands and quadrant in self.quadrants and bucket in self.buckets


@dataclass(frozen=True)
class StrategyTable:
    """Rows in file order (the first match wins), the default, the band thresholds and when to re-score."""

    rows: tuple[Row, ...]
    default: Treatment | None
    high: float = 0.6
    mid: float = 0.3
    rescore: tuple[str, ...] = RESCORE

    def band(self, propensity: float | None) -> str | None:
        if propensity is None:
            return None
        return "high" if propensity >= self.high else "mid" if propensity >= self.mid else "low"

    def script_ids(self) -> set[str]:
        out = {r.treatment.script for r in self.rows}
        if self.default is not None:
            out.add(self.default.script)
        return out


def choose_treatment(table: StrategyTable, propensity: float | None, quadrant: str, bucket: str) -> Treatment:
    """The first row matching (band of `propensity`, quadrant, bucket), else the default. An unscored debtor
    (propensity None) matches only rows whose band is `any`, then the default, then the 'mid' rows."""
    if quadrant not in QUADRANTS:
        raise ValueError(f"quadrant must be one of {', '.join(QUADRANTS)}, not {quadrant!r}")
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}, not {bucket!r}")
    band = table.band(propensity)
    for row in table.rows:
        band_ok = row.bands == frozenset(BANDS) if band is None else band in row.bands
        if band_ok and quadrant in row.quadrants and bucket in row.buckets:
            return row.treatment
    if table.default is not None:
        return table.default
    # parse_strategy guarantees every scored combination a row; an unscored debtor is treated as 'mid'
    return choose_treatment(table, (table.high + table.mid) / 2, quadrant, bucket)


# -- parsing -------------------------------------------------------------------------------------

def _at(data: Any, path: tuple) -> Any:
    for part in path:
        data = data[part]
    return data


def _choices(located: Located, value: Any, path: tuple, allowed: Sequence[str], what: str) -> frozenset[str]:
    if value is None or value == "any":
        return frozenset(allowed)
    items = value if isinstance(value, list) else [value]
    if not items:
        raise located.error(path, f"empty list of {what}s (use 'any')")
    for i, item in enumerate(items):
        p = path + (i,) if isinstance(value, list) else path
        if not isinstance(item, str) or item not in allowed:
            raise located.error(p, f"unknown {what} {item!r} (expected one of: {', '.join(allowed)}, or any)")
    return frozenset(items)


def _script_dirs(located: Located) -> list[Path]:
    if not located.file or located.file.startswith("<"):
        return []
    here = Path(located.file).resolve().parent
    return [d for d in (here / "scripts", here.parent / "scripts") if d.is_dir() and any(d.glob("*.yaml"))]


def _treatment(located: Located, m: Mapping[str, Any], path: tuple, source: str) -> Treatment:
    for key in ("script", "dial_mode"):
        if key not in m:
            raise located.error(path, f"missing '{key}'")
    script = m["script"]
    if not isinstance(script, str) or not _SCRIPT_ID.match(script):
        raise located.error(path + ("script",), f"script id must be lower-case letters, digits and _, not {script!r}")
    dirs = _script_dirs(located)
    if dirs and not any((d / f"{script}.yaml").exists() for d in dirs):
        raise located.error(path + ("script",), f"unknown script id {script!r}: no {script}.yaml in "
                            f"{', '.join(str(d) for d in dirs)}")
    mode = m["dial_mode"]
    if mode not in DIAL_MODES:
        raise located.error(path + ("dial_mode",), f"unknown dial mode {mode!r} (expected one of: "
                            f"{', '.join(DIAL_MODES)})")
    cadence: dict[str, float] = {}
    raw_cad = m.get("cadence") or {}
    if not isinstance(raw_cad, dict):
        raise located.error(path + ("cadence",), "expected a mapping")
    for key, value in raw_cad.items():
        if key not in CADENCE_KEYS:
            raise located.error(path + ("cadence", key), f"unknown cadence key {key!r} (expected: "
                                f"{', '.join(CADENCE_KEYS)})")
        integer = key != "days_between_contacts"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)) \
                or value < (1 if key.startswith("max_") else 0):
            kind = "an integer" if integer else "a number"
            floor = "≥ 1" if key.startswith("max_") else "≥ 0"
            raise located.error(path + ("cadence", key), f"must be {kind} {floor}, not {value!r}")
        cadence[key] = value
    escalation = _escalation(located, m.get("escalation", ["bot"]), path + ("escalation",))
    if mode == "bot_only" and escalation[0].channel != "bot":
        raise located.error(path + ("escalation",), "dial_mode bot_only must start its escalation with 'bot'")
    return Treatment(script, mode, cadence, escalation, source)


def _escalation(located: Located, value: Any, path: tuple) -> tuple[Step, ...]:
    if not isinstance(value, list) or not value:
        raise located.error(path, f"expected a non-empty list of channels ({' → '.join(CHANNELS)})")
    steps: list[Step] = []
    for i, item in enumerate(value):
        p = path + (i,)
        attempts = None
        if isinstance(item, dict):
            extra = set(item) - {"channel", "attempts"}
            if extra:
                raise located.error(p + (sorted(extra)[0],), "unknown key (expected channel, attempts)")
            channel, attempts = item.get("channel"), item.get("attempts")
            if attempts is not None and (isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1):
                raise located.error(p + ("attempts",), f"must be an integer ≥ 1, not {attempts!r}")
        else:
            channel = item
        if channel not in CHANNELS:
            raise located.error(p, f"unknown channel {channel!r} (expected one of: {', '.join(CHANNELS)})")
        if steps and CHANNELS.index(channel) <= CHANNELS.index(steps[-1].channel):
            raise located.error(p, f"escalation only moves forward ({' → '.join(CHANNELS)}): "
                                f"{channel!r} cannot follow {steps[-1].channel!r}")
        if steps and steps[-1].attempts is None:
            raise located.error(path + (i - 1,), f"step {steps[-1].channel!r} needs 'attempts' before a later step")
        steps.append(Step(channel, attempts))
    return tuple(steps)


def _threshold(located: Located, value: Any, path: tuple) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise located.error(path, f"must be a probability between 0 and 1, not {value!r}")
    return float(value)


def parse_strategy(located: Located, path: tuple = ("strategy",)) -> StrategyTable:
    """Validate the `strategy:` section at `path` of a loaded campaign; errors name file, line and field.
    Every (band × quadrant × bucket) must reach a row or the default; a row that can never apply is an error."""
    data = _at(located.data, path)
    if not isinstance(data, dict):
        raise located.error(path, "expected a mapping with 'rows' (and 'default')")
    for key in data:
        if key not in ("rows", "default", "bands", "rescore"):
            raise located.error(path + (key,), "unknown key (expected rows, default, bands, rescore)")
    root = located.data if isinstance(located.data, dict) else {}
    bands = data.get("bands", root.get("propensity_bands") if path == ("strategy",) else None) or {}
    bands_path = path + ("bands",) if "bands" in data else ("propensity_bands",)
    if not isinstance(bands, dict) or set(bands) - {"high", "mid"}:
        raise located.error(bands_path, "expected a mapping with 'high' and 'mid' thresholds")
    high = _threshold(located, bands.get("high", 0.6), bands_path + ("high",))
    mid = _threshold(located, bands.get("mid", 0.3), bands_path + ("mid",))
    if mid > high:
        raise located.error(bands_path + ("mid",), f"mid threshold {mid} is above high {high}")
    rescore = data.get("rescore", list(RESCORE))
    if isinstance(rescore, str):
        rescore = [rescore]
    if not isinstance(rescore, list) or not rescore or any(r not in RESCORE for r in rescore):
        raise located.error(path + ("rescore",), f"expected a list of: {', '.join(RESCORE)}")
    default = None
    if data.get("default") is not None:
        d = data["default"]
        if not isinstance(d, dict):
            raise located.error(path + ("default",), "expected a mapping (script, dial_mode, cadence, escalation)")
        for key in d:
            if key not in _TREATMENT_KEYS:
                raise located.error(path + ("default", key), f"unknown key (expected: {', '.join(_TREATMENT_KEYS)})")
        default = _treatment(located, d, path + ("default",), "default")
    raw_rows = data.get("rows", [])
    if not isinstance(raw_rows, list):
        raise located.error(path + ("rows",), "expected a list of rows")
    rows: list[Row] = []
    for i, r in enumerate(raw_rows):
        p = path + ("rows", i)
        if not isinstance(r, dict):
            raise located.error(p, "expected a mapping (band, quadrant, bucket, script, dial_mode, ...)")
        for key in r:
            if key not in _ROW_KEYS:
                raise located.error(p + (key,), f"unknown key (expected: {', '.join(_ROW_KEYS)})")
        row = Row(_choices(located, r.get("band"), p + ("band",), BANDS, "propensity band"),
                  _choices(located, r.get("quadrant"), p + ("quadrant",), QUADRANTS, "quadrant"),
                  _choices(located, r.get("bucket"), p + ("bucket",), BUCKETS, "bucket"),
                  _treatment(located, r, p, f"rows[{i}]"))
        combos = list(itertools.product(row.bands, row.quadrants, row.buckets))
        if rows and all(any(prev.matches(*c) for prev in rows) for c in combos):
            raise located.error(p, "this row never applies: every combination it covers is matched by an "
                                "earlier row")
        rows.append(row)
    if default is None:
        for combo in itertools.product(BANDS, QUADRANTS, BUCKETS):
            if not any(row.matches(*combo) for row in rows):
                raise located.error(path + ("rows",) if rows else path,
                                    f"no row covers band={combo[0]}, quadrant={combo[1]}, bucket={combo[2]} "
                                    "and there is no 'default'")
    return StrategyTable(tuple(rows), default, high, mid, tuple(rescore))
