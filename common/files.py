"""Writing files that hold secrets: private to the service's user from the first byte, replaced atomically."""
from __future__ import annotations

import os
from pathlib import Path


def write_private(path: str | Path, text: str) -> None:
    """Write `text` to `path` readable by the owner only (0600), never visible half-written: a temporary
    file created 0600 next to it, then renamed over it."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)  # an existing .tmp keeps its old mode through O_CREAT
    tmp.replace(path)
