"""`dialer bench NAME [ARGS…]`: run `python -m bench.NAME` (harness, ami_events, gate, pacing, qa, strategy, tts)."""
from __future__ import annotations

import runpy
import sys

import click

from common.paths import REPO

BENCH_DIR = REPO / "bench"


def available() -> list[str]:
    return sorted(p.stem for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_"))


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("name")
@click.pass_context
def bench(ctx: click.Context, name: str) -> None:
    """Run one benchmark; extra arguments (e.g. --json) go to it."""
    if name not in available():
        raise click.BadParameter(f"unknown benchmark {name!r} (available: {', '.join(available())})",
                                 param_hint="NAME")
    sys.argv = [f"bench.{name}", *ctx.args]
    runpy.run_module(f"bench.{name}", run_name="__main__")
