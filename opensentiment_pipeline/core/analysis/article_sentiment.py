"""An article's sentiment from its sentences: shares of negative and positive sentences, a net score, a label.

The net score is the mean over the article's sentences of p(positive) - p(negative), in [-1, 1]. The label is
negative below `-neutral_band`, positive above `neutral_band`, neutral in between. The band is chosen on
labelled validation *sentences* (`choose_neutral_band`, the same rule applied to one sentence), since no
article-level sentiment labels exist outside the test data; benchmarks/article_sentiment_quality.py measures the
result on whole articles against the head applied to the average of 256-token windows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.schema import SENTIMENT_LABELS

ARTICLE_SENTIMENT_COLUMNS: tuple[str, ...] = ("article_id", "n_sentences", "negative_share", "positive_share",
                                              "net_sentiment", "sentiment", "sentiment_confidence")
_LABELS = SENTIMENT_LABELS


def band_labels(net: np.ndarray, *, neutral_band: float) -> np.ndarray:
    """negative / neutral / positive for net scores below, inside and above `[-neutral_band, neutral_band]`.

    >>> band_labels(np.array([-0.5, 0.05, 0.3]), neutral_band=0.1).tolist()
    ['negative', 'neutral', 'positive']
    """
    if not 0 <= neutral_band < 1:
        raise ValueError(f"neutral_band must be in [0, 1); got {neutral_band}")
    net = np.asarray(net, dtype=float)
    return np.where(net < -neutral_band, "negative", np.where(net > neutral_band, "positive", "neutral")).astype(object)


def aggregate_sentences(sentences: pd.DataFrame, *, neutral_band: float) -> pd.DataFrame:
    """One row per article of `sentences` (columns article_id, p_negative, p_neutral, p_positive, sentiment).

    Returns `ARTICLE_SENTIMENT_COLUMNS`, articles in order of first appearance: n_sentences; negative_share and
    positive_share (fractions of sentences whose predicted label is that class); net_sentiment (mean of
    p_positive - p_negative); sentiment (`band_labels` of the net score); sentiment_confidence (the mean
    probability the article's sentences give its label).

    >>> s = pd.DataFrame({"article_id": ["a", "a"], "p_negative": [0.8, 0.1], "p_neutral": [0.1, 0.8],
    ...                   "p_positive": [0.1, 0.1], "sentiment": ["negative", "neutral"]})
    >>> aggregate_sentences(s, neutral_band=0.2)[["negative_share", "net_sentiment", "sentiment"]].round(2).values.tolist()
    [[0.5, -0.35, 'negative']]
    """
    missing = {"article_id", "sentiment", *(f"p_{label}" for label in _LABELS)} - set(sentences.columns)
    if missing:
        raise ValueError(f"sentences lack columns {sorted(missing)}; got {list(sentences.columns)}")
    if sentences.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ARTICLE_SENTIMENT_COLUMNS})
    frame = sentences.assign(
        is_negative=sentences["sentiment"].eq("negative").astype(float),
        is_positive=sentences["sentiment"].eq("positive").astype(float),
        net=sentences["p_positive"].astype(float) - sentences["p_negative"].astype(float))
    grouped = frame.groupby("article_id", sort=False)
    out = pd.DataFrame({
        "n_sentences": grouped.size(),
        "negative_share": grouped["is_negative"].mean(),
        "positive_share": grouped["is_positive"].mean(),
        "net_sentiment": grouped["net"].mean(),
    })
    out["sentiment"] = band_labels(out["net_sentiment"].to_numpy(), neutral_band=neutral_band)
    means = grouped[[f"p_{label}" for label in _LABELS]].mean()
    out["sentiment_confidence"] = [means.at[a, f"p_{label}"] for a, label in zip(out.index, out["sentiment"])]
    return out.rename_axis("article_id").reset_index()[list(ARTICLE_SENTIMENT_COLUMNS)]


def choose_neutral_band(proba: np.ndarray, y_true: Sequence[str], *, labels: Sequence[str],
                        grid: Sequence[float]) -> tuple[float, float]:
    """The band in `grid` whose `band_labels` of p(positive) - p(negative) give the highest macro-F1 on
    labelled validation sentences, and that macro-F1 (ties: the smaller band).

    `proba` is `(n, len(labels))` with columns in `labels` order (which must hold negative and positive).
    """
    from sklearn.metrics import f1_score

    labels = list(labels)
    if "negative" not in labels or "positive" not in labels:
        raise ValueError(f"labels must include 'negative' and 'positive'; got {labels}")
    proba = np.asarray(proba, dtype=float)
    if proba.shape != (len(y_true), len(labels)):
        raise ValueError(f"proba must be (n, {len(labels)}) for {len(y_true)} labels; got {proba.shape}")
    net = proba[:, labels.index("positive")] - proba[:, labels.index("negative")]
    best = (-1.0, None)
    for band in sorted(grid):
        score = f1_score(list(y_true), band_labels(net, neutral_band=band).tolist(), labels=list(_LABELS),
                         average="macro", zero_division=0)
        if score > best[0]:
            best = (float(score), float(band))
    if best[1] is None:
        raise ValueError("grid is empty; pass the candidate bands, e.g. np.arange(0, 0.95, 0.05)")
    return best[1], best[0]
