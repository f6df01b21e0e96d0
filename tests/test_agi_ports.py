"""One set of call ports: InMemoryPorts and the store's StorePorts both implement every CallPorts method, async,
with the protocol's parameters; InMemoryPorts also stops playback (PlaybackControl)."""
import asyncio
import inspect

import pytest

from agi.ports import CallContext, CallPorts, InMemoryPorts, PlaybackControl
from dialer.calls.ports import StorePorts


def protocol_methods(protocol):
    return {name: fn for name, fn in vars(protocol).items() if inspect.isfunction(fn) and not name.startswith("_")}


@pytest.mark.parametrize("impl", [InMemoryPorts, StorePorts])
def test_implements_call_ports(impl):
    for name, fn in protocol_methods(CallPorts).items():
        method = getattr(impl, name)
        assert inspect.iscoroutinefunction(method), (impl.__name__, name)
        assert list(inspect.signature(method).parameters) == list(inspect.signature(fn).parameters), name


def test_in_memory_ports_keep_each_call_apart():
    ports = InMemoryPorts(contexts={"c1": CallContext("c1", "D1", "Ann", 1980, "Acme", "10.00", "USD", 3)})

    async def calls():
        assert (await ports.lookup("c1")).name == "Ann" and await ports.lookup("c2") is None
        await ports.record_outcome("c1", "promise", {"amount": "10.00"})
        await ports.record_outcome("c2", "machine", {})
        await ports.record_transcript_turn("c1", "agent", "hello", 0.0, 1.0)
        await ports.transfer_context("c2", {"queue": "collectors"})
        await ports.stop("c1")

    asyncio.run(calls())
    assert ports.outcomes_of("c1") == [("promise", {"amount": "10.00"})]
    assert ports.turns_of("c1") == [("agent", "hello", 0.0, 1.0)] and ports.turns_of("c2") == []
    assert ports.transfer_of("c2") == {"queue": "collectors"} and ports.transfer_of("c1") is None
    assert ports.stopped == ["c1"] and set(protocol_methods(PlaybackControl)) == {"stop"}
