"""The axis's result: one row per outlet (score, bootstrap interval over its articles, reference, label)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.analysis.leaning.references import (
    LEANING_SCORE,
    LEANINGS,
)

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


@dataclass(frozen=True)
class LeaningResult:
    """Outlets on the axis (`LEANING_COLUMNS`), how the axis was found, its validation, and what it had to
    substitute (`warnings`: each says what and why; the asset logs them and puts them in its metadata)."""

    outlets: pd.DataFrame
    method: str  # "probe" or "principal_axes"
    metrics: dict[str, float] = field(default_factory=dict)
    axes: pd.DataFrame | None = None  # principal-axes path: AXIS_COLUMNS, one row per axis
    positions: pd.DataFrame | None = None  # principal-axes path: outlet x axis1..axisN, scaled like `score`
    article_scores: np.ndarray | None = None  # probe path: each article's raw score, P(right) - P(left), held out
    warnings: tuple[str, ...] = ()


def bootstrap_means(outlets: np.ndarray, article_scores: np.ndarray, *, n_bootstrap: int, seed: int
                    ) -> tuple[list[str], np.ndarray]:
    """(sorted outlet names, `(n_outlets, n_bootstrap)` means of their articles' scores resampled with
    replacement); an outlet with one article repeats its one score."""
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be >= 1; got {n_bootstrap}")
    rng = np.random.default_rng(seed)
    names = sorted(set(outlets))
    means = np.empty((len(names), n_bootstrap))
    for row, outlet in enumerate(names):
        scores = article_scores[outlets == outlet]
        means[row] = scores[rng.integers(0, len(scores), size=(n_bootstrap, len(scores)))].mean(axis=1)
    return names, means


def outlet_table(outlets: np.ndarray, article_scores: np.ndarray, labels: pd.Series, *,
                 n_bootstrap: int, seed: int) -> pd.DataFrame:
    """One row per outlet (`LEANING_COLUMNS` + `reference_mean`), sorted by name: the mean of its article scores,
    a 95 % bootstrap interval over its articles (`bootstrap_means`; [-1, 1] for one article), and its reference
    (mean of its articles' labels)."""
    names, means = bootstrap_means(outlets, article_scores, n_bootstrap=n_bootstrap, seed=seed)
    numeric = labels.map(LEANING_SCORE).to_numpy(dtype=float)
    rows = []
    for outlet, draws in zip(names, means):
        mask = outlets == outlet
        scores = article_scores[mask]
        low, high = np.percentile(draws, [2.5, 97.5]) if len(scores) > 1 else (-1.0, 1.0)
        refs = numeric[mask][~np.isnan(numeric[mask])]
        reference = LEANINGS[int(np.rint(refs.mean())) + 1] if len(refs) else None
        mean = float(np.clip(scores.mean(), -1, 1))
        rows.append({"outlet": outlet, "n_articles": int(mask.sum()), "score": mean,
                     "score_low": float(np.clip(low, -1, 1)), "score_high": float(np.clip(high, -1, 1)),
                     "reference_leaning": reference, "fitted_on": bool(len(refs)), "label": None, "raw_score": mean,
                     "reference_mean": float(refs.mean()) if len(refs) else np.nan})
    return pd.DataFrame(rows, columns=[*LEANING_COLUMNS, "reference_mean"])
