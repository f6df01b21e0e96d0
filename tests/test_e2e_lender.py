"""End to end through real Asterisk: the lender's nightly feeds reach the dialer before a campaign run. A debtor on
the attorney suppression list and a debtor whose payment cleared the balance are never dialled (the carrier hears
no call for them); the suppressed one is blocked with the list's rule id. The debtor who paid part is called, the
bot reads the new balance, and their promise and the call's disposition reach the lender's webhook, signed."""
from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import pytest

pytestmark = pytest.mark.asterisk

REPO = Path(__file__).resolve().parent.parent
AT = datetime.fromisoformat("2026-12-01T15:00:00+00:00")  # Tue 10:00 in New York
HEADER = ("debtor_id,name,phones,id_last4,birth_year,account_id,amount_owed,currency,days_past_due,due_date,"
          "timezone,customer_type,lang,contacts\n")
DEBTORS = {"L1": "+12125550141", "L2": "+12125550142", "L3": "+12125550143"}


def test_suppressed_and_paid_debtors_are_never_dialled(tmp_path):
    from click.testing import CliRunner

    from common.clock import Clock
    from dialer.campaign.config import load_campaign
    from dialer.campaign.imports import read_debtors_csv
    from dialer.cli import main
    from dialer.cli.run import load_daemon_inputs, run_daemon
    from dialer.store import Store, core
    from dialer.store.gate import gate_blocks
    from dialer.telephony.harness import Harness

    db = tmp_path / "dialer.db"
    store = Store(db)
    camp = load_campaign(REPO / "campaigns" / "en_demo.yaml")
    core.upsert_campaign(store, camp)
    csv = HEADER + "".join(f"{d},Debtor {d},{p},1234,1984,A-{d},100.00,USD,12,2026-11-19,America/New_York,first,en,\n"
                           for d, p in DEBTORS.items())
    core.import_debtors(store, read_debtors_csv("debtors.csv", csv), camp.name)
    (tmp_path / "attorney.csv").write_text("phone,debtor_id,account_id,effective_date,source,note\n"
                                           ",L2,,2026-11-28,crm,represented by counsel\n", encoding="utf-8")
    (tmp_path / "payments.csv").write_text("account_id,paid_at,amount,currency,reference\n"
                                           "A-L3,2026-11-30,100.00,USD,BANK-77\n"
                                           "A-L1,2026-11-30,40.00,USD,BANK-78\n", encoding="utf-8")
    for args in (("suppress", "import", str(tmp_path / "attorney.csv"), "--list", "attorney"),
                 ("payments", "import", str(tmp_path / "payments.csv"))):
        res = CliRunner().invoke(main, [*args, "--db", str(db)])
        assert res.exit_code == 0, res.output
    behaviours = tmp_path / "behaviours.yaml"
    behaviours.write_text("".join(f'"{p}": {{answer_after: 1, then: silent, hangup_after: 2}}\n'
                                  for p in DEBTORS.values() if p != DEBTORS["L1"])
                          # L1 says who they are, gives the year of birth and promises to pay today
                          + f'"{DEBTORS["L1"]}": {{answer_after: 1, then: speak, audio: hello.wav, dtmf: [{{digits: "1", '
                            'at: 6}, {digits: "1984", at: 11}, {digits: "1", at: 26}], hangup_after: 38}\n',
                          encoding="utf-8")
    from dialer.store.outbox import add_endpoint
    from dialer.telephony.harness import claim_ports
    from tests.test_lender_webhooks import Receiver

    ports = claim_ports(1)
    ep = add_endpoint(store, "crm", f"http://127.0.0.1:{ports.base}/hook")
    rx = Receiver(ports.base, ep["secret"], fail_first=1)
    harness = Harness(tmp_path / "run", agents=1, behaviours=behaviours)
    state = harness.up()
    try:
        rules, camps = load_daemon_inputs(store, (camp.name,), REPO / "compliance_rules.yaml")
        rx.up()  # the daemon delivers the outbox while it runs (its first attempt is refused, then retried)
        asyncio.run(run_daemon(store, state, rules, camps, Clock(AT), until_idle=True, max_seconds=90))
        during_run = [d["body"]["kind"] for d in rx.deliveries]
        heard = {d: len(harness.recordings(p)) for d, p in DEBTORS.items()}
        asyncio.run(_deliver(store))  # what was written as the daemon stopped: `dialer webhooks run`'s job
    finally:
        harness.down()
        rx.down()
        ports.release()
    placed = {d: store.query_one("SELECT count(*) FROM attempts WHERE debtor_id=?", (d,))[0] for d in DEBTORS}
    assert heard == {"L1": 1, "L2": 0, "L3": 0} and placed == {"L1": 1, "L2": 0, "L3": 0}, (heard, placed)
    # the attorney-listed debtor was offered and refused by the gate with the list's rule id (the paid one
    # never reaches the gate: the hopper no longer offers an account at 0)
    blocks = {b["debtor_id"]: b["rule_id"] for b in gate_blocks(store)}
    assert blocks == {"L2": "suppress.attorney"}
    # the bot read what L1 owes after the partial payment, and the promise is for that
    call = store.query_one("SELECT id, disposition FROM attempts WHERE debtor_id='L1'")
    said = " ".join(e["data"]["text"] for e in core.call_events(store, call["id"], "turn") if e["data"]["speaker"] == "agent")
    events = [(e["kind"], e["data"]) for e in core.call_events(store, call["id"]) if e["kind"] != "turn"]
    assert "60 dollars" in said and "100 dollars" not in said, (said, events)
    assert call["disposition"] == "promise" and core.promises_for(store, debtor_id="L1")[0]["amount"] == "60.00"
    # and the lender's webhook heard of both, signed (its first delivery attempt was refused and retried)
    got = {d["body"]["kind"]: d["body"]["data"] for d in rx.deliveries if d["body"]["data"].get("debtor_id") == "L1"}
    assert got["promise"]["amount"] == "60.00" and got["disposition"]["disposition"] == "promise"
    assert got["disposition"]["call_id"] == call["id"] and all(d["signed"] for d in rx.deliveries)
    assert rx.refused == 1
    assert "promise" in during_run, during_run  # said mid-call: delivered by the running daemon
    store.close()


async def _deliver(store) -> None:
    from dialer.api.webhooks import Deliverer

    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(30, stop.set)
    await Deliverer(store, base_backoff=0.2, max_backoff=1).run(stop, until_idle=True)
