"""Whether and when to dial: campaigns, the compliance gate, pacing, one call's life (calls/), telephony, the store, QA, strategy, the CLI."""
