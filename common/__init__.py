"""Shared kernel used by both sides (agi/ and dialer/): YAML with line numbers, logging with masking, the clock, WAV helpers, the shared vocabulary. Imports nothing of ours."""
