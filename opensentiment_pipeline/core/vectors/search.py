"""Nearest-neighbour search over article embeddings with FAISS, and the on-disk index folder the CLI reads.

Vectors are L2-normalised, so the inner product FAISS ranks by is the cosine similarity. Two index kinds:

- ``"flat"`` (`faiss.IndexFlatIP`): exact; a scan of 10,000 x 384 vectors takes about a millisecond, so this
  is the right choice for corpora up to ~100k articles.
- ``"hnsw"`` (`faiss.IndexHNSWFlat`): approximate graph search for larger corpora; its recall@10 against the
  flat index is measured in the tests on real embeddings.

Filters (`allowed_ids`) go through FAISS's `IDSelector`, so the index only ever returns allowed rows and a
filtered search still fills `k` when `k` allowed rows exist (small allowed sets are scanned exactly).

    >>> vectors = np.eye(3, dtype=np.float32)
    >>> index = build_index(vectors, ["a", "b", "c"])
    >>> search(index, vectors[1], k=2)["article_id"].tolist()[0]
    'b'
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

INDEX_KINDS: tuple[str, ...] = ("flat", "hnsw")
RESULT_COLUMNS: tuple[str, ...] = ("rank", "article_id", "similarity")
# Files of an index folder: the FAISS index, its row -> article_id map, and what it was built with.
INDEX_FILE = "vectors.faiss"
IDS_FILE = "ids.json"
INFO_FILE = "index.json"
# Written beside them by the article_index asset: what the CLI shows per hit, and how to embed a query.
ARTICLES_FILE = "articles.parquet"
MANIFEST_FILE = "index_manifest.json"
# Written into every folder `replacing_folder` creates. A folder is only ever replaced (and the old one deleted)
# when it carries this file or is empty, so a mistyped `index_dir` (a home folder, say) is refused, not deleted.
MARKER_FILE = ".opensentiment-index"
# Below this many allowed rows a filtered HNSW search scans them exactly: graph search with a very
# selective filter can stop before it has found k allowed neighbours.
EXACT_FILTER_MAX_ROWS = 20_000


@dataclass(frozen=True)
class VectorIndex:
    """A FAISS index plus the article id of each of its rows (FAISS label i is `ids[i]`)."""

    faiss_index: Any
    ids: tuple[str, ...]
    kind: str
    ef_search: int | None = None  # HNSW only: candidate list size per query (higher = better recall, slower)

    @property
    def num_vectors(self) -> int:
        return len(self.ids)

    @property
    def dimensions(self) -> int:
        return int(self.faiss_index.d)


def build_index(
    vectors: np.ndarray,
    ids: Sequence[str],
    *,
    kind: str = "flat",
    hnsw_m: int = 32,
    ef_construction: int = 200,
    ef_search: int = 128,
) -> VectorIndex:
    """Index `vectors` (n, d) under `ids` for cosine search; rows are L2-normalised on a copy first.

    Args:
        vectors: `(n_articles, dimensions)` finite floats, e.g. `encoding.frame_to_matrix(...)`.
        ids: one unique article id per row.
        kind: "flat" (exact) or "hnsw" (approximate, for large corpora).
        hnsw_m, ef_construction, ef_search: HNSW graph degree, build-time and query-time candidate list
            sizes; ignored (with a warning when changed) for "flat".
    """
    import faiss

    matrix = _unit_rows(vectors, name="vectors")
    ids = tuple(str(i) for i in ids)
    if len(ids) != len(matrix):
        raise ValueError(f"vectors and ids must align; got {len(matrix)} vectors and {len(ids)} ids")
    if len(matrix) == 0:
        raise ValueError("cannot build an index from 0 vectors; materialize article_embeddings with articles first")
    duplicated = pd.Index(ids)[pd.Index(ids).duplicated()].unique().tolist()
    if duplicated:
        raise ValueError(f"ids must be unique; {len(duplicated)} repeat, e.g. {duplicated[:3]}")
    if kind == "flat":
        if (hnsw_m, ef_construction, ef_search) != (32, 200, 128):
            logger.warning("hnsw_m, ef_construction and ef_search have no effect on a flat index")
        index = faiss.IndexFlatIP(matrix.shape[1])
        index.add(matrix)
        return VectorIndex(index, ids, "flat")
    if kind == "hnsw":
        if min(hnsw_m, ef_construction, ef_search) < 1:
            raise ValueError(f"hnsw_m, ef_construction and ef_search must be >= 1; got "
                             f"{hnsw_m}, {ef_construction}, {ef_search}")
        index = faiss.IndexHNSWFlat(matrix.shape[1], hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
        index.add(matrix)
        return VectorIndex(index, ids, "hnsw", ef_search=ef_search)
    raise ValueError(f"unknown index kind {kind!r}; expected one of {list(INDEX_KINDS)}")


def add_to_index(index: VectorIndex, vectors: np.ndarray, ids: Sequence[str]) -> VectorIndex:
    """`index` with `vectors` (n, d) added under `ids` (new, unique), as the last rows: searching the result
    equals searching an index built from all rows in the same order (exactly for flat; for HNSW the graph grows
    as it would have). The FAISS index is extended in place; the returned VectorIndex carries the longer ids."""
    matrix = _unit_rows(vectors, name="vectors")
    ids = tuple(str(i) for i in ids)
    if len(ids) != len(matrix):
        raise ValueError(f"vectors and ids must align; got {len(matrix)} vectors and {len(ids)} ids")
    if len(matrix) and matrix.shape[1] != index.dimensions:
        raise ValueError(f"the index holds {index.dimensions}-dimensional vectors; got {matrix.shape[1]}: vectors of "
                         "another encoder cannot join it (rebuild the index)")
    both = pd.Index(index.ids + ids)
    repeated = both[both.duplicated()].unique().tolist()
    if repeated:
        raise ValueError(f"{len(repeated)} ids are already in the index or repeat, e.g. {repeated[:3]}; an article "
                         "is added once (rebuild the index after re-embedding a day)")
    if len(matrix):
        index.faiss_index.add(matrix)
    return VectorIndex(index.faiss_index, index.ids + ids, index.kind, ef_search=index.ef_search)


def search(index: VectorIndex, query_vector: np.ndarray, k: int, *,
           allowed_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """The `k` rows most similar to `query_vector`, best first, as columns rank (1..), article_id, similarity.

    Args:
        index: from `build_index` or `load_index`.
        query_vector: `(dimensions,)` or `(1, dimensions)`; normalised on a copy like the indexed rows.
        k: results wanted; fewer come back only when fewer rows (allowed rows, with a filter) exist.
        allowed_ids: restrict results to these article ids (ids not in the index are ignored); None = all.
    """
    import faiss

    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}")
    query = _unit_rows(np.asarray(query_vector).reshape(1, -1), name="query_vector")
    if query.shape[1] != index.dimensions:
        raise ValueError(f"query_vector has {query.shape[1]} dimensions but the index holds "
                         f"{index.dimensions}-dimensional vectors; embed the query with the index's encoder")
    if allowed_ids is None:
        want = min(int(k), index.num_vectors)
        params = None
        if index.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(index.ef_search or want, want))
        scores, rows = index.faiss_index.search(query, want, params=params)
    else:
        positions = _positions(index, allowed_ids)
        want = min(int(k), len(positions))
        if want == 0:
            return _results([], [], index)
        if index.kind == "hnsw" and len(positions) <= EXACT_FILTER_MAX_ROWS:
            return _exact_subset(index, query, positions, want)
        selector = faiss.IDSelectorBatch(positions)
        if index.kind == "hnsw":
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(index.ef_search or want, want))
        else:
            params = faiss.SearchParameters(sel=selector)
        scores, rows = index.faiss_index.search(query, want, params=params)
        if (rows[0] >= 0).sum() < want:  # the graph walk ran out of allowed candidates: scan them exactly
            return _exact_subset(index, query, positions, want)
    keep = rows[0] >= 0  # FAISS pads with -1 when fewer than k rows exist
    return _results(rows[0][keep], scores[0][keep], index)


def save_index(index: VectorIndex, folder: str | Path) -> None:
    """Write `index` into the existing `folder` (vectors.faiss, ids.json, index.json)."""
    import faiss

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder; create it (or use replacing_folder) first")
    faiss.write_index(index.faiss_index, str(folder / INDEX_FILE))
    (folder / IDS_FILE).write_text(json.dumps(list(index.ids)))
    info = {"library": "faiss-cpu", "faiss_version": faiss.__version__, "kind": index.kind, "metric": "cosine",
            "num_vectors": index.num_vectors, "dimensions": index.dimensions, "ef_search": index.ef_search}
    (folder / INFO_FILE).write_text(json.dumps(info, indent=2))


def load_index(folder: str | Path) -> VectorIndex:
    """Read an index written by `save_index`."""
    import faiss

    folder = Path(folder)
    missing = [name for name in (INDEX_FILE, IDS_FILE, INFO_FILE) if not (folder / name).exists()]
    if missing:
        raise FileNotFoundError(f"{folder} holds no search index (missing {missing}); build one with "
                                "`build_index` + `save_index`, or materialize the article_index asset")
    info = json.loads((folder / INFO_FILE).read_text())
    index = faiss.read_index(str(folder / INDEX_FILE))
    ids = tuple(json.loads((folder / IDS_FILE).read_text()))
    if index.ntotal != len(ids):
        raise ValueError(f"{folder} is inconsistent: {index.ntotal} vectors but {len(ids)} ids; rebuild the index")
    return VectorIndex(index, ids, info["kind"], ef_search=info.get("ef_search"))


@contextmanager
def replacing_folder(target: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary folder beside `target` that replaces `target` only if the block succeeds.

    A failed build leaves the previous `target` untouched. The swap is two renames on one filesystem, so a
    reader sees the old or the new folder, except for the instant between the renames. The new folder gets
    `MARKER_FILE`; an existing `target` is replaced only if it has that marker or is empty, otherwise
    `FileExistsError` is raised before anything is built or moved.
    """
    target = Path(target)
    check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        (tmp / MARKER_FILE).write_text("search index folder written by opensentiment-pipeline; "
                                       "replaced as a whole on every rebuild\n")
        tmp.chmod(0o755)  # mkdtemp makes it private; the index is meant to be read by other tools
        check_replaceable(target)  # again: the block may have run for minutes
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        if target.exists():
            target.rename(old)
        try:
            tmp.rename(target)
        except OSError:
            if old.exists():
                old.rename(target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_replaceable(target: str | Path) -> None:
    """Raise unless `target` is absent, an empty folder, or a folder `replacing_folder` wrote (has MARKER_FILE)."""
    target = Path(target)
    if not target.exists() and not target.is_symlink():
        return
    if target.is_symlink() or not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a plain folder; refusing to replace it with a search "
                              "index. Choose another index_dir")
    if (target / MARKER_FILE).is_file() or not any(target.iterdir()):
        return
    entries = sorted(p.name for p in target.iterdir())
    raise FileExistsError(
        f"{target} is not a search index folder (no {MARKER_FILE} marker) and holds {len(entries)} entries, e.g. "
        f"{entries[:3]}; refusing to replace it, because that would delete it. Check index_dir; if it really is an "
        "old index built before the marker existed, delete it yourself and build again")


def recall_at_k(approximate: VectorIndex, exact: VectorIndex, queries: np.ndarray, *, k: int) -> float:
    """Mean share of the exact top-`k` ids that `approximate` also returns, over the rows of `queries`."""
    hits = []
    for query in np.asarray(queries):
        truth = set(search(exact, query, k)["article_id"])
        hits.append(len(truth & set(search(approximate, query, k)["article_id"])) / len(truth))
    return float(np.mean(hits))


def _positions(index: VectorIndex, allowed_ids: Iterable[str]) -> np.ndarray:
    if isinstance(allowed_ids, str):
        raise TypeError(f"allowed_ids must be a collection of ids, not the single string {allowed_ids!r}")
    row_of = {article_id: row for row, article_id in enumerate(index.ids)}
    rows = {row_of[str(a)] for a in allowed_ids if str(a) in row_of}
    return np.array(sorted(rows), dtype=np.int64)


def _exact_subset(index: VectorIndex, query: np.ndarray, positions: np.ndarray, k: int) -> pd.DataFrame:
    vectors = index.faiss_index.reconstruct_batch(positions)  # (n_allowed, d), already unit rows
    scores = vectors @ query[0]
    best = np.argsort(-scores, kind="stable")[:k]
    return _results(positions[best], scores[best], index)


def _results(rows: Sequence[int], scores: Sequence[float], index: VectorIndex) -> pd.DataFrame:
    return pd.DataFrame({
        "rank": np.arange(1, len(rows) + 1),
        "article_id": [index.ids[int(r)] for r in rows],
        "similarity": np.clip(np.asarray(scores, dtype=np.float64), -1.0, 1.0),
    }, columns=list(RESULT_COLUMNS))


def _unit_rows(values: np.ndarray, *, name: str) -> np.ndarray:
    matrix = np.asarray(values)
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_rows, dimensions); got shape {matrix.shape}")
    if matrix.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold numbers; got dtype {matrix.dtype}")
    if not np.isfinite(matrix).all():
        raise ValueError(f"{name} contains NaN or inf in {int((~np.isfinite(matrix)).any(axis=1).sum())} rows")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{name} has {int((norms == 0).sum())} all-zero rows, which have no direction to compare")
    # FAISS wants C-contiguous float32.
    return np.ascontiguousarray(matrix / norms, dtype=np.float32)


@dataclass(frozen=True)
class QueryEncoder:
    """The encoder an index manifest names, ready to embed queries into the index's space."""

    encoder: Any
    tokenizer: Any
    max_length: int

    def embed(self, text: str) -> np.ndarray:
        """`(dimensions,)` unit vector of `text`, embedded as the articles were."""
        from opensentiment_pipeline.core.vectors import encoding

        return encoding.encode_texts(self.encoder, self.tokenizer, [text], batch_size=1, max_length=self.max_length,
                                     device="cpu")[0]


def query_encoder(manifest: dict) -> QueryEncoder:
    """Load the encoder an index manifest names: `adapter_dir` (a fine-tuned adapter) or `base_model` (a model spec
    such as packaged:all-MiniLM-L6-v2, as article_index writes). The one way the CLI and the dashboard embed a query.
    """
    from transformers.utils import logging as hf_logging

    from opensentiment_pipeline.core.model import modeling

    hf_logging.disable_progress_bar()  # a "Loading weights" bar on every search is noise
    max_length = int(manifest.get("query_max_length", 256))
    if manifest.get("adapter_dir"):
        adapter_dir = Path(manifest["adapter_dir"])
        if not adapter_dir.is_dir():
            raise ValueError(f"the index was built with the adapter in {adapter_dir}, which no longer exists; "
                             "re-materialize article_index with the current sentiment_adapter")
        _, tokenizer, model = modeling.load_adapter(adapter_dir)
        return QueryEncoder(modeling.encoder_of(model), tokenizer, max_length)
    if manifest.get("base_model"):
        encoder = modeling.load_encoder(manifest["base_model"], num_layers=manifest.get("num_layers"))
        return QueryEncoder(encoder, modeling.load_tokenizer(manifest["base_model"]), max_length)
    raise ValueError(f"the index manifest names no encoder (adapter_dir or base_model); got keys {sorted(manifest)}. "
                     "Re-materialize article_index")
