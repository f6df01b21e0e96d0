"""`dialer service unit|env`: the systemd unit and environment file that run the daemon as a service,
under its own user, next to the PBX. deploy/dialer.service and deploy/dialer.env are these commands'
output for an install in /opt/dialer (docs/SERVICE.md)."""
from __future__ import annotations

from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[2]

UNIT = """\
# The dialer daemon as a systemd service (docs/SERVICE.md). Made by `dialer service unit`.
[Unit]
Description=Collections dialer daemon (campaigns -> compliance gate -> Asterisk AMI/FastAGI)
Documentation=file://{prefix}/docs/SERVICE.md
After=network-online.target postgresql.service asterisk.service
Wants=network-online.target

[Service]
Type=simple
User={user}
Group={group}
EnvironmentFile={env_file}
WorkingDirectory={prefix}
ExecStart={prefix}/.venv/bin/python -m dialer.cli run --db ${{DIALER_DB}} --run-dir ${{DIALER_RUN_DIR}} --rules ${{DIALER_RULES}} --log-file ${{DIALER_LOG_FILE}} --grace ${{DIALER_GRACE}} $DIALER_RUN_ARGS
# SIGTERM lets live calls finish for --grace seconds, then hangs up what is left and exits 0
KillSignal=SIGTERM
TimeoutStopSec={stop_timeout}
Restart=on-failure
RestartSec=5
# exit 2 is a refusal the operator must fix (bad rules file, clock behind the last attempt): no restart loop
RestartPreventExitStatus=2
UMask=0077
NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=strict
ProtectHome=yes
ReadWritePaths={state_dir} {log_dir}
StateDirectory={state_name}
StateDirectoryMode=0700
LogsDirectory={log_name}
LogsDirectoryMode=0700

[Install]
WantedBy=multi-user.target
"""

ENV = """\
# Environment of the dialer service (mode 600: it may name a PostgreSQL URL with a password).
# Made by `dialer service env`; read by the unit's EnvironmentFile=.
DIALER_DB={state_dir}/dialer.db
# pbx.json (AMI host/port/user/secret, FastAGI port and token, CDR path) lives here; docs/SERVICE.md
DIALER_RUN_DIR={state_dir}/run
DIALER_RULES={prefix}/compliance_rules.yaml
DIALER_LOG_FILE={log_dir}/dialer.jsonl
DIALER_GRACE=120
# more `dialer run` flags, e.g. --campaign cn_m1 --campaign cn_m2
DIALER_RUN_ARGS=
"""


def _values(prefix: Path, user: str, group: str | None, env_file: Path, grace: float) -> dict[str, str]:
    return {"prefix": str(prefix), "user": user, "group": group or user, "env_file": str(env_file),
            "state_dir": "/var/lib/dialer", "state_name": "dialer", "log_dir": "/var/log/dialer", "log_name": "dialer",
            "stop_timeout": str(int(grace) + 30)}


@click.group()
def service() -> None:
    """Run the daemon as a systemd service (docs/SERVICE.md)."""


@service.command()
@click.option("--prefix", type=click.Path(path_type=Path, file_okay=False), default=Path("/opt/dialer"),
              show_default=True, help="Where the project is checked out (its .venv inside).")
@click.option("--user", default="dialer", show_default=True, help="The service's own user.")
@click.option("--group", default=None, help="Its group (default: the user's name).")
@click.option("--env-file", type=click.Path(path_type=Path), default=Path("/etc/dialer/dialer.env"), show_default=True,
              help="The environment file the unit reads (`dialer service env`).")
@click.option("--grace", type=click.FloatRange(min=0), default=120.0, show_default=True,
              help="The grace live calls get on stop; the unit waits 30 s longer.")
def unit(prefix: Path, user: str, group: str | None, env_file: Path, grace: float) -> None:
    """Print the systemd unit (install it as /etc/systemd/system/dialer.service)."""
    click.echo(UNIT.format(**_values(prefix.resolve(), user, group, env_file, grace)), nl=False)


@service.command()
@click.option("--prefix", type=click.Path(path_type=Path, file_okay=False), default=Path("/opt/dialer"),
              show_default=True, help="Where the project is checked out.")
def env(prefix: Path) -> None:
    """Print the environment file (install it as /etc/dialer/dialer.env, mode 600)."""
    click.echo(ENV.format(**_values(prefix.resolve(), "dialer", None, Path("/etc/dialer/dialer.env"), 120)), nl=False)
