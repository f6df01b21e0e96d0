"""Call flows that run over one AGI channel: the scripted bot and the harness's hand-written DTMF flow."""
