"""An objective left-right axis for outlets, read from article embeddings (and, blended in, their words).

Two paths, chosen by whether any reference ratings (left / center / right per outlet, e.g. AllSides) exist:

- **probe**: a logistic-regression probe on article vectors predicts the leaning; an article's raw score is
  P(right) - P(left) and an outlet's raw score is the mean over its articles. The probe is validated
  *outlet-disjoint* (GroupKFold by outlet), and every score is out-of-sample for its outlet: rated outlets are
  scored by the fold that held them out, unrated ones by the probe fitted on all rated outlets. Raw outlet
  scores crowd near 0, so they are **calibrated**: a monotone piecewise-linear map sends the median held-out
  score of left-, center- and right-rated outlets to -1, 0 and +1. Three-way labels cut the calibrated scale
  at two thresholds that maximise outlet-level macro-F1; the label metrics are cross-validated (calibration
  and thresholds fitted on the other folds' outlets).
- **principal axes**: without references, PCA on the outlet centroids (means of unit article vectors) after
  removing what carries topic and format: each article's topic-cluster centroid (k-means) and a linear fit on
  format features (`format_features`: length, quotes, first person, questions, digits). The first axis,
  scaled to [-1, 1], is the score. Its sign is arbitrary; which outlets sit at each end says what it separates.

Given the articles' texts, the probe path also fits a TF-IDF + logistic-regression probe on the same folds
(`fit_tfidf_probe`): the lexical bar the embedding probe is measured against (`tfidf_outlet_cv_*`), and, with
`lexical_weight` w > 0, part of the axis: each article's probabilities are w x the words' + (1 - w) x the
vectors', so the axis reads what either carries (`embedding_outlet_cv_*` reports the vectors alone).
`tfidf_reference` scores the lexical probe on its own. With `topic_free_share` s > 0 the vectors' part is itself
(1 - s) x the probe on the vectors + s x a probe on the *topic-free* vectors (minus their k-means topic centroid),
which places outlets by how they write rather than by what they cover. Intervals are bootstrap percentiles over
an outlet's articles. Nothing here knows any outlet by name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.ingest.articles import normalise_outlet  # the one outlet normaliser

logger = logging.getLogger(__name__)

LEANINGS: tuple[str, ...] = ("left", "center", "right")
LEANING_SCORE: dict[str, float] = {"left": -1.0, "center": 0.0, "right": 1.0}
LEANING_COLUMNS: tuple[str, ...] = (
    "outlet",
    "n_articles",
    "score",  # -1 (left) .. +1 (right); principal-axes path: position on axis 1, sign arbitrary
    "score_low",  # bootstrap interval over the outlet's articles; [-1, 1] for a single article
    "score_high",
    "reference_leaning",  # the label nearest the mean of its articles' references, else None
    "fitted_on",  # the final probe was fitted on this outlet's articles
    "label",  # probe path: left / center / right from the calibrated score and the cross-validated thresholds
    "raw_score",  # probe path: mean P(right) - P(left) before calibration; principal axes: same as score
)
AXIS_COLUMNS: tuple[str, ...] = ("axis", "explained_variance_ratio", "low_end", "high_end")
# core.boilerplate.strip_boilerplate settings used before embedding or TF-IDF: a paragraph recurring in >= 10 %
# (and >= 3) of one outlet's articles is that outlet's boilerplate.
STRIP_DEFAULTS: dict[str, float] = {"min_share": 0.1, "min_count": 3}
ARTICLES_PER_TOPIC = 50  # remove_directions: at most one k-means topic per this many articles
_SENTENCE_END = re.compile(r"[.!?]+(\s|$)")
_QUOTED = re.compile(r"[\"“][^\"“”]{1,600}[\"”]")
_FIRST_PERSON = re.compile(r"\b(i|me|my|mine|we|us|our|ours)\b", re.IGNORECASE)


@dataclass(frozen=True)
class LeaningResult:
    """Outlets on the axis (`LEANING_COLUMNS`), how the axis was found, and its validation."""

    outlets: pd.DataFrame
    method: str  # "probe" or "principal_axes"
    metrics: dict[str, float] = field(default_factory=dict)
    axes: pd.DataFrame | None = None  # principal-axes path: AXIS_COLUMNS, one row per axis
    positions: pd.DataFrame | None = None  # principal-axes path: outlet x axis1..axisN, scaled like `score`
    article_scores: np.ndarray | None = None  # probe path: each article's raw score, P(right) - P(left), held out


def read_reference_csv(path: str | Path) -> dict[str, str]:
    """{normalised outlet: leaning} from a CSV with columns `outlet`, `leaning` (left / center / right)."""
    frame = pd.read_csv(path, dtype=str)
    missing = {"outlet", "leaning"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}; got {list(frame.columns)}. "
                         "Expected a header `outlet,leaning`")
    frame = frame.dropna(subset=["outlet", "leaning"]).assign(
        outlet=lambda f: f["outlet"].map(normalise_outlet), leaning=lambda f: f["leaning"].str.strip().str.lower())
    unknown = sorted(set(frame["leaning"]) - set(LEANINGS))
    if unknown:
        raise ValueError(f"{path}: unknown leanings {unknown}; expected a subset of {list(LEANINGS)}")
    conflicts = frame.groupby("outlet")["leaning"].nunique().loc[lambda n: n > 1].index.tolist()
    if conflicts:
        raise ValueError(f"{path}: outlets {conflicts[:5]} are rated more than once with different leanings")
    return dict(zip(frame["outlet"], frame["leaning"]))


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
    topic_clusters: int = 0,
    covariates: np.ndarray | None = None,
    outlet_directions: int = 0,
    standardize: bool = False,
    texts: Sequence[str] | None = None,
    lexical_weight: float = 0.0,
    tfidf_regularization: float = 10.0,
    topic_free_share: float = 0.0,
) -> LeaningResult:
    """Place every outlet of `articles` on a left-right scale from `vectors`.

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
            before the principal axes, and for the probe path's topic-free view (`topic_free_share`).
        covariates: principal-axes path: `(n_articles, k)` format features (`format_features`) whose linear fit
            is removed from the vectors; None keeps them.
        outlet_directions: probe path: project out this many directions that tell apart outlets *of the same
            leaning* (`outlet_identity_directions`), fitted inside each training fold, so the probe cannot lean
            on outlet identity; 0 keeps the vectors.
        standardize: probe path: scale each dimension to unit variance (fitted on the training fold) before the
            probe. Unit vectors give every dimension a spread of ~0.05, so a plain `C` regularises hard.
        texts: probe path: each article's text (boilerplate stripped), aligned with `articles`. Given, the
            TF-IDF probe (`fit_tfidf_probe`) runs on the same folds and its metrics come back as
            `tfidf_outlet_cv_*`.
        lexical_weight: probe path, needs `texts`: the axis reads `w * P_tfidf + (1 - w) * P_embedding` per
            article (0 = the embedding probes alone). The embedding probes alone (the vectors' probe, blended
            with the topic-free one by `topic_free_share`) are reported as `embedding_outlet_cv_*` either way.
        tfidf_regularization: `C` of the TF-IDF probe.
        topic_free_share: probe path: the embedding probe's probabilities are (1 - s) x those of a probe on the
            vectors + s x those of a second probe on the *topic-free* vectors (each article minus its k-means topic
            centroid, `remove_directions`; the k-means sees no rating). Outlets differ in what they cover as well
            as in how they cover it; the topic-free view reads only the second. Its own figures come back as
            `topic_free_outlet_cv_*`; 0 = the vectors alone.
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
        lexical = None if texts is None else (texts, lexical_weight, tfidf_regularization)
        topic_free = None
        if topic_free_share > 0 and _topic_kmeans_size(len(unit), topic_clusters) < 2:
            # Nothing to subtract: the "topic-free" probe would be the vectors' probe fitted twice.
            logger.warning("topic_free_share %s: %d articles and topic_clusters %d give fewer than two k-means "
                           "topics (one per %d articles), so there is no topic-free view; the vectors' probe "
                           "alone is used", topic_free_share, len(unit), topic_clusters, ARTICLES_PER_TOPIC)
        elif topic_free_share > 0:
            topic_free = (remove_directions(unit, topic_clusters=topic_clusters, covariates=None, seed=seed),
                          topic_free_share)
        return _probe_path(outlets, unit, labels, n_folds=n_folds, regularization=regularization,
                           min_articles=min_articles, n_bootstrap=n_bootstrap, seed=seed,
                           outlet_directions=outlet_directions, standardize=standardize, lexical=lexical,
                           topic_free=topic_free)
    residual = remove_directions(unit, topic_clusters=topic_clusters, covariates=covariates, seed=seed)
    return _principal_axes_path(outlets, residual, n_axes=n_axes, min_articles=min_articles,
                                n_bootstrap=n_bootstrap, seed=seed)


def article_labels(articles: pd.DataFrame, reference: Mapping[str, str] | None) -> pd.Series:
    """Each article's leaning (from `reference`, else the `leaning` column); unlabelled articles of a rated
    outlet take the outlet's label, so no outlet is both fitted and scored."""
    return _fill_within_outlets(_article_labels(articles, reference), articles["outlet"].astype(str).to_numpy())


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
    return _tfidf_proba_on_folds(documents, y, folds, regularization), y, outlets[rated]


def _tfidf_proba_on_folds(documents: np.ndarray, y: np.ndarray, folds: list, regularization: float) -> np.ndarray:
    """Each fold's held-out rows scored by the TF-IDF probe fitted on its training rows."""
    proba = np.zeros((len(y), len(LEANINGS)))
    for train, test in folds:
        proba[test] = _proba(fit_tfidf_probe(documents[train], y[train], regularization), documents[test])
    return proba


def fit_tfidf_probe(documents: np.ndarray, y: np.ndarray, regularization: float):
    """TF-IDF (1-2 grams, sublinear) + balanced logistic regression, the vocabulary fitted on `documents` only."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    # min_df 3 drops one-article names and typos; tiny corpora keep every term so the vocabulary is not empty.
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=3 if len(documents) >= 100 else 1, max_df=0.5,
                                 sublinear_tf=True, max_features=200_000, dtype=np.float32)
    return make_pipeline(vectorizer, _probe_model(regularization)).fit(documents, y)


def _probe_path(outlets: np.ndarray, unit: np.ndarray, labels: pd.Series, *, n_folds: int, regularization: float,
                min_articles: int, n_bootstrap: int, seed: int, outlet_directions: int, standardize: bool,
                lexical: tuple[Sequence[str], float, float] | None,
                topic_free: tuple[np.ndarray, float] | None = None) -> LeaningResult:
    rated, folds = rated_folds(outlets, labels, n_folds)
    y, groups = labels[rated].to_numpy(), outlets[rated]

    def view_proba(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Held-out probabilities of the rated articles, and the unrated ones' from a probe on every rated one."""
        x = vectors[rated]

        def fit_predict(train: np.ndarray, targets: np.ndarray) -> np.ndarray:
            basis = outlet_identity_directions(x[train], y[train], groups[train], outlet_directions)
            probe = _probe_model(regularization, standardize=standardize).fit(project_out(x[train], basis), y[train])
            return _proba(probe, project_out(targets, basis))

        held_out = np.zeros((len(y), len(LEANINGS)))
        for train, test in folds:
            held_out[test] = fit_predict(train, x[test])
        return held_out, fit_predict(np.arange(len(y)), vectors[~rated]) if (~rated).any() else None

    held_out_proba, unrated_proba = view_proba(unit)
    metrics = {}
    if topic_free is not None:
        residual, share = topic_free
        free_held_out, free_unrated = view_proba(residual)
        free_alone = cv_metrics(groups, y, free_held_out, min_articles=min_articles)
        metrics.update({f"topic_free_{k}": free_alone[k] for k in ("outlet_cv_macro_f1", "outlet_cv_spearman")})
        held_out_proba = (1 - share) * held_out_proba + share * free_held_out
        if unrated_proba is not None:
            unrated_proba = (1 - share) * unrated_proba + share * free_unrated
    embedding_alone = cv_metrics(groups, y, held_out_proba, min_articles=min_articles)
    metrics.update({f"embedding_{k}": embedding_alone[k] for k in ("outlet_cv_macro_f1", "outlet_cv_spearman")})
    if lexical is not None:
        texts, weight, tfidf_c = lexical
        documents = np.asarray([str(t) for t in texts], dtype=object)
        rated_documents = documents[rated]
        lexical_proba = _tfidf_proba_on_folds(rated_documents, y, folds, tfidf_c)
        words_alone = cv_metrics(groups, y, lexical_proba, min_articles=min_articles)
        metrics.update({f"tfidf_{k}": words_alone[k] for k in ("outlet_cv_macro_f1", "outlet_cv_spearman")})
        if weight > 0:
            held_out_proba = weight * lexical_proba + (1 - weight) * held_out_proba
            if unrated_proba is not None:
                everything = _proba(fit_tfidf_probe(rated_documents, y, tfidf_c), documents[~rated])
                unrated_proba = weight * everything + (1 - weight) * unrated_proba
    article_scores = np.empty(len(unit))
    article_scores[rated] = held_out_proba[:, 2] - held_out_proba[:, 0]
    if unrated_proba is not None:
        article_scores[~rated] = unrated_proba[:, 2] - unrated_proba[:, 0]
    table = _outlet_table(outlets, article_scores, labels, n_bootstrap=n_bootstrap, seed=seed)
    metrics.update({**cv_metrics(groups, y, held_out_proba, min_articles=min_articles), "n_folds": float(len(folds))})
    scored = table[table["fitted_on"] & (table["n_articles"] >= min_articles)]
    fold_of = {o: k for k, (_, test) in enumerate(folds) for o in np.unique(groups[test])}
    label_metrics, calibration, thresholds = _calibrate_in_cv(
        scored["raw_score"].to_numpy(), _reference_scores(scored), np.array([fold_of[o] for o in scored["outlet"]]))
    metrics.update(label_metrics)
    table = _apply_calibration(table, calibration, thresholds)
    for side in LEANINGS:
        chosen = table[table["fitted_on"] & (table["n_articles"] >= min_articles) & (table["reference_leaning"] == side)]
        metrics[f"median_score_{side}"] = float(chosen["score"].median()) if len(chosen) else float("nan")
    return LeaningResult(outlets=table[list(LEANING_COLUMNS)], method="probe", metrics=metrics,
                         article_scores=article_scores)


TOPIC_LEANING_COLUMNS: tuple[str, ...] = ("topic", "keywords", "n_articles", "n_outlets", "spread", "left_outlet",
                                          "left_score", "right_outlet", "right_score")
TOPIC_OUTLET_LEANING_COLUMNS: tuple[str, ...] = ("topic", "keywords", "outlet", "n_articles", "mean_score")


def _topic_kmeans_size(n_articles: int, topic_clusters: int) -> int:
    """The k `_topic_kmeans` uses: topic_clusters, capped at one topic per ARTICLES_PER_TOPIC articles."""
    return min(topic_clusters, n_articles // ARTICLES_PER_TOPIC)


def _topic_kmeans(unit: np.ndarray, *, topic_clusters: int, seed: int):
    """k-means with k = min(topic_clusters, one per ARTICLES_PER_TOPIC articles), fitted; None when k < 2."""
    k = _topic_kmeans_size(len(unit), topic_clusters)
    if k < 2:
        return None
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=3, random_state=seed).fit(unit)


def topic_outlet_leaning(outlets: np.ndarray, article_scores: np.ndarray, topics: Sequence, *, min_articles: int,
                         keywords: Mapping | None = None) -> pd.DataFrame:
    """Each outlet's place on the axis topic by topic: one row per (topic, outlet) with at least `min_articles`
    articles on the topic, the mean of those articles' scores (raw P(right) - P(left), held out for rated
    outlets), sorted by topic, then score (left first). Articles without a topic (None/NaN) are left out; so
    is HDBSCAN noise when `topics` are map clusters and the caller passes them with noise as None."""
    # object dtype: integer cluster ids mixed with None would otherwise turn into floats (0.0, 1.0, ...)
    frame = pd.DataFrame({"outlet": np.asarray(outlets).astype(str), "score": np.asarray(article_scores, dtype=float),
                          "topic": pd.Series(list(topics), dtype=object)}).dropna(subset=["topic", "score"])
    cells = frame.groupby(["topic", "outlet"], sort=True)["score"].agg(["mean", "size"]).reset_index()
    cells = cells[cells["size"] >= min_articles].rename(columns={"mean": "mean_score", "size": "n_articles"})
    words = {t: (w if isinstance(w, str) else ", ".join(w)) for t, w in (keywords or {}).items()}
    cells.insert(1, "keywords", cells["topic"].map(lambda t: words.get(t, "")))
    cells = cells.sort_values(["topic", "mean_score", "outlet"], kind="stable")
    return cells[list(TOPIC_OUTLET_LEANING_COLUMNS)].reset_index(drop=True)


def leaning_by_topic(outlets: np.ndarray, article_scores: np.ndarray, topics: Sequence, *, min_articles: int,
                     keywords: Mapping | None = None) -> pd.DataFrame:
    """Which topics divide the outlets most: per topic, the outlets with at least `min_articles` articles on it,
    the spread of their mean article scores (raw P(right) - P(left), held out for rated outlets, so not the
    calibrated -1..1 scale) and the outlets at either end. Topics with fewer than two such outlets are left
    out; sorted by spread, widest first. `keywords` maps a topic to its words (e.g. `clustering.cluster_keywords`).
    The per-outlet cells behind it are `topic_outlet_leaning`.
    """
    cells = topic_outlet_leaning(outlets, article_scores, topics, min_articles=min_articles, keywords=keywords)
    # n_articles counts every article on the topic, also those of outlets below min_articles on it.
    per_topic = pd.Series(list(topics), dtype=object).dropna().value_counts()
    rows = []
    for topic, group in cells.groupby("topic", sort=True):
        if len(group) < 2:
            continue
        left, right = group.iloc[0], group.iloc[-1]  # sorted by score within the topic
        rows.append({"topic": topic, "keywords": left["keywords"], "n_articles": int(per_topic[topic]),
                     "n_outlets": len(group), "spread": float(right["mean_score"] - left["mean_score"]),
                     "left_outlet": left["outlet"], "left_score": float(left["mean_score"]),
                     "right_outlet": right["outlet"], "right_score": float(right["mean_score"])})
    table = pd.DataFrame(rows, columns=list(TOPIC_LEANING_COLUMNS))
    return table.sort_values("spread", ascending=False, kind="stable").reset_index(drop=True)


def rated_folds(outlets: np.ndarray, labels: pd.Series, n_folds: int) -> tuple[np.ndarray, list]:
    """Mask of rated articles and the GroupKFold (by outlet) splits of the rated rows: the folds every probe
    here (embedding, TF-IDF, `core.leaning_training`) is validated on."""
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


@dataclass(frozen=True)
class Calibration:
    """Monotone piecewise-linear map of raw outlet scores: `knots` (left, center, right medians) -> -1, 0, +1,
    extended linearly beyond them and clipped to [-1, 1]."""

    knots: tuple[float, float, float]

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        left, centre, right = self.knots
        raw = np.asarray(raw, dtype=float)
        below = (raw - centre) / max(centre - left, 1e-9)
        above = (raw - centre) / max(right - centre, 1e-9)
        return np.clip(np.where(raw < centre, below, above), -1.0, 1.0)


def fit_calibration(raw: np.ndarray, reference: np.ndarray) -> Calibration:
    """Calibration whose knots are the median raw score of outlets rated left, center and right.

    `reference` is each outlet's mean rating in [-1, 1] (rounded to the nearest class). A missing class, or
    medians out of order, falls back to knots spread symmetrically around the median of all outlets.
    """
    raw, reference = np.asarray(raw, dtype=float), np.rint(np.asarray(reference, dtype=float))
    medians = [np.median(raw[reference == side]) if (reference == side).any() else np.nan for side in (-1, 0, 1)]
    if np.isfinite(medians).all() and medians[0] < medians[1] < medians[2]:
        return Calibration(knots=tuple(float(m) for m in medians))
    centre = float(np.median(raw))
    spread = float(np.percentile(np.abs(raw - centre), 90)) or 1.0
    return Calibration(knots=(centre - spread, centre, centre + spread))


def choose_thresholds(scores: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(low, high) cuts of calibrated `scores` that maximise macro-F1 of left (< low) / center / right (>= high)
    against the references (rounded); ties go to the pair closest to (-0.5, 0.5).

    >>> choose_thresholds(np.array([-0.9, -0.7, 0.0, 0.1, 0.8]), np.array([-1, -1, 0, 0, 1]))
    (-0.5, 0.5)
    """
    truth = np.rint(np.asarray(reference, dtype=float)).astype(int)
    scores = np.asarray(scores, dtype=float)
    grid = np.round(np.arange(-0.95, 0.951, 0.05), 2)
    best, best_key = (-0.5, 0.5), (-1.0, 0.0)
    for low in grid:
        for high in grid[grid > low]:
            predicted = np.where(scores < low, -1, np.where(scores >= high, 1, 0))
            key = (round(_macro_f1(truth, predicted), 9), -abs(low + 0.5) - abs(high - 0.5))
            if key > best_key:
                best, best_key = (float(low), float(high)), key
    return best


def _macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Macro-F1 over the classes present in `truth` (sklearn's f1_score with labels=those classes), in numpy:
    threshold search calls it ~700 times per fit."""
    scores = []
    for c in np.unique(truth):
        tp = np.sum((predicted == c) & (truth == c))
        denominator = np.sum(predicted == c) + np.sum(truth == c)
        scores.append(2 * tp / denominator if denominator else 0.0)
    return float(np.mean(scores))


def _calibrate_in_cv(raw: np.ndarray, reference: np.ndarray, fold: np.ndarray
                     ) -> tuple[dict[str, float], Calibration, tuple[float, float]]:
    """Outlet-level label metrics with calibration and thresholds fitted on the other folds' outlets, and the
    final calibration and thresholds fitted on all of them."""
    if len(raw) == 0:
        # No rated outlet has min_articles articles: nothing to calibrate on or to score labels against. The raw
        # P(right) - P(left) is already in [-1, 1], so it stands uncalibrated and the label metrics say NaN.
        logger.warning("no rated outlet has enough articles to calibrate the scores or score the labels; "
                       "lower min_articles or add articles (scores stay uncalibrated)")
        nan = float("nan")
        return ({"outlet_label_macro_f1": nan, "outlet_cv_calibrated_mae": nan, "threshold_low": -0.5,
                 "threshold_high": 0.5}, Calibration(knots=(-1.0, 0.0, 1.0)), (-0.5, 0.5))
    calibrated = np.zeros(len(raw))
    predicted = np.zeros(len(raw), dtype=int)
    for k in np.unique(fold):
        train, test = fold != k, fold == k
        if len(set(np.rint(reference[train]))) < 2:
            calibrated[test], predicted[test] = 0.0, 0
            continue
        calibration = fit_calibration(raw[train], reference[train])
        low, high = choose_thresholds(calibration(raw[train]), reference[train])
        calibrated[test] = calibration(raw[test])
        predicted[test] = np.where(calibrated[test] < low, -1, np.where(calibrated[test] >= high, 1, 0))
    truth = np.rint(reference).astype(int)
    calibration = fit_calibration(raw, reference)
    thresholds = choose_thresholds(calibration(raw), reference)
    metrics = {
        "outlet_label_macro_f1": _macro_f1(truth, predicted),
        "outlet_cv_calibrated_mae": float(np.abs(calibrated - reference).mean()),
        "threshold_low": thresholds[0], "threshold_high": thresholds[1],
    }
    return metrics, calibration, thresholds


def _apply_calibration(table: pd.DataFrame, calibration: Calibration, thresholds: tuple[float, float]
                       ) -> pd.DataFrame:
    low, high = thresholds
    score = calibration(table["raw_score"].to_numpy())
    label = np.where(score < low, "left", np.where(score >= high, "right", "center"))
    return table.assign(score=score, score_low=calibration(table["score_low"].to_numpy()),
                        score_high=calibration(table["score_high"].to_numpy()), label=label)


def _reference_scores(table: pd.DataFrame) -> np.ndarray:
    return table["reference_mean"].to_numpy(dtype=float)


def format_features(texts: Sequence[str]) -> np.ndarray:
    """`(n, 6)` format features of each text: log characters, share of characters inside quotes, first-person
    pronouns per word, questions per sentence, digits per character, log mean sentence length (words).

    They separate columns from news reports and wires from magazines; `remove_directions` regresses them out.
    """
    rows = []
    for text in texts:
        text = str(text)
        words = max(len(text.split()), 1)
        sentences = max(len(_SENTENCE_END.findall(text)), 1)
        quoted = sum(len(m) for m in _QUOTED.findall(text))
        rows.append([np.log1p(len(text)), quoted / max(len(text), 1), len(_FIRST_PERSON.findall(text)) / words,
                     text.count("?") / sentences, sum(c.isdigit() for c in text) / max(len(text), 1),
                     np.log1p(words / sentences)])
    return np.asarray(rows, dtype=float).reshape(len(rows), 6)


def remove_directions(unit: np.ndarray, *, topic_clusters: int, covariates: np.ndarray | None,
                      seed: int) -> np.ndarray:
    """`unit` minus each row's k-means topic centroid (`topic_clusters` > 0) and minus the linear fit of the
    standardised `covariates`, re-normalised; `(n, d)` in, `(n, d)` out.

    k is capped at one cluster per `ARTICLES_PER_TOPIC` articles: with few articles per cluster the clusters
    follow whatever varies most, ideology included, and subtracting them would remove the axis itself.
    """
    residual = unit.copy()
    if topic_clusters < 0:
        raise ValueError(f"topic_clusters must be >= 0; got {topic_clusters}")
    model = _topic_kmeans(unit, topic_clusters=topic_clusters, seed=seed)
    if model is not None:
        residual = residual - model.cluster_centers_[model.labels_]
    if covariates is not None:
        c = np.asarray(covariates, dtype=float)
        if c.ndim != 2 or len(c) != len(unit):
            raise ValueError(f"covariates must be (n_articles, k) with n_articles={len(unit)}; got shape {c.shape}")
        c = (c - c.mean(axis=0)) / np.maximum(c.std(axis=0), 1e-12)
        design = np.column_stack([np.ones(len(c)), c])
        coef, *_ = np.linalg.lstsq(design, residual, rcond=None)
        residual = residual - design @ coef
    return residual / np.maximum(np.linalg.norm(residual, axis=1, keepdims=True), 1e-12)


def _principal_axes_path(outlets: np.ndarray, unit: np.ndarray, *, n_axes: int, min_articles: int,
                         n_bootstrap: int, seed: int) -> LeaningResult:
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

    def project(rows: np.ndarray) -> np.ndarray:  # (..., d) article means -> position on axis 1 in [-1, 1]
        return (rows - pca.mean_) @ pca.components_[0] / scale

    article_scores = project(unit)  # an outlet's mean article position is its centroid's position
    table = _outlet_table(outlets, article_scores, pd.Series([None] * len(outlets), dtype=object),
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


def _probe_model(regularization: float, *, standardize: bool = False):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if regularization <= 0:
        raise ValueError(f"regularization (C) must be > 0; got {regularization}")
    # Balanced classes, so the share of left/right outlets among the references does not shift every score.
    probe = LogisticRegression(C=regularization, class_weight="balanced", max_iter=2000)
    return make_pipeline(StandardScaler(), probe) if standardize else probe


def _proba(probe, x: np.ndarray) -> np.ndarray:
    """(n, 3) probabilities in LEANINGS order; a class the fold never saw gets 0."""
    proba = np.zeros((len(x), len(LEANINGS)))
    proba[:, [LEANINGS.index(c) for c in probe.classes_]] = probe.predict_proba(x)
    return proba


def _outlet_table(outlets: np.ndarray, article_scores: np.ndarray, labels: pd.Series, *,
                  n_bootstrap: int, seed: int) -> pd.DataFrame:
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be >= 1; got {n_bootstrap}")
    rng = np.random.default_rng(seed)
    numeric = labels.map(LEANING_SCORE).to_numpy(dtype=float)
    rows = []
    for outlet in sorted(set(outlets)):
        mask = outlets == outlet
        scores = article_scores[mask]
        if len(scores) > 1:
            means = scores[rng.integers(0, len(scores), size=(n_bootstrap, len(scores)))].mean(axis=1)
            low, high = np.percentile(means, [2.5, 97.5])
        else:  # one article says nothing about the spread
            low, high = -1.0, 1.0
        refs = numeric[mask][~np.isnan(numeric[mask])]
        reference = LEANINGS[int(np.rint(refs.mean())) + 1] if len(refs) else None
        mean = float(np.clip(scores.mean(), -1, 1))
        rows.append({"outlet": outlet, "n_articles": int(mask.sum()), "score": mean,
                     "score_low": float(np.clip(low, -1, 1)), "score_high": float(np.clip(high, -1, 1)),
                     "reference_leaning": reference, "fitted_on": bool(len(refs)), "label": None, "raw_score": mean,
                     "reference_mean": float(refs.mean()) if len(refs) else np.nan})
    return pd.DataFrame(rows, columns=[*LEANING_COLUMNS, "reference_mean"])


def _fill_within_outlets(labels: pd.Series, outlets: np.ndarray) -> pd.Series:
    """Unlabelled articles of a rated outlet take the outlet's label, so no outlet is both fitted and scored."""
    means = labels.map(LEANING_SCORE).astype(float).groupby(outlets).transform("mean")
    nearest = means.map(lambda m: None if np.isnan(m) else LEANINGS[int(np.rint(m)) + 1])
    return labels.where(labels.notna(), nearest).astype(object)


def _article_labels(articles: pd.DataFrame, reference: Mapping[str, str] | None) -> pd.Series:
    if reference is not None:
        unknown = sorted(set(reference.values()) - set(LEANINGS))
        if unknown:
            raise ValueError(f"reference has unknown leanings {unknown}; expected a subset of {list(LEANINGS)}")
        normalised = {normalise_outlet(k): v for k, v in reference.items()}
        labels = articles["outlet"].map(lambda o: normalised.get(normalise_outlet(o)))
        absent = sorted(set(normalised) - set(articles["outlet"].map(normalise_outlet)))
        if absent:
            logger.warning("%d reference outlets have no articles, e.g. %s", len(absent), absent[:5])
        return labels.reset_index(drop=True).astype(object)
    if "leaning" not in articles.columns:
        return pd.Series([None] * len(articles), dtype=object)
    labels = articles["leaning"].map(lambda v: v.strip().lower() if isinstance(v, str) and v.strip() else None)
    unknown = sorted(set(labels.dropna()) - set(LEANINGS))
    if unknown:
        raise ValueError(f"articles['leaning'] has unknown values {unknown}; expected {list(LEANINGS)} or None. "
                         "Fix the source's column mapping or pass reference ratings instead")
    return labels.reset_index(drop=True).astype(object)


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


def leaning_png(outlets: pd.DataFrame, *, title: str, max_outlets: int = 40) -> bytes:
    """Outlets (a `LEANING_COLUMNS` frame) as dots with interval bars on the axis, coloured by reference.

    Only the `max_outlets` outlets with the most articles are drawn, so the labels stay readable.
    """
    import io

    from matplotlib.figure import Figure

    from opensentiment_pipeline.core import plots

    shown = outlets.nlargest(max_outlets, "n_articles", keep="first").sort_values("score", kind="stable")
    height = max(plots.FIGSIZE[1], 0.16 * len(shown) + 1.0)  # ~0.16 in per outlet label
    fig = Figure(figsize=(plots.FIGSIZE[0], height), dpi=plots.DPI, layout="constrained")
    ax = fig.subplots()
    colours = {"left": "tab:blue", "center": "tab:gray", "right": "tab:red", None: "black"}
    for reference, group in shown.groupby(shown["reference_leaning"].fillna("unrated"), sort=True):
        y = [list(shown["outlet"]).index(o) for o in group["outlet"]]
        errors = [group["score"] - group["score_low"], group["score_high"] - group["score"]]
        ax.errorbar(group["score"], y, xerr=np.clip(errors, 0, None), fmt="o", ms=3, capsize=2, lw=0.8,
                    color=colours.get(None if reference == "unrated" else reference, "black"), label=reference)
    ax.set_yticks(range(len(shown)), shown["outlet"].tolist(), fontsize=6)
    ax.axvline(0.0, color=plots.GREY, lw=0.8)
    ax.set(xlim=(-1.05, 1.05), title=title)
    ax.legend(fontsize=6, loc="lower right")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=plots.DPI)
    return buffer.getvalue()
