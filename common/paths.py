"""Where the repository's own files are (campaigns, scripts, dialplans, manifests), for code run from a checkout."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
