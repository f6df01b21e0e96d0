"""One call's life, in the order it happens: hopper, call, events, bot, ports, disposition, retry, collectors, inbound, recovery."""
