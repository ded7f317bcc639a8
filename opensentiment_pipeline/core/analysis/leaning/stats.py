"""Sufficient statistics of the axis per day, and the outlet tables as a deterministic function of them.

`day_stats` reduces one day's scored articles (`AxisFit.score`) to sums per outlet (count, sum and sum of
squares of the axis-1 score, sums of the other axes, count and sum of the references) and per (outlet, topic)
(count, sum). The outlet table (`leaning_tables`) reads only those sums, added day by day in day order, so a
night that adds its day's sums gives exactly the table a pass over every stored day gives with the same fit.

Because no article is kept, an outlet's 95 % interval is a t interval of its mean (mean +- t * sd / sqrt(n)),
not a bootstrap over its articles; on the calibrated scale the draws of the outlet's mean are normal draws with
that standard error (seeded per outlet), each mapped through a calibration refitted on resampled rated outlets.
"""

from __future__ import annotations

import logging
import zlib

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.analysis.leaning import calibration as calibration_
from opensentiment_pipeline.core.analysis.leaning.fit import AxisFit
from opensentiment_pipeline.core.analysis.leaning.outlets import (
    AXIS_COLUMNS,
    LEANING_COLUMNS,
    LeaningResult,
)
from opensentiment_pipeline.core.analysis.leaning.references import LEANINGS
from opensentiment_pipeline.core.analysis.leaning.topics import topic_tables

logger = logging.getLogger(__name__)
OUTLET_STATS = ("day", "outlet", "n", "sum", "sumsq", "ref_n", "ref_sum")
TOPIC_STATS = ("day", "outlet", "topic", "n", "sum")


def day_stats(day: str, scored: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-outlet sums, per-(outlet, topic) sums) of one day's `scored` articles (`AxisFit.score`)."""
    frame = scored.assign(sumsq=scored["axis1"] ** 2, ref_n=scored["reference"].notna().astype(int),
                          ref_sum=scored["reference"].fillna(0.0))
    extra = [c for c in scored.columns if c.startswith("axis") and c != "axis1"]
    grouped = frame.groupby("outlet", sort=True)
    outlets = grouped.agg(n=("axis1", "size"), sum=("axis1", "sum"), sumsq=("sumsq", "sum"), ref_n=("ref_n", "sum"),
                          ref_sum=("ref_sum", "sum"), **{f"{c}_sum": (c, "sum") for c in extra}).reset_index()
    outlets.insert(0, "day", day)
    topical = frame.dropna(subset=["topic"])
    topics = topical.groupby(["outlet", "topic"], sort=True).agg(n=("axis1", "size"), sum=("axis1", "sum"))
    topics = topics.reset_index()
    topics.insert(0, "day", day)
    return outlets, topics[list(TOPIC_STATS)]


def totals(stats: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The sums of `stats` over days per `keys`, added in day order (so they do not depend on which run added
    which day)."""
    ordered = stats.sort_values(["day", *keys], kind="stable")
    sums = [c for c in ordered.columns if c not in ("day", *keys)]
    return ordered.groupby(keys, sort=True)[sums].sum().reset_index()


def leaning_tables(stats: pd.DataFrame, topic_stats: pd.DataFrame, fit: AxisFit, *, min_articles: int,
                   n_bootstrap: int, seed: int, min_topic_articles: int
                   ) -> tuple[LeaningResult, pd.DataFrame | None, pd.DataFrame | None]:
    """(the outlet table as a `LeaningResult`, leaning by topic, topic x outlet cells) from the day sums."""
    per_outlet = totals(stats, ["outlet"])
    if per_outlet.empty:
        raise ValueError("no article has been scored: article_embeddings has no stored day with rows")
    if fit.method == "probe":
        result = _probe_table(per_outlet, fit, min_articles=min_articles, n_bootstrap=n_bootstrap, seed=seed)
        by_topic = cells = None
        if fit.topic_source != "none" and not topic_stats.empty:
            by_topic, cells = topic_tables(totals(topic_stats, ["topic", "outlet"]), min_articles=min_topic_articles,
                                           keywords=fit.topic_keywords)
        return result, by_topic, cells
    return _axes_table(per_outlet, fit, min_articles=min_articles), None, None


def _moments(per_outlet: pd.DataFrame, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(n, mean, t interval low, high) of each outlet's scores divided by `scale`; one article spans [-1, 1]."""
    from scipy.stats import t as student

    n = per_outlet["n"].to_numpy(dtype=float)
    mean = per_outlet["sum"].to_numpy() / n / scale
    var = np.maximum(per_outlet["sumsq"].to_numpy() / scale**2 - n * mean**2, 0.0) / np.maximum(n - 1, 1)
    half = student.ppf(0.975, np.maximum(n - 1, 1)) * np.sqrt(var / n)
    lone = n <= 1
    return n, mean, np.where(lone, -1.0, mean - half), np.where(lone, 1.0, mean + half)


def _base_table(per_outlet: pd.DataFrame, fit: AxisFit, scale: float = 1.0) -> pd.DataFrame:
    n, mean, low, high = _moments(per_outlet, scale)
    ref_n, ref_sum = per_outlet["ref_n"].to_numpy(dtype=float), per_outlet["ref_sum"].to_numpy()
    labelled = ref_n > 0
    own = np.divide(ref_sum, ref_n, out=np.zeros_like(ref_sum), where=labelled)
    # Unlabelled articles of a rated outlet take its nearest label (`article_labels`), so they count in its mean.
    reference_mean = np.where(labelled, (ref_sum + (n - ref_n) * np.rint(own)) / n, np.nan)
    score = np.clip(mean, -1, 1)
    return pd.DataFrame({
        "outlet": per_outlet["outlet"].astype(str).to_numpy(), "n_articles": n.astype(int), "score": score,
        "score_low": np.clip(low, -1, 1), "score_high": np.clip(high, -1, 1),
        "reference_leaning": [LEANINGS[int(np.rint(m)) + 1] if ok else None for m, ok in zip(reference_mean, labelled)],
        "fitted_on": per_outlet["outlet"].astype(str).isin(list(fit.fold_of)).to_numpy(), "label": None,
        "raw_score": score, "reference_mean": reference_mean, "_mean": mean, "_half": (high - low) / 2})


def _probe_table(per_outlet: pd.DataFrame, fit: AxisFit, *, min_articles: int, n_bootstrap: int, seed: int
                 ) -> LeaningResult:
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be >= 1; got {n_bootstrap}")
    table = _base_table(per_outlet, fit)
    scored = table[table["fitted_on"] & (table["n_articles"] >= min_articles)]
    label_metrics, calibration, thresholds, notes = calibration_.calibrate_in_cv(
        scored["raw_score"].to_numpy(), scored["reference_mean"].to_numpy(dtype=float),
        np.array([fit.fold_of[o] for o in scored["outlet"]], dtype=int))
    intervals = None
    if calibration is not None:
        intervals = calibration_.calibrated_intervals(
            calibration, scored["raw_score"].to_numpy(), scored["reference_mean"].to_numpy(dtype=float),
            _mean_draws(table, n_bootstrap=n_bootstrap, seed=seed), seed=seed)
    table = calibration_.apply_calibration(table, calibration, thresholds, intervals)
    metrics = {**fit.metrics, **label_metrics}
    for side in LEANINGS:
        chosen = table[table["fitted_on"] & (table["n_articles"] >= min_articles) & (table["reference_leaning"] == side)]
        metrics[f"median_score_{side}"] = float(chosen["score"].median()) if len(chosen) else float("nan")
    for message in notes:
        logger.warning("%s", message)
    return LeaningResult(outlets=table[list(LEANING_COLUMNS)], method="probe", metrics=metrics,
                         warnings=(*fit.warnings, *notes))


def _mean_draws(table: pd.DataFrame, *, n_bootstrap: int, seed: int) -> np.ndarray:
    """`(n_outlets, n_bootstrap)` draws of each outlet's mean score, normal with its standard error (the t
    interval's half-width / t quantile), each outlet seeded by its name so its draws do not depend on which
    other outlets are in the table."""
    from scipy.stats import t as student

    draws = np.empty((len(table), n_bootstrap))
    for row, (outlet, mean, half, n) in enumerate(table[["outlet", "_mean", "_half", "n_articles"]].itertuples(index=False)):
        se = half / student.ppf(0.975, max(n - 1, 1)) if n > 1 else 0.0
        rng = np.random.default_rng([seed, zlib.crc32(str(outlet).encode())])
        draws[row] = mean + se * rng.standard_normal(n_bootstrap)
    return draws


def _axes_table(per_outlet: pd.DataFrame, fit: AxisFit, *, min_articles: int) -> LeaningResult:
    """`principal_axes`' table from the sums: positions are the outlets' mean projections, axis 1 scaled so the
    farthest outlet with `min_articles` sits at +-1."""
    n = per_outlet["n"].to_numpy(dtype=float)
    columns = ["sum", *[f"axis{k + 2}_sum" for k in range(fit.n_axes - 1)]]
    positions = per_outlet[columns].to_numpy() / n[:, None]
    defining = n >= min_articles
    if defining.sum() < 2:
        raise ValueError(f"principal axes need >= 2 outlets with >= {min_articles} articles (min_articles); got "
                         f"{int(defining.sum())} of {len(n)} outlets. Lower min_articles or add articles")
    scale = float(np.abs(positions[defining, 0]).max()) or 1.0
    table = _base_table(per_outlet, fit, scale)
    names = table["outlet"].tolist()
    ends = min(3, int(defining.sum()) // 2) or 1
    axes = []
    for axis in range(fit.n_axes):
        order = np.argsort(positions[:, axis], kind="stable")
        ranked = [names[i] for i in order if defining[i]]
        axes.append({"axis": axis + 1, "explained_variance_ratio": fit.metrics[f"explained_variance_ratio_axis{axis + 1}"],
                     "low_end": ranked[:ends], "high_end": ranked[::-1][:ends]})
    scaled = positions / np.maximum(np.abs(positions[defining]).max(axis=0), 1e-12)
    return LeaningResult(outlets=table[list(LEANING_COLUMNS)], method="principal_axes", metrics=dict(fit.metrics),
                         axes=pd.DataFrame(axes, columns=list(AXIS_COLUMNS)), warnings=fit.warnings,
                         positions=pd.DataFrame(scaled, index=pd.Index(names, name="outlet"),
                                                columns=[f"axis{a + 1}" for a in range(fit.n_axes)]))
