"""Compliance QA: rule checks over call transcripts (checker), their configuration (rules), text normalisation, CLI."""
