"""The HTML report's charts, drawn by matplotlib (a declared dependency) as inline SVG.

Glyphs are drawn as paths (`svg.fonttype: path`), so the file needs no font and fetches nothing when
opened. Each function returns one `<svg>` element as text; an empty input draws a "no data" panel
rather than failing.
"""
from __future__ import annotations

import io
import re
from collections import Counter
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {"svg.fonttype": "path", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
         "svg.hashsalt": "dialer-report"}  # stable ids: the same figures give the same file


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buf.getvalue()
    # the RDF metadata block says nothing a reader needs (and names schema URLs); drop it
    return re.sub(r"\s*<metadata>.*?</metadata>", "", text[text.index("<svg"):], flags=re.S)


def _empty(ax, title: str) -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, "no data in this range", ha="center", va="center", transform=ax.transAxes, color="#777")
    ax.set_xticks([])
    ax.set_yticks([])


def funnel(row: dict[str, Any] | None) -> str:
    """Attempts → connects → right-party contacts → promises → kept, for one campaign row."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6, 2.6))
        title = "Contact funnel"
        if not row or not row["attempts"]:
            _empty(ax, title)
            return _svg(fig)
        steps = [("attempts", row["attempts"]), ("connects", row["connects"]),
                 ("right-party contacts", row["right_party_contacts"]), ("promises", row["promises"]),
                 ("kept", row["promises_kept"])]
        names, values = zip(*steps)
        ax.barh(range(len(values))[::-1], values, color="#3b6ea8")
        ax.set_yticks(range(len(values))[::-1], names)
        for y, v in zip(range(len(values))[::-1], values):
            ax.text(v, y, f" {v}", va="center")
        ax.set_title(f"{title}: {row['campaign']}")
        return _svg(fig)


def outcomes_by_hour(by_hour: dict[int, Counter]) -> str:
    """Stacked bars: attempts per local hour, by outcome."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7, 2.8))
        title = "Outcomes by hour"
        if not by_hour:
            _empty(ax, title)
            return _svg(fig)
        outcomes = sorted({o for c in by_hour.values() for o in c})
        hours = sorted(by_hour)
        bottom = [0] * len(hours)
        for o in outcomes:
            vals = [by_hour[h][o] for h in hours]
            ax.bar(hours, vals, bottom=bottom, label=o)
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_xticks(hours, [f"{h:02d}" for h in hours])
        ax.set_xlabel("hour (report zone)")
        ax.set_ylabel("attempts")
        ax.legend(fontsize=7, ncol=3, frameon=False)
        ax.set_title(title)
        return _svg(fig)


def abandon_by_day(day_rows: list[dict[str, Any]]) -> str:
    """The abandon rate per campaign and day against the profile's limit (a dashed line)."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7, 2.6))
        title = "Abandon rate against its limit"
        rows = [r for r in day_rows if r["connects"]]
        if not rows:
            _empty(ax, title)
            return _svg(fig)
        labels = [f"{r['campaign']}\n{r['day']}" for r in rows]
        rates = [100 * (r["abandon_rate"] or 0) for r in rows]
        colors = ["#c0392b" if r["abandon_limit"] is not None and (r["abandon_rate"] or 0) > r["abandon_limit"]
                  else "#3b6ea8" for r in rows]
        ax.bar(range(len(rows)), rates, color=colors)
        for i, r in enumerate(rows):
            if r["abandon_limit"] is not None:
                ax.hlines(100 * r["abandon_limit"], i - 0.4, i + 0.4, colors="#c0392b", linestyles="dashed")
        ax.set_xticks(range(len(rows)), labels, fontsize=7)
        ax.set_ylabel("% of connects")
        ax.set_title(title + " (dashed)")
        return _svg(fig)


def hits_by_rule(hits: dict[str, int], blocks: dict[str, int]) -> str:
    """QA hits by rule beside the gate's refusals by rule."""
    with plt.rc_context(STYLE):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 2.8))
        for ax, data, title, color in ((a1, hits, "QA hits by rule", "#c0392b"),
                                       (a2, blocks, "Gate refusals by rule", "#7f8c8d")):
            if not data:
                _empty(ax, title)
                continue
            names = list(data)
            ax.barh(range(len(names)), [data[n] for n in names], color=color)
            ax.set_yticks(range(len(names)), names, fontsize=7)
            ax.set_title(title)
        fig.tight_layout()
        return _svg(fig)


def collectors(rows: list[dict[str, Any]]) -> str:
    """Per collector: efficiency (right-party contacts, promises) and compliance (QA mean score) side by side."""
    with plt.rc_context(STYLE):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 2.8), sharey=True)
        if not rows:
            _empty(a1, "Collectors: efficiency")
            _empty(a2, "Collectors: compliance")
            return _svg(fig)
        names = [r["collector"] for r in rows]
        y = range(len(names))
        a1.barh([i + 0.2 for i in y], [r["right_party_contacts"] for r in rows], height=0.4, label="RPC")
        a1.barh([i - 0.2 for i in y], [r["promises"] for r in rows], height=0.4, label="promises")
        a1.set_yticks(list(y), names)
        a1.legend(fontsize=7, frameon=False)
        a1.set_title("Collectors: efficiency")
        a2.barh(list(y), [r["qa_mean_score"] or 0 for r in rows], color="#27ae60")
        a2.set_xlim(0, 100)
        a2.set_title("Collectors: QA mean score")
        fig.tight_layout()
        return _svg(fig)
