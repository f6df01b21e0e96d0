"""A throwaway PostgreSQL server for tests and benchmarks: `initdb` in a temporary directory, `postgres`
on a free loopback port, databases created on demand, the server stopped by its PID.

Debian's binaries (/usr/lib/postgresql/NN/bin, installed by scripts/setup). `initdb` refuses to run as
root, so as root the server runs as the `postgres` user (setpriv) in a directory it owns.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg


class ClusterError(RuntimeError):
    """The server could not be started (what to do is in the message)."""


def pg_bindir() -> Path:
    env = os.environ.get("DIALER_PG_BIN")
    candidates = [env] if env else sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "postgres").exists():
            return Path(c)
    raise ClusterError("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin): run scripts/setup "
                       "(Debian package postgresql) or set DIALER_PG_BIN")


class Cluster:
    """`c = Cluster().start(port); url = c.create_database("t1"); …; c.stop()`."""

    def __init__(self, base: str | Path | None = None):
        self.bindir = pg_bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="dialer-pg-", dir=base))
        self.data = self.dir / "data"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise ClusterError("running as root needs the `postgres` user (Debian package postgresql)") from None
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self._as = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups"]

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self._as, *args], capture_output=True, text=True, cwd=self.dir, timeout=120)

    def start(self, port: int, timeout: float = 30.0) -> "Cluster":
        """Start on `port` (claimed by the caller: dialer.telephony.harness.claim_ports, which the store
        may not import)."""
        r = self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                      "--no-locale", "-E", "UTF8", "--no-sync")
        if r.returncode != 0:
            raise ClusterError(f"initdb failed: {r.stderr.strip() or r.stdout.strip()}")
        self.port = port
        self.start_server(timeout)
        return self

    def start_server(self, timeout: float = 30.0) -> None:
        """Start the server process on the initialised directory and wait until it accepts connections."""
        log = open(self.dir / "server.log", "ab")
        self.proc = subprocess.Popen(
            [*self._as, str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-k", str(self.dir), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200",
             "-c", "shared_buffers=32MB"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise ClusterError(f"postgres exited ({self.proc.returncode}): "
                                   f"{(self.dir / 'server.log').read_text(errors='replace')[-2000:]}")
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise ClusterError(f"postgres did not accept connections within {timeout:.0f} s")
                time.sleep(0.1)

    def stop_server(self) -> None:
        """Fast shutdown by the server's PID (clients are disconnected; the data stays): an outage."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def restart(self, down: float = 0.0) -> None:
        """Stop the server, stay down `down` seconds, start it again (what `pg_ctl restart -m fast` does)."""
        self.stop_server()
        time.sleep(down)
        self.start_server()

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new empty database (or a copy of `template`); returns its URL."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown by the server's PID, then remove the directory."""
        self.stop_server()
        shutil.rmtree(self.dir, ignore_errors=True)

