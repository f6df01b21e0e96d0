"""The harness's DTMF call flow: identify → verify (birth year) → only then the debt → outcome by key.

"This is <institution>. If you are <name>, press 1." → "Please enter your year of birth." →
only when the four digits match: the reason for the call and "press 1 to promise payment today,
2 to speak to a collector". Nothing about the debt is said before the birth year matches.
An answering machine gets a neutral call-back message with no name and no debt."""
from __future__ import annotations

import asyncio
import time
from typing import Any

from agi.channel import Hangup
from agi.ports import CallChannel, CallPorts, PromptRenderer
from agi.script.engine import VERIFY_FAILURE, VERIFY_FAILURES_PER_DAY
from agi.script.render import say_amount
from agi.server import AGIRequest

DIGITS = "0123456789*#"


class DtmfVerifyFlow:
    """One call of the harness flow. `turns` is the bot's transcript of what it said and heard."""

    def __init__(self, ports: CallPorts, tts: PromptRenderer, *, key_timeout_ms: int = 6000,
                 year_timeout_ms: int = 7000):
        self.ports = ports
        self.tts = tts
        self.key_timeout_ms = key_timeout_ms
        self.year_timeout_ms = year_timeout_ms

    async def __call__(self, req: AGIRequest, ch: CallChannel) -> None:
        ctx = await self.ports.lookup(req.call_id)
        t0 = time.monotonic()
        outcome: dict[str, Any] = {"kind": "no_verification"}
        reported: list[dict[str, Any]] = []  # outcomes are reported when they happen: a crash keeps them
        heard = False

        async def report(o: dict[str, Any]) -> None:
            await self.ports.record_outcome(req.call_id, o.get("kind", "unknown"), o)
            reported.append(o)

        def ahead(text: str) -> asyncio.Future:
            """Renders a prompt while the call goes on: keys pressed while the bot would otherwise be busy
            rendering (Asterisk drops them when no application reads the channel) reach the prompt."""
            fut = asyncio.ensure_future(asyncio.to_thread(self.tts.render, text, ctx.locale if ctx else "en-US"))
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())
            return fut

        async def say(text: str, escape: str = DIGITS, rendered: asyncio.Future | None = None) -> str | None:
            start = time.monotonic() - t0
            wav = await (rendered if rendered is not None else
                         asyncio.to_thread(self.tts.render, text, ctx.locale if ctx else "en-US"))
            digit, _ = await ch.control_stream_file(str(wav.with_suffix("")), escape)
            await self.ports.record_transcript_turn(req.call_id, "agent", text, start, time.monotonic() - t0)
            return digit

        async def key(first: str | None) -> str | None:
            if first:
                return first
            return await ch.wait_for_digit(self.key_timeout_ms)

        try:
            if ctx is None:
                outcome = {"kind": "unknown_call"}
                return
            if req.params.get("amd") == "MACHINE":
                # Limited-content message: no debtor name, nothing about a debt.
                await report({"kind": "machine"})  # AMD said so: written now, the message may be cut
                await say(f"This is a message from {ctx.institution}. Please call us back at "
                          f"{' '.join(ctx.callback_number.lstrip('+'))}. Thank you.", "")
                outcome = reported[-1]  # a hang-up during the message ends it as before (callee hung up)
                return
            d = await key(await say(f"This is {ctx.institution}. If you are {ctx.name}, press 1."))
            heard = True
            if d != "1":
                await say("We are sorry to have disturbed you. Goodbye.", "")
                outcome = {"kind": "no_verification", "key": d}
                return
            await self.ports.record_transcript_turn(req.call_id, "callee", "1", time.monotonic() - t0,
                                         time.monotonic() - t0)
            if int(ctx.extra.get("verify_failures_today") or 0) >= VERIFY_FAILURES_PER_DAY:
                # Locked for the debtor's day after repeated wrong answers: not even asked.
                await say("Sorry, we could not verify your identity. Goodbye.", "")
                outcome = {"kind": "no_verification", "verified": False, "reason": "locked"}
                return
            # the debt is rendered (not said) while the callee types the year: it plays the moment the year
            # matches, so a key pressed early in it is not lost to a render
            disclosure = (f"Thank you. We are calling about your {ctx.institution} account, which has a balance of "
                          f"{say_amount(ctx.amount_owed, ctx.currency)} and is {ctx.days_past_due} days past due. "
                          "Press 1 to promise payment today, or 2 to speak to a collector.")
            disclosure_wav = ahead(disclosure)
            wav = await asyncio.to_thread(self.tts.render, "Please enter your year of birth.", ctx.locale)
            start = time.monotonic() - t0
            year = await ch.get_data(str(wav.with_suffix("")), self.year_timeout_ms, 4)
            await self.ports.record_transcript_turn(req.call_id, "agent", "Please enter your year of birth.", start,
                                         time.monotonic() - t0)
            if not year or ctx.birth_year is None or year != str(ctx.birth_year):
                if year:
                    await self.ports.record_outcome(req.call_id, VERIFY_FAILURE, {"node": "birth_year"})
                await say("Sorry, we could not verify your identity. Goodbye.", "")
                outcome = {"kind": "no_verification", "verified": False}
                return
            await self.ports.record_transcript_turn(req.call_id, "callee", "[verified]", time.monotonic() - t0,
                                         time.monotonic() - t0)
            outcome = {"kind": "verified_no_choice", "verified": True}
            await report(outcome)  # verified, and the debt is said next: a conversation, written now
            d = await key(await say(disclosure, rendered=disclosure_wav))
            if d:
                await self.ports.record_transcript_turn(req.call_id, "callee", d, time.monotonic() - t0,
                                                        time.monotonic() - t0)
            if d == "1":
                outcome = {"kind": "promise", "verified": True, "amount": ctx.amount_owed, "due": "today"}
                await report(outcome)
                await say("Thank you. Your promise to pay today has been recorded. Goodbye.", "")
            elif d == "2":
                outcome = {"kind": "transfer", "verified": True, "queue": "collectors"}
                await self.ports.transfer_context(req.call_id, {
                    "debtor_id": ctx.debtor_id, "name": ctx.name, "amount_owed": ctx.amount_owed,
                    "currency": ctx.currency, "days_past_due": ctx.days_past_due, "verified": True,
                    "intents": ["request_human"],
                })
                await ch.set_variable("DIALER_NEXT", "queue")
                await say("Please hold while we connect you to a collector.", "")
            else:
                await say("We will call you again. Goodbye.", "")
        except Hangup:
            outcome = dict(outcome, hangup="callee", heard_greeting=heard)
            raise
        finally:
            if outcome.get("kind") not in ("promise",) and (not reported or outcome != reported[-1]):
                await self.ports.record_outcome(req.call_id, outcome.get("kind", "unknown"), outcome)
