"""An outlet map from article embeddings: UMAP projection, HDBSCAN clusters, c-TF-IDF keywords, outlet similarity.

The recipe is BERTopic's (UMAP -> HDBSCAN -> class-based TF-IDF), written as small functions that each take
plain arrays, so every stage can be tested on its own. On top of it: a hierarchical clustering of outlets
(heatmap order and flat outlet groups, in `outlet_tables`) and a per-map-cluster table of each outlet's sentiment
mix. umap, hdbscan, scipy and scikit-learn are imported inside the functions that use them: importing umap alone
costs ~5 s, which loading the Dagster definitions should not pay.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.analysis import map_fit
from opensentiment_pipeline.core.analysis.outlet_tables import (
    MIN_TOPIC_ARTICLES,
    NOISE,
    check_matrix,
    outlet_hierarchy,
    outlet_similarity,
    outlet_table,
    topic_outlet_table,
)
from opensentiment_pipeline.core.schema import check_labels

logger = logging.getLogger(__name__)

MIN_UMAP_SAMPLES = 3  # UMAP needs n_neighbors >= 2 and n_neighbors < n_samples
PROJECTIONS = ("umap", "tsne")  # what the 2-D map may be drawn with; clusters always come from UMAP
TSNE_PERPLEXITY = 30.0  # scikit-learn's default

# One row per article: its 2-D map position and cluster.
POINT_COLUMNS: tuple[str, ...] = ("article_id", "outlet", "x", "y", "cluster")


@dataclass(frozen=True)
class ClusterResult:
    """What `cluster_outlets` found."""

    points: pd.DataFrame  # POINT_COLUMNS, in the order of the input articles
    outlets: pd.DataFrame  # OUTLET_COLUMNS (+ sentiment shares), sorted by outlet
    outlet_similarity: pd.DataFrame  # outlet x outlet cosine similarity, index and columns sorted by outlet
    outlet_order: list[str]  # outlets in dendrogram leaf order: similar outlets sit next to each other
    topic_outlet_sentiment: pd.DataFrame  # TOPIC_OUTLET_COLUMNS (+ sentiment shares), see `topic_outlet_table`
    cluster_keywords: dict[int, list[str]]  # cluster -> top keywords by c-TF-IDF; noise (-1) is left out
    n_clusters: int
    noise_share: float  # 0-1 share of all articles labelled -1


def project_umap(
    vectors: np.ndarray, *, n_components: int, n_neighbors: int, min_dist: float, metric: str, random_state: int
) -> np.ndarray:
    """Project `(n_samples, n_features)` vectors to `(n_samples, n_components)` float32 with UMAP.

    `n_neighbors` is clipped to `n_samples - 1` (with a warning) so small inputs still run. A fixed
    `random_state` makes UMAP single-threaded; that is the price of a reproducible map.
    """
    import umap

    matrix = check_matrix(vectors, name="vectors")
    n_samples = matrix.shape[0]
    if n_samples < MIN_UMAP_SAMPLES:
        raise ValueError(f"project_umap needs at least {MIN_UMAP_SAMPLES} vectors; got {n_samples}")
    reducer = umap.UMAP(n_components=n_components, **map_fit.umap_args(
        n_samples, n_neighbors=n_neighbors, min_dist=min_dist, metric=metric, n_components=n_components,
        random_state=random_state))
    points = reducer.fit_transform(matrix).astype(np.float32)
    if not np.isfinite(points).all():
        raise ValueError("UMAP returned non-finite coordinates; check the input vectors for duplicates or NaNs")
    return points


def project_tsne(
    vectors: np.ndarray, *, metric: str, random_state: int, perplexity: float = TSNE_PERPLEXITY
) -> np.ndarray:
    """Project `(n_samples, n_features)` vectors to a `(n_samples, 2)` float32 t-SNE map.

    An alternative view for the map only: t-SNE keeps local neighbourhoods but not the sizes of groups or the
    distances between them, so nothing is clustered on its output. PCA init and a fixed `random_state` make
    the map reproducible. `perplexity` is clipped to `(n_samples - 1) / 3` (with a warning), the most the
    `3 * perplexity` nearest neighbours t-SNE looks at can give on small inputs.

    t-SNE runs on one OpenMP thread, like seeded UMAP: scikit-learn's OpenMP runtime and numba's (started by a
    UMAP fit in the same process) contend for the cores, and on a busy 2-core machine 120 points took 12-40 s
    after a UMAP fit against 0.6 s on one thread.
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    matrix = check_matrix(vectors, name="vectors")
    n_samples = matrix.shape[0]
    if n_samples < MIN_UMAP_SAMPLES:
        raise ValueError(f"project_tsne needs at least {MIN_UMAP_SAMPLES} vectors; got {n_samples}")
    if perplexity > (n_samples - 1) / 3:
        logger.warning("perplexity=%g is too high for %d samples; using %g", perplexity, n_samples, (n_samples - 1) / 3)
        perplexity = (n_samples - 1) / 3
    reducer = TSNE(n_components=2, perplexity=perplexity, metric=metric, init="pca", random_state=random_state)
    with threadpool_limits(limits=1, user_api="openmp"):
        points = reducer.fit_transform(matrix).astype(np.float32)
    if not np.isfinite(points).all():
        raise ValueError("t-SNE returned non-finite coordinates; check the input vectors for duplicates or NaNs")
    return points


def cluster_points(points: np.ndarray, *, min_cluster_size: int, min_samples: int | None) -> np.ndarray:
    """HDBSCAN labels for `(n_samples, n_dims)` points: int array `(n_samples,)`, -1 for noise.

    `min_samples=None` means HDBSCAN's default (equal to `min_cluster_size`).
    """
    import hdbscan

    matrix = check_matrix(points, name="points")
    if min_cluster_size < 2:
        raise ValueError(f"min_cluster_size must be >= 2; got {min_cluster_size}")
    clusterer = hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples)
    return clusterer.fit_predict(matrix).astype(np.int64)


def class_tfidf(counts: np.ndarray) -> np.ndarray:
    """Class-based TF-IDF weights for a `(n_classes, n_terms)` count matrix; same shape, float64.

    W[t, c] = tf[t, c] / sum_t' tf[t', c] * log(1 + A / f[t]), where f[t] is the count of term t over all
    classes and A the average number of words per class: Grootendorst (2022), "BERTopic: Neural topic
    modeling with a class-based TF-IDF procedure", arXiv:2203.05794, eq. 1, as in BERTopic's
    `bertopic/vectorizers/_ctfidf.py` (which also L1-normalises tf; it truncates A to an int, we do not).
    """
    counts = np.asarray(counts, dtype=np.float64)
    class_words = counts.sum(axis=1, keepdims=True)  # (n_classes, 1)
    term_freq = counts.sum(axis=0)  # (n_terms,)
    tf = counts / np.maximum(class_words, 1.0)
    idf = np.log(1.0 + class_words.mean() / np.maximum(term_freq, 1.0))
    return tf * idf


def cluster_keywords(texts: Sequence[str], labels: np.ndarray, *, top_k: int) -> dict[int, list[str]]:
    """The `top_k` highest c-TF-IDF terms of each cluster, best first; noise (-1) is left out.

    The texts of each label (noise included, so its words count in the idf) are joined into one document
    and counted with English stop words removed. Ties go to the alphabetically first term.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    labels = np.asarray(labels)
    if len(texts) != len(labels):
        raise ValueError(f"texts and labels must align; got {len(texts)} texts and {len(labels)} labels")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1; got {top_k}")
    classes = sorted(set(labels.tolist()))
    if not any(c != NOISE for c in classes):
        return {}
    by_class = pd.Series(list(texts), dtype="object").groupby(labels).agg(" ".join)
    vectorizer = CountVectorizer(stop_words="english")
    counts = vectorizer.fit_transform(by_class.loc[classes].tolist()).toarray()  # (n_classes, n_terms)
    weights = class_tfidf(counts)
    terms = vectorizer.get_feature_names_out()  # sorted, so a stable sort breaks ties alphabetically
    keywords: dict[int, list[str]] = {}
    for row, cluster in enumerate(classes):
        if cluster == NOISE:
            continue
        best = np.argsort(-weights[row], kind="stable")[:top_k]
        keywords[int(cluster)] = [str(terms[i]) for i in best if weights[row, i] > 0]
    return keywords


def cluster_outlets(
    articles: pd.DataFrame,
    vectors: np.ndarray,
    *,
    n_components: int,
    n_neighbors: int,
    min_dist: float,
    metric: str,
    min_cluster_size: int,
    min_samples: int | None,
    top_k: int,
    random_state: int,
    projection: str = "umap",
    n_outlet_groups: int | None = None,
    min_topic_articles: int = MIN_TOPIC_ARTICLES,
) -> ClusterResult:
    """Map articles and outlets: project, cluster, describe clusters, compare outlets -- the map fitted on every
    article at once (`map_fit.fit_map` with the whole corpus as its sample; the outlet_clusters asset fits a
    bounded sample and places the rest).

    Args:
        articles: columns `article_id`, `outlet`, `text`, and optionally `sentiment` (predicted labels in
            SENTIMENT_LABELS, NaN allowed); row i belongs to `vectors[i]`.
        vectors: `(n_articles, hidden)` embeddings, e.g. from `encoding.encode_texts`.
        n_components: UMAP dimensions HDBSCAN clusters in. With projection "umap" the map's x, y come from
            these when it is 2, otherwise from a second 2-D UMAP fit with the same settings.
        n_neighbors, min_dist, metric: UMAP settings (see `project_umap`); `metric` is t-SNE's too.
        min_cluster_size, min_samples: HDBSCAN settings (see `cluster_points`).
        top_k: keywords per cluster.
        random_state: seed for UMAP and t-SNE.
        projection: what draws the 2-D map, "umap" or "tsne" (`project_tsne`). HDBSCAN always clusters on the
            UMAP output: UMAP keeps the density structure HDBSCAN relies on and t-SNE does not, and this way
            switching the view never changes the map clusters.
        n_outlet_groups: flat outlet groups to cut from the outlet dendrogram (see `outlet_hierarchy`).
        min_topic_articles: smallest (cluster, outlet) cell kept in `topic_outlet_sentiment`.
    """
    if projection not in PROJECTIONS:
        raise ValueError(f"projection must be one of {PROJECTIONS}; got {projection!r}")
    _check_articles(articles, vectors)
    articles = articles.reset_index(drop=True)
    fit, fitted = map_fit.fit_map(vectors, articles["article_id"].tolist(), articles["text"].tolist(), fit_id="all#1",
                          fitted_through="", n_components=n_components, n_neighbors=n_neighbors, min_dist=min_dist,
                          metric=metric, min_cluster_size=min_cluster_size, min_samples=min_samples, top_k=top_k,
                          random_state=random_state, projection=projection)
    labels = fitted["cluster"].to_numpy()
    points = pd.DataFrame(
        {"article_id": articles["article_id"], "outlet": articles["outlet"], "x": fitted["x"], "y": fitted["y"],
         "cluster": labels},
        columns=list(POINT_COLUMNS),
    )
    similarity = outlet_similarity(articles["outlet"], vectors)
    order, groups = outlet_hierarchy(similarity, n_groups=n_outlet_groups)
    sentiment = articles["sentiment"] if "sentiment" in articles.columns else None
    keywords = fit.keywords
    return ClusterResult(
        points=points,
        outlets=outlet_table(points, similarity, groups, sentiment),
        outlet_similarity=similarity,
        outlet_order=order,
        topic_outlet_sentiment=topic_outlet_table(points, sentiment, keywords, min_articles=min_topic_articles),
        cluster_keywords=keywords,
        n_clusters=len(set(labels.tolist()) - {NOISE}),
        noise_share=float(np.mean(labels == NOISE)),
    )


def _check_articles(articles: pd.DataFrame, vectors: np.ndarray) -> None:
    missing = [c for c in ("article_id", "outlet", "text") if c not in articles.columns]
    if missing:
        raise ValueError(f"articles is missing columns {missing}; got {list(articles.columns)}")
    if len(articles) != len(vectors):
        raise ValueError(f"articles and vectors must align; got {len(articles)} articles and {len(vectors)} vectors")
    if "sentiment" in articles.columns:
        check_labels(articles["sentiment"], "sentiment", where="cluster_outlets")


