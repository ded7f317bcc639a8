"""How well a set of article vectors keeps topics: same-topic precision@k, its chance level, cluster NMI.

Fine-tuning an encoder for three sentiment classes folds topics together: on 1,500 ABP articles the
same-source-topic precision@10 of a sentiment adapter's vectors was 0.151 against 0.274 for the frozen base
MiniLM (benchmarks/topic_vectors.py --n 1500). That is why every article gets a topic vector from the frozen base
encoder beside its sentiment vector (`encoding.embed_articles`); `topic_report` measures both on the sources that carry topic labels.

    >>> topic_precision_at_k(np.array([[1.0, 0], [0.9, 0.1], [0, 1.0], [0.1, 0.9]]), ["a", "a", "b", "b"], k=1)
    1.0
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

# Queries per block when ranking neighbours: bounds the (block, n) similarity matrix.
_QUERY_BLOCK = 1024


def topic_precision_at_k(vectors: np.ndarray, topics: Sequence[Any], *, k: int = 10,
                         max_queries: int | None = None, seed: int = 0) -> float:
    """Mean share of each article's `k` nearest neighbours (cosine, itself excluded) that share its topic.

    Only articles with a topic take part (as queries and as neighbours). Chance level is about
    `topic_chance(topics)`.

    Args:
        vectors: `(n, dimensions)`, aligned with `topics`.
        topics: one label per row; None / NaN = unknown.
        max_queries: score a seeded random sample of this many queries (neighbours still come from all rows),
            which keeps 100k-article corpora cheap; None = every row.
    """
    matrix, labels = _labelled(vectors, topics)
    if k < 1 or len(labels) <= k:
        raise ValueError(f"need more than k={k} articles with a topic (and k >= 1); got {len(labels)}")
    unit = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    queries = np.arange(len(labels))
    if max_queries is not None and max_queries < len(queries):
        queries = np.sort(np.random.default_rng(seed).choice(queries, max_queries, replace=False))
    hits = []
    for start in range(0, len(queries), _QUERY_BLOCK):
        rows = queries[start : start + _QUERY_BLOCK]
        sim = unit[rows] @ unit.T  # (block, n)
        sim[np.arange(len(rows)), rows] = -np.inf
        nearest = np.argpartition(-sim, k, axis=1)[:, :k]  # (block, k)
        hits.append((labels[nearest] == labels[rows][:, None]).mean(axis=1))
    return float(np.concatenate(hits).mean())


def topic_chance(topics: Sequence[Any]) -> float:
    """Expected same-topic share of a random neighbour: the sum of squared topic shares."""
    labels = pd.Series(list(topics)).dropna()
    if labels.empty:
        raise ValueError("no article has a topic")
    return float((labels.value_counts(normalize=True) ** 2).sum())


def cluster_topic_nmi(clusters: Sequence[int], topics: Sequence[Any]) -> float:
    """Normalised mutual information between cluster ids and topics over the articles with a topic.

    Noise (cluster -1) counts as one more cluster, so a map that calls most articles noise scores low.
    """
    from sklearn.metrics import normalized_mutual_info_score

    clusters = np.asarray(clusters)
    if len(clusters) != len(topics):
        raise ValueError(f"clusters and topics must align; got {len(clusters)} and {len(topics)}")
    known = pd.Series(list(topics)).notna().to_numpy()
    if not known.any():
        raise ValueError("no article has a topic")
    return float(normalized_mutual_info_score(np.asarray(list(topics), dtype=object)[known].astype(str),
                                              clusters[known]))


def topic_report(vectors: dict[str, np.ndarray], topics: Sequence[Any], *, k: int = 10,
                 max_queries: int | None = 2000) -> dict[str, float]:
    """`topic_precision_at_{k}_<name>` per vector set, plus `topic_chance` and `num_topic_labelled`.

    Empty when fewer than k + 1 articles have a topic (nothing to measure, e.g. the demo corpus).
    """
    labelled = int(pd.Series(list(topics)).notna().sum())
    if labelled <= k:
        return {}
    report = {f"topic_precision_at_{k}_{name}": round(topic_precision_at_k(v, topics, k=k, max_queries=max_queries), 4)
              for name, v in vectors.items()}
    return {**report, "topic_chance": round(topic_chance(topics), 4), "num_topic_labelled": labelled}


def _labelled(vectors: np.ndarray, topics: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or len(matrix) != len(topics):
        raise ValueError(f"vectors must be (n, dimensions) with one row per topic; got {matrix.shape} for "
                         f"{len(topics)} topics")
    known = pd.Series(list(topics)).notna().to_numpy()
    labels = pd.Series(list(topics))[known].astype(str).to_numpy()
    return matrix[known], labels
