"""Tables about outlets on the outlet map: how alike outlets sound (cosine of mean vectors, a dendrogram order and
flat groups), each outlet's sentiment mix, and each (map cluster, outlet) cell's sentiment against the cluster's."""

from __future__ import annotations

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.schema import SENTIMENT_LABELS

NOISE = -1  # HDBSCAN's label for points in no cluster


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


def check_matrix(values: np.ndarray, *, name: str) -> np.ndarray:
    matrix = np.asarray(values)
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError(f"{name} contains NaN or inf in {int((~np.isfinite(matrix)).any(axis=1).sum())} rows")
    return matrix



MIN_TOPIC_ARTICLES = 5  # smallest (cluster, outlet) cell whose sentiment shares are worth a row


MAX_LEAF_ORDERING_OUTLETS = 1000  # optimal leaf ordering is ~O(n^3): 0.3 s at 500 outlets, seconds at 1000


DENDROGRAM_CUT = 0.7  # default flat cut, as a share of the top merge distance (scipy's dendrogram colouring)


def outlet_similarity(outlets: pd.Series, vectors: np.ndarray) -> pd.DataFrame:
    """Cosine similarity between outlets' mean article vectors; a symmetric outlet x outlet frame.

    Rows are L2-normalised before averaging, so every article weighs the same whatever its norm.
    """
    return similarity_from_sums(outlet_vector_sums(outlets, vectors))


def outlet_vector_sums(outlets: pd.Series, vectors: np.ndarray) -> pd.DataFrame:
    """Per outlet: n (articles) and the float64 sum of its L2-normalised vectors, one column per dimension;
    indexed by outlet (sorted). Sums of days add up to the sums of their union."""
    matrix = check_matrix(vectors, name="vectors").astype(np.float64)
    if len(outlets) != len(matrix):
        raise ValueError(f"outlets and vectors must align; got {len(outlets)} outlets and {len(matrix)} vectors")
    unit = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    frame = pd.DataFrame(unit, columns=[f"d{i}" for i in range(unit.shape[1])])
    sums = frame.groupby(np.asarray(outlets).astype(str)).sum()
    sums.insert(0, "n", pd.Series(np.asarray(outlets).astype(str)).value_counts().reindex(sums.index).to_numpy())
    sums.index.name = "outlet"
    return sums


def add_sums(old: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """Per-outlet sums of two sets of articles."""
    if old is None or old.empty:
        return new.sort_index()
    return old.add(new, fill_value=0.0).sort_index()


def similarity_from_sums(sums: pd.DataFrame) -> pd.DataFrame:
    """Cosine similarity between outlets' mean unit vectors (`outlet_similarity`), from their sums."""
    centroids = sums.drop(columns="n").to_numpy(dtype=np.float64) / sums["n"].to_numpy()[:, None]
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    sim = np.clip((centroids @ centroids.T + (centroids @ centroids.T).T) / 2.0, -1.0, 1.0)
    names = pd.Index(sums.index.astype(str), name="outlet")
    return pd.DataFrame(sim, index=names, columns=names.copy())


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


def outlet_table(
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
