"""`dialer export attempts|dispositions|promises|qa --since … --format csv|jsonl`: the nightly file feed, streamed
row by row (constant memory on millions of rows); phone numbers masked unless --full-phones."""
from __future__ import annotations

import csv
import io
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import click

from dialer.cli.campaign import _fail
from dialer.cli.options import db_option, open_store

KINDS = ("attempts", "dispositions", "promises", "qa")


def parse_since(text: str) -> float:
    """An ISO date (UTC midnight), an ISO date-time with offset, or epoch seconds."""
    t = text.strip()
    try:
        return float(t)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise ValueError(f"{t!r} is not an ISO date, an ISO date-time with offset or epoch seconds") from None
    if len(t) == 10:
        dt = dt.replace(tzinfo=timezone.utc)
    if dt.tzinfo is None:
        raise ValueError(f"{t!r} has no UTC offset (write 2026-12-01T00:00:00+08:00, or a date for UTC midnight)")
    return dt.timestamp()


def _iso(v: Any) -> Any:
    return datetime.fromtimestamp(v, timezone.utc).isoformat(timespec="seconds") if isinstance(v, (int, float)) else v


def write_export(rows: Any, columns: tuple[str, ...], fmt: str, out: IO[str], *, full_phones: bool = False,
                 progress: Any = None) -> int:
    """Write rows as CSV (header first) or JSON lines; times as ISO 8601 UTC. Returns the row count."""
    from common.log import mask_phone
    from dialer.store.exports import TIME_COLUMNS

    n = 0
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer:
        writer.writerow(columns)
    times = [c for c in columns if c in TIME_COLUMNS]
    for row in rows:
        for c in times:
            row[c] = _iso(row[c])
        if "phone" in row and not full_phones:
            row["phone"] = mask_phone(row["phone"])
        if writer:
            writer.writerow([";".join(v) if isinstance(v, list) else ("" if v is None else v)
                             for v in (row[c] for c in columns)])
        else:
            out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
        n += 1
        if progress and n % 100_000 == 0:
            progress(n)
    return n


@click.command("export")
@click.argument("kind", type=click.Choice(KINDS))
@click.option("--since", required=True, help="From this time (ISO date = UTC midnight, date-time with offset, epoch).")
@click.option("--until", default=None, help="Up to (not including) this time; default: no end.")
@click.option("--format", "fmt", type=click.Choice(("csv", "jsonl")), default="csv", show_default=True,
              help="CSV with a header row, or one JSON object per line.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here (0600) instead of standard output.")
@click.option("--full-phones", is_flag=True, help="Write phone numbers in full (default: masked).")
@db_option
def export(kind: str, since: str, until: str | None, fmt: str, out_path: Path | None, full_phones: bool,
           db: Path | None) -> None:
    """Stream KIND rows since a time as CSV or JSON lines (the nightly feed); a summary line goes to stderr."""
    from dialer.store.exports import export_columns, export_rows

    try:
        lo = parse_since(since)
        hi = parse_since(until) if until else 253402300799.0
    except ValueError as exc:
        _fail(str(exc))
    store = open_store(db, must_exist=True)
    t0 = time.perf_counter()
    out: IO[str] = open(out_path, "w", encoding="utf-8", newline="") if out_path else \
        io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="", write_through=False)
    try:
        tty = sys.stderr.isatty()
        n = write_export(export_rows(store, kind, lo, hi), export_columns(kind), fmt, out, full_phones=full_phones,
                         progress=(lambda k: click.echo(f"  {k} rows…", err=True)) if tty else None)
        out.flush()
    finally:
        if out_path:
            out.close()
        else:
            out.detach()
        store.close()
    dt = time.perf_counter() - t0
    click.echo(f"exported {n} {kind} row(s) since {_iso(lo)} in {dt:.1f}s"
               + (f" to {out_path}" if out_path else ""), err=True)
