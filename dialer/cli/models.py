"""`dialer models fetch`: download official speech models and voices, verify their checksums, install them."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from agi.media.models import (
    ASR_MANIFEST,
    VOICE_MANIFEST,
    Entry,
    FetchError,
    install,
    load_asr_manifest,
    load_voice_manifest,
    pick,
)
from common.yamlfile import ConfigError


@click.command("fetch")
@click.option("--asr", "asr", type=click.Choice(["zh", "en"]), help="Vosk model for this language.")
@click.option("--voice", "voice", type=click.Choice(["zh-CN", "en-US"]), help="Piper voice for this locale.")
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path),
              help="Install folder (default: models/asr for --asr, voices for --voice).")
@click.option("--asr-manifest", type=click.Path(dir_okay=False, path_type=Path), default=ASR_MANIFEST,
              show_default=True, help="Speech-recognition model manifest (URL, size, SHA-256, licence).")
@click.option("--voice-manifest", type=click.Path(dir_okay=False, path_type=Path), default=VOICE_MANIFEST,
              show_default=True, help="Voice manifest (which Piper voice per locale).")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds without data before giving up.")
def fetch(asr: str | None, voice: str | None, dest: Path | None, asr_manifest: Path, voice_manifest: Path,
          timeout: float) -> None:
    """Download official speech models / voices, verify their checksums, install them atomically."""
    if not asr and not voice:
        raise click.UsageError("say what to fetch: --asr zh|en and/or --voice zh-CN|en-US")
    jobs: list[tuple[Entry, Path, Path]] = []
    try:
        if asr:
            entry = pick(load_asr_manifest(asr_manifest), asr)
            jobs.append((entry, dest or asr_manifest.parent, asr_manifest.with_suffix(".lock")))
        if voice:
            entry = pick(load_voice_manifest(voice_manifest), voice)
            jobs.append((entry, dest or voice_manifest.parent, voice_manifest.with_suffix(".lock")))
    except (ConfigError, FetchError) as exc:
        raise click.ClickException(str(exc)) from None
    last = [0.0]

    def progress(url: str, n: int) -> None:
        if time.monotonic() - last[0] > 1.0:
            last[0] = time.monotonic()
            click.echo(f"  {Path(url).name}: {n / 1e6:.1f} MB", err=True)

    for entry, target, lock in jobs:
        click.echo(f"fetching {entry.kind} {entry.name} ({entry.key}, licence: {entry.licence or 'see model card'})")
        try:
            path = install(entry, target, lock, timeout=timeout, progress=progress)
        except FetchError as exc:
            click.echo(f"error: {exc}; nothing was replaced", err=True)
            sys.exit(1)
        click.echo(f"installed {entry.name} -> {path}")
