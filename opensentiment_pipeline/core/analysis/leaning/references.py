"""Reference ratings: reading a ratings CSV and giving each article the leaning of its outlet."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.ingest.articles import (
    normalise_outlet,  # the one outlet normaliser
)

logger = logging.getLogger(__name__)

LEANINGS: tuple[str, ...] = ("left", "center", "right")
LEANING_SCORE: dict[str, float] = {"left": -1.0, "center": 0.0, "right": 1.0}


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


def article_labels(articles: pd.DataFrame, reference: Mapping[str, str] | None) -> pd.Series:
    """Each article's leaning (from `reference`, else the `leaning` column); unlabelled articles of a rated
    outlet take the outlet's label, so no outlet is both fitted and scored."""
    return _fill_within_outlets(own_labels(articles, reference), articles["outlet"].astype(str).to_numpy())


def _fill_within_outlets(labels: pd.Series, outlets: np.ndarray) -> pd.Series:
    means = labels.map(LEANING_SCORE).astype(float).groupby(outlets).transform("mean")
    nearest = means.map(lambda m: None if np.isnan(m) else LEANINGS[int(np.rint(m)) + 1])
    return labels.where(labels.notna(), nearest).astype(object)


def own_labels(articles: pd.DataFrame, reference: Mapping[str, str] | None) -> pd.Series:
    """Each article's own leaning (from `reference`, else the `leaning` column; None when it has none), before
    `article_labels` fills unlabelled articles of a rated outlet."""
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
