"""`dialer audit verify`: the one audit log's hash chain, its external head file and recording hashes."""
from __future__ import annotations

import click

from dialer.cli.qa import verify as _qa_verify


@click.group()
def audit() -> None:
    """The tamper-evident audit log (hash-chained; every attempt, outcome, score, appeal and review)."""


audit.add_command(_qa_verify, name="verify")
