"""Directions removed from article vectors before the axis reads them: k-means topic centroids, format
covariates, and the directions that tell outlets of one leaning apart."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ARTICLES_PER_TOPIC = 50  # topic k-means: at most one topic per this many articles


def topic_kmeans_size(n_articles: int, topic_clusters: int) -> int:
    """The k `topic_kmeans` uses: topic_clusters, capped at one topic per ARTICLES_PER_TOPIC articles.

    With few articles per cluster the clusters follow whatever varies most, ideology included, and subtracting
    them would remove the axis itself.
    """
    if topic_clusters < 0:
        raise ValueError(f"topic_clusters must be >= 0; got {topic_clusters}")
    return min(topic_clusters, n_articles // ARTICLES_PER_TOPIC)


def topic_kmeans(unit: np.ndarray, *, topic_clusters: int, seed: int):
    """k-means with k = `topic_kmeans_size`, fitted on `unit`; None when k < 2 (nothing to subtract)."""
    k = topic_kmeans_size(len(unit), topic_clusters)
    if k < 2:
        return None
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=3, random_state=seed).fit(unit)


def subtract_topics(unit: np.ndarray, model) -> np.ndarray:
    """Each row minus the centroid of its nearest topic in `model` (a fitted k-means), re-normalised."""
    residual = unit - model.cluster_centers_[model.predict(unit)]
    return residual / np.maximum(np.linalg.norm(residual, axis=1, keepdims=True), 1e-12)


def remove_directions(unit: np.ndarray, *, topic_clusters: int, covariates: np.ndarray | None,
                      seed: int) -> np.ndarray:
    """`unit` minus each row's k-means topic centroid (`topic_clusters` > 0, k capped as `topic_kmeans_size`)
    and minus the linear fit of the standardised `covariates`, re-normalised; `(n, d)` in, `(n, d)` out.

    Used where no rating is read (the principal axes): the k-means sees every article. The probes fit their
    topic k-means inside each training fold instead (`subtract_topics`).
    """
    return fit_directions(unit, topic_clusters=topic_clusters, covariates=covariates, seed=seed).apply(
        unit, covariates)


@dataclass(frozen=True)
class Directions:
    """What `remove_directions` removes, fitted once: a topic k-means (None = keep topics) and the linear fit
    `coef` `(1 + k, d)` of the covariates standardised by `mean`, `std` (None = no covariates)."""

    topics: object | None
    mean: np.ndarray | None
    std: np.ndarray | None
    coef: np.ndarray | None

    def apply(self, unit: np.ndarray, covariates: np.ndarray | None) -> np.ndarray:
        """`unit` `(n, d)` with the fitted directions removed, re-normalised."""
        residual = unit.copy()
        if self.topics is not None:
            residual = residual - self.topics.cluster_centers_[self.topics.predict(unit)]
        if self.coef is not None:
            residual = residual - self._design(unit, covariates) @ self.coef
        return residual / np.maximum(np.linalg.norm(residual, axis=1, keepdims=True), 1e-12)

    def _design(self, unit: np.ndarray, covariates: np.ndarray | None) -> np.ndarray:
        c = _covariates(unit, covariates)
        c = (c - self.mean) / self.std
        return np.column_stack([np.ones(len(c)), c])


def fit_directions(unit: np.ndarray, *, topic_clusters: int, covariates: np.ndarray | None, seed: int) -> Directions:
    """The `Directions` of `remove_directions`, fitted on `unit` (and its `covariates`) to remove from other
    rows later."""
    model = topic_kmeans(unit, topic_clusters=topic_clusters, seed=seed)
    if covariates is None:
        return Directions(topics=model, mean=None, std=None, coef=None)
    residual = unit - model.cluster_centers_[model.labels_] if model is not None else unit
    c = _covariates(unit, covariates)
    mean, std = c.mean(axis=0), np.maximum(c.std(axis=0), 1e-12)
    design = np.column_stack([np.ones(len(c)), (c - mean) / std])
    coef, *_ = np.linalg.lstsq(design, residual, rcond=None)
    return Directions(topics=model, mean=mean, std=std, coef=coef)


def _covariates(unit: np.ndarray, covariates: np.ndarray | None) -> np.ndarray:
    c = np.asarray(covariates, dtype=float)
    if covariates is None or c.ndim != 2 or len(c) != len(unit):
        raise ValueError(f"covariates must be (n_articles, k) with n_articles={len(unit)}; got "
                         f"{None if covariates is None else c.shape}")
    return c


def outlet_identity_directions(x: np.ndarray, y: np.ndarray, outlets: np.ndarray, k: int) -> np.ndarray:
    """`(k', d)` orthonormal directions along which outlets *of the same leaning* differ most: the top right
    singular vectors of the outlet centroids minus their leaning's mean centroid. Leaning varies little along
    them and outlet identity (house style, beats) a lot, so removing them keeps a probe from learning outlets.
    k' = min(k, outlets - leanings); k = 0 gives `(0, d)`.
    """
    if k < 0:
        raise ValueError(f"outlet_directions must be >= 0; got {k}")
    frame = pd.DataFrame(x).assign(_outlet=outlets, _label=y)
    centroids = frame.groupby(["_label", "_outlet"]).mean()  # (n_outlets, d)
    deviations = centroids - centroids.groupby(level="_label").transform("mean")
    k = min(k, len(deviations) - deviations.index.get_level_values("_label").nunique())
    if k <= 0:
        return np.zeros((0, x.shape[1]))
    _, _, vt = np.linalg.svd(deviations.to_numpy(), full_matrices=False)
    return vt[:k]


def project_out(x: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """`x` with its components along the orthonormal rows of `basis` removed."""
    return x - (x @ basis.T) @ basis if len(basis) else x


def no_topic_free_view(smallest_fold: int, *, topic_free_share: float, topic_clusters: int) -> str | None:
    """The warning for a topic-free view asked for but impossible (fewer than two k-means topics in the smallest
    training fold: the "topic-free" probe would be the vectors' probe fitted twice); None when it is possible."""
    if topic_free_share <= 0 or topic_kmeans_size(smallest_fold, topic_clusters) >= 2:
        return None
    return (f"topic_free_share {topic_free_share:g}: the smallest training fold has {smallest_fold} articles, and "
            f"topic_clusters {topic_clusters} with one topic per {ARTICLES_PER_TOPIC} articles gives fewer than two "
            "k-means topics, so there is no topic-free view; the vectors' probe alone is used")
