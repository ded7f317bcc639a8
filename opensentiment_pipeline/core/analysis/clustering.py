"""An outlet map from article embeddings: UMAP projection, HDBSCAN clusters, c-TF-IDF keywords, outlet similarity.

The recipe is BERTopic's (UMAP -> HDBSCAN -> class-based TF-IDF), written as small functions that each take
plain arrays, so every stage can be tested on its own. On top of it: a hierarchical clustering of outlets
(heatmap order and flat outlet groups) and a per-map-cluster table of each outlet's sentiment mix. umap, hdbscan,
scipy and scikit-learn are imported inside the functions that use them: importing umap alone costs ~5 s, which
loading the Dagster definitions should not pay.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.schema import SENTIMENT_LABELS, check_labels

logger = logging.getLogger(__name__)

MIN_UMAP_SAMPLES = 3  # UMAP needs n_neighbors >= 2 and n_neighbors < n_samples
NOISE = -1  # HDBSCAN's label for points in no cluster
PROJECTIONS = ("umap", "tsne")  # what the 2-D map may be drawn with; clusters always come from UMAP
TSNE_PERPLEXITY = 30.0  # scikit-learn's default
MIN_TOPIC_ARTICLES = 5  # smallest (cluster, outlet) cell whose sentiment shares are worth a row
MAX_LEAF_ORDERING_OUTLETS = 1000  # optimal leaf ordering is ~O(n^3): 0.3 s at 500 outlets, seconds at 1000
DENDROGRAM_CUT = 0.7  # default flat cut, as a share of the top merge distance (scipy's dendrogram colouring)

# One row per article: its 2-D map position and cluster.
POINT_COLUMNS: tuple[str, ...] = ("article_id", "outlet", "x", "y", "cluster")
# One row per outlet; `share_<label>` and `net_sentiment` are added when the articles carry `sentiment`.
OUTLET_COLUMNS: tuple[str, ...] = (
    "outlet",
    "n_articles",
    "nearest_outlet",  # most similar other outlet by mean-embedding cosine; None when there is only one
    "nearest_similarity",  # that cosine similarity; NaN when there is only one outlet
    "outlet_group",  # flat group from the outlet dendrogram, 1..k numbered in `ClusterResult.outlet_order`
    "dominant_cluster",  # the non-noise cluster holding most of its articles; -1 when all are noise
    "dominant_cluster_share",  # 0-1 share of its articles in dominant_cluster (share of noise when -1)
    "noise_share",  # 0-1 share of its articles HDBSCAN left unclustered
)


# One row per (cluster, outlet) cell; `share_<label>`, `net_sentiment` and `net_vs_topic` are added when the
# articles carry `sentiment`.
TOPIC_OUTLET_COLUMNS: tuple[str, ...] = (
    "cluster",
    "keywords",  # the cluster's top c-TF-IDF keywords, comma-joined
    "outlet",
    "n_articles",  # the outlet's articles in this cluster
    "cluster_share",  # 0-1 share of the cluster's articles that come from this outlet
)


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

    matrix = _check_matrix(vectors, name="vectors")
    n_samples = matrix.shape[0]
    if n_samples < MIN_UMAP_SAMPLES:
        raise ValueError(f"project_umap needs at least {MIN_UMAP_SAMPLES} vectors; got {n_samples}")
    if n_neighbors < 2 or n_components < 1:
        raise ValueError(f"n_neighbors must be >= 2 and n_components >= 1; got {n_neighbors} and {n_components}")
    if n_neighbors >= n_samples:
        logger.warning(
            "n_neighbors=%d needs more than %d samples; using n_neighbors=%d", n_neighbors, n_samples, n_samples - 1
        )
        n_neighbors = n_samples - 1
    init = "spectral"
    if n_samples <= n_components + 1:
        # The spectral layout needs n_components + 1 eigenvectors of an n_samples x n_samples graph.
        logger.warning("only %d samples for %d components; using random UMAP init", n_samples, n_components)
        init = "random"
    reducer = umap.UMAP(
        n_components=n_components,
        n_neighbors=n_neighbors,
        min_dist=min_dist,
        metric=metric,
        init=init,
        random_state=random_state,
        n_jobs=1,  # what random_state forces anyway; passing it avoids UMAP's warning about the override
    )
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

    matrix = _check_matrix(vectors, name="vectors")
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

    matrix = _check_matrix(points, name="points")
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


def outlet_similarity(outlets: pd.Series, vectors: np.ndarray) -> pd.DataFrame:
    """Cosine similarity between outlets' mean article vectors; a symmetric outlet x outlet frame.

    Rows are L2-normalised before averaging, so every article weighs the same whatever its norm.
    """
    matrix = _check_matrix(vectors, name="vectors").astype(np.float64)
    if len(outlets) != len(matrix):
        raise ValueError(f"outlets and vectors must align; got {len(outlets)} outlets and {len(matrix)} vectors")
    unit = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    means = pd.DataFrame(unit).groupby(np.asarray(outlets)).mean()  # (n_outlets, hidden), sorted by outlet
    centroids = means.to_numpy()
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    sim = centroids @ centroids.T
    sim = np.clip((sim + sim.T) / 2.0, -1.0, 1.0)  # exactly symmetric whatever order BLAS summed in
    names = means.index.astype(str)
    return pd.DataFrame(sim, index=pd.Index(names, name="outlet"), columns=pd.Index(names, name="outlet"))


def outlet_hierarchy(similarity: pd.DataFrame, *, n_groups: int | None = None) -> tuple[list[str], pd.Series]:
    """Average-linkage clustering of outlets on cosine distance `1 - similarity`: leaf order and flat groups.

    Returns the outlets in dendrogram leaf order (optimal leaf ordering, Bar-Joseph et al. 2001, for up to
    MAX_LEAF_ORDERING_OUTLETS outlets), so a heatmap drawn in that order shows outlets that sound alike as
    blocks, and a Series outlet -> group id (int, 1..k, numbered as the groups first appear in that order).
    Average linkage because a group of outlets should be close on the whole, not through one chain of
    neighbours (single) or only if every pair is close (complete). `n_groups` cuts the tree into at most that
    many groups; None cuts at DENDROGRAM_CUT x the top merge distance, the threshold scipy's `dendrogram`
    colours by, so groups adapt to how spread out the outlets are (and any two distinct outlets get >= 2).
    """
    from scipy.cluster.hierarchy import fcluster, leaves_list, linkage, optimal_leaf_ordering
    from scipy.spatial.distance import squareform

    if list(similarity.index) != list(similarity.columns):
        raise ValueError("similarity must be square with the same labels on index and columns")
    if n_groups is not None and n_groups < 1:
        raise ValueError(f"n_groups must be >= 1 or None; got {n_groups}")
    names = [str(name) for name in similarity.index]
    if len(names) < 2:
        return names, pd.Series(1, index=pd.Index(names, name="outlet"), name="outlet_group", dtype=np.int64)
    distance = np.clip(1.0 - similarity.to_numpy(dtype=np.float64), 0.0, 2.0)
    distance = (distance + distance.T) / 2.0
    np.fill_diagonal(distance, 0.0)
    condensed = squareform(distance, checks=False)
    tree = linkage(condensed, method="average")
    if len(names) <= MAX_LEAF_ORDERING_OUTLETS:
        tree = optimal_leaf_ordering(tree, condensed)
    leaves = leaves_list(tree)
    if n_groups is None:
        flat = fcluster(tree, t=DENDROGRAM_CUT * tree[:, 2].max(), criterion="distance")
    else:
        flat = fcluster(tree, t=n_groups, criterion="maxclust")
    renumber = {old: new for new, old in enumerate(dict.fromkeys(flat[leaves].tolist()), start=1)}
    groups = pd.Series([renumber[g] for g in flat.tolist()], index=pd.Index(names, name="outlet"),
                       name="outlet_group", dtype=np.int64)
    return [names[i] for i in leaves], groups


def topic_outlet_table(
    points: pd.DataFrame,
    sentiment: pd.Series | None,
    keywords: dict[int, list[str]],
    *,
    min_articles: int = MIN_TOPIC_ARTICLES,
) -> pd.DataFrame:
    """One row per (map cluster, outlet) cell: how much of the cluster the outlet writes and in what tone.

    `points` needs `outlet` and `cluster` (e.g. `ClusterResult.points`); `sentiment` holds predicted labels
    aligned with its rows (NaN allowed). Noise (-1) is left out: it is no map cluster. Cells with fewer than
    `min_articles` articles are dropped, since a sentiment mix of one or two articles says little; their articles
    still count in `cluster_share` and in `net_vs_topic`'s cluster average. With sentiment the table adds
    `share_<label>` (over the cell's labelled articles, so they sum to 1 unless none are labelled),
    `net_sentiment` (positive minus negative share, -1 to 1) and `net_vs_topic` (that minus the whole
    cluster's net sentiment): outlets with close shares on a map cluster sound alike on it. Sorted by cluster, then by
    n_articles (largest first), then outlet.
    """
    if min_articles < 1:
        raise ValueError(f"min_articles must be >= 1; got {min_articles}")
    if sentiment is not None and not sentiment.index.equals(points.index):
        raise ValueError("sentiment must have the same index as points")
    clustered = points.loc[points["cluster"] != NOISE]
    rows = []
    for cluster, topic in clustered.groupby("cluster", sort=True):
        topic_net = _sentiment_shares(sentiment.loc[topic.index])["net_sentiment"] if sentiment is not None else 0.0
        for outlet, cell in topic.groupby(topic["outlet"].astype(str), sort=True):
            if len(cell) < min_articles:
                continue
            row = {
                "cluster": int(cluster),
                "keywords": ", ".join(keywords.get(int(cluster), [])),
                "outlet": outlet,
                "n_articles": len(cell),
                "cluster_share": len(cell) / len(topic),
            }
            if sentiment is not None:
                row.update(_sentiment_shares(sentiment.loc[cell.index]))
                row["net_vs_topic"] = row["net_sentiment"] - topic_net
            rows.append(row)
    columns = list(TOPIC_OUTLET_COLUMNS)
    if sentiment is not None:
        columns += [f"share_{label}" for label in SENTIMENT_LABELS] + ["net_sentiment", "net_vs_topic"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["cluster", "n_articles", "outlet"], ascending=[True, False, True], ignore_index=True)


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
    """Map articles and outlets: project, cluster, describe clusters, compare outlets.

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
    umap_args = dict(n_neighbors=n_neighbors, min_dist=min_dist, metric=metric, random_state=random_state)
    reduced = project_umap(vectors, n_components=n_components, **umap_args)
    labels = cluster_points(reduced, min_cluster_size=min_cluster_size, min_samples=min_samples)
    if projection == "tsne":
        xy = project_tsne(vectors, metric=metric, random_state=random_state)
    else:
        xy = reduced if n_components == 2 else project_umap(vectors, n_components=2, **umap_args)
    points = pd.DataFrame(
        {"article_id": articles["article_id"], "outlet": articles["outlet"], "x": xy[:, 0], "y": xy[:, 1],
         "cluster": labels},
        columns=list(POINT_COLUMNS),
    )
    similarity = outlet_similarity(articles["outlet"], vectors)
    order, groups = outlet_hierarchy(similarity, n_groups=n_outlet_groups)
    sentiment = articles["sentiment"] if "sentiment" in articles.columns else None
    keywords = cluster_keywords(articles["text"].tolist(), labels, top_k=top_k)
    return ClusterResult(
        points=points,
        outlets=_outlet_table(points, similarity, groups, sentiment),
        outlet_similarity=similarity,
        outlet_order=order,
        topic_outlet_sentiment=topic_outlet_table(points, sentiment, keywords, min_articles=min_topic_articles),
        cluster_keywords=keywords,
        n_clusters=len(set(labels.tolist()) - {NOISE}),
        noise_share=float(np.mean(labels == NOISE)),
    )


def _outlet_table(
    points: pd.DataFrame, similarity: pd.DataFrame, groups: pd.Series, sentiment: pd.Series | None
) -> pd.DataFrame:
    rows = []
    for outlet, group in points.groupby(points["outlet"].astype(str), sort=True):
        others = similarity.loc[outlet].drop(outlet)
        clustered = group.loc[group["cluster"] != NOISE, "cluster"]
        # mode() is sorted, so ties go to the smaller cluster id.
        dominant = int(clustered.mode().iloc[0]) if len(clustered) else NOISE
        row = {
            "outlet": outlet,
            "n_articles": len(group),
            "nearest_outlet": others.idxmax() if len(others) else None,
            "nearest_similarity": float(others.max()) if len(others) else float("nan"),
            "outlet_group": int(groups[outlet]),
            "dominant_cluster": dominant,
            "dominant_cluster_share": float((group["cluster"] == dominant).mean()),
            "noise_share": float((group["cluster"] == NOISE).mean()),
        }
        if sentiment is not None:
            row.update(_sentiment_shares(sentiment.loc[group.index]))
        rows.append(row)
    return pd.DataFrame(rows)


def _sentiment_shares(sentiment: pd.Series) -> dict[str, float]:
    # Shares over the labelled (non-NaN) articles; all zero when none is labelled.
    counts = sentiment.value_counts(normalize=True)
    shares = {f"share_{label}": float(counts.get(label, 0.0)) for label in SENTIMENT_LABELS}
    shares["net_sentiment"] = shares["share_positive"] - shares["share_negative"]  # -1 (all negative) to 1
    return shares


def _check_articles(articles: pd.DataFrame, vectors: np.ndarray) -> None:
    missing = [c for c in ("article_id", "outlet", "text") if c not in articles.columns]
    if missing:
        raise ValueError(f"articles is missing columns {missing}; got {list(articles.columns)}")
    if len(articles) != len(vectors):
        raise ValueError(f"articles and vectors must align; got {len(articles)} articles and {len(vectors)} vectors")
    if "sentiment" in articles.columns:
        check_labels(articles["sentiment"], "sentiment", where="cluster_outlets")


def _check_matrix(values: np.ndarray, *, name: str) -> np.ndarray:
    matrix = np.asarray(values)
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError(f"{name} contains NaN or inf in {int((~np.isfinite(matrix)).any(axis=1).sum())} rows")
    return matrix
