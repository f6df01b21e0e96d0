"""The words both sides of a call use: attempt outcomes, the bot's dispositions, and the dialplan's UserEvent
names and header. One list each; the dialer, the gate, the campaign config and the script validator read them."""
from __future__ import annotations

# -- attempt outcomes (attempts.outcome) ---------------------------------------------------------
ANSWERED = "answered"
BUSY = "busy"
NO_ANSWER = "no_answer"
UNALLOCATED = "unallocated"
FAILED = "failed"
MACHINE = "machine"
ABANDONED = "abandoned"
CALLEE_HANGUP = "callee_hangup"
UNKNOWN = "unknown"

AMI_OUTCOMES = (ANSWERED, BUSY, NO_ANSWER, UNALLOCATED, FAILED, CALLEE_HANGUP, UNKNOWN)
"""What the AMI controller can say of one originated call (the daemon refines 'answered')."""
OUTCOMES = (ANSWERED, BUSY, NO_ANSWER, FAILED, UNALLOCATED, MACHINE, ABANDONED, CALLEE_HANGUP, UNKNOWN)
"""Every outcome an attempt can be settled with."""
NOT_ANSWERED = frozenset({NO_ANSWER, BUSY, FAILED, UNALLOCATED})
"""The line never came up: the dial failed."""
REACHED_OUTCOMES = frozenset({ANSWERED, CALLEE_HANGUP, ABANDONED})
"""A person was on the line."""
FAILED_OUTCOMES = frozenset({BUSY, NO_ANSWER, FAILED, UNALLOCATED, MACHINE})
"""Nobody was reached."""
CONNECTED_OUTCOMES = frozenset({ANSWERED, CALLEE_HANGUP, ABANDONED, MACHINE})
"""Something answered (a person or a machine)."""
CONTACT_OUTCOMES = frozenset({ANSWERED, CALLEE_HANGUP})
"""The strategy's 'contact' (a person heard us)."""
RETRY_OUTCOMES = (BUSY, NO_ANSWER, MACHINE, FAILED, CALLEE_HANGUP)
"""The outcomes a campaign's `retry:` section names a delay for."""
RETRY_KEY = {BUSY: BUSY, NO_ANSWER: NO_ANSWER, MACHINE: MACHINE, FAILED: FAILED, UNALLOCATED: FAILED,
             CALLEE_HANGUP: CALLEE_HANGUP, UNKNOWN: FAILED}
"""Which retry delay an outcome waits for (an unallocated or unknown call waits as a failed one)."""

# -- the bot's dispositions (what a script records; attempts.disposition) -------------------------
PROMISE = "promise"
DISPOSITIONS = (PROMISE, "hardship", "dispute", "refusal", "wrong_number", "cease", "callback",
                "third_party", "verification_failed", "no_response")

# -- a collector's disposition (`dialer agent dispo --outcome`): the bot's names, plus what only a person
# can say; `not_entered` when the wrap-up ran out without one
COLLECTOR_DISPOSITIONS = (PROMISE, "callback", "refusal", "dispute", "hardship", "cease", "wrong_number",
                          "third_party", "no_contact")
DISPOSITION_ALIASES = {"refuse": "refusal"}
NOT_ENTERED = "not_entered"
CONVERSATION_DISPOSITIONS = frozenset({PROMISE, "callback", "refusal", "dispute", "hardship", "cease"})
"""A conversation about the debt took place (the US quiet period counts from it)."""

# -- the dialplan's UserEvents (dialplans/pbx.conf and agi/flows/scripted.py send them) -----------
CALL_ID_HEADER = "CallID"
"""Every UserEvent about a call names it in this header."""
DIALER_AMD = "DialerAMD"
DIALER_HUMAN = "DialerHuman"
DIALER_QUEUE_RESULT = "DialerQueueResult"
DIALER_INFO_PLAYED = "DialerInfoPlayed"
DIALER_TRANSFER = "DialerTransfer"
BOT_TRANSFER = "BotTransfer"
DIALER_PREVIEW_READY = "DialerPreviewReady"
DIALER_MACHINE_MESSAGE = "DialerMachineMessage"
DIALER_NOTICE_PLAYED = "DialerNoticePlayed"  # the profile's recording notice was played to the callee
USER_EVENTS = (DIALER_AMD, DIALER_HUMAN, DIALER_QUEUE_RESULT, DIALER_INFO_PLAYED, DIALER_TRANSFER, BOT_TRANSFER,
               DIALER_PREVIEW_READY, DIALER_MACHINE_MESSAGE, DIALER_NOTICE_PLAYED)
# live QA (dialer/qa/live.py): a rule hit on a collector's call while it is up; sent by the daemon, not the dialplan
DIALER_QA_ALERT = "DialerQaAlert"

# -- complaints (docs/COMPLAINTS.md): where they come in, what they are about, how serious they are ---------
COMPLAINT_CHANNELS = ("regulator_hotline", "lender_cs", "debtor_direct", "letter", "email", "app", "other")
COMPLAINT_CATEGORIES = ("attitude", "over_collection", "information_leak", "harassing_relatives", "harassment",
                        "threat", "compliance_dispute", "other")
COMPLAINT_SEVERITIES = ("minor", "moderate", "serious")  # seed 001's grading, least serious first
