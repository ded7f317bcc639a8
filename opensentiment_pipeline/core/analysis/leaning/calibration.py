"""Calibration of raw outlet scores onto the -1 (left) .. +1 (right) scale, and the three-way label cuts.

Every fit here reads only the outlets it is given, so `calibrate_in_cv` can fit on some folds' outlets and
score the others. Where a fit cannot use the ratings as asked, it says so in `Calibration.note` or in the
returned notes; the caller logs them and puts them in the asset's metadata.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)


# Prior standard deviation of the ordinal model's slope per standard deviation of the raw scores. Rated outlets
# that the raw score separates perfectly would otherwise push the slope to infinity, and the map would become a
# step with flat ends; with it, the most extreme outlets stay apart (|eta| of a few units, not hundreds).
SLOPE_PRIOR_SD = 3.0
CUT_PRIOR_SD = 10.0  # keeps a cut finite when no outlet sits on one side of it (a class without outlets)


@dataclass(frozen=True)
class Calibration:
    """The expected rating E[r] = P(right) - P(left) of a raw outlet score under an ordinal (proportional-odds)
    logistic model: eta = slope * (raw - centre) / scale, P(r <= left) = sigmoid(cuts[0] - eta),
    P(r <= center) = sigmoid(cuts[1] - eta).

    It is strictly increasing in the raw score for slope > 0 and maps the whole line onto (-1, 1) with no flat
    part: outlets beyond the rated ones keep their order instead of being clipped onto -1 or +1. `note` says
    what was substituted, when something was.

    >>> calibration = Calibration(centre=0.0, scale=1.0, slope=2.0, cuts=(-1.0, 1.0))
    >>> [round(float(v), 3) for v in calibration(np.array([-3.0, 0.0, 0.5, 3.0]))]
    [-0.992, 0.0, 0.381, 0.992]
    """

    centre: float
    scale: float
    slope: float
    cuts: tuple[float, float]
    note: str | None = None

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        from scipy.special import expit

        eta = self.slope * (np.asarray(raw, dtype=float) - self.centre) / self.scale
        return expit(eta - self.cuts[1]) - expit(self.cuts[0] - eta)


def fit_calibration(raw: np.ndarray, reference: np.ndarray) -> Calibration:
    """The ordinal logistic `Calibration` of `raw` outlet scores fitted (maximum a posteriori, priors
    `SLOPE_PRIOR_SD`, `CUT_PRIOR_SD`) to the outlets' ratings.

    `reference` is each outlet's mean rating in [-1, 1] (rounded to the nearest class). When the fitted slope is
    not positive (the raw scores do not rise with the rating on these outlets) no order can be read from them: a
    fixed map (slope 1, cuts -1 and +1) is used and `note` says so; `note` also names a class without outlets.
    """
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit

    raw, classes = np.asarray(raw, dtype=float), np.rint(np.asarray(reference, dtype=float)).astype(int)
    centre = float(np.median(raw)) if len(raw) else 0.0
    scale = float(np.std(raw)) if len(raw) > 1 and np.std(raw) > 1e-12 else 1.0
    z = (raw - centre) / scale

    def loss(params: np.ndarray) -> float:
        slope, low, gap = params
        high = low + np.exp(gap)
        eta = slope * z
        log_p = np.where(classes < 0, log_expit(low - eta), np.where(
            classes > 0, log_expit(eta - high),
            np.log(np.maximum(expit(high - eta) - expit(low - eta), 1e-300))))
        return float(-log_p.sum() + slope**2 / (2 * SLOPE_PRIOR_SD**2)
                     + (low**2 + high**2) / (2 * CUT_PRIOR_SD**2))

    fitted = minimize(loss, x0=np.array([1.0, -1.0, np.log(2.0)]), method="L-BFGS-B",
                      bounds=[(-20.0, 20.0), (-20.0, 20.0), (np.log(1e-3), np.log(40.0))])
    slope, low, gap = (float(v) for v in fitted.x)
    missing = [name for side, name in ((-1, "left"), (0, "center"), (1, "right")) if not (classes == side).any()]
    note = None
    if missing:
        note = (f"calibration: a class has no outlet ({', '.join(missing)}), so the ordinal model's band for it is "
                "set by its prior alone")
    if slope <= 1e-6:
        means = {name: f"{raw[classes == side].mean():.3f}" for side, name in ((-1, "left"), (0, "center"), (1, "right"))
                 if (classes == side).any()}
        note = (f"calibration: on these {len(raw)} outlets the raw scores do not rise with the rating (class means "
                f"{means}, fitted slope {slope:.3g}); a fixed map (slope 1 per standard deviation of the raw scores, "
                "cuts at -1 and +1) is used instead, so the scale says little about the classes")
        return Calibration(centre=centre, scale=scale, slope=1.0, cuts=(-1.0, 1.0), note=note)
    return Calibration(centre=centre, scale=scale, slope=slope, cuts=(low, low + float(np.exp(gap))), note=note)


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
            key = (round(macro_f1(truth, predicted), 9), -abs(low + 0.5) - abs(high - 0.5))
            if key > best_key:
                best, best_key = (float(low), float(high)), key
    return best


def macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Macro-F1 over the classes present in `truth` (sklearn's f1_score with labels=those classes), in numpy:
    threshold search calls it ~700 times per fit."""
    scores = []
    for c in np.unique(truth):
        tp = np.sum((predicted == c) & (truth == c))
        denominator = np.sum(predicted == c) + np.sum(truth == c)
        scores.append(2 * tp / denominator if denominator else 0.0)
    return float(np.mean(scores))


def calibrate_in_cv(raw: np.ndarray, reference: np.ndarray, fold: np.ndarray
                    ) -> tuple[dict[str, float], Calibration | None, tuple[float, float], list[str]]:
    """Outlet-level label metrics with calibration and thresholds fitted on the other folds' outlets, the final
    calibration (None when there is no outlet to fit it on) and thresholds fitted on all of them, and notes on
    what could not be fitted as asked."""
    notes: list[str] = []
    if len(raw) == 0:
        # No rated outlet has min_articles articles: nothing to calibrate on or to score labels against. The raw
        # P(right) - P(left) is already in [-1, 1], so it stands uncalibrated and the label metrics say NaN.
        notes.append("no rated outlet has enough articles to calibrate the scores or score the labels; "
                     "lower min_articles or add articles (scores stay uncalibrated)")
        nan = float("nan")
        return ({"outlet_label_macro_f1": nan, "outlet_cv_calibrated_mae": nan, "threshold_low": -0.5,
                 "threshold_high": 0.5}, None, (-0.5, 0.5), notes)
    calibrated = np.zeros(len(raw))
    predicted = np.zeros(len(raw), dtype=int)
    for k in np.unique(fold):
        train, test = fold != k, fold == k
        classes = [("left", "center", "right")[c + 1] for c in sorted({int(v) for v in np.rint(reference[train])})]
        if len(classes) < 2:
            notes.append(f"fold {int(k)}: its training outlets carry one rating class only ({classes}), so no "
                         f"calibration or cuts can be fitted; its {int(test.sum())} held-out outlets are scored "
                         "0 and labelled center in the label metrics. Add rated outlets or lower n_folds")
            calibrated[test], predicted[test] = 0.0, 0
            continue
        calibration = fit_calibration(raw[train], reference[train])
        if calibration.note:
            notes.append(f"fold {int(k)}: {calibration.note}")
        low, high = choose_thresholds(calibration(raw[train]), reference[train])
        calibrated[test] = calibration(raw[test])
        predicted[test] = np.where(calibrated[test] < low, -1, np.where(calibrated[test] >= high, 1, 0))
    truth = np.rint(reference).astype(int)
    calibration = fit_calibration(raw, reference)
    if calibration.note:
        notes.append(f"final: {calibration.note}")
    thresholds = choose_thresholds(calibration(raw), reference)
    metrics = {
        "outlet_label_macro_f1": macro_f1(truth, predicted),
        "outlet_cv_calibrated_mae": float(np.abs(calibrated - reference).mean()),
        "threshold_low": thresholds[0], "threshold_high": thresholds[1],
    }
    return metrics, calibration, thresholds, notes


def calibrated_intervals(calibration: Calibration, raw: np.ndarray, reference: np.ndarray,
                         article_means: np.ndarray, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """95 % intervals on the calibrated scale that carry both uncertainties: bootstrap draw b refits the
    calibration on a resample (with replacement) of the rated outlets (`raw`, `reference`) and maps each outlet's
    draw-b mean of resampled articles (`article_means`, `(n_outlets, n_draws)`) through it. The calibration's own
    uncertainty grows with the distance from the rated outlets' centre, so the ends are not squeezed flat."""
    rng = np.random.default_rng(seed)
    draws = np.empty_like(article_means, dtype=float)
    for b in range(article_means.shape[1]):
        pick = rng.integers(0, len(raw), len(raw))
        if len(set(np.rint(reference[pick]))) < 2:  # a resample with one class says nothing about the order
            draws[:, b] = calibration(article_means[:, b])
            continue
        draws[:, b] = fit_calibration(raw[pick], reference[pick])(article_means[:, b])
    low, high = np.percentile(draws, [2.5, 97.5], axis=1)
    return low, high


def apply_calibration(table: pd.DataFrame, calibration: Calibration | None, thresholds: tuple[float, float],
                      intervals: tuple[np.ndarray, np.ndarray] | None) -> pd.DataFrame:
    """`table` (outlet rows with `raw_score`, `score_low`, `score_high` on the raw scale) on the calibrated scale,
    with its three-way `label`; `intervals` (low, high per row, from `calibrated_intervals`) replace the mapped
    raw interval. With no calibration the raw scores stand."""
    low, high = thresholds
    if calibration is None:
        score, interval = table["raw_score"].to_numpy(), (table["score_low"].to_numpy(), table["score_high"].to_numpy())
    else:
        score = calibration(table["raw_score"].to_numpy())
        interval = intervals or (calibration(table["score_low"].to_numpy()), calibration(table["score_high"].to_numpy()))
    lone = table["n_articles"].to_numpy() == 1  # one article says nothing about the spread
    # A percentile interval can miss its own estimate when the refits are skewed; it is widened to hold it.
    label = np.where(score < low, "left", np.where(score >= high, "right", "center"))
    return table.assign(score=score, score_low=np.where(lone, -1.0, np.minimum(interval[0], score)),
                        score_high=np.where(lone, 1.0, np.maximum(interval[1], score)), label=label)
