"""The harness's DTMF flow over a scripted channel: the debt is rendered while the year is typed (a key
pressed early in the disclosure is not lost to a render), and never played to a callee who fails."""
import asyncio
import time
from pathlib import Path

from agi.flows.dtmf_verify import DtmfVerifyFlow
from agi.ports import CallContext, InMemoryPorts
from agi.server import AGIRequest

CTX = CallContext(call_id="c1", debtor_id="D1", name="Dana Doe", birth_year=1984, institution="Acme Finance",
                  amount_owed="300.00", currency="USD", days_past_due=10)


class SlowTTS:
    """Rendering a new text takes `seconds` (a loaded machine); remembers when each render began."""

    def __init__(self, seconds: float):
        self.seconds, self.began, self.texts = seconds, {}, {}

    def render(self, text: str, locale: str) -> Path:
        self.began.setdefault(text, time.monotonic())
        time.sleep(self.seconds)
        path = Path(f"/cache/{abs(hash(text))}.wav")
        self.texts[str(path.with_suffix(""))] = text
        return path


class Channel:
    """Keys answer the prompts in order; the year takes `typing` seconds to type."""

    def __init__(self, keys: list[str | None], typing: float):
        self.keys, self.typing, self.played, self.year_done = list(keys), typing, [], None

    async def control_stream_file(self, path, escape_digits=""):
        self.played.append(path)
        return None, 0

    async def wait_for_digit(self, timeout_ms):
        return self.keys.pop(0) if self.keys else None

    async def get_data(self, path, timeout_ms, max_digits):
        self.played.append(path)
        await asyncio.sleep(self.typing)
        self.year_done = time.monotonic()
        return self.keys.pop(0) if self.keys else None

    async def set_variable(self, name, value):
        pass


def run(keys, typing=0.4, render=0.3):
    ports, tts, ch = InMemoryPorts(contexts={"c1": CTX}), SlowTTS(render), Channel(keys, typing)
    asyncio.run(DtmfVerifyFlow(ports, tts, key_timeout_ms=100)(AGIRequest("dtmf", {"call": "c1"}, {}), ch))
    said = [tts.texts[p] for p in ch.played]
    return ports, tts, ch, said


def test_the_disclosure_is_rendered_while_the_year_is_typed_and_plays_as_soon_as_it_matches():
    ports, tts, ch, said = run(["1", "1984", "2"])
    disclosure = next(t for t in said if "balance" in t)
    assert tts.began[disclosure] < ch.year_done, "the debt was rendered only after the year came in"
    assert said.index(disclosure) == said.index("Please enter your year of birth.") + 1
    assert [k for _, k, _ in ports.outcomes][-1] == "transfer"


def test_a_wrong_year_never_plays_the_debt():
    ports, tts, ch, said = run(["1", "1999"])
    assert not any("balance" in t or "300" in t for t in said), said
    assert [k for _, k, _ in ports.outcomes] == ["verify_failure", "no_verification"]
