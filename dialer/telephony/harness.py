"""Render asterisk-conf/ templates under var/run/, and start/stop the PBX, the carrier simulator
and the collectors' SIPp phones on a block of free ports. Used by tests, benchmarks, the demo and
`dialer asterisk`."""
from __future__ import annotations

import fcntl
import json
import logging
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from common.files import PRIVATE_UMASK, append_private, private_dir, write_private
from common.log import log_event
from common.paths import REPO
from common.wav import duration
from dialer.telephony.carrier import (
    BehaviourFile,
    load_behaviours,
    prepare_audio,
    render_dialplan,
    render_sound,
)
from dialer.telephony.pbx import CONNECTION_FILE, PbxConnection

log = logging.getLogger("dialer.telephony.harness")

CONF_DIR = REPO / "asterisk-conf"
DIALPLAN_DIR = REPO / "dialplans"
CORE_SOUNDS = Path("/usr/share/asterisk/sounds/en")
DEFAULT_RUN_DIR = Path("var/run")
AGI_TOKEN_FAMILY, AGI_TOKEN_KEY = "dialer", "agi_token"  # ${DB(dialer/agi_token)}: agi/server.py asks for it
WRITABLE = ("lib", "db", "keys", "agi-bin", "spool", "run", "log", "cache", "rec")


class HarnessError(RuntimeError):
    pass


@dataclass
class Ports:
    """Every port of one harness, derived from a base so several harnesses can coexist."""

    base: int
    agi: int

    @property
    def pbx_sip(self) -> int: return self.base + 60
    @property
    def pbx_ami(self) -> int: return self.base + 38
    @property
    def pbx_rtp(self) -> tuple[int, int]: return (self.base + 1000, self.base + 1998)
    @property
    def carrier_sip(self) -> int: return self.base + 160
    @property
    def carrier_ami(self) -> int: return self.base + 138
    @property
    def carrier_rtp(self) -> tuple[int, int]: return (self.base + 2000, self.base + 2998)
    def agent_sip(self, i: int) -> int: return self.base + 200 + i
    def agent_ctrl(self, i: int) -> int: return self.base + 300 + i
    def agent_rtp(self, i: int) -> tuple[int, int]: return (self.base + 3000 + 40 * i, self.base + 3038 + 40 * i)

    def needed(self, agents: int, carrier: bool = True) -> list[tuple[str, int]]:
        """Every port a harness listens on, with its role: what must be free before it starts."""
        out = [("PBX AMI", self.pbx_ami), ("PBX SIP", self.pbx_sip), ("FastAGI", self.agi)]
        out += [("PBX RTP", p) for p in range(self.pbx_rtp[0], self.pbx_rtp[1] + 1)]
        if carrier:
            out += [("carrier AMI", self.carrier_ami), ("carrier SIP", self.carrier_sip)]
            out += [("carrier RTP", p) for p in range(self.carrier_rtp[0], self.carrier_rtp[1] + 1)]
        for i in range(agents):
            out += [(f"agent{i + 1} SIPp SIP", self.agent_sip(i)), (f"agent{i + 1} SIPp control", self.agent_ctrl(i))]
            out += [(f"agent{i + 1} SIPp RTP", p) for p in range(self.agent_rtp(i)[0], self.agent_rtp(i)[1] + 1)]
        return out

    @staticmethod
    def span(agents: int) -> int:
        """How many ports from the base a harness with this many collector phones uses (AGI at base+573)."""
        return 3000 + 40 * agents


# Free ports are claimed in slots of PORT_SLOT on a fixed grid, so two claims never overlap partly.
PORT_SLOT = 1000
PORT_FLOOR, PORT_CEILING = 8000, 65536
LOCK_DIR = Path(tempfile.gettempdir()) / "dialer-ports"


class PortBlock:
    """Consecutive ports that were free when claimed, held against other processes until released."""

    def __init__(self, base: int, size: int, locks: list[int]):
        self.base = base
        self.size = size
        self._locks = locks

    def release(self) -> None:
        for fd in self._locks:
            os.close(fd)
        self._locks = []


def claim_ports(size: int, *, base: int | None = None) -> PortBlock:
    """A block of `size` consecutive ports free for TCP and UDP on this machine (at `base` if given,
    which must then lie on the grid).

    Every grid slot the block covers is locked with flock on a file under /tmp/dialer-ports/ (the lock
    goes with release() or the process), so concurrent test processes and checkouts never pick the same
    ports; then each port is bind-tested so ports used by anything else are skipped too. The scan starts
    at a random slot; slots inside the kernel's ephemeral range (outgoing connections) come last."""
    slots = -(-size // PORT_SLOT)
    if base is None:
        bases = list(range(PORT_FLOOR, PORT_CEILING - slots * PORT_SLOT + 1, PORT_SLOT))
        start = random.SystemRandom().randrange(len(bases))  # not the global generator a test may seed
        eph_lo, eph_hi = _ephemeral_range()
        order = sorted(bases[start:] + bases[:start],
                       key=lambda b: b <= eph_hi and b + slots * PORT_SLOT > eph_lo)
    else:
        order = [base]
    for candidate in order:
        locks = _lock_slots(candidate, slots)
        if locks is None:
            continue
        if first_busy_port(candidate, size) is None:
            return PortBlock(candidate, size, locks)
        for fd in locks:
            os.close(fd)
    where = f"at {base}" if base is not None else f"between {PORT_FLOOR} and {PORT_CEILING - 1}"
    raise HarnessError(f"no block of {size} free ports {where}")


def _lock_slots(base: int, slots: int) -> list[int] | None:
    if not LOCK_DIR.exists():
        LOCK_DIR.mkdir(exist_ok=True)
        try:
            os.chmod(LOCK_DIR, 0o1777)  # shared by every user's test runs
        except PermissionError:
            pass
    locks: list[int] = []
    for slot in range(base, base + slots * PORT_SLOT, PORT_SLOT):
        fd = _try_lock(LOCK_DIR / f"{slot}.lock")
        if fd is None:
            for held in locks:
                os.close(held)
            return None
        locks.append(fd)
    return locks


def _try_lock(path: Path) -> int | None:
    """A descriptor holding an exclusive flock on `path`; None if another process holds it (or it is
    another user's lock file we may not open)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    except PermissionError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def first_busy_port(base: int, size: int) -> int | None:
    """The first port of base … base+size-1 bound on any IPv4 address, TCP or UDP; None if all are free.
    TIME_WAIT leftovers don't count: Asterisk and asyncio servers bind with SO_REUSEADDR."""
    for port in range(base, base + size):
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as sock:
                if kind == socket.SOCK_STREAM:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("", port))
                except OSError:
                    return port
    return None


def port_holder(port: int) -> str | None:
    """Who holds `port` (TCP listen or UDP bound, IPv4 or IPv6): 'pid N (command line)', 'another
    user's process' when /proc does not tell us, or None when nobody is found."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6", "udp", "udp6"):
        try:
            rows = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if len(f) > 9 and int(f[1].rsplit(":", 1)[1], 16) == port and (table.startswith("udp") or f[3] == "0A"):
                inodes.add(f[9])
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                    return f"pid {proc.name} ({cmd[:120]})"
        except OSError:
            continue
    return "another user's process"


def _ephemeral_range() -> tuple[int, int]:
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


@dataclass
class InstanceInfo:
    name: str
    conf: str
    ami_port: int
    ami_user: str
    ami_secret: str
    sip_port: int
    pid: int | None = None


@dataclass
class HarnessState:
    """The harness's bookkeeping in <run_dir>/harness.json, for `down` and `status`: ports, processes,
    secrets. What the daemon reads is the PbxConnection next to it (pbx.json)."""

    run_dir: str
    ports: dict[str, int]
    agi_token: str
    pbx: InstanceInfo
    carrier: InstanceInfo
    agents: list[str] = field(default_factory=list)
    sipp_pids: dict[str, int] = field(default_factory=dict)
    behaviours: str | None = None
    booted_at: float | None = None
    with_carrier: bool = True
    phone_secrets: dict[str, str] = field(default_factory=dict)
    trunk_codec: str = "ulaw"
    dial_format: str = "e164"
    dial_country: str | None = None

    @classmethod
    def load(cls, run_dir: Path) -> "HarnessState":
        data = json.loads((run_dir / "harness.json").read_text())
        data["pbx"] = InstanceInfo(**data["pbx"])
        data["carrier"] = InstanceInfo(**data["carrier"])
        return cls(**data)

    def save(self) -> None:
        write_private(Path(self.run_dir) / "harness.json", json.dumps(asdict(self), indent=2))


def _open_private_log(path: Path):
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")


def _fill(text: str, values: dict[str, Any]) -> str:
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    return text


class AsteriskInstance:
    """One Asterisk process run from its own directory tree under the run dir."""

    def __init__(self, info: InstanceInfo, run_dir: Path):
        self.info = info
        self.run_dir = run_dir
        self.dir = run_dir / info.name
        self.proc: subprocess.Popen | None = None

    @property
    def conf(self) -> Path:
        return self.dir / "asterisk.conf"

    def render(self, values: dict[str, Any], extra: dict[str, str]) -> None:
        """Every rendered file is 0600 and every directory 0700: configs hold the AMI secret, the AGI
        token, SIP passwords and trunk credentials; logs, CDRs and recordings hold debtors' calls."""
        private_dir(self.dir)
        for sub in WRITABLE:
            private_dir(self.dir / sub)
        private_dir(self.dir / "log" / "cdr-csv")
        private_dir(self.dir / "log" / "cel-custom")  # cel_custom does not create it
        values = dict(values, NAME=self.info.name, RUN_DIR=self.run_dir.resolve())
        for src_dir in (CONF_DIR / "common", CONF_DIR / self.info.name):
            for src in src_dir.glob("*.conf"):
                write_private(self.dir / src.name, _fill(src.read_text(), values))
        for name, text in extra.items():
            target = self.dir / name
            if target.exists() and name == "pjsip.conf":
                append_private(target, _fill(text, values))
            else:
                write_private(target, _fill(text, values))

    def db_put(self, family: str, key: str, value: str, timeout: float = 10.0) -> None:
        """AMI `DBPut` on the running instance: how a secret reaches the dialplan without a config line,
        a log line (Asterisk logs every global variable it sets) or a process argument (`-rx`). AstDB
        lives in the instance's private db/ directory and survives restarts."""
        with socket.create_connection(("127.0.0.1", self.info.ami_port), timeout=timeout) as sock:
            f = sock.makefile("rwb")
            f.readline()  # banner

            def action(fields: dict[str, str]) -> dict[str, str]:
                f.write("".join(f"{k}: {v}\r\n" for k, v in fields.items()).encode() + b"\r\n")
                f.flush()
                while True:
                    msg: dict[str, str] = {}
                    for raw in iter(f.readline, b""):
                        line = raw.decode("utf-8", "replace").rstrip("\r\n")
                        if not line:
                            break
                        k, _, v = line.partition(": ")
                        msg[k] = v
                    if not msg:
                        raise HarnessError(f"{self.info.name}: AMI closed during {fields['Action']}")
                    if "Response" in msg:
                        return msg

            login = action({"Action": "Login", "Username": self.info.ami_user, "Secret": self.info.ami_secret,
                            "Events": "off"})
            if login.get("Response") != "Success":
                raise HarnessError(f"{self.info.name}: AMI login failed: {login.get('Message')}")
            put = action({"Action": "DBPut", "Family": family, "Key": key, "Val": value})
            if put.get("Response") != "Success":
                raise HarnessError(f"{self.info.name}: AMI DBPut {family}/{key} failed: {put.get('Message')}")
            action({"Action": "Logoff"})

    def ami_login_check(self, timeout: float = 10.0) -> None:
        """Log in to the instance's AMI and off again; HarnessError if refused."""
        with socket.create_connection(("127.0.0.1", self.info.ami_port), timeout=timeout) as sock:
            f = sock.makefile("rwb")
            if not f.readline().startswith(b"Asterisk Call Manager"):
                raise HarnessError(f"{self.info.name}: port {self.info.ami_port} does not speak AMI")
            f.write(f"Action: Login\r\nUsername: {self.info.ami_user}\r\nSecret: {self.info.ami_secret}\r\n"
                    "Events: off\r\n\r\n".encode())
            f.flush()
            reply = b""
            for raw in iter(f.readline, b""):
                if raw in (b"\r\n", b"\n"):
                    break
                reply += raw
            if b"Response: Success" not in reply:
                raise HarnessError(f"{self.info.name}: AMI login refused: {reply.decode(errors='replace').strip()}")
            f.write(b"Action: Logoff\r\n\r\n")
            f.flush()

    def start(self) -> None:
        if self.running():
            return
        logf = _open_private_log(self.dir / "log" / "console.log")
        self.proc = subprocess.Popen(
            ["asterisk", "-C", str(self.conf), "-f", "-n", "-q"],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
            umask=PRIVATE_UMASK,  # its logs, CDRs, recordings, astdb and control socket are private
        )
        self.info.pid = self.proc.pid

    def rx(self, command: str, timeout: float = 10.0) -> str:
        res = subprocess.run(["asterisk", "-C", str(self.conf), "-rx", command],
                             capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise HarnessError(f"{self.info.name}: asterisk -rx {command!r} failed: {res.stderr.strip() or res.stdout.strip()}")
        return res.stdout

    def wait_booted(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise HarnessError(f"{self.info.name} exited with {self.proc.returncode}; see {self.dir / 'log'}")
            try:
                out = self.rx("core waitfullybooted", timeout=max(1.0, deadline - time.monotonic()))
                if "fully booted" in out.lower():
                    return
                last = out
            except (HarnessError, subprocess.TimeoutExpired) as exc:
                last = str(exc)
            time.sleep(0.05)
        raise HarnessError(f"{self.info.name} did not boot in {timeout}s: {last}")

    def running(self) -> bool:
        pid = self.info.pid
        if not pid:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return (self.dir / "run" / "asterisk.ctl").exists()

    def stop(self, timeout: float = 10.0) -> None:
        pid = self.info.pid
        if not pid:
            return
        try:
            self.rx("core stop now", timeout=5)
        except Exception:  # noqa: BLE001 - fall back to signals below
            pass
        _wait_or_kill(pid, timeout, self.proc)
        self.info.pid = None
        self.proc = None

    def restart(self, crash: bool = False) -> None:
        """Stop (or SIGKILL, as a crash would) and start again, waiting until fully booted."""
        if crash:
            self.kill()
        else:
            self.stop()
        self.start()
        self.wait_booted()

    def kill(self) -> None:
        pid = self.info.pid
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _wait_or_kill(pid, 5.0, self.proc)
        for stale in ("asterisk.ctl", "asterisk.pid"):
            (self.dir / "run" / stale).unlink(missing_ok=True)
        self.info.pid = None
        self.proc = None


def _wait_or_kill(pid: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    sig_sent = False
    while True:
        if proc is not None:
            if proc.poll() is not None:
                return
        else:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            # reap if it is our child
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            except ChildProcessError:
                pass
        if time.monotonic() > deadline:
            if sig_sent:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    return
                if proc is not None:
                    proc.wait(5)
                return
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            sig_sent = True
            deadline = time.monotonic() + 3
        time.sleep(0.05)


class Harness:
    """The PBX, the carrier simulator and N collector phones, on loopback."""

    def __init__(self, run_dir: str | Path = DEFAULT_RUN_DIR, *, base_port: int | None = None,
                 agi_port: int | None = None,
                 agents: int | list[str] = 2, behaviours: str | Path | BehaviourFile | None = None,
                 queue_timeout: int = 30, trunk: tuple[str, int] | None = None, carrier: bool = True,
                 phones: str = "sipp", sip_bind: str = "127.0.0.1", pjsip_extra: str | Path | None = None,
                 trunk_country: str | None = None, codec: str | None = None, dial_format: str = "e164",
                 agent_audio: dict[str, str | Path] | None = None):
        self.run_dir = Path(run_dir).resolve()
        self.agent_audio = {k: Path(v) for k, v in (agent_audio or {}).items()}  # a collector's own voice (WAV)
        # without a base port, up() claims a free block (held until down()); the AGI port is base+573
        self.ports: Ports | None = Ports(base_port, agi_port or base_port + 573) if base_port is not None else None
        self._auto_ports = base_port is None
        self._agi_port = agi_port
        self._block: PortBlock | None = None
        self.agents = [f"agent{i + 1}" for i in range(agents)] if isinstance(agents, int) else list(agents)
        self.behaviours = behaviours
        self.queue_timeout = queue_timeout
        self.trunk = trunk
        self.with_carrier = carrier and trunk is None
        if phones not in ("sipp", "register"):
            raise ValueError("phones must be 'sipp' (test collectors) or 'register' (real SIP phones)")
        self.phones = phones
        self.sip_bind = sip_bind
        self.pjsip_extra = Path(pjsip_extra) if pjsip_extra else None
        from dialer.telephony.trunk import DialPlan, codec_for

        if codec not in (None, "alaw", "ulaw"):
            raise ValueError(f"codec must be alaw or ulaw, not {codec!r}")
        self.trunk_country = trunk_country.upper() if trunk_country else None
        self.codec = codec or codec_for(self.trunk_country)
        if self.codec != "ulaw" and self.with_carrier:
            raise ValueError("the carrier simulator speaks ulaw: alaw is for a real trunk (--trunk HOST:PORT)")
        DialPlan(dial_format, self.trunk_country)  # refuse a format it cannot apply, before anything starts
        self.dial_format = dial_format
        self.state: HarnessState | None = None
        self.pbx: AsteriskInstance | None = None
        self.carrier: AsteriskInstance | None = None
        self._sipp: dict[str, subprocess.Popen] = {}

    # -- rendering ---------------------------------------------------------------------------
    def _new_state(self) -> HarnessState:
        p = self.ports
        assert p is not None
        return HarnessState(
            run_dir=str(self.run_dir),
            ports={"base": p.base, "agi": p.agi, "pbx_sip": p.pbx_sip, "pbx_ami": p.pbx_ami,
                   "carrier_sip": p.carrier_sip, "carrier_ami": p.carrier_ami},
            agi_token=secrets.token_urlsafe(24),
            pbx=InstanceInfo("pbx", str(self.run_dir / "pbx" / "asterisk.conf"), p.pbx_ami, "dialer",
                             secrets.token_urlsafe(24), p.pbx_sip),
            carrier=InstanceInfo("carrier", str(self.run_dir / "carrier" / "asterisk.conf"), p.carrier_ami,
                                 "harness", secrets.token_urlsafe(24), p.carrier_sip),
            agents=self.agents,
        )

    def sounds_dir(self) -> Path:
        return self.run_dir / "sounds"

    def _default_sounds(self) -> dict[str, Path]:
        """Built-in audio for behaviour files: a human 'hello', a long voicemail greeting, the collector's voice."""
        sd = self.sounds_dir()
        sd.mkdir(parents=True, exist_ok=True)
        made = {}
        recipes = {
            "hello.wav": ["hello"],
            "voicemail_greeting.wav": ["vm-theperson", "vm-isunavail", "vm-intro", "vm-theperson", "vm-isunavail"],
            "collector.wav": ["hello", "one-moment-please", "demo-thanks"],
        }
        for name, parts in recipes.items():
            dst = sd / name
            if not dst.exists():
                srcs = [str(CORE_SOUNDS / f"{p}.wav") for p in parts if (CORE_SOUNDS / f"{p}.wav").exists()]
                if not srcs:
                    raise HarnessError(f"core sounds missing under {CORE_SOUNDS}: run scripts/setup")
                subprocess.run(["sox", *srcs, "-r", "8000", "-c", "1", "-b", "16", str(dst)], check=True,
                               capture_output=True)
            made[name] = dst
        ulaw = sd / "collector_ulaw.wav"
        if not ulaw.exists():
            subprocess.run(["sox", str(made["collector.wav"]), "-r", "8000", "-c", "1", "-e", "u-law", str(ulaw)],
                           check=True, capture_output=True)
        return made

    def _behaviour_file(self) -> BehaviourFile:
        if isinstance(self.behaviours, BehaviourFile):
            return self.behaviours
        if self.behaviours is None:
            return BehaviourFile(path="<none>")
        return load_behaviours(self.behaviours)

    def _carrier_dialplan(self, bf: BehaviourFile) -> str:
        defaults = self._default_sounds()
        base = Path(bf.path).parent if bf.path and not bf.path.startswith("<") else Path(".")
        audio_for: dict[str, tuple[Path, float]] = {}
        for b in bf.behaviours.values():
            if b.audio and b.audio not in audio_for:
                src = Path(b.audio)
                candidates = [src] if src.is_absolute() else [base / src, self.sounds_dir() / src]
                found = next((c for c in candidates if c.exists()), None)
                if found is None and src.name in defaults:
                    found = defaults[src.name]
                if found is None:
                    raise HarnessError(f"{bf.path}: {b.number}: audio {b.audio!r} not found (looked in {base})")
                noext = prepare_audio(found, self.sounds_dir())
                audio_for[b.audio] = (noext, duration(noext.with_suffix(".wav")))
            for sp in b.speech:
                if sp.sound not in audio_for:
                    try:
                        noext = render_sound(sp.sound, self.sounds_dir(), base)
                    except FileNotFoundError as exc:
                        raise HarnessError(f"{bf.path}: {b.number}: {exc}") from None
                    audio_for[sp.sound] = (noext, duration(noext.with_suffix(".wav")))
        return render_dialplan(bf, audio_for, self.run_dir / "carrier" / "rec")

    def _pbx_extra(self) -> dict[str, str]:
        p = self.ports
        pjsip, members = [], []
        assert self.state is not None and p is not None
        for i, name in enumerate(self.agents):
            if self.phones == "register":
                # a real SIP phone registers as <name> with the generated password (harness.json)
                password = self.state.phone_secrets.setdefault(name, secrets.token_urlsafe(12))
                pjsip += [
                    f"\n[{name}](ep-common)", "context=from-agent", f"aors={name}", f"auth={name}-auth",
                    f"[{name}-auth]", "type=auth", "auth_type=userpass", f"username={name}", f"password={password}",
                    f"[{name}]", "type=aor", "max_contacts=1", "remove_existing=yes", "qualify_frequency=30",
                ]
            else:
                pjsip += [
                    f"\n[{name}](ep-common)", "context=from-agent", f"aors={name}",
                    f"[{name}]", "type=aor", f"contact=sip:{name}@127.0.0.1:{p.agent_sip(i)}",
                    f"[{name}]", "type=identify", f"endpoint={name}", f"match=127.0.0.1:{p.agent_sip(i)}",
                ]
            members.append(f"member => PJSIP/{name},0,{name}")
        queues = "\n".join([
            "[general]", "shared_lastcall=yes", "",
            "[collectors]", "strategy=leastrecent", "timeout=15", "retry=1", "wrapuptime=0",
            "joinempty=yes", "leavewhenempty=no", "ringinuse=no", "autofill=yes",
            "announce-position=no", *members, "",
        ])
        return {"pjsip.conf": "\n".join(pjsip) + "\n", "queues.conf": queues}

    def render(self) -> HarnessState:
        private_dir(self.run_dir)
        p = self._claim_ports()
        state = self.state = self.state or self._new_state()
        trunk_host, trunk_port = self.trunk or ("127.0.0.1", p.carrier_sip)
        common = {"AGI_PORT": p.agi, "DIALPLAN_DIR": DIALPLAN_DIR,
                  "QUEUE_TIMEOUT": self.queue_timeout}
        self.pbx = AsteriskInstance(state.pbx, self.run_dir)
        self.carrier = AsteriskInstance(state.carrier, self.run_dir)
        pbx_vals = dict(common, AMI_PORT=p.pbx_ami, AMI_USER=state.pbx.ami_user, AMI_SECRET=state.pbx.ami_secret,
                        SIP_PORT=p.pbx_sip, RTP_START=p.pbx_rtp[0], RTP_END=p.pbx_rtp[1],
                        TRUNK_HOST=trunk_host, TRUNK_PORT=trunk_port, SIP_BIND=self.sip_bind, TRUNK_CODEC=self.codec)
        state.trunk_codec, state.dial_format, state.dial_country = self.codec, self.dial_format, self.trunk_country
        extra = self._pbx_extra()
        extra["pjsip_local.conf"] = self.pjsip_extra.read_text() if self.pjsip_extra else "; none\n"
        self.pbx.render(pbx_vals, extra)
        state.with_carrier = self.with_carrier
        bf = self._behaviour_file()
        state.behaviours = bf.path
        car_vals = dict(common, AMI_PORT=p.carrier_ami, AMI_USER=state.carrier.ami_user,
                        AMI_SECRET=state.carrier.ami_secret, SIP_PORT=p.carrier_sip, RTP_START=p.carrier_rtp[0],
                        RTP_END=p.carrier_rtp[1], PBX_SIP_PORT=p.pbx_sip)
        self.carrier.render(car_vals, {"extensions.conf": self._carrier_dialplan(bf)})
        self._render_sipp()
        self.state = state
        return state

    def _render_sipp(self) -> None:
        sd = private_dir(self.run_dir / "sipp")
        text = (CONF_DIR / "sipp" / "agent_uas.xml").read_text()
        write_private(sd / "agent_uas.xml", _fill(text, {"AUDIO": self.sounds_dir() / "collector_ulaw.wav"}))
        for name, src in self.agent_audio.items():  # this collector says what the test gives it (µ-law for SIPp)
            ulaw = self.sounds_dir() / f"{name}_ulaw.wav"
            subprocess.run(["sox", str(src), "-r", "8000", "-c", "1", "-e", "u-law", str(ulaw)], check=True,
                           capture_output=True)
            write_private(sd / f"agent_uas-{name}.xml", _fill(text, {"AUDIO": ulaw}))

    def _claim_ports(self) -> Ports:
        """This harness's ports: a free block claimed now (the same one again after a down()), or the
        explicit base port; either way every port it will listen on is checked free first, and a busy
        one is named with its role and who holds it."""
        span = Ports.span(len(self.agents))
        if self._auto_ports:
            if self._block is None:
                self._block = claim_ports(span, base=self.ports.base if self.ports else None)
                self.ports = Ports(self._block.base, self._agi_port or self._block.base + 573)
        assert self.ports is not None
        self.check_ports()
        return self.ports

    def check_ports(self) -> None:
        """Raise HarnessError naming the first needed port that something already holds, and who."""
        assert self.ports is not None
        span = Ports.span(len(self.agents))
        if self.ports.base + span > PORT_CEILING:
            raise HarnessError(f"base port {self.ports.base} + the {span} ports a harness uses passes 65535: "
                               f"choose a base port of at most {PORT_CEILING - span}")
        agents = len(self.agents) if self.phones == "sipp" else 0
        for role, port in self.ports.needed(agents, carrier=self.with_carrier):
            if first_busy_port(port, 1) is not None:
                holder = port_holder(port) or "a process that did not say (or a socket in TIME_WAIT)"
                raise HarnessError(
                    f"port {port} ({role}) is in use by {holder}: stop it (a leftover harness: "
                    f"`dialer asterisk down --run-dir DIR`), or choose another --base-port (or none for a free block)")

    # -- lifecycle -----------------------------------------------------------------------------
    def up(self, timeout: float = 30.0) -> PbxConnection:
        """Render, start both instances and the collectors' phones, wait until fully booted; return how
        to reach the PBX (also written to <run_dir>/pbx.json for `dialer run`)."""
        t0 = time.monotonic()
        existing = self.run_dir / "harness.json"
        if existing.exists():
            try:
                old = HarnessState.load(self.run_dir)
                for info in (old.pbx, old.carrier):
                    if info.pid and _alive(info.pid):
                        raise HarnessError(f"a harness is already running from {self.run_dir} (pid {info.pid}); "
                                           "run `dialer asterisk down` first")
            except (KeyError, TypeError, json.JSONDecodeError):
                pass
        try:
            state = self.render()
        except Exception:
            self._release_ports()
            raise
        assert self.pbx and self.carrier
        if self.with_carrier:
            self.carrier.start()
        self.pbx.start()
        if self.phones == "sipp":
            self._start_sipp()
        state.save()
        try:
            if self.with_carrier:
                self.carrier.wait_booted(timeout)
            self.pbx.wait_booted(timeout)
            self.pbx.db_put(AGI_TOKEN_FAMILY, AGI_TOKEN_KEY, state.agi_token)  # proves the PBX's AMI login
            self._confirm_ready()
        except Exception:
            self.down()
            raise
        state.booted_at = time.time()
        state.save()
        connection = self.connection
        connection.save(self.run_dir)
        log_event(log, "harness.up", seconds=round(time.monotonic() - t0, 3), run_dir=self.run_dir,
                  base_port=state.ports["base"])
        return connection

    def _confirm_ready(self) -> None:
        """Before saying "up": each instance's AMI accepts our login and its SIP transport is bound to
        its port; the collectors' SIPp phones are still running."""
        assert self.pbx and self.carrier and self.state is not None
        for inst in ([self.carrier] if self.with_carrier else []) + [self.pbx]:
            if inst is not self.pbx:
                inst.ami_login_check()
            out = inst.rx("pjsip show transports")
            if f":{inst.info.sip_port}" not in out:
                raise HarnessError(f"{inst.info.name}: SIP transport not bound to port {inst.info.sip_port}: "
                                   f"{out.strip()[:200]}")
        for name, proc in self._sipp.items():
            if proc.poll() is not None:
                err = self.run_dir / "sipp" / f"{name}.log"
                raise HarnessError(f"collector phone {name} (SIPp) exited with {proc.returncode}; see {err}")

    @property
    def connection(self) -> PbxConnection:
        """How the daemon reaches this harness's PBX."""
        state = self.state or HarnessState.load(self.run_dir)
        return PbxConnection(ami_port=state.pbx.ami_port, ami_user=state.pbx.ami_user,
                             ami_secret=state.pbx.ami_secret, agi_port=state.ports["agi"],
                             agi_token=state.agi_token, cdr_path=str(self.cdr_path()), members=tuple(state.agents),
                             dial_format=state.dial_format, dial_country=state.dial_country)

    def _start_sipp(self) -> None:
        assert self.state is not None
        scen = self.run_dir / "sipp" / "agent_uas.xml"
        assert self.ports is not None
        for i, name in enumerate(self.agents):
            lo, _hi = self.ports.agent_rtp(i)
            logf = _open_private_log(self.run_dir / "sipp" / f"{name}.log")
            own = self.run_dir / "sipp" / f"agent_uas-{name}.xml"
            proc = subprocess.Popen(
                ["sipp", "-sf", str(own if name in self.agent_audio else scen), "-i", "127.0.0.1", "-p", str(self.ports.agent_sip(i)),
                 "-mi", "127.0.0.1", "-mp", str(lo), "-ci", "127.0.0.1", "-cp", str(self.ports.agent_ctrl(i)), "-nostdin", "-trace_err",
                 "-error_file", str(self.run_dir / "sipp" / f"{name}.err")],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, cwd=self.run_dir / "sipp",
                start_new_session=True, umask=PRIVATE_UMASK,
            )
            self._sipp[name] = proc
            self.state.sipp_pids[name] = proc.pid

    def down(self) -> None:
        state = self.state
        if state is None and (self.run_dir / "harness.json").exists():
            state = self.state = HarnessState.load(self.run_dir)
        if state is None:
            self._release_ports()
            return
        (self.run_dir / CONNECTION_FILE).unlink(missing_ok=True)
        for name, pid in list(state.sipp_pids.items()):
            _wait_or_kill(pid, 0.0, self._sipp.get(name))
            state.sipp_pids.pop(name, None)
        for info in (state.pbx, state.carrier):
            (self._own(info) or AsteriskInstance(info, self.run_dir)).stop()
        state.booted_at = None
        state.save()
        self._release_ports()

    def _release_ports(self) -> None:
        if self._block is not None:
            self._block.release()
            self._block = None

    def _own(self, info: InstanceInfo) -> AsteriskInstance | None:
        for inst in (self.pbx, self.carrier):
            if inst is not None and inst.info is info:
                return inst
        return None

    def status(self) -> dict[str, Any]:
        state = self.state
        if state is None:
            if not (self.run_dir / "harness.json").exists():
                return {"running": False, "run_dir": str(self.run_dir)}
            state = HarnessState.load(self.run_dir)
        out: dict[str, Any] = {"run_dir": str(self.run_dir), "ports": state.ports}
        for info in (state.pbx, state.carrier):
            inst = AsteriskInstance(info, self.run_dir)
            entry: dict[str, Any] = {"pid": info.pid, "running": inst.running(), "ami_port": info.ami_port,
                                     "sip_port": info.sip_port}
            if entry["running"]:
                try:
                    entry["uptime"] = inst.rx("core show uptime seconds").strip().splitlines()[0]
                    entry["channels"] = inst.rx("core show channels count").strip().splitlines()[0]
                except HarnessError as exc:
                    entry["error"] = str(exc)
            out[info.name] = entry
        out["agents"] = {n: {"pid": state.sipp_pids.get(n), "running": bool(state.sipp_pids.get(n)) and _alive(state.sipp_pids[n])}
                         for n in state.agents}
        out["running"] = out["pbx"]["running"] and (out["carrier"]["running"] or not state.with_carrier)
        return out

    def add_carrier_peer(self, name: str, pbx_sip_port: int, timeout: float = 10.0) -> None:
        """Let another PBX on 127.0.0.1:`pbx_sip_port` use this harness's carrier simulator as its trunk
        (several dialer servers sharing one carrier: that harness is started with
        `trunk=("127.0.0.1", <this carrier's SIP port>)`). Same dialplan and behaviours as this PBX."""
        assert self.carrier is not None and self.state is not None
        conf = self.run_dir / "carrier" / "pjsip.conf"
        conf.write_text(conf.read_text() + "\n".join([
            "", f"[{name}]", "type=endpoint", "transport=udp", "context=from-pbx", "disallow=all", "allow=ulaw",
            "direct_media=no", "media_address=127.0.0.1", "bind_rtp_to_media_address=yes", "rtp_symmetric=yes",
            "dtmf_mode=rfc4733", f"aors={name}", f"[{name}]", "type=aor", f"contact=sip:127.0.0.1:{pbx_sip_port}",
            f"[{name}]", "type=identify", f"endpoint={name}", f"match=127.0.0.1:{pbx_sip_port}", ""]))
        self.carrier.rx("module reload res_pjsip.so")
        deadline = time.monotonic() + timeout
        import re

        while not re.search(rf"Endpoint:\s+{re.escape(name)}[\s/]", self.carrier.rx("pjsip show endpoints")):
            if time.monotonic() > deadline:
                raise HarnessError(f"the carrier did not load the peer {name} (127.0.0.1:{pbx_sip_port})")
            time.sleep(0.2)

    def cdr_path(self) -> Path:
        """The PBX's CDR file (cdr_csv Master.csv; uniqueid = our call id)."""
        return self.run_dir / "pbx" / "log" / "cdr-csv" / "Master.csv"

    def recordings(self, number: str) -> list[Path]:
        """What the callee at `number` heard, one WAV per answered call, oldest first."""
        d = self.run_dir / "carrier" / "rec" / number
        return sorted(d.glob("*-heard.wav"), key=lambda p: p.stat().st_mtime) if d.exists() else []

    def recording_for(self, number: str, call_id: str) -> Path:
        return self.run_dir / "carrier" / "rec" / number / f"{call_id}-heard.wav"

    def said_for(self, number: str, call_id: str) -> Path:
        """What the callee at `number` said into the call (the carrier's transmitted audio)."""
        return self.run_dir / "carrier" / "rec" / number / f"{call_id}-said.wav"

    def reset_recordings(self) -> None:
        shutil.rmtree(self.run_dir / "carrier" / "rec", ignore_errors=True)
        private_dir(self.run_dir / "carrier" / "rec")

    def reload_behaviours(self, behaviours: str | Path | BehaviourFile) -> None:
        """Swap the carrier's behaviour file on a running harness."""
        assert self.carrier is not None
        self.behaviours = behaviours
        bf = self._behaviour_file()
        write_private(self.carrier.dir / "extensions.conf", self._carrier_dialplan(bf))
        self.carrier.rx("dialplan reload")

    def __enter__(self) -> "Harness":
        self.up()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.down()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
