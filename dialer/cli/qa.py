"""`dialer qa`: score transcripts, score the store's calls, search, appeal and review, report, verify the audit chain."""
from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import Any, Iterator, NoReturn

import click

from common.yamlfile import ConfigError
from dialer.cli.options import db_option, json_option, open_store
from dialer.gate.rules import DEFAULT_RULES_FILE
from dialer.qa.checker import Result, TranscriptError, check, parse_transcript
from dialer.qa.rules import RULE_IDS, RuleSet, load_rules

rules_option = click.option("--rules", "rules_file", type=click.Path(dir_okay=False, path_type=Path),
                            default=DEFAULT_RULES_FILE, show_default=True, help="compliance rules file")
by_option = click.option("--by", "actor", default=None, help="who is acting (default: the login name)")
engine_option = click.option("--engine", type=click.Choice(["model", "lexicon"]), default="model", show_default=True,
                             help="model: sentence-embedding detectors + lexicons, with needs-review items; "
                                  "lexicon: the version-1 lexicon checker")


def _detectors(engine: str):
    if engine == "lexicon":
        return None
    from dialer.qa.detect import ModelMissing, load
    try:
        return load()
    except ModelMissing as exc:
        _fail(f"{exc} (or use --engine lexicon)")


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no login name in some containers
        return "qa"


def _rules(path: Path) -> RuleSet:
    try:
        return load_rules(path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)


def _fail(msg: str) -> NoReturn:
    click.echo(f"error: {msg}", err=True)
    sys.exit(1)


def read_jsonl(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """(line number, parsed object or None, error or None) for every non-empty line."""
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line.rstrip("\r\n")), None
            except json.JSONDecodeError as exc:
                yield lineno, None, f"broken JSON: {exc.msg} at column {exc.colno}"


def _print_result(res: Result, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(res.as_dict(), ensure_ascii=False))
        return
    rules = ", ".join(sorted(res.rules)) or "no violations"
    review = f"  needs review: {', '.join(sorted(res.review_rules))}" if res.review else ""
    click.echo(f"{res.call_id}  score {res.score:3d}  {rules}{review}")
    for v in res.violations:
        where = "call" if v.turn is None else f"turn {v.turn}"
        click.echo(f"    {v.rule:32} {where:8} {v.evidence}")
    for r in res.review:
        where = "call" if r.turn is None else f"turn {r.turn}"
        click.echo(f"    review {r.rule:25} {where:8} p={r.confidence:.2f} {r.evidence}")


@click.group()
def qa() -> None:
    """Compliance QA of call transcripts: rule checks, scores, appeals and reviews, reports."""


@qa.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option("one JSON object per call per line")
@rules_option
@engine_option
def score(file: Path, as_json: bool, rules_file: Path, engine: str) -> None:
    """Score the transcripts of FILE.jsonl (one call per line). A bad line is reported as FILE:LINE and
    the rest are still scored; the exit status is 1 if any line was bad."""
    rules = _rules(rules_file)
    det = _detectors(engine)
    bad = 0
    for lineno, obj, err in read_jsonl(file):
        if err is None:
            try:
                res = check(parse_transcript(obj, rules), rules, det)
            except TranscriptError as exc:
                err = f"{exc.field}: {exc.message}"
        if err is not None:
            bad += 1
            click.echo(f"{file}:{lineno}: {err}", err=True)
            continue
        _print_result(res, as_json)
    if bad:
        sys.exit(1)


@qa.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", type=click.Choice(["import", "bot", "asr"]), default="import", show_default=True,
              help="Where the transcripts came from: import (a file), bot (our calls), asr (recognised).")
@db_option
@rules_option
@by_option
def import_(file: Path, source: str, db: Path | None, rules_file: Path, actor: str | None) -> None:
    """Save the transcripts of FILE.jsonl in the store (audited); bad lines are named and skipped."""
    from dialer.store.audit import write_head
    from dialer.store.qa import QAStoreError, save_transcript
    rules = _rules(rules_file)
    store = open_store(db)
    saved = bad = 0
    for lineno, obj, err in read_jsonl(file):
        if err is None:
            try:
                save_transcript(store, parse_transcript(obj, rules), source=source, actor=_actor(actor))
                saved += 1
            except (TranscriptError, QAStoreError) as exc:
                err = f"{exc.field}: {exc.message}" if isinstance(exc, TranscriptError) else str(exc)
        if err is not None:
            bad += 1
            click.echo(f"{file}:{lineno}: {err}", err=True)
    write_head(store)
    click.echo(f"saved {saved} transcript(s), {bad} bad line(s)")
    if bad:
        sys.exit(1)


@qa.command()
@db_option
@rules_option
@by_option
@json_option("one JSON object per call per line")
@engine_option
@click.option("--rescore-lexicon", is_flag=True,
              help="also score again (with --engine model) calls whose latest score came from the lexicon "
                   "checker, e.g. the daemon's end-of-call score; appealed calls are left alone")
def run(db: Path | None, rules_file: Path, actor: str | None, as_json: bool, engine: str,
        rescore_lexicon: bool) -> None:
    """Score every call in the store that has a transcript and no score yet; each score is audited."""
    from dialer.qa.score import score_transcript
    from dialer.store.audit import write_head
    from dialer.store.qa import lexicon_scored_transcripts, unscored_transcripts
    rules = _rules(rules_file)
    if rescore_lexicon and engine != "model":
        _fail("--rescore-lexicon needs --engine model")
    det = _detectors(engine)
    store = open_store(db)
    n = 0
    todo = unscored_transcripts(store) + (lexicon_scored_transcripts(store) if rescore_lexicon else [])
    from common.progress import track

    for t in track(todo, "scoring calls"):
        res = score_transcript(store, t, rules, actor=_actor(actor), detectors=det)
        _print_result(res, as_json)
        n += 1
    write_head(store)
    if not as_json:
        click.echo(f"scored {n} call(s)")


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """`--since`: an ISO time with UTC offset, a date (UTC midnight), or an age such as 24h / 7d."""
    if value is None:
        return None
    import re
    import time as _time
    from datetime import date, datetime, timezone

    from common.clock import parse_at
    m = re.fullmatch(r"(\d+)([hd])", value.strip())
    if m:
        return _time.time() - int(m.group(1)) * (3600 if m.group(2) == "h" else 86400)
    try:
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), timezone.utc).timestamp()
    except ValueError:
        pass
    try:
        return parse_at(value).timestamp()
    except ValueError as exc:
        raise click.BadParameter(f"{exc} (or a date 2026-11-30, or an age 24h / 7d)", ctx=ctx, param=param) from None


@qa.command()
@click.option("--since", "since", callback=_since, default=None,
              help="calls placed since: ISO time with offset, a date, or an age (24h, 7d); default all")
@click.option("--no-vad", "no_vad", is_flag=True, help="decode every second of audio (benchmark baseline)")
@db_option
@by_option
@json_option("print one JSON summary")
def transcribe(since: float | None, no_vad: bool, db: Path | None, actor: str | None, as_json: bool) -> None:
    """Transcribe the recorded calls that have no transcript yet (VAD-gated, per leg, resumable)."""
    from agi.media.asr import recognizer_for
    from agi.media.models import ModelMissing
    from dialer.qa.transcribe import LEG_SPEAKERS, transcribe_batch
    from dialer.store.recordings import calls_to_transcribe

    store = open_store(db, must_exist=True)
    todo = calls_to_transcribe(store, tuple(LEG_SPEAKERS), since=since)

    def recognizer(lang: str):
        try:
            return recognizer_for(lang)
        except ModelMissing as exc:
            _fail(f"{exc} (scripts/setup installs the Whisper models)")

    from common.progress import progress

    with progress("transcribing calls", len(todo)) as bar:  # a bar on a terminal, nothing in a pipe
        summary = transcribe_batch(store, recognizer, gate=not no_vad, actor=_actor(actor), calls=todo,
                                   on_call=lambda _c, _s: bar.advance())
    if as_json:
        click.echo(json.dumps(summary.as_dict(), ensure_ascii=False))
    else:
        ratio = summary.audio_seconds / summary.cpu_seconds if summary.cpu_seconds else 0.0
        click.echo(f"transcribed {summary.calls} calls ({summary.legs} legs decoded, {summary.legs_resumed}"
                   f" resumed from an earlier run): {summary.audio_seconds / 60:.1f} min of audio,"
                   f" {summary.speech_seconds / 60:.1f} min of speech decoded, {summary.cpu_seconds:.1f} CPU s"
                   f" ({ratio:.0f}x real time); next: dialer qa run")
        for call_id, err in summary.failed.items():
            click.echo(f"  failed {call_id}: {err}", err=True)
    if summary.failed:
        sys.exit(1)


@qa.command()
@click.argument("terms", nargs=-1, required=True)
@click.option("--speaker", type=click.Choice(["agent", "callee"]), default=None, help="only this side's turns")
@click.option("--limit", type=int, default=100, show_default=True, help="Show at most this many turns.")
@db_option
@json_option("one JSON object per matching turn")
def search(terms: tuple[str, ...], speaker: str | None, limit: int, db: Path | None, as_json: bool) -> None:
    """Turns containing every TERM (Traditional/Simplified, full-width and case do not matter)."""
    from dialer.store.qa import search_turns
    rows = search_turns(open_store(db, must_exist=True), terms, speaker=speaker, limit=limit)
    for r in rows:
        if as_json:
            click.echo(json.dumps(r, ensure_ascii=False))
        else:
            click.echo(f"{r['call_id']}  turn {r['idx']:<3} {r['speaker']:6} {r['text']}")
    if not as_json:
        click.echo(f"{len(rows)} turn(s)")


@qa.command()
@click.argument("call_id")
@click.option("--play", "play", default=None, metavar="LEG", help="play one recorded leg (audited)")
@click.option("--export", "export", default=None, metavar="LEG", help="copy one recorded leg out (audited; --to)")
@click.option("--to", "to", type=click.Path(path_type=Path), default=None, help="where --export writes")
@db_option
@by_option
@json_option("print one JSON object")
def show(call_id: str, play: str | None, export: str | None, to: Path | None, db: Path | None, actor: str | None,
         as_json: bool) -> None:
    """A call's transcript with its latest score, violations marked on their turns, appeal status and
    its recorded legs; --play / --export one leg (each access is audited)."""
    from dialer.store.qa import get_transcript, latest_result
    from dialer.store.recordings import recordings_for
    store = open_store(db, must_exist=True)
    if play or export:
        from dialer.qa.recordings import RecordingError, export_leg, play_leg
        try:
            if export:
                if to is None:
                    _fail("--export needs --to FILE|DIR")
                out = export_leg(store, call_id, export, to, actor=_actor(actor))
                click.echo(f"exported {call_id} {export} to {out} (audited)")
            if play:
                from dialer.cli.recordings import _player
                path = play_leg(store, call_id, play, actor=_actor(actor))
                player = _player()
                if player is None:
                    click.echo(f"no audio player (aplay, paplay, play) here; the file is {path} (access audited)")
                else:
                    import subprocess
                    subprocess.run([*player, str(path)], check=False)
        except RecordingError as exc:
            _fail(str(exc))
        return
    t = get_transcript(store, call_id)
    recs = recordings_for(store, call_id)
    if t is None and not recs:
        _fail(f"call {call_id}: no transcript saved and no recording")
    res = latest_result(store, call_id) if t is not None else None
    if as_json:
        click.echo(json.dumps({"transcript": t.as_dict() if t else None, "result": None if res is None else {
            "score": res.score, "effective_score": res.effective_score, "status": res.status,
            "violations": res.violations, "standing_rules": sorted(res.standing_rules)},
            "recordings": [{k: r[k] for k in ("leg", "path", "seconds", "sha256", "pruned_at")} for r in recs]},
            ensure_ascii=False))
        return
    for r in recs:
        state = "pruned" if r["pruned_at"] else f"sha256 {r['sha256'][:12]}…"
        click.echo(f"recording {r['leg']:<16} {r['seconds']:6.1f}s  {state}  {r['path']}")
    if t is None:
        click.echo("no transcript yet: dialer qa transcribe")
        return
    click.echo(f"{t.call_id}  {t.lang}/{t.jurisdiction}  started {t.started_at.isoformat()}  "
               f"agent {t.agent or '-'}  campaign {t.campaign or '-'}")
    marks: dict[int | None, list[str]] = {}
    for v in (res.violations if res else []):
        marks.setdefault(v["turn"], []).append(v["rule"])
    for rule in marks.get(None, []):
        click.echo(f"  !! {rule}")
    for i, turn in enumerate(t.turns):
        flag = "  <- " + ", ".join(marks[i]) if i in marks else ""
        click.echo(f"  {i:3d} {turn.speaker:6} {turn.text}{flag}")
    if res is None:
        click.echo("not scored yet")
    else:
        click.echo(f"score {res.score}, effective {res.effective_score} ({res.status})")


@qa.command()
@click.argument("call_id")
@click.option("--reason", required=True, help="why the score is disputed")
@db_option
@by_option
def appeal(call_id: str, reason: str, db: Path | None, actor: str | None) -> None:
    """Dispute the latest score of CALL_ID (opens a review; audited)."""
    from dialer.store.audit import write_head
    from dialer.store.qa import QAStoreError, file_appeal
    store = open_store(db)
    try:
        aid = file_appeal(store, call_id, reason, filed_by=_actor(actor))
    except QAStoreError as exc:
        _fail(str(exc))
    write_head(store)
    click.echo(f"appeal {aid} opened for call {call_id}")
    _echo_recordings(store, call_id)


@qa.command()
@click.argument("call_id")
@click.option("--verdict", type=click.Choice(["upheld", "overturned"]), required=True,
              help="upheld: the violations stand; overturned: they are withdrawn.")
@click.option("--rule", "rules", multiple=True, type=click.Choice(RULE_IDS),
              help="overturn only this rule's violations (repeatable; default all)")
@click.option("--note", default=None, help="The reviewer's note, kept in the audit log.")
@db_option
@rules_option
@by_option
def review(call_id: str, verdict: str, rules: tuple[str, ...], note: str | None, db: Path | None,
           rules_file: Path, actor: str | None) -> None:
    """Close the open appeal of CALL_ID: the score is upheld or overturned (audited)."""
    from dialer.store.audit import write_head
    from dialer.store.qa import QAStoreError, get_transcript, review_appeal
    ruleset = _rules(rules_file)
    store = open_store(db)
    t = get_transcript(store, call_id)
    if t is None:
        _fail(f"call {call_id}: no transcript saved")
    weights = ruleset.for_jurisdiction(t.jurisdiction).weights
    try:
        effective = review_appeal(store, call_id, verdict, reviewer=_actor(actor), weights=weights,
                                  rules=rules, note=note)
    except QAStoreError as exc:
        _fail(str(exc))
    write_head(store)
    click.echo(f"call {call_id}: {verdict}, score now {effective}")
    _echo_recordings(store, call_id)


def _echo_recordings(store: Any, call_id: str) -> None:
    """The call's recorded legs, for the person filing or reviewing an appeal (listening is audited)."""
    from dialer.store.recordings import recordings_for

    legs = [r for r in recordings_for(store, call_id) if not r["pruned_at"]]
    if legs:
        click.echo(f"recordings: {', '.join(r['leg'] for r in legs)} — dialer qa show {call_id} --play LEG"
                   " (audited)")


@qa.command()
@click.option("--by", "by", type=click.Choice(["collector", "campaign"]), default="collector", show_default=True,
              help="Group the scores by collector or by campaign.")
@db_option
@json_option("print one JSON object")
def report(by: str, db: Path | None, as_json: bool) -> None:
    """Compliance next to efficiency per collector or campaign, the review queue (uncertain findings for
    a QA officer, most confident first) and the state of the audit chain."""
    from dialer.store.audit import verify
    from dialer.store.qa import report as build
    from dialer.store.qa import review_queue
    store = open_store(db, must_exist=True)
    rows = build(store, by)
    queue = review_queue(store)
    chain = verify(store)
    if as_json:
        click.echo(json.dumps({"by": by, "rows": rows, "review_queue": queue, "audit": chain.as_dict()},
                              ensure_ascii=False))
        return
    click.echo(f"{by:16} {'calls':>5} {'score':>6} {'w/viol':>6} {'appeal':>6} {'overt.':>6} "
               f"{'conv.':>5} {'PTP/call':>8}  violations by rule")
    for r in rows:
        rules = ", ".join(f"{k}={v}" for k, v in sorted(r["rules"].items())) or "-"
        click.echo(f"{str(r[by])[:16]:16} {r['calls']:5d} {r['mean_score']:6.1f} {r['calls_with_violations']:6d} "
                   f"{r['appeals']:6d} {r['overturned']:6d} {r['conversations']:5d} {r['promises_per_call']:8.2f}  {rules}")
    scored = sum(r["calls"] for r in rows)
    calls_in_queue = len({q["call_id"] for q in queue})
    click.echo(f"review queue: {len(queue)} item(s) in {calls_in_queue} of {scored} scored call(s)")
    for q in queue:
        where = "call" if q["turn"] is None else f"turn {q['turn']}"
        click.echo(f"  {q['call_id']:20} {q['rule']:32} {where:8} p={q['confidence']:.2f} {q['evidence']}")
    _print_chain(chain)


def _print_chain(chain) -> None:
    head = chain.head or {}
    where = f"head seq {head.get('seq')} {str(head.get('hash', ''))[:16]}…" if head else "no head file yet"
    state = "intact" if chain.ok else "TAMPERED"
    click.echo(f"audit chain: {state}, {chain.entries} entries, {where}")
    if chain.recordings:
        click.echo(f"recordings: {chain.recordings} files named, {chain.pruned} pruned by retention (audited),"
                   f" {chain.recordings - chain.pruned} re-hashed")
    for p in chain.problems:
        click.echo(f"  {p}")


@qa.command()
@db_option
@click.option("--head", "head_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="head file kept outside the database (default <db>.audit-head)")
@json_option("print one JSON object")
def verify(db: Path | None, head_file: Path | None, as_json: bool) -> None:
    """Check the audit hash chain, its external head and every recorded file; exit 1 and say what if tampered."""
    from dialer.store.audit import verify as run_verify
    chain = run_verify(open_store(db, must_exist=True), head_file)
    if as_json:
        click.echo(json.dumps(chain.as_dict(), ensure_ascii=False))
    else:
        _print_chain(chain)
    if not chain.ok:
        sys.exit(1)


@qa.command()
@click.option("--collector", "agent", default=None, help="Only this collector (or campaign owner).")
@click.option("--all", "include_done", is_flag=True, help="Include entries already coached.")
@click.option("--done", "done_id", type=int, default=None, metavar="ID", help="Mark entry ID coached (audited).")
@db_option
@by_option
@json_option("print one JSON object per entry per line")
def coaching(agent: str | None, include_done: bool, done_id: int | None, db: Path | None, actor: str | None,
             as_json: bool) -> None:
    """The coaching list: collectors a substantiated complaint's review holds responsible, and campaign owners when
    no collector was on the line (docs/COMPLAINTS.md)."""
    from dialer.store.complaints import ComplaintStoreError, coaching_done, coaching_list
    store = open_store(db, must_exist=True)
    if done_id is not None:
        try:
            coaching_done(store, done_id, by=_actor(actor))
        except ComplaintStoreError as exc:
            _fail(str(exc))
        from dialer.store.audit import write_head
        write_head(store)
        click.echo(f"coaching entry {done_id} done")
        return
    rows = coaching_list(store, agent=agent, include_done=include_done)
    for r in rows:
        if as_json:
            click.echo(json.dumps(r, ensure_ascii=False))
        else:
            who = r["agent"] + (f" (campaign owner, {r['campaign']})" if r.get("kind") == "campaign_owner" else "")
            click.echo(f"{r['id']:5d} {who:16} {r['rule']:28} call {r['call_id'] or '-'}  complaint "
                       f"{r['complaint_id']} ({r['category']}, {r['channel']})" + ("  done" if r["done_at"] else ""))
    if not rows and not as_json:
        click.echo("nobody on the coaching list")
