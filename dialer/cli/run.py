"""`dialer run`: the daemon (hopper, gate, pacer, AMI controller and FastAGI server in one process)."""
from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import signal
import socket
import sys
from datetime import datetime
from pathlib import Path

import click

from common.clock import Clock
from common.yamlfile import ConfigError
from dialer.cli.options import at_option, db_option, open_store
from dialer.gate.rules import DEFAULT_RULES_FILE, load_rules
from dialer.store import Store
from dialer.telephony.harness import DEFAULT_RUN_DIR
from dialer.telephony.pbx import CONNECTION_FILE, PbxConnection


def load_daemon_inputs(store: Store, names: tuple[str, ...], rules_path: Path):
    """Rules and campaigns, validated before anything is dialled (the daemon refuses bad input): the
    whole rules file, its QA parts included (every bot call is scored at its end)."""
    from dialer.campaign.config import load_campaign
    from dialer.qa.rules import qa_rules
    from dialer.store import core

    rules = load_rules(rules_path)
    qa_rules(rules)
    rows = core.list_campaigns(store)
    wanted = [r for r in rows if (not names or r["name"] in names) and r.get("status", "active") == "active"]
    missing = set(names) - {r["name"] for r in rows}
    if missing:
        raise click.ClickException(f"unknown campaign(s): {', '.join(sorted(missing))} (load them with `dialer campaign load`)")
    campaigns = []
    for r in wanted:
        camp = core.get_campaign(store, r["name"])
        if camp.file and Path(camp.file).exists():
            camp = load_campaign(camp.file)  # re-validated from the file, scripts and all
        rules.profile_for(camp.profile, camp.name)
        campaigns.append(camp)
    if not campaigns:
        raise click.ClickException("no active campaigns to dial")
    return rules, campaigns


async def run_daemon(store: Store, pbx: PbxConnection, rules, campaigns, clock: Clock, *, until_idle: bool,
                     max_seconds: float | None, tts=None, grace: float | None = None, observe=None,
                     server_id: str | None = None, takeover_after: float | None = None):
    """Start the daemon, run it, stop it gracefully: SIGTERM (or SIGINT) and `max_seconds` stop placing calls
    and let live calls finish for up to `grace` seconds before they are hung up and settled. `observe(dialer)`
    attaches the observers (dialer/observe/live.py: narration, metrics, the wallboard's web server)."""
    from dialer.calls.daemon import DEFAULT_GRACE, Dialer

    dialer = Dialer(store, pbx, rules, campaigns, clock=clock, tts=tts, server_id=server_id)
    if takeover_after is not None:
        dialer.hopper.takeover_after = takeover_after
    observers = observe(dialer) if observe is not None else None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, dialer.request_stop)
    try:
        if observers is not None:
            await observers.start()
        await dialer.start()
        return await dialer.run(until_idle=until_idle, max_seconds=max_seconds,
                                grace=DEFAULT_GRACE if grace is None else grace)
    finally:
        await dialer.stop()
        if observers is not None:
            await observers.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


DAEMON_LOCK = "daemon.lock"


def _one_daemon_per_run_dir(run_dir: Path):
    """An exclusive lock on <run dir>/daemon.lock: two daemons driving one PBX would both dial and
    both settle every call. The second is refused with the first one's pid."""
    path = run_dir / DAEMON_LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fh = os.fdopen(fd, "r+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = fh.read().strip() or "?"
        fh.close()
        click.echo(f"error: another dialer daemon (pid {holder}) is running on {run_dir}; "
                   "stop it first (SIGTERM lets its calls finish)", err=True)
        sys.exit(2)
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    return fh


def setup_logging(verbose: bool, log_file: Path | None, max_mb: float = 10.0, backups: int = 5,
                  server_id: str | None = None) -> None:
    """stderr: warnings (every event with -v), as before; the log file: every event, as JSON lines. With a
    server id, every line carries it (several servers)."""
    from common.log import ServerTag, file_handler

    root = logging.getLogger()
    tag = ServerTag(server_id) if server_id else None
    if not root.handlers:  # as logging.basicConfig: a second run in one process adds no second stream
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter("%(asctime)s %(server)s %(name)s %(message)s" if tag
                                              else "%(asctime)s %(name)s %(message)s"))
        if tag:
            stream.addFilter(tag)
        stream.setLevel(logging.INFO if verbose else logging.WARNING)
        root.addHandler(stream)
    root.setLevel(logging.INFO if verbose or log_file else logging.WARNING)
    if log_file is not None:
        try:
            handler = file_handler(str(log_file), int(max_mb * 1024 * 1024), backups)
        except OSError as exc:
            raise click.BadParameter(f"cannot write the log file: {exc}", param_hint="--log-file") from None
        handler.setLevel(logging.INFO)
        if tag:
            handler.addFilter(tag)
        root.addHandler(handler)


@click.command()
@db_option
@click.option("--campaign", "campaigns", multiple=True, help="Dial only these campaigns (repeatable).")
@at_option("Start the clock at this ISO time with UTC offset; it then runs at real speed.")
@click.option("--until-idle", is_flag=True, help="Exit when nothing is left to dial now.")
@click.option("--max-seconds", type=float, default=None,
              help="Stop placing calls after this many seconds (then stop as on SIGTERM).")
@click.option("--grace", type=click.FloatRange(min=0), default=120.0, show_default=True,
              help="On stop (SIGTERM, --max-seconds): seconds live calls get to finish before they are hung up.")
@click.option("--run-dir", type=click.Path(path_type=Path), default=DEFAULT_RUN_DIR, show_default=True,
              help=f"Where `dialer asterisk up` left the PBX's connection file ({CONNECTION_FILE}).")
@click.option("--rules", type=click.Path(path_type=Path), default=DEFAULT_RULES_FILE, show_default=True,
              help="Compliance rules file (the daemon refuses to start on one it cannot load whole).")
@click.option("-v", "--verbose", is_flag=True, help="A line per call (placed, blocked and why, settled) and the "
              "daemon's log on stderr; without it, a line a minute.")
@click.option("--web/--no-web", "web_on", default=True, show_default=True,
              help="Serve the wallboard and /metrics (token in <run dir>/web.token).")
@click.option("--web-bind", default="127.0.0.1", show_default=True, help="Address the web server listens on.")
@click.option("--web-port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port of the web server (0: any free port, printed at start and kept in <run dir>/web.json; "
              "give a fixed one for Prometheus).")
@click.option("--status-every", type=click.FloatRange(min=1), default=60.0, show_default=True, hidden=True,
              help="Seconds between two status lines.")
@click.option("--observers/--no-observers", "observers_on", default=True, hidden=True,
              help="Attach the observers (narration, metrics, web); off only for bench/observe.py's baseline.")
@click.option("--log-file", type=click.Path(path_type=Path), default=None,
              help="Also log every event here as JSON lines (0600, phones and ids masked), rotated by size.")
@click.option("--log-max-mb", type=click.FloatRange(min=0.01), default=10.0, show_default=True,
              help="Rotate the log file at this size.")
@click.option("--log-backups", type=click.IntRange(min=1), default=5, show_default=True,
              help="Rotated log files kept (FILE.1 … FILE.N).")
@click.option("--server-id", envvar="DIALER_SERVER_ID", default=None, show_envvar=True,
              help="This dialer server's name (default: the host name). Servers sharing one PostgreSQL store need "
              "different ones: attempts, leases, logs and metrics carry it; a restart settles only its own calls.")
@click.option("--takeover-after", type=click.FloatRange(min=1), default=600.0, show_default=True,
              help="Seconds another server may stay silent before its calls still open are marked unknown "
              "(they count as attempts) by this one.")
def run(db: Path | None, campaigns: tuple[str, ...], at: datetime | None, until_idle: bool, max_seconds: float | None,
        grace: float, run_dir: Path, rules: Path, verbose: bool, web_on: bool, web_bind: str, web_port: int,
        status_every: float, observers_on: bool, log_file: Path | None, log_max_mb: float, log_backups: int,
        server_id: str | None, takeover_after: float) -> None:
    """Run the dialer daemon next to the PBX."""
    server_id = (server_id or "").strip() or socket.gethostname()
    if len(server_id) > 64 or any(c.isspace() or not c.isprintable() for c in server_id):
        raise click.BadParameter("a server id is up to 64 printable characters without spaces",
                                 param_hint="--server-id")
    setup_logging(verbose, log_file, log_max_mb, log_backups, server_id=server_id)
    clock = Clock(at) if at else Clock()
    store = open_store(db)
    from dialer.calls.recovery import clock_behind

    behind = clock_behind(store, clock.timestamp())
    if behind:
        click.echo(f"error: {behind}", err=True)
        sys.exit(2)
    try:
        rules_obj, camps = load_daemon_inputs(store, campaigns, rules)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    try:
        pbx = PbxConnection.load(run_dir)
    except FileNotFoundError:
        raise click.ClickException(f"no PBX connection file in {run_dir}: run `dialer asterisk up` first") from None
    lock = _one_daemon_per_run_dir(run_dir)  # held (open) until the process exits
    from dialer.calls.hopper import ServerIdInUse
    from dialer.observe.live import Observers
    from dialer.observe.narrate import summary_lines

    def say(line: str) -> None:
        click.echo(f"{clock.now().strftime('%H:%M:%S')} {line}", err=True)

    def observe(dialer):
        from dialer.api.app import api_app

        # the lender's REST API is served by the same web server, behind the same token (docs/API.md), on the
        # daemon's clock: a hold or complaint posted to a daemon started with --at is in force on that clock
        subapps = ({"/api/": api_app(lambda: open_store(db), clock=clock.timestamp, rules_file=rules)}
                   if web_on else None)
        obs = Observers(dialer, write=say, per_call=verbose, every=status_every, web_on=web_on, bind=web_bind,
                        port=web_port, run_dir=run_dir, subapps=subapps)
        if obs.server is not None:
            _start = obs.start

            async def start_and_say() -> None:
                await _start()
                say(f"wallboard: {obs.url}  (metrics: {obs.server.url}metrics, API: {obs.server.url}api/, "
                    f"Bearer token in {run_dir / 'web.token'})")
            obs.start = start_and_say  # type: ignore[method-assign]
        return obs

    try:
        stats = asyncio.run(run_daemon(store, pbx, rules_obj, camps, clock, until_idle=until_idle,
                                       max_seconds=max_seconds, grace=grace,
                                       observe=observe if observers_on else None, server_id=server_id,
                                       takeover_after=takeover_after))
    except ServerIdInUse as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    from dialer.store import core

    still_open = len(core.open_attempts(store, server_id))
    for line in summary_lines(stats):
        click.echo(line, err=True)
    click.echo(f"stopped: {stats.placed} placed, {stats.ended} settled, {stats.drained} finished during the stop, "
               f"{stats.hung_up} hung up at the end of the grace period, {still_open} attempts open", err=True)
    lock.close()
    click.echo(json.dumps(stats.summary(still_open)))
