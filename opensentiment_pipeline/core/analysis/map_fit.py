"""The outlet map fitted once on a bounded sample, with every other article placed by the fitted model.

Fitting UMAP and HDBSCAN costs more than linear time and memory in the number of articles: over a year of news
(millions of articles) a nightly refit would outlast the night and the machine's memory. So the map is fitted on
a stratified sample of at most `max_fit_articles` (every outlet and month in proportion), and the other articles,
and every new day, are placed with the fitted models: umap-learn's `transform` for the coordinates and hdbscan's
`approximate_predict` for the cluster (McInnes et al., the libraries' own out-of-sample methods). Each point
records the fit that placed it (`map_fit`). Under the cap the sample is every article, so a small corpus gets
exactly the map a plain fit gives. A t-SNE view has no transform: a new article is drawn at the similarity-
weighted mean of its `n_neighbors` nearest sample articles' t-SNE positions (what UMAP's transform starts from).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.analysis.outlet_tables import NOISE, check_matrix

logger = logging.getLogger(__name__)


@dataclass
class MapFit:
    """The fitted models of one map fit and what they were fitted with."""

    fit_id: str  # e.g. "2026-11-24#3": the newest day the sample saw, and how many fits came before
    fitted_through: str  # the newest partition day in the sample
    reducer: Any  # umap.UMAP fitted to n_components dims (what HDBSCAN clusters in)
    clusterer: Any  # hdbscan.HDBSCAN fitted with prediction_data
    view: Any  # None (the reducer's 2 dims are the view), a 2-D umap.UMAP, or "tsne"
    sample_ids: list[str]
    sample_xy: np.ndarray  # (n_sample, 2) view coordinates of the sample
    sample_vectors: np.ndarray | None  # t-SNE only: the sample's vectors, to place new articles among
    noise_share: float  # share of the sample HDBSCAN called noise
    keywords: dict[int, list[str]] = field(default_factory=dict)  # c-TF-IDF over the sample's texts
    settings: dict = field(default_factory=dict)


def stratified_sample(keys: pd.DataFrame, *, max_rows: int, seed: int) -> np.ndarray:
    """Article ids of at most `max_rows` rows of `keys` (columns article_id, outlet, partition_day), drawn from every
    (outlet, month) stratum in proportion to its size, at least one from each while strata are fewer than
    max_rows; every id when there are at most max_rows."""
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1; got {max_rows}")
    if len(keys) <= max_rows:
        return keys["article_id"].to_numpy()
    rng = np.random.default_rng(seed)
    stratum = keys["outlet"].astype(str) + "|" + keys["partition_day"].astype(str).str.slice(0, 7)
    groups = list(keys.groupby(stratum, sort=True).indices.values())
    sizes = np.array([len(rows) for rows in groups])
    # Largest-remainder allocation of exactly max_rows, every stratum getting one first while there are enough.
    floor = np.minimum(sizes, 1) if len(groups) <= max_rows else np.zeros(len(groups), dtype=int)
    exact = floor + (sizes - floor) * (max_rows - floor.sum()) / max((sizes - floor).sum(), 1)
    quota = np.floor(exact).astype(int)
    quota[np.argsort(-(exact - quota), kind="stable")[:max_rows - quota.sum()]] += 1
    picked = np.concatenate([rng.choice(rows, size=min(q, len(rows)), replace=False) for rows, q in zip(groups, quota)])
    return keys["article_id"].to_numpy()[np.sort(picked)]


def fit_map(vectors: np.ndarray, ids: list[str], texts: list[str], *, fit_id: str, fitted_through: str,
            n_components: int, n_neighbors: int, min_dist: float, metric: str, min_cluster_size: int,
            min_samples: int | None, top_k: int, random_state: int, projection: str) -> tuple[MapFit, pd.DataFrame]:
    """Fit the map on the sample (`vectors` row i = article `ids[i]`, `texts[i]`): UMAP to n_components dims,
    HDBSCAN on them, the 2-D view, c-TF-IDF keywords. Returns the fit and the sample's points (article_id, x,
    y, cluster)."""
    import hdbscan
    import umap

    from opensentiment_pipeline.core.analysis import clustering

    matrix = check_matrix(vectors, name="vectors").astype(np.float32)
    if len(matrix) < clustering.MIN_UMAP_SAMPLES:
        raise ValueError(f"the map needs at least {clustering.MIN_UMAP_SAMPLES} articles; got {len(matrix)}")
    if min_cluster_size < 2:
        raise ValueError(f"min_cluster_size must be >= 2; got {min_cluster_size}")
    arguments = umap_args(len(matrix), n_neighbors=n_neighbors, min_dist=min_dist, metric=metric,
                           n_components=n_components, random_state=random_state)
    reducer = umap.UMAP(n_components=n_components, **arguments).fit(matrix)
    reduced = _finite(reducer.embedding_, "UMAP")
    clusterer = hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples,
                                prediction_data=True).fit(reduced)
    labels = clusterer.labels_.astype(np.int64)
    view, sample_vectors = None, None
    if projection == "tsne":
        xy = clustering.project_tsne(matrix, metric=metric, random_state=random_state)
        view, sample_vectors = "tsne", matrix
    elif n_components == 2:
        xy = reduced
    else:
        view = umap.UMAP(n_components=2, **{**arguments, "init": umap_args(
            len(matrix), n_neighbors=n_neighbors, min_dist=min_dist, metric=metric, n_components=2,
            random_state=random_state)["init"]}).fit(matrix)
        xy = _finite(view.embedding_, "UMAP")
    fit = MapFit(fit_id=fit_id, fitted_through=fitted_through, reducer=reducer, clusterer=clusterer, view=view,
                 sample_ids=[str(i) for i in ids], sample_xy=np.asarray(xy, dtype=np.float32),
                 sample_vectors=sample_vectors, noise_share=float(np.mean(labels == NOISE)),
                 keywords=clustering.cluster_keywords(texts, labels, top_k=top_k),
                 settings={"n_components": n_components, "n_neighbors": arguments["n_neighbors"],
                           "projection": projection, "n_sample": len(matrix)})
    points = pd.DataFrame({"article_id": fit.sample_ids, "x": fit.sample_xy[:, 0], "y": fit.sample_xy[:, 1],
                           "cluster": labels})
    return fit, points


def place(fit: MapFit, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """View coordinates `(n, 2)` and clusters `(n,)` of articles the fit did not see, from the fitted models."""
    import hdbscan

    matrix = check_matrix(vectors, name="vectors").astype(np.float32)
    if len(matrix) == 0:
        return np.zeros((0, 2), dtype=np.float32), np.zeros(0, dtype=np.int64)
    reduced = _finite(fit.reducer.transform(matrix), "UMAP transform")
    labels, _ = hdbscan.approximate_predict(fit.clusterer, reduced)
    if fit.view is None:
        xy = reduced
    elif isinstance(fit.view, str):
        xy = _among_neighbours(fit, matrix)
    else:
        xy = _finite(fit.view.transform(matrix), "UMAP transform")
    return np.asarray(xy, dtype=np.float32), np.asarray(labels, dtype=np.int64)


def _among_neighbours(fit: MapFit, matrix: np.ndarray) -> np.ndarray:
    import faiss

    sample = fit.sample_vectors / np.maximum(np.linalg.norm(fit.sample_vectors, axis=1, keepdims=True), 1e-12)
    index = faiss.IndexFlatIP(sample.shape[1])
    index.add(np.ascontiguousarray(sample, dtype=np.float32))
    query = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    k = min(fit.settings["n_neighbors"], len(sample))
    scores, rows = index.search(np.ascontiguousarray(query, dtype=np.float32), k)
    weights = np.maximum(scores, 1e-6)
    weights /= weights.sum(axis=1, keepdims=True)
    return (fit.sample_xy[rows] * weights[:, :, None]).sum(axis=1)


def umap_args(n_samples: int, *, n_neighbors: int, min_dist: float, metric: str, n_components: int,
              random_state: int) -> dict:
    """umap.UMAP's keyword arguments (all but n_components) for `n_samples` vectors: n_neighbors clipped to
    n_samples - 1 (with a warning), random init where the spectral one cannot run, one thread."""
    if n_neighbors < 2 or n_components < 1:
        raise ValueError(f"n_neighbors must be >= 2 and n_components >= 1; got {n_neighbors} and {n_components}")
    if n_neighbors >= n_samples:
        logger.warning("n_neighbors=%d needs more than %d samples; using n_neighbors=%d", n_neighbors, n_samples,
                       n_samples - 1)
        n_neighbors = n_samples - 1
    # The spectral layout needs n_components + 1 eigenvectors of an n_samples x n_samples graph.
    init = "random" if n_samples <= n_components + 1 else "spectral"
    # A fixed random_state makes UMAP single-threaded; n_jobs=1 says so and avoids its warning.
    return {"n_neighbors": n_neighbors, "min_dist": min_dist, "metric": metric, "init": init,
            "random_state": random_state, "n_jobs": 1}


def _finite(points: np.ndarray, what: str) -> np.ndarray:
    points = np.asarray(points, dtype=np.float32)
    if not np.isfinite(points).all():
        raise ValueError(f"{what} returned non-finite coordinates; check the input vectors for duplicates or NaNs")
    return points


FIT_FILE = "map_fit.pkl"


def save_fit(fit: MapFit, folder) -> None:
    """Pickle the fit into `folder` (umap-learn and hdbscan models pickle; a fit of 20,000 articles is ~50 MB)."""
    import pickle
    from pathlib import Path

    (Path(folder) / FIT_FILE).write_bytes(pickle.dumps(fit, protocol=pickle.HIGHEST_PROTOCOL))


def load_fit(folder) -> MapFit | None:
    """The fit `save_fit` stored in `folder`, or None when there is none."""
    import pickle
    from pathlib import Path

    path = Path(folder) / FIT_FILE
    return pickle.loads(path.read_bytes()) if path.exists() else None
