"""The report written out: text for a terminal, CSV and JSON lines for a spreadsheet or a script, and one
self-contained HTML file (inline CSS and SVG charts; nothing fetched when opened).

Every format carries the same rows: `{group, campaign|segment|collector|day…, figures…}` (figures.py).
In CSV, `qa_hits` is written as `rule=n;rule=n` and an absent figure as an empty cell.
"""
from __future__ import annotations

import csv
import html
import io
import json
from typing import Any

from dialer.reports import charts
from dialer.reports.figures import COLUMNS, GROUPS, KEYS

KEY_COLUMNS = ("group", "campaign", "segment", "collector", "day")


def rows_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for g in GROUPS for r in report["groups"][g]]


def to_jsonl(report: dict[str, Any]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows_of(report))


def to_csv(report: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=KEY_COLUMNS + COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows_of(report):
        out = {k: r.get(k) for k in KEY_COLUMNS + COLUMNS}
        out["qa_hits"] = ";".join(f"{k}={v}" for k, v in r["qa_hits"].items())
        w.writerow({k: "" if v is None else v for k, v in out.items()})
    return buf.getvalue()


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _cell(col: str, v: Any) -> str:
    if v is None:
        return "-"
    if col in ("amd_rate", "abandon_rate", "abandon_limit", "occupancy", "bot_containment"):
        return _pct(v)
    if col == "qa_hits":
        return ", ".join(f"{k} {n}" for k, n in v.items()) or "none"
    return str(v)


SHORT = {"attempts": "att", "connects": "conn", "machines": "mach", "amd_rate": "AMD", "right_party_contacts": "RPC",
         "promises": "PTP", "promised_amount": "promised", "promises_kept": "kept", "collected_amount": "collected",
         "abandoned": "aband", "abandon_rate": "aband%", "abandon_limit": "limit", "avg_handle_seconds": "AHT s",
         "occupancy": "occ", "cease_requests": "cease", "qa_calls": "QA n", "qa_mean_score": "QA mean",
         "qa_hits": "QA hits", "bot_containment": "bot-only"}


def to_text(report: dict[str, Any]) -> str:
    lines = [f"report {report['since_text']} → {report['until_text']} ({report['tz']})"]
    if not report["attempts"]:
        lines.append("no attempts in this range")
    for g in GROUPS:
        rows = report["groups"][g]
        if not rows:
            continue
        keys = KEYS[g]
        cols = [c for c in COLUMNS if any(r.get(c) not in (None, {}) for r in rows)]
        table = [[" / ".join(keys)] + [SHORT[c] for c in cols]]
        for r in rows:
            table.append([" / ".join(str(r[k]) for k in keys)] + [_cell(c, r.get(c)) for c in cols])
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        lines += ["", f"by {g}"]
        lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
    if report["gate_blocks"]:
        lines += ["", "gate refusals: " + ", ".join(f"{k} {v}" for k, v in report["gate_blocks"].items())]
    return "\n".join(lines) + "\n"


CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;font-size:12px;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}.over{color:#c0392b;font-weight:bold}
.charts svg{max-width:100%;height:auto;margin:6px 0}.note{color:#666;font-size:12px}"""


def to_html(report: dict[str, Any]) -> str:
    e = html.escape
    g = report["groups"]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Dialer report</title><style>{CSS}</style>"
             "</head><body>",
             f"<h1>Collections report {e(report['since_text'])} → {e(report['until_text'])}</h1>",
             f"<p class='note'>Days and hours in {e(report['tz'])}. Abandon rate: abandoned / connects (answered by "
             "a person), against the campaign profile's limit. Occupancy: a collector's talk time over the span "
             "from their first answer to their last hang-up in the range.</p>"]
    if not report["attempts"]:
        parts.append("<p>No attempts in this range.</p>")
    parts.append("<div class='charts'>")
    for row in g["campaign"] or [None]:
        parts.append(charts.funnel(row))
    parts.append(charts.outcomes_by_hour(report["by_hour"]))
    parts.append(charts.abandon_by_day(g["day"]))
    hits: dict[str, int] = {}
    for r in g["campaign"]:
        for k, v in r["qa_hits"].items():
            hits[k] = hits.get(k, 0) + v
    parts.append(charts.hits_by_rule(dict(sorted(hits.items())), report["gate_blocks"]))
    parts.append(charts.collectors(g["collector"]))
    parts.append("</div>")
    for grp in GROUPS:
        rows = g[grp]
        parts.append(f"<h2>By {e(grp)}</h2>")
        if not rows:
            parts.append("<p class='note'>none</p>")
            continue
        keys = KEYS[grp]
        cols = [c for c in COLUMNS if any(r.get(c) not in (None, {}) for r in rows)]
        parts.append("<table><tr>" + "".join(f"<th>{e(k)}</th>" for k in keys)
                     + "".join(f"<th title='{e(c)}'>{e(SHORT[c])}</th>" for c in cols) + "</tr>")
        for r in rows:
            over = r.get("abandon_limit") is not None and (r.get("abandon_rate") or 0) > r["abandon_limit"]
            cells = "".join(f"<td>{e(str(r[k]))}</td>" for k in keys)
            for c in cols:
                cls = " class='over'" if over and c == "abandon_rate" else ""
                cells += f"<td{cls}>{e(_cell(c, r.get(c)))}</td>"
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
