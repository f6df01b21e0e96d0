"""`dialer api serve`: the lender REST API on its own (127.0.0.1, bearer token generated and kept 0600) for lenders
without a running daemon; the daemon's web server mounts the same sub-application at /api/."""
from __future__ import annotations

import asyncio
import json
import secrets
import signal
from pathlib import Path

import click

from dialer.cli.options import db_option, db_path


def load_or_create_token(path: Path) -> tuple[str, bool]:
    """The token in `path`, or a new one written there 0600; (token, created)."""
    from common.files import private_dir, write_private

    if path.exists() and path.read_text().strip():
        return path.read_text().strip(), False
    private_dir(path.parent)
    token = secrets.token_urlsafe(32)
    write_private(path, token + "\n")
    return token, True


@click.group()
def api() -> None:
    """The lender REST API (OpenAPI description at /api/openapi.json)."""


@api.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", type=int, default=8780, show_default=True, help="TCP port (0: any free port).")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Bearer token file (default: api.token next to the database; generated 0600 if absent).")
@click.option("--max-seconds", type=float, default=None, help="Stop after this long.")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("compliance_rules.yaml"), show_default=True,
              help="Compliance rules: the profiles' complaints: settings POST /complaints uses.")
@db_option
def serve(host: str, port: int, token_file: Path | None, max_seconds: float | None, rules_file: Path,
          db: Path | None) -> None:
    """Serve the API until SIGTERM/SIGINT. Prints one JSON line: where it listens and the token file."""
    from aiohttp import web

    from dialer.api.app import serve_app
    from dialer.store import Store, describe, local_path

    path = db_path(db)
    tfile = token_file or local_path(path).with_name("api.token")
    token, created = load_or_create_token(tfile)
    if host not in ("127.0.0.1", "::1", "localhost"):
        click.echo(f"warning: listening on {host}: anyone who can reach it and holds the token can use the API",
                   err=True)

    async def main() -> None:
        runner = web.AppRunner(serve_app(lambda: Store(path), token, rules_file=rules_file))
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                                       "(another server there? use --port, or --port 0 for any free port)") from None
        bound = runner.addresses[0][1] if runner.addresses else port
        click.echo(json.dumps({"url": f"http://{host}:{bound}/api/", "token_file": str(tfile),
                               "token_created": created, "db": describe(path)}), nl=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if max_seconds is not None:
            loop.call_later(max_seconds, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())
