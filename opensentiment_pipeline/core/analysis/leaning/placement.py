"""`place_outlets`: every outlet on the left-right axis, by the probe path (ratings) or the principal axes."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.analysis.leaning import calibration as calibration_
from opensentiment_pipeline.core.analysis.leaning import probes
from opensentiment_pipeline.core.analysis.leaning.directions import (
    no_topic_free_view,
    remove_directions,
)
from opensentiment_pipeline.core.analysis.leaning.outlets import (
    LEANING_COLUMNS,
    LeaningResult,
    bootstrap_means,
    outlet_table,
)
from opensentiment_pipeline.core.analysis.leaning.principal import principal_axes
from opensentiment_pipeline.core.analysis.leaning.references import (
    LEANINGS,
    article_labels,
)

logger = logging.getLogger(__name__)
VIEW_METRICS = ("outlet_cv_macro_f1", "outlet_cv_spearman")


def place_outlets(
    articles: pd.DataFrame,
    vectors: np.ndarray,
    *,
    reference: Mapping[str, str] | None,
    n_folds: int,
    regularization: float,
    n_axes: int,
    min_articles: int,
    n_bootstrap: int,
    seed: int,
    topic_clusters: int,
    covariates: np.ndarray | None,
    outlet_directions: int,
    standardize: bool,
    texts: Sequence[str] | None,
    lexical_weight: float,
    tfidf_regularization: float,
    topic_free_share: float,
) -> LeaningResult:
    """Place every outlet of `articles` on a left-right scale from `vectors`.

    Every setting that changes the result is required; `OutletLeaningConfig` (the asset's config) holds the
    defaults, with a reason for each.

    Args:
        articles: column `outlet`, optionally `leaning` (left / center / right / None per article, as the
            source gives it); row i belongs to `vectors[i]`.
        vectors: `(n_articles, dimensions)` embeddings; rows are L2-normalised on a copy.
        reference: {outlet: leaning} ratings (see `read_reference_csv`); they replace the `leaning` column.
            None uses the column. With no rating at all, the principal-axes path runs.
        n_folds: GroupKFold splits by outlet for validation (capped at the number of rated outlets).
        regularization: inverse L2 strength `C` of the logistic-regression probe.
        n_axes: principal axes reported on the no-reference path.
        min_articles: outlets with fewer articles are placed, but neither define the principal axes, the
            calibration or the thresholds, nor count in the outlet metrics (their means are too noisy).
        n_bootstrap: resamples of each outlet's articles for the interval.
        seed: seed of the bootstrap and of the topic clustering.
        topic_clusters: k of the k-means whose centroids are subtracted from the articles (0 = keep topics):
            before the principal axes (fitted on every article: no rating is read there), and for the probe
            path's topic-free view (`topic_free_share`, fitted inside each training fold).
        covariates: principal-axes path: `(n_articles, k)` format features (`format_features`) whose linear fit
            is removed from the vectors; None keeps them.
        outlet_directions: probe path: project out this many directions that tell apart outlets *of the same
            leaning* (`outlet_identity_directions`), fitted inside each training fold; 0 keeps the vectors.
        standardize: probe path: scale each dimension to unit variance (fitted on the training fold) before the
            probe. Unit vectors give every dimension a spread of ~0.05, so a plain `C` regularises hard.
        texts: probe path: each article's text (`axis_texts`), aligned with `articles`. Given, the TF-IDF probe
            (`fit_tfidf_probe`) runs on the same folds and its metrics come back as `tfidf_outlet_cv_*`.
        lexical_weight: probe path, needs `texts`: the axis reads `w * P_tfidf + (1 - w) * P_embedding` per
            article (0 = the embedding probes alone, reported as `embedding_outlet_cv_*` either way).
        tfidf_regularization: `C` of the TF-IDF probe.
        topic_free_share: probe path: the embedding probe's probabilities are (1 - s) x those of a probe on the
            vectors + s x those of a probe on the *topic-free* vectors (each article minus its nearest k-means
            topic centroid). Outlets differ in what they cover as well as in how they cover it; the topic-free
            view reads only the second. Its own figures come back as `topic_free_outlet_cv_*`.

    Returns:
        A `LeaningResult`; its `warnings` say what had to be substituted and why (they are also logged).
    """
    unit = _check_inputs(articles, vectors)
    outlets = articles["outlet"].astype(str).to_numpy()
    labels = article_labels(articles, reference)
    if not 0.0 <= lexical_weight <= 1.0:
        raise ValueError(f"lexical_weight must be in [0, 1]; got {lexical_weight}")
    if not 0.0 <= topic_free_share <= 1.0:
        raise ValueError(f"topic_free_share must be in [0, 1]; got {topic_free_share}")
    if lexical_weight > 0 and texts is None:
        raise ValueError("lexical_weight > 0 blends in the TF-IDF probe, which needs the articles' texts")
    if texts is not None and len(texts) != len(articles):
        raise ValueError(f"texts must align with articles; got {len(texts)} texts for {len(articles)} articles")
    if labels.notna().any():
        return _probe_path(outlets, unit, labels, n_folds=n_folds, regularization=regularization,
                           min_articles=min_articles, n_bootstrap=n_bootstrap, seed=seed,
                           outlet_directions=outlet_directions, standardize=standardize, texts=texts,
                           lexical_weight=lexical_weight, tfidf_regularization=tfidf_regularization,
                           topic_clusters=topic_clusters, topic_free_share=topic_free_share)
    residual = remove_directions(unit, topic_clusters=topic_clusters, covariates=covariates, seed=seed)
    return principal_axes(outlets, residual, n_axes=n_axes, min_articles=min_articles, n_bootstrap=n_bootstrap,
                          seed=seed)


def _probe_path(outlets: np.ndarray, unit: np.ndarray, labels: pd.Series, *, n_folds: int, regularization: float,
                min_articles: int, n_bootstrap: int, seed: int, outlet_directions: int, standardize: bool,
                texts: Sequence[str] | None, lexical_weight: float, tfidf_regularization: float,
                topic_clusters: int, topic_free_share: float) -> LeaningResult:
    rated, folds = probes.rated_folds(outlets, labels, n_folds)
    y, groups = labels[rated].to_numpy(), outlets[rated]
    unrated = unit[~rated] if (~rated).any() else None
    warnings: list[str] = []
    common = dict(regularization=regularization, standardize=standardize, outlet_directions=outlet_directions,
                  seed=seed)
    held_out, unrated_proba = probes.vector_proba(unit[rated], y, groups, folds, unrated, topic_clusters=0,
                                                  **common)
    metrics: dict[str, float] = {}
    smallest_fold = min(len(train) for train, _ in folds)
    impossible = no_topic_free_view(smallest_fold, topic_free_share=topic_free_share, topic_clusters=topic_clusters)
    if impossible:
        warnings.append(impossible)
    elif topic_free_share > 0:
        free, free_unrated = probes.vector_proba(unit[rated], y, groups, folds, unrated,
                                                 topic_clusters=topic_clusters, **common)
        alone = probes.cv_metrics(groups, y, free, min_articles=min_articles)
        metrics.update({f"topic_free_{k}": alone[k] for k in VIEW_METRICS})
        held_out = (1 - topic_free_share) * held_out + topic_free_share * free
        if unrated_proba is not None:
            unrated_proba = (1 - topic_free_share) * unrated_proba + topic_free_share * free_unrated
    embedding_alone = probes.cv_metrics(groups, y, held_out, min_articles=min_articles)
    metrics.update({f"embedding_{k}": embedding_alone[k] for k in VIEW_METRICS})
    if texts is not None:
        documents = np.asarray([str(t) for t in texts], dtype=object)
        words = probes.tfidf_proba_on_folds(documents[rated], y, folds, tfidf_regularization)
        words_alone = probes.cv_metrics(groups, y, words, min_articles=min_articles)
        metrics.update({f"tfidf_{k}": words_alone[k] for k in VIEW_METRICS})
        if lexical_weight > 0:
            held_out = lexical_weight * words + (1 - lexical_weight) * held_out
            if unrated_proba is not None:
                fitted = probes.fit_tfidf_probe(documents[rated], y, tfidf_regularization)
                everything = probes.predict_proba(fitted, documents[~rated])
                unrated_proba = lexical_weight * everything + (1 - lexical_weight) * unrated_proba
    article_scores = np.empty(len(unit))
    article_scores[rated] = held_out[:, 2] - held_out[:, 0]
    if unrated_proba is not None:
        article_scores[~rated] = unrated_proba[:, 2] - unrated_proba[:, 0]
    table = outlet_table(outlets, article_scores, labels, n_bootstrap=n_bootstrap, seed=seed)
    metrics.update({**probes.cv_metrics(groups, y, held_out, min_articles=min_articles),
                    "n_folds": float(len(folds))})
    scored = table[table["fitted_on"] & (table["n_articles"] >= min_articles)]
    fold_of = {o: k for k, (_, test) in enumerate(folds) for o in np.unique(groups[test])}
    label_metrics, calibration, thresholds, notes = calibration_.calibrate_in_cv(
        scored["raw_score"].to_numpy(), scored["reference_mean"].to_numpy(dtype=float),
        np.array([fold_of[o] for o in scored["outlet"]]))
    warnings += notes
    metrics.update(label_metrics)
    intervals = None
    if calibration is not None:
        _, draws = bootstrap_means(outlets, article_scores, n_bootstrap=n_bootstrap, seed=seed)  # table's order
        intervals = calibration_.calibrated_intervals(calibration, scored["raw_score"].to_numpy(),
                                                      scored["reference_mean"].to_numpy(dtype=float), draws, seed=seed)
    table = calibration_.apply_calibration(table, calibration, thresholds, intervals)
    for side in LEANINGS:
        chosen = table[table["fitted_on"] & (table["n_articles"] >= min_articles) & (table["reference_leaning"] == side)]
        metrics[f"median_score_{side}"] = float(chosen["score"].median()) if len(chosen) else float("nan")
    for message in warnings:
        logger.warning("%s", message)
    return LeaningResult(outlets=table[list(LEANING_COLUMNS)], method="probe", metrics=metrics,
                         article_scores=article_scores, warnings=tuple(warnings))


def _check_inputs(articles: pd.DataFrame, vectors: np.ndarray) -> np.ndarray:
    if "outlet" not in articles.columns:
        raise ValueError(f"articles is missing column 'outlet'; got {list(articles.columns)}")
    matrix = np.asarray(vectors, dtype=np.float64)
    if matrix.ndim != 2 or len(matrix) != len(articles):
        raise ValueError(f"vectors must be (n_articles, dimensions) with n_articles={len(articles)}; "
                         f"got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError(f"vectors contain NaN or inf in {int((~np.isfinite(matrix)).any(axis=1).sum())} rows")
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
