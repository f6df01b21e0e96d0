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


PRIVATE_UMASK = 0o077  # what the service's processes create is readable by its own user only


def private_dir(path: str | Path) -> Path:
    """Create `path` (and parents) if needed; the directory itself is made 0700."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def append_private(path: str | Path, text: str) -> None:
    """Append to `path`, creating it 0600; an existing file is made 0600 too."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(text)


def touch_private(path: str | Path) -> None:
    """Make sure `path` exists and is 0600 (before a library such as SQLite opens it with its own mode).

    An existing file is only chmod-ed, never opened: closing any descriptor of a file drops every POSIX lock
    this process holds on it, so opening and closing a database SQLite already has open here would cost
    that connection its locks (the next connection from elsewhere then deletes the WAL it writes to)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        return
    os.close(fd)
