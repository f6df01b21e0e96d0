"""The `dialer` command: thin click layer that parses, calls and prints.

Commands are registered by import path and imported only when used, so `dialer --help` stays
fast; every registered module exists, so a command that fails to import raises (no command ever
vanishes silently from the help). tests/test_cli_registry.py runs `--help` of every command.
"""
from __future__ import annotations

import importlib
import os
import sys

import click

from common.files import PRIVATE_UMASK


class LazyGroup(click.Group):
    """A click group whose subcommands are 'module:attribute' strings, imported on use."""

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self._lazy:
            module_name, attr = self._lazy[name].split(":")
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, name)


@click.group(
    cls=LazyGroup,
    lazy={
        "asterisk": "dialer.cli.asterisk:asterisk",
        "campaign": "dialer.cli.campaign:campaign",
        "debtors": "dialer.cli.campaign:debtors",
        "payments": "dialer.cli.campaign:payments",
        "run": "dialer.cli.run:run",
        "demo": "dialer.cli.demo:demo",
        "agent": "dialer.cli.agent:agent",
        "compliance": "dialer.cli.compliance:compliance",
        "qa": "dialer.cli.qa:qa",
        "complaints": "dialer.cli.complaints:complaints",
        "bench": "dialer.cli.bench:bench",
        "report": "dialer.cli.report:report",
        "audit": "dialer.cli.audit:audit",
        "asr": "dialer.cli.asr:asr",
        "script": "dialer.cli.script:script",
        "service": "dialer.cli.service:service",
        "top": "dialer.cli.top:top",
        "supervise": "dialer.cli.supervise:supervise",
        "recordings": "dialer.cli.recordings:recordings",
        "suppress": "dialer.cli.suppress:suppress",
        "escalation": "dialer.cli.escalation:escalation",
        "webhooks": "dialer.cli.webhooks:webhooks",
        "api": "dialer.cli.api:api",
        "export": "dialer.cli.export:export",
        "db": "dialer.cli.db:db",
        "status": "dialer.cli.status:status",
    },
)
@click.version_option(package_name="asterisk-collections-dialer")
def main() -> None:
    """Debt-collection IVR and predictive dialer on Asterisk."""
    # Everything the service writes (database, run dir, logs, recordings, reports) is private to its
    # user; an operator who wants to share a report copies it.
    os.umask(PRIVATE_UMASK)


@main.group(
    cls=LazyGroup,
    lazy={
        "pacing": "dialer.cli.simulate:simulate_pacing",
        "strategy": "dialer.cli.strategy:simulate_strategy",
    },
)
def simulate() -> None:
    """Seeded simulations (pacing, strategy)."""


@main.group(
    cls=LazyGroup,
    lazy={
        "fetch": "dialer.cli.models:fetch",
        "train": "dialer.cli.strategy:train",
        "evaluate": "dialer.cli.strategy:evaluate",
    },
)
def models() -> None:
    """Speech models (fetch) and the repayment-propensity model (train, evaluate)."""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
