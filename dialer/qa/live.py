"""Live QA of collector calls: the collector's leg is tapped like the bot's caller (ChanSpy → UnicastRTP,
agi/media/tap.py), endpointed (agi/media/vad.py), recognised (agi/media/asr.py) and checked as each phrase
ends, by the same checker as post-call QA run on that one turn (conduct rules: threat, insult,
impersonation; the lexicons cost well under a millisecond, the detectors tens of milliseconds, recognition
most of the budget). A phrase that continues the collector's previous sentence after a short pause
(`JOIN_GAP_S`; the previous phrase did not end a sentence, or this one starts in lower case) is read
together with it: a sentence the endpointer cut in two ("We will come to your house" · "and hurt your
family.") is judged whole, never as a fragment out of context.
A hit is an alert: stored and audited, logged, sent as an AMI UserEvent `DialerQaAlert`, and handed to
`publish` (the wallboard's bus subscribes there). Then, per rule, the profile's `qa.live` policy in
compliance_rules.yaml: `alert` only, `whisper` a short warning to the collector only (ChanSpy whisper mode
from a Local channel that plays it: the debtor never hears it), or `end` the call. One alert per rule per call.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from agi.media.asr import Recognizer, recognize_utterance
from agi.media.frames import Utterance
from agi.media.tap import CallAudio
from agi.media.vad import VadAnalyzer
from agi.script.model import VoiceParams
from common import vocab
from common.log import log_event
from dialer.qa.checker import check
from dialer.qa.rules import QARules, RuleSet
from dialer.store import Store
from dialer.store import recordings as rec_store
from dialer.telephony.ami import AMIController, AmiMedia

log = logging.getLogger("dialer.qa.live")

LIVE_RULES = ("conduct.threat", "conduct.insult", "conduct.impersonation")
# a collector's phrase ends at 0.4 s of silence (the bot's 0.7 s would eat most of the 1-s alert budget)
LIVE_VAD = VoiceParams(end_silence_ms=400, max_utterance_s=9.5)
# a phrase this close after one that left its sentence open is judged with it
JOIN_GAP_S = 1.5
WARNING_TEXT = {"en": "Compliance warning. Rephrase that now.", "zh": "合规提醒，请使用合规话术。"}
LOCALES = {"en": "en-US", "zh": "zh-CN"}
WHISPER_CONTEXT = "dialer-qa-whisper"


@dataclass(frozen=True)
class LiveAlert:
    call_id: str
    agent: str | None
    rule: str
    policy: str
    evidence: str
    confidence: float | None
    phrase_start: float
    phrase_end: float
    latency: float   # from the end of the phrase to the alert, seconds
    raised_at: float  # wall clock
    id: int = 0
    action: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_subscribers: list[Callable[[LiveAlert], None]] = []


def subscribe(fn: Callable[[LiveAlert], None]) -> Callable[[], None]:
    """Receive every live alert (the wallboard's event bus plugs in here); returns an unsubscribe."""
    _subscribers.append(fn)
    return lambda: _subscribers.remove(fn) if fn in _subscribers else None


def publish(alert: LiveAlert) -> None:
    for fn in list(_subscribers):
        try:
            fn(alert)
        except Exception:  # noqa: BLE001 - a subscriber never stops live QA
            log.exception("live alert subscriber failed")


def phrase_hits(text: str, lang: str, profile: QARules, detectors: Any = None,
                institution: str | None = None) -> list[tuple[str, float | None]]:
    """(rule, confidence) for each live rule one collector phrase breaks, by the post-call checker (`text`
    may be two phrases of one sentence, `join_phrases`)."""
    t = {"call_id": "live", "lang": lang, "jurisdiction": profile.profile,
         "started_at": "2000-01-01T12:00:00+00:00", "institution": institution,
         "turns": [{"speaker": "agent", "text": text, "start": 0.0, "end": 1.0}]}
    result = check(t, profile, detectors)
    out: dict[str, float | None] = {}
    for v in result.violations:
        if v.rule in LIVE_RULES and v.rule in profile.enabled and v.rule not in out:
            out[v.rule] = getattr(v, "confidence", None)
    return list(out.items())


_SENTENCE_END = tuple(".!?。！？…")


def continues(previous: str, text: str) -> bool:
    """Whether `text` goes on with the sentence `previous` left open: the recogniser put no full stop at
    the end of `previous`, or began `text` in lower case (Whisper's mark of a continuation)."""
    return not previous.rstrip().endswith(_SENTENCE_END) or text.lstrip()[:1].islower()


def join_phrases(previous: str, text: str, lang: str) -> str:
    """Two phrases of one stretch of speech as one text (Chinese runs on without a space)."""
    return ("" if lang == "zh" else " ").join((previous.strip(), text.strip()))


class CollectorTap(AmiMedia):
    """The collector leg's tap: ChanSpy(<collector channel>,qoE) → UnicastRTP, channel id `qa-<call>-qatap`
    (it is no call of ours: no CDR uniqueid that starts like a call id)."""

    TAP_SUFFIX = "-qatap"
    PREFIX = "qa-"


@dataclass
class _Watch:
    call_id: str
    channel: str
    caller: str
    agent: str | None
    audio: CallAudio | None = None
    fired: set[str] | None = None
    last: tuple[str, float] | None = None  # the collector's previous phrase: (text, when it ended)


class CollectorMonitor:
    """Watches every collector call on one AMI session (from the queue's AgentConnect to the hang-up)."""

    def __init__(self, ami: AMIController, store: Store, rules: RuleSet, *, detectors: Any = None,
                 recognizer_for: Callable[[str], Recognizer] | None = None, tts: Any = None,
                 now: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 langs: tuple[str, ...] = ("en",)):
        self.ami, self.store, self.rules, self.detectors = ami, store, rules, detectors
        self.recognizer_for = recognizer_for
        self.tts = tts
        self.now, self.wall = now, wall
        self.langs = langs  # recognised live; calls in other languages are left to post-call QA
        self.tap = CollectorTap(ami)
        self.watches: dict[str, _Watch] = {}  # collector channel → watch
        self.tasks: set[asyncio.Task] = set()
        self.alerts: list[LiveAlert] = []
        self.warnings: dict[str, Path] = {}
        ami.listeners.append(self._on_event)

    def warm(self) -> None:
        """Load the recogniser(s) and the warning prompts (in a thread, at start)."""
        if self.recognizer_for is None:
            from agi.media.asr import recognizer_for
            self.recognizer_for = recognizer_for
        for lang in self.langs:
            self.recognizer_for(lang)
            if self.tts is not None:
                self.warnings[lang] = Path(self.tts.render(WARNING_TEXT[lang], LOCALES[lang]))
        if self.detectors is not None:
            self.detectors.score(["agent"], ["hello"])  # the encoder's first call loads it

    # -- AMI ----------------------------------------------------------------------------------------
    def _on_event(self, event: dict[str, Any]) -> None:
        name = event.get("Event")
        if name == "AgentConnect":
            channel = event.get("DestChannel") or ""
            call_id = event.get("Uniqueid") or ""
            if not channel or not call_id or channel in self.watches:
                return
            w = _Watch(call_id, channel, event.get("Channel") or "", event.get("MemberName"), fired=set())
            self.watches[channel] = w
            task = asyncio.ensure_future(self._watch(w))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif name == "Hangup":
            w = self.watches.get(event.get("Channel") or "")
            if w is not None and w.audio is not None:
                w.audio.receiver.close()  # ends the frame iterator; _watch closes the rest

    async def _watch(self, w: _Watch) -> None:
        try:
            facts = rec_store.transcribe_facts(self.store, w.call_id)  # the store's one connection: loop thread only
            if facts is None and rec_store.transcribe_facts(self.store, "in-" + w.call_id) is not None:
                w.call_id = "in-" + w.call_id  # a call-back: the dialplan names it in-<uniqueid>
                facts = rec_store.transcribe_facts(self.store, w.call_id)
            lang = ((facts or {}).get("locale") or "en")[:2]
            if lang not in self.langs:
                return
            profile = self.rules.for_jurisdiction((facts or {}).get("profile"))
            institution = _institution(facts)
            if self.recognizer_for is None:
                await asyncio.to_thread(self.warm)
            assert self.recognizer_for is not None
            recognizer = self.recognizer_for(lang)
            w.audio = CallAudio(self.tap, CollectorTap.PREFIX + w.call_id, w.channel, self.now)
            await w.audio.start()
            log_event(log, "qa.live_watch", call=w.call_id, agent=w.agent)
            vad = VadAnalyzer(LIVE_VAD)
            async for frame in w.audio.frames():
                for out in vad.feed(frame):
                    if isinstance(out, Utterance):
                        await self._phrase(w, out, recognizer, lang, profile, institution)
        except Exception:  # noqa: BLE001 - live QA never disturbs the call; post-call QA still scores it
            log.exception("live QA of call %s failed", w.call_id)
        finally:
            if w.audio is not None:
                await w.audio.close()
            self.watches.pop(w.channel, None)

    async def _phrase(self, w: _Watch, utt: Utterance, recognizer: Recognizer, lang: str, profile: QARules,
                      institution: str | None) -> None:
        rec = await asyncio.to_thread(recognize_utterance, recognizer, utt)
        if not rec.text:
            return
        last, w.last = w.last, (rec.text, utt.end)
        evidence = (join_phrases(last[0], rec.text, lang)
                    if last and utt.start - last[1] <= JOIN_GAP_S and continues(last[0], rec.text) else rec.text)
        hits = await asyncio.to_thread(phrase_hits, evidence, lang, profile, self.detectors, institution)
        for rule, confidence in hits:
            assert w.fired is not None
            if rule in w.fired:
                continue
            w.fired.add(rule)
            await self._raise(w, rule, profile.live.get(rule, "alert"), evidence, confidence, utt, lang)

    async def _raise(self, w: _Watch, rule: str, policy: str, text: str, confidence: float | None,
                     utt: Utterance, lang: str) -> None:
        latency = round(self.now() - utt.end, 3)
        raised = self.wall()
        row = {"call_id": w.call_id, "agent": w.agent, "rule": rule, "policy": policy, "evidence": text,
               "confidence": confidence, "phrase_start": utt.start, "phrase_end": utt.end, "latency": latency}
        alert_id = rec_store.record_live_alert(self.store, row, at=raised)
        log_event(log, "qa.live_alert", level=logging.WARNING, call=w.call_id, agent=w.agent, rule=rule,
                  policy=policy, latency=latency)
        try:
            await self.ami.send({"Action": "UserEvent", "UserEvent": vocab.DIALER_QA_ALERT,
                                 vocab.CALL_ID_HEADER: w.call_id, "Rule": rule, "Policy": policy,
                                 "Agent": w.agent or "", "Latency": f"{latency:.3f}"}, timeout=5.0)
        except Exception as exc:  # noqa: BLE001
            log_event(log, "qa.live_userevent_failed", level=logging.WARNING, call=w.call_id, error=str(exc))
        action = await self._act(w, policy, lang)
        rec_store.set_live_alert_action(self.store, alert_id, action)
        alert = LiveAlert(w.call_id, w.agent, rule, policy, text, confidence, utt.start, utt.end, latency, raised,
                          alert_id, action)
        self.alerts.append(alert)
        publish(alert)

    async def _act(self, w: _Watch, policy: str, lang: str) -> str:
        try:
            if policy == "whisper":
                warning = self.warnings.get(lang)
                if warning is None:
                    return "none: no warning prompt rendered"
                await self.ami.send({
                    "Action": "Originate", "Channel": f"Local/warn@{WHISPER_CONTEXT}/n",
                    "Application": "ChanSpy", "Data": f"{w.channel},qwE",
                    "Variable": f"_QA_WARNING={warning.with_suffix('')}",
                    "Async": "true", "Timeout": "5000"}, timeout=5.0)
                return "whispered"
            if policy == "end":
                await self.ami.send({"Action": "Hangup", "Channel": w.caller, "Cause": "16"}, timeout=5.0)
                return "ended"
            return "none"
        except Exception as exc:  # noqa: BLE001
            return f"failed: {exc}"

    async def stop(self) -> None:
        for w in list(self.watches.values()):
            if w.audio is not None:
                w.audio.receiver.close()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=10)


def _institution(facts: dict[str, Any] | None) -> str | None:
    import json

    try:
        return json.loads((facts or {}).get("config_json") or "{}").get("institution")
    except ValueError:
        return None
