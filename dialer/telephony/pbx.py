"""How the daemon reaches one PBX: AMI to drive it, the FastAGI port and token the PBX calls back on
(always loopback), the collectors' queue members and the CDR file. `dialer asterisk up` writes it to
<run_dir>/pbx.json; `dialer run` reads it."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from common.files import write_private

CONNECTION_FILE = "pbx.json"


@dataclass(frozen=True)
class PbxConnection:
    """Everything `dialer run` reads about the PBX; nothing about the processes that run it."""

    ami_port: int
    ami_user: str
    ami_secret: str
    agi_port: int
    agi_token: str
    cdr_path: str
    members: tuple[str, ...] = ()
    ami_host: str = "127.0.0.1"
    dial_format: str = "e164"         # how numbers leave on the trunk: e164 | international | national
    dial_country: str | None = None   # the trunk's own region (CN, GB, US) for national/international

    def dial_plan(self):  # -> dialer.telephony.trunk.DialPlan | None
        from dialer.telephony.trunk import DialPlan

        return None if self.dial_format == "e164" else DialPlan(self.dial_format, self.dial_country)

    @classmethod
    def load(cls, run_dir: Path) -> PbxConnection:
        data = json.loads((Path(run_dir) / CONNECTION_FILE).read_text())
        data["members"] = tuple(data.get("members", ()))
        return cls(**data)

    def save(self, run_dir: Path) -> None:
        """Write atomically, readable by the owner only (it holds the AMI secret and the AGI token)."""
        write_private(Path(run_dir) / CONNECTION_FILE,
                      json.dumps(dict(asdict(self), members=list(self.members)), indent=2))
