"""`dialer asterisk up|down|status|call`: the PBX, the carrier simulator and the collectors' phones."""
from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from pathlib import Path

import click

from common.paths import REPO
from dialer.cli.options import json_option
from dialer.telephony.harness import DEFAULT_RUN_DIR, Harness, HarnessError
from dialer.telephony.pbx import PbxConnection

DEFAULT_BEHAVIOURS = REPO / "campaigns" / "examples" / "carrier_behaviours.yaml"

run_dir_opt = click.option("--run-dir", type=click.Path(path_type=Path), default=DEFAULT_RUN_DIR, show_default=True,
                           help="Where instances are rendered and run.")


@click.group()
def asterisk() -> None:
    """Start, stop and inspect the PBX, the carrier simulator and the collectors' SIPp phones."""


@asterisk.command()
@run_dir_opt
@click.option("--behaviours", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=DEFAULT_BEHAVIOURS, show_default=True, help="Carrier behaviour file (E.164 → behaviour).")
@click.option("--agents", type=click.IntRange(0, 50), default=2, show_default=True, help="Collector phones (SIPp).")
@click.option("--base-port", type=click.IntRange(1024, 60000), default=None,
              help="First of the ~3,100 ports the instances use (default: a free block, printed below).")
@click.option("--agi-port", type=click.IntRange(1, 65535), default=None,
              help="Where the PBX reaches the daemon's FastAGI server (default: base port + 573).")
@click.option("--trunk", default=None, metavar="HOST:PORT",
              help="A real SIP trunk instead of the carrier simulator (the simulator is then not started).")
@click.option("--phones", type=click.Choice(["sipp", "register"]), default="sipp", show_default=True,
              help="sipp: auto-answering test collectors; register: real SIP phones register as agentN.")
@click.option("--sip-bind", default="127.0.0.1", show_default=True,
              help="Address the PBX's SIP/RTP binds to (AMI and FastAGI always stay on 127.0.0.1).")
@click.option("--pjsip-extra", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Extra pjsip.conf sections (trunk registration/auth), included as pjsip_local.conf.")
def up(run_dir: Path, behaviours: Path, agents: int, base_port: int | None, agi_port: int | None, trunk: str | None,
       phones: str, sip_bind: str, pjsip_extra: Path | None) -> None:
    """Render the configs and start the PBX, the carrier simulator and the collectors."""
    t0 = time.monotonic()
    trunk_addr = None
    if trunk:
        host, _, port = trunk.rpartition(":")
        if not host or not port.isdigit():
            raise click.BadParameter("expected HOST:PORT", param_hint="--trunk")
        trunk_addr = (host, int(port))
    try:
        h = Harness(run_dir, base_port=base_port, agi_port=agi_port, agents=agents, behaviours=behaviours,
                    trunk=trunk_addr, phones=phones, sip_bind=sip_bind, pjsip_extra=pjsip_extra)
        h.up()
    except (HarnessError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    state = h.state
    assert state is not None
    if phones == "register":
        for name, secret in state.phone_secrets.items():
            click.echo(f"phone    {name}: register to {sip_bind}:{state.pbx.sip_port} as {name} / {secret}")
    click.echo(f"PBX      pid {state.pbx.pid}  SIP 127.0.0.1:{state.pbx.sip_port}  AMI 127.0.0.1:{state.pbx.ami_port}")
    if state.with_carrier:
        click.echo(f"carrier  pid {state.carrier.pid}  SIP 127.0.0.1:{state.carrier.sip_port}  "
                   f"AMI 127.0.0.1:{state.carrier.ami_port}")
    else:
        click.echo(f"trunk    {trunk}")
    click.echo(f"agents   {', '.join(state.agents) or '-'}  FastAGI expected on 127.0.0.1:{state.ports['agi']}")
    click.echo(f"ports    {state.ports['base']}…; booted in {time.monotonic() - t0:.2f} s; "
               f"secrets in {run_dir / 'harness.json'} and {run_dir / 'pbx.json'} (mode 600)")


@asterisk.command()
@run_dir_opt
def down(run_dir: Path) -> None:
    """Stop everything `up` started."""
    if not (run_dir / "harness.json").exists():
        click.echo("nothing running")
        return
    Harness(run_dir).down()
    click.echo("stopped")


@asterisk.command()
@run_dir_opt
@json_option()
def status(run_dir: Path, as_json: bool) -> None:
    """Show whether the instances and collectors are running."""
    st = Harness(run_dir).status()
    if as_json:
        click.echo(json.dumps(st, indent=2))
        return
    if not st.get("pbx"):
        click.echo("not running")
        sys.exit(3)
    for name in ("pbx", "carrier"):
        e = st[name]
        click.echo(f"{name:8} {'up' if e['running'] else 'DOWN':5} pid {e['pid']}  {e.get('channels', '')}")
    for name, e in st["agents"].items():
        click.echo(f"{name:8} {'up' if e['running'] else 'DOWN':5} pid {e['pid']}")
    sys.exit(0 if st["running"] else 3)


@asterisk.command()
@run_dir_opt
@click.argument("number")
@click.option("--name", default="Jane Doe", show_default=True)
@click.option("--birth-year", type=int, default=1984, show_default=True)
@click.option("--amount", default="1250.00", show_default=True)
@click.option("--ring", type=float, default=20.0, show_default=True, help="Ring timeout, seconds.")
def call(run_dir: Path, number: str, name: str, birth_year: int, amount: str, ring: float) -> None:
    """Place one call through the running PBX with the DTMF verify flow and print what happened."""
    from agi.flows.dtmf_verify import DtmfVerifyFlow
    from agi.media.tts import TTS
    from agi.ports import CallContext
    from agi.server import FastAGIServer
    from dialer.telephony.ami import AMIController

    try:
        pbx = PbxConnection.load(run_dir)
    except FileNotFoundError:
        raise click.ClickException("no harness running: run `dialer asterisk up` first") from None

    class Ports:
        def __init__(self) -> None:
            self.log: list[str] = []

        async def lookup(self, call_id):
            return CallContext(call_id=call_id, debtor_id="demo", name=name, birth_year=birth_year,
                               institution="Acme Finance", amount_owed=amount, currency="USD", days_past_due=30,
                               callback_number="+18005550100")

        async def record_outcome(self, call_id, kind, data):
            self.log.append(f"outcome: {kind} {data}")

        async def record_transcript_turn(self, call_id, speaker, text, start, end):
            self.log.append(f"{start:6.1f}s {speaker}: {text}")

        async def transfer_context(self, call_id, context):
            self.log.append(f"transfer to collectors with {context}")

    async def run() -> None:
        ports = Ports()
        flow = DtmfVerifyFlow(ports, TTS())
        server = FastAGIServer({"call": flow}, token=pbx.agi_token, port=pbx.agi_port)
        await server.start()
        ami = AMIController(pbx.ami_host, pbx.ami_port, pbx.ami_user, pbx.ami_secret)
        await ami.connect()
        call_id = f"cli-{uuid.uuid4().hex[:10]}"
        tracked = await ami.originate(call_id, number, ring_timeout=ring)
        await tracked.done
        await ami.close()
        await server.stop()
        for line in ports.log:
            click.echo(line)
        click.echo(f"call {call_id}: {tracked.outcome} (dial status {tracked.dial_status}, cause {tracked.hangup_cause})")
        rec = Harness(run_dir).recording_for(number, call_id)
        if rec.exists():
            click.echo(f"the callee heard: {rec}")

    asyncio.run(run())
