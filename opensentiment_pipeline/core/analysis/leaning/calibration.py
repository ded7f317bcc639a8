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


@dataclass(frozen=True)
class Calibration:
    """Monotone piecewise-linear map of raw outlet scores: `knots` (left, center, right medians) -> -1, 0, +1,
    extended linearly beyond them and clipped to [-1, 1]. `note` says why the knots are not the class medians,
    when they are not."""

    knots: tuple[float, float, float]
    note: str | None = None

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        left, centre, right = self.knots
        raw = np.asarray(raw, dtype=float)
        below = (raw - centre) / max(centre - left, 1e-9)
        above = (raw - centre) / max(right - centre, 1e-9)
        return np.clip(np.where(raw < centre, below, above), -1.0, 1.0)


def fit_calibration(raw: np.ndarray, reference: np.ndarray) -> Calibration:
    """Calibration whose knots are the median raw score of outlets rated left, center and right.

    `reference` is each outlet's mean rating in [-1, 1] (rounded to the nearest class). A missing class, or
    medians out of order, falls back to knots spread symmetrically around the median of all outlets, and
    `note` says which.
    """
    raw, reference = np.asarray(raw, dtype=float), np.rint(np.asarray(reference, dtype=float))
    medians = [np.median(raw[reference == side]) if (reference == side).any() else np.nan for side in (-1, 0, 1)]
    if np.isfinite(medians).all() and medians[0] < medians[1] < medians[2]:
        return Calibration(knots=tuple(float(m) for m in medians))
    centre = float(np.median(raw))
    spread = float(np.percentile(np.abs(raw - centre), 90)) or 1.0
    shown = ", ".join("missing" if np.isnan(m) else f"{m:.3f}" for m in medians)
    why = "a class has no outlet" if not np.isfinite(medians).all() else "they are not in left < center < right order"
    note = (f"calibration: the left / center / right medians of the raw scores ({shown}) cannot be the knots "
            f"because {why}; knots spread symmetrically around the median raw score ({centre:.3f} +- {spread:.3f}) "
            "are used instead, so the scale says less about the classes")
    return Calibration(knots=(centre - spread, centre, centre + spread), note=note)


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
                    ) -> tuple[dict[str, float], Calibration, tuple[float, float], list[str]]:
    """Outlet-level label metrics with calibration and thresholds fitted on the other folds' outlets, the final
    calibration and thresholds fitted on all of them, and notes on what could not be fitted as asked."""
    notes: list[str] = []
    if len(raw) == 0:
        # No rated outlet has min_articles articles: nothing to calibrate on or to score labels against. The raw
        # P(right) - P(left) is already in [-1, 1], so it stands uncalibrated and the label metrics say NaN.
        notes.append("no rated outlet has enough articles to calibrate the scores or score the labels; "
                     "lower min_articles or add articles (scores stay uncalibrated)")
        nan = float("nan")
        return ({"outlet_label_macro_f1": nan, "outlet_cv_calibrated_mae": nan, "threshold_low": -0.5,
                 "threshold_high": 0.5}, Calibration(knots=(-1.0, 0.0, 1.0)), (-0.5, 0.5), notes)
    calibrated = np.zeros(len(raw))
    predicted = np.zeros(len(raw), dtype=int)
    for k in np.unique(fold):
        train, test = fold != k, fold == k
        classes = sorted(set(np.rint(reference[train]).astype(int)))
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


def apply_calibration(table: pd.DataFrame, calibration: Calibration, thresholds: tuple[float, float]
                      ) -> pd.DataFrame:
    """`table` (outlet rows with `raw_score`, `score_low`, `score_high` on the raw scale) on the calibrated scale,
    with its three-way `label`."""
    low, high = thresholds
    score = calibration(table["raw_score"].to_numpy())
    label = np.where(score < low, "left", np.where(score >= high, "right", "center"))
    return table.assign(score=score, score_low=calibration(table["score_low"].to_numpy()),
                        score_high=calibration(table["score_high"].to_numpy()), label=label)
