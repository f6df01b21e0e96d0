"""`dialer supervise listen|whisper|barge COLLECTOR --phone EXT`: a supervisor's phone joins a collector's live
call (ChanSpy); audited."""
from __future__ import annotations

import asyncio
import getpass
import json
from pathlib import Path

import click

from dialer.cli.options import db_option, open_store
from dialer.telephony.harness import DEFAULT_RUN_DIR
from dialer.telephony.pbx import CONNECTION_FILE, PbxConnection


@click.command()
@click.argument("mode", type=click.Choice(["listen", "whisper", "barge"]))
@click.argument("collector")
@click.option("--phone", required=True,
              help="The supervisor's phone: a PJSIP endpoint of the PBX (sup1), a channel (PJSIP/sup1) or an "
                   "E.164 number dialled through the trunk.")
@db_option
@click.option("--run-dir", type=click.Path(path_type=Path), default=DEFAULT_RUN_DIR, show_default=True,
              help=f"Where `dialer asterisk up` left the PBX's connection file ({CONNECTION_FILE}).")
@click.option("--actor", default=None, help="Who is supervising, for the audit log (default: the login name).")
@click.option("--json", "as_json", is_flag=True, help="Print the session as JSON.")
def supervise(mode: str, collector: str, phone: str, db: Path | None, run_dir: Path, actor: str | None,
              as_json: bool) -> None:
    """Listen to, whisper to or barge into COLLECTOR's live call from the supervisor's phone.

    listen: the supervisor hears both sides and nobody hears the supervisor; whisper: only the collector hears
    the supervisor; barge: both do. Each use is written to the audit log."""
    from dialer.observe.supervise import SuperviseError
    from dialer.observe.supervise import supervise as start
    from dialer.store.audit import write_head
    from dialer.telephony.ami import AMIController

    try:
        pbx = PbxConnection.load(run_dir)
    except FileNotFoundError:
        raise click.ClickException(f"no PBX connection file in {run_dir}: run `dialer asterisk up` first") from None
    store = open_store(db, must_exist=True)
    who = actor or getpass.getuser()

    async def go():
        ami = AMIController(pbx.ami_host, pbx.ami_port, pbx.ami_user, pbx.ami_secret)
        ami.dial_plan = pbx.dial_plan() if hasattr(pbx, "dial_plan") else None
        try:
            await ami.connect()
            return await start(ami, store, mode, collector, phone, actor=who)
        finally:
            await ami.close()

    try:
        session = asyncio.run(go())
    except SuperviseError as exc:
        raise click.ClickException(str(exc)) from None
    except (OSError, asyncio.TimeoutError) as exc:
        raise click.ClickException(f"cannot reach the PBX's AMI ({exc}); is `dialer asterisk up` running?") from None
    write_head(store)
    if as_json:
        click.echo(json.dumps(session.__dict__))
    else:
        click.echo(f"ringing {phone}: on answer it will {mode} to {collector}'s call ({session.collector_channel}); "
                   f"session {session.session_id}, audited as supervise.{mode} by {who}")
