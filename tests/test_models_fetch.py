"""`dialer models fetch`: checksums, sizes, trust-on-first-fetch lock, atomic install; served from 127.0.0.1 only."""
import hashlib
import io
import threading
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from agi.media.models import (
    Download,
    Entry,
    FetchError,
    install,
    load_asr_manifest,
    read_lock,
)
from dialer.cli.models import fetch


def make_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


GOOD = make_zip({"vosk-model-tiny/am/final.mdl": b"acoustic model v1", "vosk-model-tiny/conf/model.conf": b"x"})


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry(url, digest=None, size=None, name="vosk-model-tiny"):
    return Entry(name, "asr", "en", (Download(url, digest, size),), True, "Apache-2.0")


def leftovers(dest: Path):
    return [p.name for p in dest.iterdir() if p.name.startswith(".")]


def test_good_archive_is_verified_and_installed(server, tmp_path):
    root, base = server
    (root / "m.zip").write_bytes(GOOD)
    dest = tmp_path / "models"
    path = install(entry(f"{base}/m.zip", sha(GOOD), len(GOOD)), dest, dest / "manifest.lock")
    assert path == dest / "vosk-model-tiny"
    assert (path / "am" / "final.mdl").read_bytes() == b"acoustic model v1"  # top folder stripped
    assert leftovers(dest) == []


def test_corrupted_download_never_replaces_a_working_model(server, tmp_path):
    root, base = server
    dest = tmp_path / "models"
    (root / "m.zip").write_bytes(GOOD)
    install(entry(f"{base}/m.zip", sha(GOOD)), dest, dest / "lock")
    corrupted = bytearray(GOOD)
    corrupted[40] ^= 0xFF
    (root / "m.zip").write_bytes(bytes(corrupted))
    with pytest.raises(FetchError, match="does not match the manifest"):
        install(entry(f"{base}/m.zip", sha(GOOD)), dest, dest / "lock")
    assert (dest / "vosk-model-tiny" / "am" / "final.mdl").read_bytes() == b"acoustic model v1"
    assert leftovers(dest) == []


def test_null_checksum_is_recorded_on_first_fetch_and_enforced_after(server, tmp_path):
    root, base = server
    dest = tmp_path / "models"
    lock = dest / "manifest.lock"
    url = f"{base}/m.zip"
    (root / "m.zip").write_bytes(GOOD)
    install(entry(url), dest, lock)
    assert read_lock(lock) == {url: sha(GOOD)}
    install(entry(url), dest, lock)  # same bytes: fine
    (root / "m.zip").write_bytes(make_zip({"vosk-model-tiny/am/final.mdl": b"something else"}))
    with pytest.raises(FetchError, match="lock file"):
        install(entry(url), dest, lock)
    assert (dest / "vosk-model-tiny" / "am" / "final.mdl").read_bytes() == b"acoustic model v1"


def test_wrong_size_and_missing_file_and_bad_archive(server, tmp_path):
    root, base = server
    dest = tmp_path / "models"
    (root / "m.zip").write_bytes(GOOD)
    with pytest.raises(FetchError, match="manifest says"):
        install(entry(f"{base}/m.zip", size=len(GOOD) + 1), dest, dest / "lock")
    with pytest.raises(FetchError, match="404"):
        install(entry(f"{base}/missing.zip"), dest, dest / "lock")
    (root / "evil.zip").write_bytes(make_zip({"../../escape.txt": b"x"}))
    with pytest.raises(FetchError, match="escape"):
        install(entry(f"{base}/evil.zip"), dest, dest / "lock")
    (root / "junk.zip").write_bytes(b"not an archive at all")
    with pytest.raises(FetchError, match="not a zip or tar"):
        install(entry(f"{base}/junk.zip"), dest, dest / "lock")
    assert not (tmp_path / "escape.txt").exists() and not (dest / "vosk-model-tiny").exists()
    assert leftovers(dest) == []


def test_voice_files_from_a_file_url(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "v.onnx").write_bytes(b"onnx")
    (src / "v.onnx.json").write_bytes(b"{}")
    e = Entry("zh_CN-test-medium", "voice", "zh-CN",
              (Download((src / "v.onnx").as_uri(), sha(b"onnx"), 4), Download((src / "v.onnx.json").as_uri(), None, None)),
              False, None)
    path = install(e, tmp_path / "voices", tmp_path / "voices" / "manifest.lock")
    assert sorted(p.name for p in path.iterdir()) == ["v.onnx", "v.onnx.json"]


def test_cli_fetches_from_a_manifest_and_reports_errors(server, tmp_path):
    root, base = server
    (root / "m.zip").write_bytes(GOOD)
    manifest = tmp_path / "asr" / "manifest.yaml"
    manifest.parent.mkdir()
    manifest.write_text(f"version: 1\nmodels:\n  vosk-model-tiny:\n    lang: en\n    licence: Apache-2.0\n"
                        f"    archive: {{url: '{base}/m.zip', sha256: '{sha(GOOD)}', size: {len(GOOD)}}}\n")
    result = CliRunner().invoke(fetch, ["--asr", "en", "--asr-manifest", str(manifest)])
    assert result.exit_code == 0, result.output
    assert (manifest.parent / "vosk-model-tiny" / "conf" / "model.conf").exists()
    manifest.write_text("version: 1\nmodels:\n  m:\n    lang: fr\n")
    result = CliRunner().invoke(fetch, ["--asr", "en", "--asr-manifest", str(manifest)])
    assert result.exit_code == 1 and "manifest.yaml:4: models.m.lang: expected zh or en" in result.output
    assert CliRunner().invoke(fetch, []).exit_code == 2


def test_shipped_manifests_parse():
    from agi.media.models import load_voice_manifest

    assert {e.key for e in load_asr_manifest()} == {"zh", "en"}
    voices = load_voice_manifest()
    assert {e.key for e in voices} == {"zh-CN", "en-US"}
    assert all(d.url.startswith("https://") for e in voices for d in e.files)


def test_a_truncated_or_corrupt_archive_is_a_one_line_error_and_the_old_model_stays(server, tmp_path):
    import tarfile

    root, base = server
    dest = tmp_path / "models"
    (root / "m.zip").write_bytes(GOOD)
    install(entry(f"{base}/m.zip"), dest, dest / "lock")  # a working model
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        data = b"x" * 200_000
        info = tarfile.TarInfo("vosk-model-tiny/am/final.mdl")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    (root / "cut.tar.gz").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    corrupt = bytearray(GOOD)
    corrupt[40:60] = b"\xff" * 20  # a member's bytes, the zip's directory intact
    (root / "bad.zip").write_bytes(bytes(corrupt))
    for name in ("cut.tar.gz", "bad.zip"):
        with pytest.raises(FetchError) as err:
            install(entry(f"{base}/{name}"), dest, dest / "lock2")
        assert name in str(err.value) and "\n" not in str(err.value)
    assert (dest / "vosk-model-tiny" / "am" / "final.mdl").read_bytes() == b"acoustic model v1"
    assert leftovers(dest) == []
