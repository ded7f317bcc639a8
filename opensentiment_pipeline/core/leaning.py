"""An objective left-right axis for outlets, read from article embeddings alone.

Two paths, chosen by whether any reference ratings (left / center / right per outlet, e.g. AllSides) exist:

- **probe**: a logistic-regression probe on article vectors predicts the leaning; an article's score is
  P(right) - P(left) in [-1, 1] and an outlet's score is the mean over its articles. The probe is validated
  *outlet-disjoint* (GroupKFold by outlet), and every score is out-of-sample for its outlet: rated outlets are
  scored by the fold that held them out, unrated ones by the probe fitted on all rated outlets.
- **principal axes**: without references, PCA on the outlet centroids (means of unit article vectors); the
  first axis, scaled to [-1, 1], is the score. Its sign is arbitrary; which outlets sit at each end says
  what it separates.

Intervals are bootstrap percentiles over an outlet's articles. Nothing here knows any outlet by name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.articles import normalise_outlet  # the one outlet normaliser

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
)
AXIS_COLUMNS: tuple[str, ...] = ("axis", "explained_variance_ratio", "low_end", "high_end")


@dataclass(frozen=True)
class LeaningResult:
    """Outlets on the axis (`LEANING_COLUMNS`), how the axis was found, and its validation."""

    outlets: pd.DataFrame
    method: str  # "probe" or "principal_axes"
    metrics: dict[str, float] = field(default_factory=dict)
    axes: pd.DataFrame | None = None  # principal-axes path: AXIS_COLUMNS, one row per axis


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
        min_articles: outlets with fewer articles are placed, but neither define the principal axes nor count
            in `outlet_cv_spearman` (their means are too noisy).
        n_bootstrap: resamples of each outlet's articles for the interval.
        seed: seed of the bootstrap.
    """
    unit = _check_inputs(articles, vectors)
    outlets = articles["outlet"].astype(str).to_numpy()
    labels = _fill_within_outlets(_article_labels(articles, reference), outlets)
    if labels.notna().any():
        return _probe_path(outlets, unit, labels, n_folds=n_folds, regularization=regularization,
                           min_articles=min_articles, n_bootstrap=n_bootstrap, seed=seed)
    return _principal_axes_path(outlets, unit, n_axes=n_axes, min_articles=min_articles,
                                n_bootstrap=n_bootstrap, seed=seed)


def _probe_path(outlets: np.ndarray, unit: np.ndarray, labels: pd.Series, *, n_folds: int, regularization: float,
                min_articles: int, n_bootstrap: int, seed: int) -> LeaningResult:
    from scipy.stats import spearmanr
    from sklearn.metrics import f1_score
    from sklearn.model_selection import GroupKFold

    rated = labels.notna().to_numpy()
    rated_outlets = np.unique(outlets[rated])
    classes = sorted(set(labels.dropna()), key=LEANINGS.index)
    if len(classes) < 2 or len(rated_outlets) < 2:
        raise ValueError(f"the probe needs rated outlets with at least two leanings; got {len(rated_outlets)} rated "
                         f"outlet(s) with leanings {classes}. Add ratings (reference_csv) or pass none at all")
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2 for outlet-disjoint validation; got {n_folds}")
    folds = min(n_folds, len(rated_outlets))
    x, y, groups = unit[rated], labels[rated].to_numpy(), outlets[rated]
    held_out_proba = np.zeros((len(y), len(LEANINGS)))
    for train, test in GroupKFold(n_splits=folds).split(x, y, groups):
        held_out_proba[test] = _proba(_fit_probe(x[train], y[train], regularization), x[test])
    article_scores = np.empty(len(unit))
    article_scores[rated] = held_out_proba[:, 2] - held_out_proba[:, 0]
    if (~rated).any():
        proba = _proba(_fit_probe(x, y, regularization), unit[~rated])
        article_scores[~rated] = proba[:, 2] - proba[:, 0]
    predicted = np.asarray(LEANINGS)[held_out_proba.argmax(axis=1)]
    table = _outlet_table(outlets, article_scores, labels, n_bootstrap=n_bootstrap, seed=seed)
    scored = table[table["fitted_on"] & (table["n_articles"] >= min_articles)]
    reference_scores = labels[rated].map(LEANING_SCORE).groupby(groups).mean()
    spearman = spearmanr(scored["score"], reference_scores.loc[scored["outlet"]]).statistic
    metrics = {
        "outlet_cv_macro_f1": float(f1_score(y, predicted, labels=classes, average="macro")),
        "outlet_cv_spearman": float(spearman),
        "n_folds": float(folds),
        "n_rated_outlets": float(len(rated_outlets)),
        "n_spearman_outlets": float(len(scored)),
    }
    return LeaningResult(outlets=table, method="probe", metrics=metrics)


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
    return LeaningResult(outlets=table, method="principal_axes", metrics=metrics,
                         axes=pd.DataFrame(axes, columns=list(AXIS_COLUMNS)))


def _fit_probe(x: np.ndarray, y: np.ndarray, regularization: float):
    from sklearn.linear_model import LogisticRegression

    if regularization <= 0:
        raise ValueError(f"regularization (C) must be > 0; got {regularization}")
    # Balanced classes, so the share of left/right outlets among the references does not shift every score.
    return LogisticRegression(C=regularization, class_weight="balanced", max_iter=2000).fit(x, y)


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
        rows.append({"outlet": outlet, "n_articles": int(mask.sum()), "score": float(np.clip(scores.mean(), -1, 1)),
                     "score_low": float(np.clip(low, -1, 1)), "score_high": float(np.clip(high, -1, 1)),
                     "reference_leaning": reference, "fitted_on": bool(len(refs))})
    return pd.DataFrame(rows, columns=list(LEANING_COLUMNS))


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
