"""Cached frozen-encoder vectors for the bias-axis benchmarks, through the project's one embedding path.

`cached_vectors` embeds with `core.vectors.encoding.encode_texts` (packaged all-MiniLM-L6-v2, all layers,
`max_chunks` windows of `max_length` tokens) and keeps every vector in one .npz per encoder + window setting,
keyed by a hash of its text, so a second run with the same texts embeds nothing and an interrupted run keeps the
batches it saved.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DEFAULT_ENCODER = "packaged:all-MiniLM-L6-v2"
logger = logging.getLogger("leaning_vectors")


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def cached_vectors(texts: Sequence[str], *, cache_dir: str | Path, encoder_spec: str = DEFAULT_ENCODER,
                   max_length: int = 256, max_chunks: int = 1, batch_size: int = 32,
                   save_every: int = 1024) -> np.ndarray:
    """`(len(texts), hidden)` float32 unit vectors of `texts`, embedding only those not cached yet."""
    key = hashlib.sha256(f"{encoder_spec}|{max_length}|{max_chunks}".encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"vectors_{key}.npz"
    stored: dict[str, np.ndarray] = {}
    if path.exists():
        data = np.load(path)
        stored = dict(zip(data["hashes"].tolist(), data["vectors"]))
    hashes = [text_hash(str(t)) for t in texts]
    todo = list(dict.fromkeys(h for h in hashes if h not in stored))
    if todo:
        import torch

        from opensentiment_pipeline.core.model import modeling
        from opensentiment_pipeline.core.vectors import encoding

        torch.set_num_threads(1)
        by_hash = {h: str(t) for h, t in zip(hashes, texts)}
        tokenizer = modeling.load_tokenizer(encoder_spec)
        encoder = modeling.load_encoder(encoder_spec, num_layers=None)
        start = time.perf_counter()
        for first in range(0, len(todo), save_every):
            part = todo[first:first + save_every]
            vectors = encoding.encode_texts(encoder, tokenizer, [by_hash[h] for h in part], batch_size=batch_size,
                                            max_length=max_length, device="cpu", max_chunks=max_chunks)
            stored.update(zip(part, vectors))
            _save(path, stored)
            logger.info("%s: %d / %d texts embedded (%.0f s)", path.name, first + len(part), len(todo),
                        time.perf_counter() - start)
    return np.stack([stored[h] for h in hashes]).astype(np.float32)


def _save(path: Path, stored: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, hashes=np.array(list(stored)), vectors=np.stack(list(stored.values())))
    tmp.replace(path)
