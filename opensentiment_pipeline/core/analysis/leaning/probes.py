"""Leaning probes and their outlet-disjoint cross-validation: the folds, the embedding and TF-IDF probes, the
held-out probabilities every score is built from, and the metrics they are judged by."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.analysis.leaning.directions import (
    outlet_identity_directions,
    project_out,
    subtract_topics,
    topic_kmeans,
)
from opensentiment_pipeline.core.analysis.leaning.references import (
    LEANING_SCORE,
    LEANINGS,
    article_labels,
)


def rated_folds(outlets: np.ndarray, labels: pd.Series, n_folds: int) -> tuple[np.ndarray, list]:
    """Mask of rated articles and the GroupKFold (by outlet) splits of the rated rows: the folds every probe
    here (embedding, TF-IDF, the benchmarks' trained projections) is validated on."""
    from sklearn.model_selection import GroupKFold

    rated = labels.notna().to_numpy()
    rated_outlets = np.unique(outlets[rated])
    classes = sorted(set(labels.dropna()), key=LEANINGS.index)
    if len(classes) < 2 or len(rated_outlets) < 2:
        raise ValueError(f"the probe needs rated outlets with at least two leanings; got {len(rated_outlets)} rated "
                         f"outlet(s) with leanings {classes}. Add ratings (reference_csv) or pass none at all")
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2 for outlet-disjoint validation; got {n_folds}")
    splitter = GroupKFold(n_splits=min(n_folds, len(rated_outlets)))
    return rated, list(splitter.split(np.zeros(int(rated.sum())), groups=outlets[rated]))


def cv_metrics(groups: np.ndarray, y: np.ndarray, proba: np.ndarray, *, min_articles: int) -> dict[str, float]:
    """Article-level macro-F1 of the held-out argmax and Spearman of held-out outlet means with the references."""
    from scipy.stats import spearmanr
    from sklearn.metrics import f1_score

    classes = sorted(set(y), key=LEANINGS.index)
    predicted = np.asarray(LEANINGS)[proba.argmax(axis=1)]
    frame = pd.DataFrame({"outlet": groups, "score": proba[:, 2] - proba[:, 0],
                          "reference": pd.Series(y).map(LEANING_SCORE).to_numpy()})
    per_outlet = frame.groupby("outlet").agg(score=("score", "mean"), reference=("reference", "mean"),
                                             n=("score", "size"))
    per_outlet = per_outlet[per_outlet["n"] >= min_articles]
    spearman = spearmanr(per_outlet["score"], per_outlet["reference"]).statistic if len(per_outlet) > 1 else np.nan
    return {"outlet_cv_macro_f1": float(f1_score(y, predicted, labels=classes, average="macro")),
            "outlet_cv_spearman": float(spearman), "n_rated_outlets": float(len(np.unique(groups))),
            "n_spearman_outlets": float(len(per_outlet))}


def probe_model(regularization: float, *, standardize: bool):
    """Balanced logistic regression with inverse L2 strength `regularization`, after a StandardScaler when
    `standardize`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if regularization <= 0:
        raise ValueError(f"regularization (C) must be > 0; got {regularization}")
    # Balanced classes, so the share of left/right outlets among the references does not shift every score.
    probe = LogisticRegression(C=regularization, class_weight="balanced", max_iter=2000)
    return make_pipeline(StandardScaler(), probe) if standardize else probe


def predict_proba(probe, x) -> np.ndarray:
    """(n, 3) probabilities in LEANINGS order; a class the fold never saw gets 0."""
    proba = np.zeros((len(x), len(LEANINGS)))
    proba[:, [LEANINGS.index(c) for c in probe.classes_]] = probe.predict_proba(x)
    return proba


def vector_proba(x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: list, unrated: np.ndarray | None, *,
                 regularization: float, standardize: bool, outlet_directions: int, topic_clusters: int,
                 seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Held-out `(n_rated, 3)` probabilities of the rated rows `x` (each fold's probe fitted on its training
    rows), and those of the `unrated` rows from a probe fitted on every rated row (None when there are none).

    With `topic_clusters` > 0 this is the topic-free view: a k-means fitted on the training rows alone gives
    every row its nearest topic centroid, which is subtracted before the probe, so no held-out outlet shapes
    the topics its articles are judged after. `outlet_directions` are likewise fitted on the training rows.
    """
    def fit_predict(train: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return fit_vector_probe(x[train], y[train], groups[train], regularization=regularization,
                                standardize=standardize, outlet_directions=outlet_directions,
                                topic_clusters=topic_clusters, seed=seed).proba(targets)

    held_out = np.zeros((len(y), len(LEANINGS)))
    for train, test in folds:
        held_out[test] = fit_predict(train, x[test])
    everything = np.arange(len(y))
    return held_out, fit_predict(everything, unrated) if unrated is not None and len(unrated) else None


@dataclass(frozen=True)
class VectorProbe:
    """A probe on article vectors with what it removes first: the nearest topic centroid (`topics`, a fitted
    k-means; None keeps topics) and the outlet-identity directions (`basis`, `(k, d)`)."""

    topics: object | None
    basis: np.ndarray
    probe: object

    def proba(self, unit: np.ndarray) -> np.ndarray:
        """`(n, 3)` probabilities in LEANINGS order of the unit rows `unit`."""
        if self.topics is not None:
            unit = subtract_topics(unit, self.topics)
        return predict_proba(self.probe, project_out(unit, self.basis))


def fit_vector_probe(x: np.ndarray, y: np.ndarray, groups: np.ndarray, *, regularization: float, standardize: bool,
                     outlet_directions: int, topic_clusters: int, seed: int) -> VectorProbe:
    """The `VectorProbe` of the rows `x` with leanings `y` of outlets `groups`: topics (`topic_clusters` > 0)
    and outlet directions fitted on these rows alone, then the probe."""
    topics = None
    if topic_clusters > 0:
        topics = topic_kmeans(x, topic_clusters=topic_clusters, seed=seed)
        if topics is None:
            raise ValueError(f"topic_clusters {topic_clusters}: a training fold of {len(x)} articles "
                             "gives fewer than two topics; check with topic_kmeans_size before asking")
        x = subtract_topics(x, topics)
    basis = outlet_identity_directions(x, y, groups, outlet_directions)
    probe = probe_model(regularization, standardize=standardize).fit(project_out(x, basis), y)
    return VectorProbe(topics=topics, basis=basis, probe=probe)


def fit_tfidf_probe(documents: np.ndarray, y: np.ndarray, regularization: float):
    """TF-IDF (1-2 grams, sublinear) + balanced logistic regression, the vocabulary fitted on `documents` only."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    # min_df 3 drops one-article names and typos; tiny corpora keep every term so the vocabulary is not empty.
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=3 if len(documents) >= 100 else 1, max_df=0.5,
                                 sublinear_tf=True, max_features=200_000, dtype=np.float32)
    return make_pipeline(vectorizer, probe_model(regularization, standardize=False)).fit(documents, y)


def tfidf_proba_on_folds(documents: np.ndarray, y: np.ndarray, folds: list, regularization: float) -> np.ndarray:
    """Each fold's held-out rows scored by the TF-IDF probe fitted on its training rows."""
    proba = np.zeros((len(y), len(LEANINGS)))
    for train, test in folds:
        proba[test] = predict_proba(fit_tfidf_probe(documents[train], y[train], regularization), documents[test])
    return proba


def tfidf_held_out(texts: Sequence[str], articles: pd.DataFrame, *, reference: Mapping[str, str] | None,
                   n_folds: int, regularization: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The TF-IDF probe's held-out `(n_rated, 3)` probabilities, with the rated articles' labels and outlets."""
    if len(texts) != len(articles):
        raise ValueError(f"texts must align with articles; got {len(texts)} texts for {len(articles)} articles")
    labels = article_labels(articles, reference)
    outlets = articles["outlet"].astype(str).to_numpy()
    rated, folds = rated_folds(outlets, labels, n_folds)
    documents = np.asarray([str(t) for t in texts], dtype=object)[rated]
    y = labels[rated].to_numpy()
    return tfidf_proba_on_folds(documents, y, folds, regularization), y, outlets[rated]


def tfidf_reference(texts: Sequence[str], articles: pd.DataFrame, *, reference: Mapping[str, str] | None,
                    n_folds: int, regularization: float, min_articles: int) -> dict[str, float]:
    """Outlet-disjoint macro-F1 and Spearman of a TF-IDF (1-2 grams, sublinear) + logistic-regression probe.

    The folds are `place_outlets`' folds (same rows, same outlets), the vocabulary is fitted on each training
    fold only, and outlets are scored as there, so the two probes compare like for like.

    Returns:
        {"tfidf_outlet_cv_macro_f1", "tfidf_outlet_cv_spearman"}.
    """
    proba, y, groups = tfidf_held_out(texts, articles, reference=reference, n_folds=n_folds,
                                      regularization=regularization)
    metrics = cv_metrics(groups, y, proba, min_articles=min_articles)
    return {"tfidf_outlet_cv_macro_f1": metrics["outlet_cv_macro_f1"],
            "tfidf_outlet_cv_spearman": metrics["outlet_cv_spearman"]}
