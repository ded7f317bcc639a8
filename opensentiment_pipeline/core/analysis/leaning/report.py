"""The `outlet_leaning` asset's one call: embedded articles in, the axis with its map points and per-topic tables
out (`outlet_leaning_report`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.analysis.leaning.outlets import LeaningResult
from opensentiment_pipeline.core.analysis.leaning.placement import place_outlets
from opensentiment_pipeline.core.analysis.leaning.texts import (
    axis_texts,
    format_features,
)
from opensentiment_pipeline.core.analysis.leaning.topics import (
    leaning_by_topic,
    topic_outlet_leaning,
)


@dataclass(frozen=True)
class LeaningReport:
    """The axis (`result`), the map's points coloured by it (`map_points`) and, on the probe path, its per-topic
    tables (`by_topic`, `cells`; `topic_source` says where the topics came from)."""

    result: LeaningResult
    points: pd.DataFrame
    by_topic: pd.DataFrame | None
    cells: pd.DataFrame | None
    topic_source: str | None


def outlet_leaning_report(raw_articles: pd.DataFrame, article_ids: Sequence[str], vectors: np.ndarray,
                          outlet_map: pd.DataFrame, *, reference: Mapping[str, str] | None, strip_min_share: float,
                          strip_min_count: int, remove_format: bool, min_topic_articles: int, keyword_top_k: int,
                          **settings) -> LeaningReport:
    """Place the embedded articles' outlets (`place_outlets`) and lay the axis over the map and its topics.

    Args:
        raw_articles: columns `article_id, outlet, title, text`, optionally `leaning`, `topic`.
        article_ids: the embedded articles, row i of `vectors` `(n, d)`.
        outlet_map: `outlet_clusters` rows (`article_id, x, y, cluster`) holding every embedded article.
        strip_min_share, strip_min_count: boilerplate recurrence rule of `axis_texts`.
        remove_format: no ratings: regress `format_features` out before the principal axes.
        min_topic_articles: an outlet counts on a topic from this many articles on it.
        keyword_top_k: c-TF-IDF words naming each map cluster when the map's clusters are the topics.
        settings: every other keyword of `place_outlets` except `texts` and `covariates`; `tfidf_regularization`
            <= 0 leaves the TF-IDF probe out (then `lexical_weight` must be 0).
    """
    articles = join_articles(raw_articles, article_ids)
    texts = axis_texts(articles, strip_min_share=strip_min_share, strip_min_count=strip_min_count)
    use_words = settings["tfidf_regularization"] > 0
    result = place_outlets(articles, vectors, reference=reference, **settings, texts=texts if use_words else None,
                           covariates=format_features(texts) if remove_format else None)
    points = map_points(articles, outlet_map, result)
    if result.article_scores is None:
        return LeaningReport(result=result, points=points, by_topic=None, cells=None, topic_source=None)
    topics, keywords, source = _topics(articles, points, keyword_top_k=keyword_top_k)
    outlets = articles["outlet"].to_numpy()
    by_topic = leaning_by_topic(outlets, result.article_scores, topics, min_articles=min_topic_articles,
                                keywords=keywords)
    cells = topic_outlet_leaning(outlets, result.article_scores, topics, min_articles=min_topic_articles,
                                 keywords=keywords)
    return LeaningReport(result=result, points=points, by_topic=by_topic, cells=cells, topic_source=source)


def join_articles(raw_articles: pd.DataFrame, article_ids: Sequence[str]) -> pd.DataFrame:
    """The raw rows (`article_id, outlet, title, text` and `leaning`, `topic` where present) of the embedded
    articles, in embedding order."""
    columns = ["article_id", "outlet", "title", "text",
               *[c for c in ("leaning", "topic") if c in raw_articles.columns]]
    articles = pd.DataFrame({"article_id": list(article_ids)}).merge(raw_articles[columns], on="article_id",
                                                                     how="left", validate="one_to_one")
    if articles["outlet"].isna().any():
        raise ValueError(f"{int(articles['outlet'].isna().sum())} embedded articles are not in raw_articles; "
                         "re-materialize article_embeddings after raw_articles")
    return articles


def map_points(articles: pd.DataFrame, outlet_clusters: pd.DataFrame, result) -> pd.DataFrame:
    """The map's points (x, y, cluster of every embedded article) with the article's title, its outlet's
    calibrated score and label (`leaning_score`, `leaning_label`) and its own raw score (`article_score`).

    The map must hold every embedded article: a map drawn before the last embedding would leave articles off
    the picture and out of the per-topic tables, so that fails with the command that redraws it."""
    missing = ~articles["article_id"].isin(outlet_clusters["article_id"])
    if missing.any():
        raise ValueError(f"outlet_clusters has no map position for {int(missing.sum())} of {len(articles)} embedded "
                         f"articles (e.g. {articles.loc[missing, 'article_id'].head(3).tolist()}): it was drawn "
                         "before they were embedded. Redraw it with the axis: dagster asset materialize -m "
                         "opensentiment_pipeline.definitions --select 'outlet_clusters,outlet_leaning' -c <the run "
                         "config you place outlets with, e.g. the one that sets reference_csv>")
    points = articles[["article_id", "outlet", "title"]].merge(
        outlet_clusters[["article_id", "x", "y", "cluster"]], on="article_id", how="left", validate="one_to_one")
    outlets = result.outlets.set_index("outlet")
    points["leaning_score"] = points["outlet"].map(outlets["score"])
    points["leaning_label"] = points["outlet"].map(outlets["label"])  # None on the principal-axes path
    points["article_score"] = result.article_scores if result.article_scores is not None else float("nan")
    return points


def _topics(articles: pd.DataFrame, points: pd.DataFrame, *, keyword_top_k: int) -> tuple[list, dict | None, str]:
    """The sources' `topic` column when at least half the articles have one, else the outlet map's HDBSCAN
    clusters (noise left out), named by c-TF-IDF keywords as `outlet_clusters` names them, so this table and
    `outlet_clusters`' per-topic sentiment share their topics."""
    from opensentiment_pipeline.core.analysis import clustering

    if "topic" in articles.columns and articles["topic"].notna().mean() >= 0.5:
        return articles["topic"].tolist(), None, "the sources' topic column"
    clusters = points["cluster"].to_numpy()
    keywords = clustering.cluster_keywords(articles["text"].fillna("").astype(str).tolist(), clusters,
                                           top_k=keyword_top_k)
    topics = [None if c == clustering.NOISE else int(c) for c in clusters]
    return topics, keywords, f"the outlet map's {len(set(topics) - {None})} clusters"
