"""Drop exact and near duplicate rows of the article table (`ARTICLE_COLUMNS`).

Exact duplicates share their text after `articles.normalise_text` (so their `content_id`); near
duplicates are found with word shingles, seeded MinHash sketches and a MinHashLSH index.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
from datasketch import LeanMinHash, MinHash, MinHashLSH

from opensentiment_pipeline.core.ingest.articles import clean_strings, normalised_bytes

logger = logging.getLogger(__name__)

# Near-duplicate search (see `deduplicate`). 3-word shingles: two unrelated sentences rarely share
# many, and one changed word breaks only 3. MinHash + LSH only choose which pairs get an exact Jaccard
# check, so a sketch covers at most SKETCH_SIZE shingles and the LSH is tuned for recall: bands of
# LSH_ROWS rows, as many as give a pair at the threshold LSH_RECALL odds of being proposed. With 3 rows,
# two unrelated texts (Jaccard ~0.01) share a band with odds ~1e-6.
SHINGLE_WORDS = 3
SKETCH_SIZE = 128
LSH_ROWS = 3
LSH_RECALL = 0.99
_BATCH = 500  # texts per vectorised pass; ~50 bytes of memory per text byte
_HASH_BASE = 0x100000001B3  # odd, so it has an inverse modulo 2**64
_LOW32 = np.uint64(0xFFFFFFFF)


def deduplicate(articles: pd.DataFrame, *, near_threshold: float, seed: int,
                protected: np.ndarray | None = None) -> tuple[pd.DataFrame, int, int]:
    """Drop exact, then near duplicate items, keeping the first occurrence in row order.

    Rows flagged in `protected` (a published test set) are never dropped, but later rows that repeat
    them are: put them first to keep a fixed test split whole and free of copies in train.

    Two rows are duplicates only if they share `task` and `target`: NewsMTSC asks about several targets
    in one sentence, and a sentence labelled for bias is a different item from the same one labelled
    for sentiment.

    1. Exact: the same text after `normalise_text` (so the same `content_id`).
    2. Near: word 3-shingles of the normalised text. A seeded MinHashLSH index proposes candidates
       among the rows kept so far, and a row is dropped when the Jaccard similarity of its shingle set
       with a candidate's is >= `near_threshold`. That similarity is computed on the full shingle sets,
       so the LSH only decides which pairs get compared; it may miss a pair just above the threshold.
       A chain A~B~C with A!~C drops only B: C is compared with what was kept.

    Args:
        articles: table with at least `text`, `target` and `task` columns; not modified.
        near_threshold: Jaccard similarity in (0, 1]; 0.8 catches re-spaced or lightly edited copies.
        seed: seed of the MinHash permutations.

    Returns:
        (kept, n_exact, n_near): kept rows with a fresh 0..n-1 index, and how many rows each stage dropped.
    """
    if not 0.0 < near_threshold <= 1.0:
        raise ValueError(f"near_threshold must be in (0, 1]; got {near_threshold!r}. 0.8 is a good start")
    texts = [normalised_bytes(t) for t in articles["text"]]
    groups = (articles["task"].astype(str) + "\x1f" + clean_strings(articles["target"]).fillna("")).tolist()
    protected = np.zeros(len(articles), dtype=bool) if protected is None else np.asarray(protected, dtype=bool)
    exact = pd.Series(list(zip(groups, texts))).duplicated().to_numpy() & ~protected
    rest = np.flatnonzero(~exact)
    near = _near_duplicates([texts[i] for i in rest], [groups[i] for i in rest], near_threshold, seed,
                            protected[rest])
    kept = articles.iloc[rest[~near]].reset_index(drop=True)
    n_exact, n_near = int(exact.sum()), int(near.sum())
    logger.info("deduplicate: %d rows in, %d exact and %d near duplicates dropped", len(articles), n_exact, n_near)
    return kept, n_exact, n_near


def _near_duplicates(texts: list[bytes], groups: list[str], threshold: float, seed: int,
                     protected: np.ndarray) -> np.ndarray:
    """For each normalised text, whether it is a near duplicate of an earlier kept text of the same group."""
    bands = _lsh_bands(threshold)
    permutations = MinHash(num_perm=bands * LSH_ROWS, seed=seed).permutations  # datasketch's seeded (a, b)
    batches = [texts[i : i + _BATCH] for i in range(0, len(texts), _BATCH)]
    powers = _hash_powers(max((sum(map(len, b)) + len(b) for b in batches), default=0))
    shingles: list[np.ndarray] = []
    sketches: list[LeanMinHash | None] = []
    for batch in batches:
        batch_shingles = _shingle_sets(batch, powers)
        shingles += batch_shingles
        sketches += _sketches(batch_shingles, permutations, seed)
    lsh = MinHashLSH(num_perm=bands * LSH_ROWS, params=(bands, LSH_ROWS))
    dropped = np.zeros(len(texts), dtype=bool)
    for i, (sh, sketch) in enumerate(zip(shingles, sketches)):
        if sketch is None:
            continue
        dropped[i] = not protected[i] and any(groups[j] == groups[i] and _jaccard(sh, shingles[j]) >= threshold for j in lsh.query(sketch))
        if not dropped[i]:
            lsh.insert(i, sketch)
    return dropped


def _lsh_bands(threshold: float) -> int:
    """Fewest bands (at least 2) of LSH_ROWS rows that propose a pair at `threshold` with odds >= LSH_RECALL."""
    if threshold >= 1.0:
        return 2
    return max(2, math.ceil(math.log(1 - LSH_RECALL) / math.log(1 - threshold**LSH_ROWS)))  # 7 at 0.8


def _hash_powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """_HASH_BASE**k and its inverse for k = 0..n (uint64 products wrap modulo 2**64, as intended)."""
    base = np.full(n + 1, _HASH_BASE, dtype=np.uint64)
    inverse = np.full(n + 1, pow(_HASH_BASE, -1, 2**64), dtype=np.uint64)
    base[0] = inverse[0] = 1
    return np.cumprod(base), np.cumprod(inverse)


def _shingle_sets(texts: list[bytes], powers: tuple[np.ndarray, np.ndarray]) -> list[np.ndarray]:
    """Sorted unique 32-bit hashes of each normalised text's word 3-shingles (one shingle if shorter).

    Vectorised over the batch: per-text numpy calls cost more than the hashing on short sentences.
    A polynomial rolling hash modulo 2**64 gives any substring's hash from two prefix sums.
    """
    data = np.frombuffer(b"\n".join(texts), dtype=np.uint8).astype(np.uint64)
    edges = np.diff(np.concatenate([[0], (data > 32).astype(np.int8), [0]]))  # bytes <= 32 are separators
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # (n_words,)
    doc = np.searchsorted(np.cumsum([len(t) + 1 for t in texts]), starts, side="right")
    counts = np.bincount(doc, minlength=len(texts))
    last_word = (np.cumsum(counts) - 1)[doc]
    word = np.arange(len(starts))
    keep = (word + SHINGLE_WORDS - 1 <= last_word) | (word == last_word + 1 - counts[doc])  # short text: 1 shingle
    s, e = starts[keep], ends[np.minimum(word + SHINGLE_WORDS - 1, last_word)[keep]]
    prefix = np.concatenate([[np.uint64(0)], np.cumsum(data * powers[0][1 : len(data) + 1])])
    hashes = (prefix[e] - prefix[s]) * powers[1][s]  # = hash of the substring alone, wherever it is
    keys = np.sort((doc[keep].astype(np.uint64) << np.uint64(32)) | ((hashes >> np.uint64(32)) ^ (hashes & _LOW32)))
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]  # np.unique's hash path is ~10x slower here
    bounds = np.searchsorted(keys >> np.uint64(32), np.arange(len(texts) + 1, dtype=np.uint64))
    values = (keys & _LOW32).astype(np.uint32)
    return [values[bounds[i] : bounds[i + 1]] for i in range(len(texts))]


def _sketches(shingles: list[np.ndarray], permutations: np.ndarray, seed: int) -> list[LeanMinHash | None]:
    """MinHash of each text's SKETCH_SIZE smallest shingle hashes (None for a text without words).

    The smallest hashes are a consistent sample (a shingle two texts share is kept in both or neither),
    so a long article costs no more than a paragraph. Computed for the batch at once with datasketch's
    affine permutations: one MinHash object per text was the slowest step.
    """
    a, b = permutations  # (num_perm,) uint32 each
    sketches: list[LeanMinHash | None] = [None] * len(shingles)
    chunk = [(i, s[:SKETCH_SIZE]) for i, s in enumerate(shingles) if len(s)]
    if chunk:
        starts = np.cumsum([0] + [len(s) for _, s in chunk[:-1]])
        permuted = np.concatenate([s for _, s in chunk])[:, None] * a + b  # (n_shingles, num_perm), wraps mod 2**32
        for (i, _), row in zip(chunk, np.minimum.reduceat(permuted, starts, axis=0)):
            sketches[i] = LeanMinHash(seed=seed, hashvalues=row, scheme="affine32")
    return sketches


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    common = len(np.intersect1d(a, b, assume_unique=True))
    return common / (len(a) + len(b) - common)
