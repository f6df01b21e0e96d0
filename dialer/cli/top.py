"""`dialer top`: the wallboard's floor view in the terminal (rich), for a server with no browser. It reads the
running daemon's web server from <run dir>/web.json and its token from web.token, and redraws as the floor
moves (about twice a second)."""
from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

from dialer.telephony.harness import DEFAULT_RUN_DIR


def _fmt_s(s: float) -> str:
    s = int(round(s))
    return f"{s} s" if s < 60 else f"{s // 60} min {s % 60:02d} s"


def _counts(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))) or "none"


def render(snap: dict[str, Any], source: str = "") -> Any:
    """The floor view as rich renderables (one table per campaign, collectors, alerts)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = [Text.assemble(("dialer floor ", "bold"), snap.get("clock", ""), f"  {source}",
                                      f"  update {snap.get('version', 0)}")]
    for name, c in snap.get("campaigns", {}).items():
        t = Table(title=f"{name} — {c['mode']} ({c['in_use']} of {c['line_limit']} lines)", title_justify="left",
                  show_header=True, expand=False)
        lines = c["lines"]
        for col in ("ringing", "screening", "bot", "waiting", "talking", "informing"):
            t.add_column(col, justify="right")
        t.add_row(*(str(lines[k]) for k in ("ringing", "screening", "bot", "waiting", "talking", "informing")))
        parts.append(t)
        ab = c["abandon"]
        over = ab["rate"] > ab["limit"]
        k = Table(show_header=True, expand=False)
        for col in ("placed", "settled", "contacts", "RPC", "promises", "waiting", "longest wait", "abandon",
                    "budget left"):
            k.add_column(col, justify="right")
        k.add_row(str(c["placed"]), str(c["settled"]), str(c["contacts"]), str(c["rpc"]), str(c["promises"]),
                  str(c["waiting"]), _fmt_s(c["longest_wait"]),
                  Text(f"{ab['rate'] * 100:.2f} % / {ab['limit'] * 100:.1f} %", style="bold red" if over else "green"),
                  Text(f"{ab['budget_left']}", style="bold red" if ab["budget_left"] < 1 else ""))
        parts.append(k)
        parts.append(Text(f"outcomes: {_counts(c['outcomes'])}   gate blocks: {_counts(c['blocked'])}"))
    cols = snap.get("collectors") or []
    if cols:
        ct = Table(title="collectors", title_justify="left")
        for col in ("collector", "state", "time in state", "call"):
            ct.add_column(col)
        for col in cols:
            ct.add_row(col["name"], col["state"] + (" (leaving)" if col.get("leaving") else ""),
                       _fmt_s(col["seconds"]), col.get("call") or "")
        parts.append(ct)
    alerts = snap.get("alerts") or []
    parts.append(Text("compliance alerts: " + ("none" if not alerts else ""), style="bold"))
    for a in alerts[:10]:
        parts.append(Text(f"  {a['call_id']} ({a['campaign']}): {', '.join(a['rules'])}"
                          + (" — live" if a.get("live") else ""), style="yellow"))
    return Group(*parts)


def fetch(url: str, token: str) -> dict[str, Any]:
    req = urllib.request.Request(url + "floor.json", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


@click.command()
@click.option("--run-dir", type=click.Path(path_type=Path), default=DEFAULT_RUN_DIR, show_default=True,
              help="The daemon's run directory (its web.json and web.token).")
@click.option("--url", default=None, help="The daemon's web server (default: from <run dir>/web.json).")
@click.option("--token-file", type=click.Path(path_type=Path), default=None,
              help="The access token's file (default: <run dir>/web.token).")
@click.option("--interval", type=click.FloatRange(min=0.1), default=0.5, show_default=True,
              help="Seconds between two redraws.")
@click.option("--once", is_flag=True, help="Print the floor once and exit.")
@click.option("--json", "as_json", is_flag=True, help="With --once: the floor view as JSON.")
def top(run_dir: Path, url: str | None, token_file: Path | None, interval: float, once: bool, as_json: bool) -> None:
    """The floor, live, in the terminal: lines by state, collectors, waits, abandon rate vs limit, alerts."""
    from rich.console import Console
    from rich.live import Live

    from dialer.web.server import INFO_FILE, TOKEN_FILE

    try:
        if url is None:
            url = json.loads((run_dir / INFO_FILE).read_text())["url"]
        token = (token_file or run_dir / TOKEN_FILE).read_text().strip()
    except FileNotFoundError as exc:
        raise click.ClickException(f"{exc.filename} not found: is `dialer run --run-dir {run_dir}` running "
                                   "with its web server (not --no-web)?") from None
    url = url if url.endswith("/") else url + "/"

    def get() -> dict[str, Any]:
        try:
            return fetch(url, token)
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                raise click.ClickException(f"the daemon at {url} refused the token in "
                                           f"{token_file or run_dir / TOKEN_FILE}") from None
            raise click.ClickException(f"{url}floor.json: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise click.ClickException(f"cannot reach the daemon at {url} ({exc}); is it running?") from None

    if once:
        snap = get()
        if as_json:
            click.echo(json.dumps(snap))
        else:
            Console().print(render(snap, url))
        return
    console = Console()
    with Live(render(get(), url), console=console, auto_refresh=False, screen=False) as live:
        try:
            while True:
                time.sleep(interval)
                try:
                    snap = get()
                except click.ClickException as exc:
                    live.update(f"[red]{exc.message}[/red] (retrying)", refresh=True)
                    continue
                live.update(render(snap, url), refresh=True)
        except KeyboardInterrupt:
            pass
    sys.exit(0)
