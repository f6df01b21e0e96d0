"""`dialer asterisk up|down|status|call`: the PBX, the carrier simulator and the collectors' phones."""
from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import click

from common.paths import REPO
from dialer.cli.options import at_option, db_option, json_option, open_store
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
@click.option("--base-port", type=click.IntRange(1024, 64000), default=None,
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
@click.option("--trunk-country", default=None, metavar="CC",
              help="The real trunk's country (CN, GB, US): picks its codec (alaw for CN/GB, ulaw for US) and the "
                   "national/international forms of --dial-format.")
@click.option("--codec", type=click.Choice(["alaw", "ulaw"]), default=None,
              help="The trunk's G.711 law (default: from --trunk-country; ulaw for the simulator).")
@click.option("--dial-format", type=click.Choice(["e164", "international", "national"]), default="e164",
              show_default=True,
              help="How numbers are dialled on the trunk: E.164 as stored, 00+country+number, or the national "
                   "form (0 trunk prefix; foreign numbers then go international).")
def up(run_dir: Path, behaviours: Path, agents: int, base_port: int | None, agi_port: int | None, trunk: str | None,
       phones: str, sip_bind: str, pjsip_extra: Path | None, trunk_country: str | None, codec: str | None,
       dial_format: str) -> None:
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
                    trunk=trunk_addr, phones=phones, sip_bind=sip_bind, pjsip_extra=pjsip_extra,
                    trunk_country=trunk_country, codec=codec, dial_format=dial_format)
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
        click.echo(f"trunk    {trunk}  codec {state.trunk_codec}  dialling {state.dial_format}"
                   + (f" ({state.dial_country})" if state.dial_country else ""))
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
@click.option("--script", "script_name", default=None, metavar="SCRIPT",
              help="Voice-bot script (id in campaigns/scripts/ or a file), zh or en; needs --debtor.")
@click.option("--debtor", "debtor_id", default=None,
              help="Debtor (imported into --db) whose record the script speaks from; the campaign gives the "
                   "institution, call-back number and locale.")
@db_option
@at_option("The debtor's 'today' for the script (ISO with offset; default now).")
@click.option("--no-amd", is_flag=True, help="No answering-machine detection (default: the campaign's setting).")
@click.option("--name", default="Jane Doe", show_default=True, help="Without --script: the callee's name (DTMF verify flow).")
@click.option("--birth-year", type=int, default=1984, show_default=True,
              help="Without --script: the birth year the callee must key in.")
@click.option("--amount", default="1250.00", show_default=True, help="Without --script: the amount owed.")
@click.option("--institution", default="Acme Finance", show_default=True,
              help="Without --script: the creditor the DTMF verify flow names.")
@click.option("--ring", type=float, default=20.0, show_default=True, help="Ring timeout, seconds.")
@json_option("Print the call's turns and outcome as one JSON object.")
def call(run_dir: Path, number: str, script_name: str | None, debtor_id: str | None, db: Path | None,
         at: datetime | None, no_amd: bool, name: str, birth_year: int, amount: str, institution: str, ring: float,
         as_json: bool) -> None:
    """Place one real call to NUMBER through the running PBX and print what the bot said and what happened:
    with --script and --debtor, any voice-bot script in either language; otherwise the DTMF verify flow."""
    from agi.flows.dtmf_verify import DtmfVerifyFlow
    from agi.media.tts import TTS
    from agi.ports import CallContext
    from agi.server import FastAGIServer
    from dialer.telephony.ami import AMIController

    if script_name and not debtor_id:
        raise click.UsageError("--script needs --debtor (the debtor whose record the script speaks from)")
    try:
        pbx = PbxConnection.load(run_dir)
    except FileNotFoundError:
        raise click.ClickException(f"no harness running from {run_dir}: run `dialer asterisk up` first") from None
    now = at or datetime.now(timezone.utc)
    call_id = f"cli-{uuid.uuid4().hex[:10]}"
    amd = False
    ctx = scr = today = None
    notice_text: str | None = None
    if debtor_id:
        from dialer.cli.script import debtor_context, load_script_arg

        store = open_store(db, must_exist=True)
        try:
            ctx, camp, today = debtor_context(store, debtor_id, now, phone=number, call_id=call_id)
        finally:
            store.close()
        scr = load_script_arg(script_name or camp.segments[0].script, camp.file)
        amd = camp.amd and not no_amd
        from dialer.campaign.preview import notice_for

        notice_text = notice_for(camp)  # played first, as on the campaign's own calls (docs/RECORDINGS.md)
    else:
        ctx = CallContext(call_id=call_id, debtor_id="demo", name=name, birth_year=birth_year,
                          institution=institution, amount_owed=amount, currency="USD", days_past_due=30,
                          callback_number="+18005550100")

    class Ports:
        def __init__(self) -> None:
            self.log: list[dict] = []
            self.outcomes: list[str] = []

        async def lookup(self, cid):
            return ctx

        async def record_outcome(self, cid, kind, data):
            self.outcomes.append(kind)
            self.log.append({"outcome": kind, "data": {k: str(v) for k, v in (data or {}).items()}})

        async def record_transcript_turn(self, cid, speaker, text, start, end):
            self.log.append({"speaker": speaker, "text": text, "start": round(start, 2), "end": round(end, 2)})

        async def transfer_context(self, cid, context):
            self.log.append({"transfer": "collectors"})

        async def mark_phone(self, debtor_id, phone, status):  # a test call changes no record
            self.log.append({"would_mark_phone": status})

        async def add_cease(self, debtor_id):
            self.log.append({"would_record_cease": True})

    ports = Ports()
    tts = TTS()
    result_holder: dict = {}

    async def scripted(req, ch):
        from agi.flows.scripted import run_script
        from dialer.calls.bot import script_debtor

        res = await run_script(ch, scr, script_debtor(ctx), ports, call_id=req.call_id, tts=tts, today=today,
                               queue_app=False)
        result_holder["reason"] = res.reason
        if res.transferred_to:
            await ch.set_variable("DIALER_NEXT", "queue")

    async def run() -> None:
        flow = scripted if scr is not None else DtmfVerifyFlow(ports, tts)
        server = FastAGIServer({"call": flow}, token=pbx.agi_token, port=pbx.agi_port)
        try:
            await server.start()
        except OSError as exc:
            raise click.ClickException(f"cannot listen for FastAGI on 127.0.0.1:{pbx.agi_port} ({exc.strerror}): "
                                       "is `dialer run` using this harness?") from None
        ami = AMIController(pbx.ami_host, pbx.ami_port, pbx.ami_user, pbx.ami_secret)
        await ami.connect()
        try:
            variables = {"DIALER_AMD": "1" if amd else "0"}
            if notice_text:
                wav = await asyncio.to_thread(tts.render, notice_text, scr.locale if scr is not None else "en-US")
                variables["DIALER_NOTICE"] = str(Path(wav).resolve().with_suffix(""))
            tracked = await ami.originate(call_id, number, ring_timeout=ring, variables=variables)
            await tracked.done
        finally:
            await ami.close()
            await server.stop()
        result_holder["tracked"] = tracked

    asyncio.run(run())
    tracked = result_holder["tracked"]
    starts = [t["start"] for t in ports.log if "start" in t]
    for t in ports.log:  # seconds from the first prompt
        if "start" in t:
            t["start"], t["end"] = round(t["start"] - starts[0], 2), round(t["end"] - starts[0], 2)
    rec = Harness(run_dir).recording_for(number, call_id)
    out = {"call_id": call_id, "number": number, "script": scr.id if scr is not None else "dtmf_verify",
           "outcome": tracked.outcome, "dial_status": tracked.dial_status, "hangup_cause": tracked.hangup_cause,
           "bot_end": result_holder.get("reason"), "recorded": ports.outcomes, "turns": ports.log,
           "heard": str(rec) if rec.exists() else None}
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    for line in ports.log:
        if "speaker" in line:
            click.echo(f"{line['start']:6.1f}s {line['speaker']}: {line['text']}")
        else:
            click.echo("        " + ", ".join(f"{k}: {v}" for k, v in line.items()))
    click.echo(f"call {call_id}: {tracked.outcome} (dial status {tracked.dial_status}, cause {tracked.hangup_cause})"
               + (f"; the bot ended: {out['bot_end']}" if out["bot_end"] else ""))
    if out["heard"]:
        click.echo(f"the callee heard: {rec}")
