"""The axis fitted once and kept: `fit_axis` fits every model that scores one article (`AxisFit`) on a bounded
sample of the archive (`fit_sample`), and `AxisFit.score` scores any later article with them.

The fit is `place_outlets`' (same folds, same probes, same blend), but it keeps what it fitted: each fold's
probes (a rated outlet's articles are scored by the fold that held it out, today's and every later one's), the
probes fitted on every rated outlet (unrated outlets, and outlets first seen after the fit), the boilerplate
each outlet's sample showed, and on the principal-axes path the removed directions and the axes. Scores are
then a fixed function of an article, so a night scores its new day alone and adds its sums
(`core.analysis.leaning.stats`). The outlet-disjoint validation metrics are the fit's, read on its sample.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.analysis.leaning import probes, references
from opensentiment_pipeline.core.analysis.leaning.directions import (
    Directions,
    fit_directions,
    no_topic_free_view,
    topic_kmeans,
)
from opensentiment_pipeline.core.analysis.leaning.placement import VIEW_METRICS
from opensentiment_pipeline.core.analysis.leaning.references import (
    LEANING_SCORE,
    article_labels,
)
from opensentiment_pipeline.core.analysis.leaning.texts import (
    axis_texts,
    format_features,
)

logger = logging.getLogger(__name__)


@dataclass
class AxisFit:
    """Everything that scores one article. `method` is "probe" (ratings) or "principal_axes"."""

    method: str
    reference: dict[str, str] | None
    recurring: dict[str, set[str]]  # each outlet's boilerplate paragraphs, found on the sample
    strip: tuple[float, int]  # strip_min_share, strip_min_count
    fold_of: dict[str, int] = field(default_factory=dict)  # rated outlet -> the fold that held it out
    vector_probes: list = field(default_factory=list)  # one per fold, then the one fitted on every rated outlet
    free_probes: list | None = None  # the topic-free view, same order (None: not blended in)
    tfidf_probes: list | None = None  # same order (None: lexical_weight 0)
    topic_free_share: float = 0.0
    lexical_weight: float = 0.0
    directions: Directions | None = None  # principal axes: what is removed before projecting
    remove_format: bool = False
    axes_mean: np.ndarray | None = None  # principal axes: PCA centre (d,) and components (k, d)
    axes: np.ndarray | None = None
    topic_source: str = "none"  # "column" (the sources' topic) | "kmeans" | "none"
    topics: object | None = None  # topic k-means of the per-topic view when the sources give no topics
    topic_keywords: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def n_axes(self) -> int:
        return 1 if self.method == "probe" else len(self.axes)

    def texts(self, articles: pd.DataFrame) -> list[str]:
        return axis_texts(articles, strip_min_share=self.strip[0], strip_min_count=self.strip[1],
                          recurring=self.recurring)

    def score(self, articles: pd.DataFrame, unit: np.ndarray) -> pd.DataFrame:
        """Per article (rows of `articles`: outlet, title, text, leaning/topic where present; `unit` `(n, d)`
        unit vectors): `outlet`, `axis1`..`axisK` (probe: P(right) - P(left), held out for rated outlets),
        `reference` (its rating -1 / 0 / 1, NaN when none) and `topic` (None when it has none)."""
        outlets = articles["outlet"].astype(str).to_numpy()
        texts = self.texts(articles) if (self.tfidf_probes or self.remove_format) else None
        if self.method == "probe":
            scores = self._probe_scores(outlets, unit, texts)[:, None]
        else:
            covariates = format_features(texts) if self.remove_format else None
            scores = (self.directions.apply(unit, covariates) - self.axes_mean) @ self.axes.T
        frame = pd.DataFrame(scores, columns=[f"axis{k + 1}" for k in range(scores.shape[1])])
        frame.insert(0, "outlet", outlets)
        # The article's own rating, not yet filled from its outlet's others: the table fills from the outlet's
        # sums over every day, as `article_labels` fills over every article.
        labels = references.own_labels(articles, self.reference)
        frame["reference"] = labels.map(LEANING_SCORE).to_numpy(dtype=float) if len(articles) else np.zeros(0)
        frame["topic"] = self._topics(articles, unit)
        return frame

    def _probe_scores(self, outlets: np.ndarray, unit: np.ndarray, texts: list[str] | None) -> np.ndarray:
        final = len(self.vector_probes) - 1
        which = np.array([self.fold_of.get(o, final) for o in outlets], dtype=int)
        scores = np.empty(len(outlets))
        documents = np.asarray(texts, dtype=object) if texts is not None else None
        for k in np.unique(which):
            rows = which == k
            proba = self.vector_probes[k].proba(unit[rows])
            if self.free_probes is not None:
                proba = (1 - self.topic_free_share) * proba + self.topic_free_share * self.free_probes[k].proba(
                    unit[rows])
            if self.tfidf_probes is not None:
                words = probes.predict_proba(self.tfidf_probes[k], documents[rows])
                proba = self.lexical_weight * words + (1 - self.lexical_weight) * proba
            scores[rows] = proba[:, 2] - proba[:, 0]
        return scores

    def _topics(self, articles: pd.DataFrame, unit: np.ndarray) -> list:
        if self.topic_source == "column":
            return [None if pd.isna(t) else str(t) for t in articles["topic"]] if "topic" in articles \
                else [None] * len(articles)
        if self.topic_source == "kmeans" and len(unit):
            return [str(t) for t in self.topics.predict(unit)]
        return [None] * len(articles)


def fit_sample(outlets: pd.Series, *, max_fit_articles: int, seed: int) -> np.ndarray:
    """Positions of the rows of `outlets` (one per article) to fit on: all of them up to `max_fit_articles`,
    else at most that many stratified by outlet (each outlet gets the same quota, an outlet with fewer articles
    all of its own, so small outlets are all kept and big ones do not crowd them out), drawn with `seed`."""
    if max_fit_articles < 1:
        raise ValueError(f"max_fit_articles must be >= 1; got {max_fit_articles}")
    if len(outlets) <= max_fit_articles:
        return np.arange(len(outlets))
    groups = pd.Series(np.arange(len(outlets))).groupby(outlets.astype(str).to_numpy(), sort=True)
    counts = np.sort(groups.size().to_numpy())
    # The largest per-outlet quota q with sum(min(count, q)) <= max_fit_articles.
    quota, left = 0, max_fit_articles
    for i, count in enumerate(counts):
        share = left // (len(counts) - i)
        if count > share:
            quota = share
            break
        left -= count
    else:
        quota = int(counts[-1])
    rng = np.random.default_rng(seed)
    picked = [rng.permutation(rows.to_numpy())[:quota] for _, rows in groups]
    return np.sort(np.concatenate(picked))


def fit_axis(articles: pd.DataFrame, unit: np.ndarray, *, reference: Mapping[str, str] | None, n_folds: int,
             regularization: float, n_axes: int, min_articles: int, seed: int, topic_clusters: int,
             outlet_directions: int, standardize: bool, lexical_weight: float, tfidf_regularization: float,
             topic_free_share: float, remove_format: bool, strip_min_share: float, strip_min_count: int,
             keyword_top_k: int) -> AxisFit:
    """Fit the axis on the sample `articles` (columns outlet, title, text, optionally leaning, topic) with its
    unit vectors `unit` `(n, d)`. Settings are `place_outlets`' (`tfidf_regularization` <= 0 leaves the TF-IDF
    probe out), `remove_format` (no ratings: regress `format_features` out before the principal axes), the
    boilerplate rule of `axis_texts`, and `keyword_top_k`, which names the per-topic view's k-means topics."""
    from opensentiment_pipeline.core.ingest import boilerplate

    if lexical_weight > 0 and tfidf_regularization <= 0:
        raise ValueError("lexical_weight > 0 blends in the TF-IDF probe, which tfidf_regularization <= 0 turns off")
    recurring = boilerplate.recurring_paragraphs(articles["text"].fillna("").astype(str).tolist(),
                                                 articles["outlet"].astype(str).tolist(), min_share=strip_min_share,
                                                 min_count=strip_min_count)
    fit = AxisFit(method="probe", reference=dict(reference) if reference is not None else None, recurring=recurring,
                  strip=(strip_min_share, strip_min_count))
    texts = fit.texts(articles)
    labels = article_labels(articles, reference)
    outlets = articles["outlet"].astype(str).to_numpy()
    if labels.notna().any():
        _fit_probes(fit, outlets, unit, labels, np.asarray(texts, dtype=object), n_folds=n_folds,
                    regularization=regularization, min_articles=min_articles, seed=seed,
                    outlet_directions=outlet_directions, standardize=standardize, lexical_weight=lexical_weight,
                    tfidf_regularization=tfidf_regularization, topic_clusters=topic_clusters,
                    topic_free_share=topic_free_share)
    else:
        _fit_axes(fit, outlets, unit, format_features(texts) if remove_format else None, n_axes=n_axes,
                  min_articles=min_articles, topic_clusters=topic_clusters, seed=seed)
        fit.remove_format = remove_format
    _fit_topics(fit, articles, unit, texts, topic_clusters=topic_clusters, seed=seed, keyword_top_k=keyword_top_k)
    for message in fit.warnings:
        logger.warning("%s", message)
    return fit


def _fit_probes(fit: AxisFit, outlets: np.ndarray, unit: np.ndarray, labels: pd.Series, documents: np.ndarray, *,
                n_folds: int, regularization: float, min_articles: int, seed: int, outlet_directions: int,
                standardize: bool, lexical_weight: float, tfidf_regularization: float, topic_clusters: int,
                topic_free_share: float) -> None:
    rated, folds = probes.rated_folds(outlets, labels, n_folds)
    x, y, groups, docs = unit[rated], labels[rated].to_numpy(), outlets[rated], documents[rated]
    everything = np.arange(len(y))
    common = {"regularization": regularization, "standardize": standardize,
              "outlet_directions": outlet_directions, "seed": seed}

    def view(k: int) -> tuple[list, np.ndarray]:
        fitted = [probes.fit_vector_probe(x[train], y[train], groups[train], topic_clusters=k, **common)
                  for train in [t for t, _ in folds] + [everything]]
        return fitted, _held_out(y, folds, [p.proba(x[test]) for p, (_, test) in zip(fitted, folds)])

    fit.vector_probes, held_out = view(0)
    metrics: dict[str, float] = {}
    warnings: list[str] = []
    smallest_fold = min(len(train) for train, _ in folds)
    impossible = no_topic_free_view(smallest_fold, topic_free_share=topic_free_share, topic_clusters=topic_clusters)
    if impossible:
        warnings.append(impossible)
    elif topic_free_share > 0:
        fit.free_probes, free = view(topic_clusters)
        fit.topic_free_share = topic_free_share
        alone = probes.cv_metrics(groups, y, free, min_articles=min_articles)
        metrics.update({f"topic_free_{k}": alone[k] for k in VIEW_METRICS})
        held_out = (1 - topic_free_share) * held_out + topic_free_share * free
    embedding_alone = probes.cv_metrics(groups, y, held_out, min_articles=min_articles)
    metrics.update({f"embedding_{k}": embedding_alone[k] for k in VIEW_METRICS})
    if tfidf_regularization > 0:
        fitted = [probes.fit_tfidf_probe(docs[train], y[train], tfidf_regularization) for train, _ in folds]
        words = _held_out(y, folds, [probes.predict_proba(p, docs[test]) for p, (_, test) in zip(fitted, folds)])
        words_alone = probes.cv_metrics(groups, y, words, min_articles=min_articles)
        metrics.update({f"tfidf_{k}": words_alone[k] for k in VIEW_METRICS})
        if lexical_weight > 0:
            fit.tfidf_probes = [*fitted, probes.fit_tfidf_probe(docs, y, tfidf_regularization)]
            fit.lexical_weight = lexical_weight
            held_out = lexical_weight * words + (1 - lexical_weight) * held_out
    metrics.update({**probes.cv_metrics(groups, y, held_out, min_articles=min_articles), "n_folds": float(len(folds))})
    fit.fold_of = {str(o): k for k, (_, test) in enumerate(folds) for o in np.unique(groups[test])}
    fit.metrics, fit.warnings = metrics, tuple(warnings)


def _held_out(y: np.ndarray, folds: list, per_fold: list[np.ndarray]) -> np.ndarray:
    held_out = np.zeros((len(y), 3))
    for (_, test), proba in zip(folds, per_fold):
        held_out[test] = proba
    return held_out


def _fit_axes(fit: AxisFit, outlets: np.ndarray, unit: np.ndarray, covariates: np.ndarray | None, *, n_axes: int,
              min_articles: int, topic_clusters: int, seed: int) -> None:
    """`principal_axes`' PCA on the outlet centroids of the residuals, kept as a projection of one article."""
    from sklearn.decomposition import PCA

    fit.method = "principal_axes"
    fit.directions = fit_directions(unit, topic_clusters=topic_clusters, covariates=covariates, seed=seed)
    residual = fit.directions.apply(unit, covariates)
    names, inverse, counts = np.unique(outlets, return_inverse=True, return_counts=True)
    centroids = np.stack([residual[inverse == i].mean(axis=0) for i in range(len(names))])
    defining = counts >= min_articles
    if defining.sum() < 2:
        raise ValueError(f"principal axes need >= 2 outlets with >= {min_articles} articles (min_articles); got "
                         f"{int(defining.sum())} of {len(names)} outlets. Lower min_articles or add articles")
    if n_axes < 1:
        raise ValueError(f"n_axes must be >= 1; got {n_axes}")
    pca = PCA(n_components=min(n_axes, int(defining.sum()) - 1), svd_solver="full").fit(centroids[defining])
    fit.axes_mean, fit.axes = pca.mean_, pca.components_
    fit.metrics = {f"explained_variance_ratio_axis{a + 1}": float(r) for a, r in enumerate(pca.explained_variance_ratio_)}


def _fit_topics(fit: AxisFit, articles: pd.DataFrame, unit: np.ndarray, texts: list[str], *, topic_clusters: int,
                seed: int, keyword_top_k: int) -> None:
    """The per-topic view's topics: the sources' `topic` column when at least half the sample has one, else a
    k-means of the vectors (topic_clusters topics, named by c-TF-IDF keywords of the sample)."""
    from opensentiment_pipeline.core.analysis import clustering

    if fit.method != "probe":
        return
    if "topic" in articles.columns and articles["topic"].notna().mean() >= 0.5:
        fit.topic_source = "column"
        return
    model = topic_kmeans(unit, topic_clusters=topic_clusters, seed=seed)
    if model is None:
        return
    fit.topic_source, fit.topics = "kmeans", model
    words = clustering.cluster_keywords(texts, model.labels_, top_k=keyword_top_k)
    fit.topic_keywords = {str(t): ", ".join(w) if not isinstance(w, str) else w for t, w in words.items()}
