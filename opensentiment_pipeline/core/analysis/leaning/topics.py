"""The axis topic by topic: each outlet's mean article score per topic, and which topics divide outlets most."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

TOPIC_LEANING_COLUMNS: tuple[str, ...] = ("topic", "keywords", "n_articles", "n_outlets", "spread", "left_outlet",
                                          "left_score", "right_outlet", "right_score")
TOPIC_OUTLET_LEANING_COLUMNS: tuple[str, ...] = ("topic", "keywords", "outlet", "n_articles", "mean_score")


def topic_outlet_leaning(outlets: np.ndarray, article_scores: np.ndarray, topics: Sequence, *, min_articles: int,
                         keywords: Mapping | None = None) -> pd.DataFrame:
    """Each outlet's place on the axis topic by topic: one row per (topic, outlet) with at least `min_articles`
    articles on the topic, the mean of those articles' scores (raw P(right) - P(left), held out for rated
    outlets), sorted by topic, then score (left first). Articles without a topic (None/NaN) are left out; so
    is HDBSCAN noise when `topics` are map clusters and the caller passes them with noise as None."""
    return topic_tables(_cell_sums(outlets, article_scores, topics), min_articles=min_articles,
                        keywords=keywords)[1]


def _cell_sums(outlets: np.ndarray, article_scores: np.ndarray, topics: Sequence) -> pd.DataFrame:
    # object dtype: integer cluster ids mixed with None would otherwise turn into floats (0.0, 1.0, ...)
    frame = pd.DataFrame({"outlet": np.asarray(outlets).astype(str), "score": np.asarray(article_scores, dtype=float),
                          "topic": pd.Series(list(topics), dtype=object)}).dropna(subset=["topic", "score"])
    return frame.groupby(["topic", "outlet"], sort=True)["score"].agg(n="size", sum="sum").reset_index()


def topic_tables(sums: pd.DataFrame, *, min_articles: int, keywords: Mapping | None
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(`leaning_by_topic`, `topic_outlet_leaning`) from per-(topic, outlet) sums (columns topic, outlet, n =
    articles, sum = their scores' sum), so a caller that keeps the sums never re-reads the articles."""
    cells = sums.assign(mean_score=sums["sum"] / sums["n"], n_articles=sums["n"].astype(int))
    per_topic = cells.groupby("topic", sort=True)["n_articles"].sum()
    cells = cells[cells["n_articles"] >= min_articles]
    words = {t: (w if isinstance(w, str) else ", ".join(w)) for t, w in (keywords or {}).items()}
    cells = cells.assign(keywords=cells["topic"].map(lambda t: words.get(t, "")))
    cells = cells.sort_values(["topic", "mean_score", "outlet"], kind="stable")
    cells = cells[list(TOPIC_OUTLET_LEANING_COLUMNS)].reset_index(drop=True)
    rows = []
    for topic, group in cells.groupby("topic", sort=True):
        if len(group) < 2:
            continue
        left, right = group.iloc[0], group.iloc[-1]  # sorted by score within the topic
        # n_articles counts every article on the topic, also those of outlets below min_articles on it.
        rows.append({"topic": topic, "keywords": left["keywords"], "n_articles": int(per_topic[topic]),
                     "n_outlets": len(group), "spread": float(right["mean_score"] - left["mean_score"]),
                     "left_outlet": left["outlet"], "left_score": float(left["mean_score"]),
                     "right_outlet": right["outlet"], "right_score": float(right["mean_score"])})
    table = pd.DataFrame(rows, columns=list(TOPIC_LEANING_COLUMNS))
    return table.sort_values("spread", ascending=False, kind="stable").reset_index(drop=True), cells


def leaning_by_topic(outlets: np.ndarray, article_scores: np.ndarray, topics: Sequence, *, min_articles: int,
                     keywords: Mapping | None = None) -> pd.DataFrame:
    """Which topics divide the outlets most: per topic, the outlets with at least `min_articles` articles on it,
    the spread of their mean article scores (raw P(right) - P(left), held out for rated outlets, so not the
    calibrated -1..1 scale) and the outlets at either end. Topics with fewer than two such outlets are left
    out; sorted by spread, widest first. `keywords` maps a topic to its words (e.g. `clustering.cluster_keywords`).
    The per-outlet cells behind it are `topic_outlet_leaning`.
    """
    return topic_tables(_cell_sums(outlets, article_scores, topics), min_articles=min_articles,
                        keywords=keywords)[0]
