"""The rating-free axis: principal axes of the outlet centroids after topic and format directions are removed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.analysis.leaning.outlets import (
    AXIS_COLUMNS,
    LEANING_COLUMNS,
    LeaningResult,
    outlet_table,
)


def principal_axes(outlets: np.ndarray, unit: np.ndarray, *, n_axes: int, min_articles: int,
                   n_bootstrap: int, seed: int) -> LeaningResult:
    """PCA on the outlet centroids (means of the rows of `unit`, `(n_articles, d)`) of outlets with at least
    `min_articles` articles; axis 1, scaled so the farthest such outlet sits at +-1, is the score. Its sign is
    arbitrary: `axes` names the outlets at each end."""
    from sklearn.decomposition import PCA

    names, inverse = np.unique(outlets, return_inverse=True)
    counts = np.bincount(inverse)
    centroids = np.stack([unit[inverse == i].mean(axis=0) for i in range(len(names))])  # (n_outlets, d)
    defining = counts >= min_articles
    if defining.sum() < 2:
        raise ValueError(f"principal axes need >= 2 outlets with >= {min_articles} articles (min_articles); got "
                         f"{int(defining.sum())} of {len(names)} outlets. Lower min_articles or add articles")
    if n_axes < 1:
        raise ValueError(f"n_axes must be >= 1; got {n_axes}")
    pca = PCA(n_components=min(n_axes, int(defining.sum()) - 1), svd_solver="full").fit(centroids[defining])
    positions = pca.transform(centroids)  # (n_outlets, n_axes)
    scale = float(np.abs(positions[defining, 0]).max()) or 1.0
    # An outlet's mean article position is its centroid's position.
    article_scores = (unit - pca.mean_) @ pca.components_[0] / scale
    table = outlet_table(outlets, article_scores, pd.Series([None] * len(outlets), dtype=object),
                         n_bootstrap=n_bootstrap, seed=seed)
    ends = min(3, int(defining.sum()) // 2) or 1
    axes = []
    for axis in range(pca.n_components_):
        order = np.argsort(positions[:, axis], kind="stable")
        ranked = [names[i] for i in order if defining[i]]
        axes.append({"axis": axis + 1, "explained_variance_ratio": float(pca.explained_variance_ratio_[axis]),
                     "low_end": ranked[:ends], "high_end": ranked[::-1][:ends]})
    metrics = {f"explained_variance_ratio_axis{a + 1}": float(r) for a, r in enumerate(pca.explained_variance_ratio_)}
    scaled = positions / np.maximum(np.abs(positions[defining]).max(axis=0), 1e-12)
    return LeaningResult(outlets=table[list(LEANING_COLUMNS)], method="principal_axes", metrics=metrics,
                         axes=pd.DataFrame(axes, columns=list(AXIS_COLUMNS)),
                         positions=pd.DataFrame(scaled, index=pd.Index(names, name="outlet"),
                                                columns=[f"axis{a + 1}" for a in range(pca.n_components_)]))
