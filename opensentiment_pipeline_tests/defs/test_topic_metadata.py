"""outlet_clusters' topic metadata on hand-built tables (the map itself is covered by the demo run)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from opensentiment_pipeline.defs.assets.analysis import map_topic_metrics


def test_map_topic_metrics_compares_the_map_vectors_with_the_sentiment_vectors():
    ids = [f"a{i}" for i in range(24)]
    topic = ["rates", "storms"] * 12
    jitter = 0.01 * np.arange(24)[:, None]
    by_topic = np.array([[1.0, 0.0] if t == "rates" else [0.0, 1.0] for t in topic]) + jitter
    by_sentiment = np.array([[1.0, 0.0] if i < 12 else [0.0, 1.0] for i in range(24)]) + jitter  # topic-blind
    articles = pd.DataFrame({"article_id": ids, "topic": topic})
    points = pd.DataFrame({"article_id": ids[::-1], "cluster": [0 if t == "rates" else 1 for t in topic[::-1]]})
    embedded = pd.DataFrame({"article_id": ids, "sentiment_embedding": list(by_sentiment)})
    metrics = map_topic_metrics(articles, points, by_topic, embedded)
    assert metrics["topic_precision_at_10_map_vectors"] == 1.0  # each article has 11 same-topic others
    assert metrics["topic_precision_at_10_sentiment_vectors"] < 0.6
    assert metrics["cluster_topic_nmi"] == 1.0 and metrics["topic_chance"] == 0.5
    assert metrics["num_topic_labelled"] == 24
    assert map_topic_metrics(articles.assign(topic=None), points, by_topic, embedded) == {}
