"""Clustering tests on well-separated synthetic blobs and hand-built texts. UMAP's first fit pays ~9 s of JIT."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from opensentiment_pipeline.core.analysis.clustering import (
    POINT_COLUMNS,
    class_tfidf,
    cluster_keywords,
    cluster_outlets,
    cluster_points,
    project_tsne,
    project_umap,
)
from opensentiment_pipeline.core.analysis.outlet_tables import (
    TOPIC_OUTLET_COLUMNS,
    outlet_hierarchy,
    topic_outlet_table,
)

UMAP_ARGS = dict(n_neighbors=15, min_dist=0.0, metric="euclidean", random_state=42)
TOPIC_WORDS = {0: "election ballot", 1: "football goal", 2: "inflation market"}


@pytest.fixture(scope="session")
def blobs():
    vectors, labels = make_blobs(n_samples=[40, 40, 40], n_features=10, cluster_std=0.5, random_state=0)
    return vectors.astype(np.float32), labels


@pytest.fixture(scope="session")
def blob_labels(blobs):
    vectors, _ = blobs
    points = project_umap(vectors, n_components=2, **UMAP_ARGS)
    return cluster_points(points, min_cluster_size=10, min_samples=None)


def blob_articles(labels: np.ndarray) -> pd.DataFrame:
    # Outlets a and b each cover one blob; c and d split the third, so they are each other's nearest.
    outlet_of_blob = np.array(["a", "b", "c"])[labels]
    third = np.flatnonzero(labels == 2)
    outlet_of_blob[third[::2]] = "d"
    articles = pd.DataFrame(
        {
            "article_id": [f"id{i}" for i in range(len(labels))],
            "outlet": outlet_of_blob,
            "text": [f"news about {TOPIC_WORDS[blob]} today" for blob in labels],
            "sentiment": np.where(labels == 0, "negative", "positive"),
        }
    )
    return articles


@pytest.fixture(scope="session")
def blob_result(blobs):
    vectors, labels = blobs
    return cluster_outlets(
        blob_articles(labels), vectors, n_components=2, min_cluster_size=10, min_samples=None, top_k=2, **UMAP_ARGS
    ), labels


def test_umap_hdbscan_recovers_separated_blobs(blobs, blob_labels):
    _, truth = blobs
    assert len(set(blob_labels)) == 3
    assert adjusted_rand_score(truth, blob_labels) == 1.0


def test_same_seed_gives_same_labels(blobs, blob_labels):
    vectors, _ = blobs
    points = project_umap(vectors, n_components=2, **UMAP_ARGS)
    assert np.array_equal(cluster_points(points, min_cluster_size=10, min_samples=None), blob_labels)


def test_project_umap_needs_three_vectors():
    with pytest.raises(ValueError, match="project_umap needs at least 3 vectors; got 2"):
        project_umap(np.zeros((2, 5)), n_components=2, **UMAP_ARGS)


def test_project_umap_clips_n_neighbors_on_tiny_input(caplog):
    vectors = np.random.default_rng(0).normal(size=(3, 5))
    with caplog.at_level(logging.WARNING, logger="opensentiment_pipeline.core.analysis.clustering"):
        points = project_umap(vectors, n_components=2, **UMAP_ARGS)
    assert points.shape == (3, 2) and points.dtype == np.float32
    assert "n_neighbors=15 needs more than 3 samples; using n_neighbors=2" in caplog.text


def test_project_umap_rejects_nan():
    vectors = np.ones((5, 3))
    vectors[1, 2] = np.nan
    with pytest.raises(ValueError, match="vectors contains NaN or inf in 1 rows"):
        project_umap(vectors, n_components=2, **UMAP_ARGS)


def test_class_tfidf_follows_the_bertopic_formula():
    counts = np.array([[2, 0, 1], [0, 3, 1]])
    weights = class_tfidf(counts)
    average_words = (3 + 4) / 2
    assert weights[0, 0] == pytest.approx(2 / 3 * math.log(1 + average_words / 2))
    assert weights[1, 1] == pytest.approx(3 / 4 * math.log(1 + average_words / 3))
    assert weights[0, 1] == 0.0
    assert weights[1, 2] == pytest.approx(1 / 4 * math.log(1 + average_words / 2))


def test_cluster_keywords_picks_each_clusters_own_word():
    texts = [
        "the striker scored a goal",
        "a late goal won the match",
        "goal celebrations",
        "shares fell as the market slid",
        "a market rally lifts shares",
        "market closes higher",
        "the goal of the market",  # noise: shares words with both clusters
    ]
    keywords = cluster_keywords(texts, np.array([0, 0, 0, 1, 1, 1, -1]), top_k=2)
    assert keywords == {0: ["goal", "celebrations"], 1: ["market", "shares"]}


def test_cluster_keywords_of_all_noise_is_empty():
    assert cluster_keywords(["a text", "another text"], np.array([-1, -1]), top_k=3) == {}


def test_cluster_outlets_points_and_keywords(blob_result):
    result, truth = blob_result
    assert tuple(result.points.columns) == POINT_COLUMNS
    assert result.points["article_id"].tolist() == [f"id{i}" for i in range(len(truth))]
    assert result.n_clusters == 3 and result.noise_share == 0.0
    assert adjusted_rand_score(truth, result.points["cluster"]) == 1.0
    keywords_by_blob = {
        blob: result.cluster_keywords[int(result.points["cluster"][truth == blob].iloc[0])] for blob in range(3)
    }
    assert {blob: sorted(words) for blob, words in keywords_by_blob.items()} == {
        blob: sorted(words.split()) for blob, words in TOPIC_WORDS.items()
    }


def test_outlet_similarity_is_symmetric_with_unit_diagonal(blob_result):
    result, _ = blob_result
    sim = result.outlet_similarity
    assert list(sim.index) == list(sim.columns) == ["a", "b", "c", "d"]
    assert np.array_equal(sim.to_numpy(), sim.to_numpy().T)
    np.testing.assert_allclose(np.diag(sim.to_numpy()), 1.0, atol=1e-12)


def test_outlet_table_names_nearest_outlet_and_sentiment_mix(blob_result):
    result, _ = blob_result
    outlets = result.outlets.set_index("outlet")
    assert outlets["n_articles"].to_dict() == {"a": 40, "b": 40, "c": 20, "d": 20}
    assert outlets.loc["c", "nearest_outlet"] == "d" and outlets.loc["d", "nearest_outlet"] == "c"
    assert outlets.loc["c", "nearest_similarity"] > 0.99
    assert outlets.loc["c", "dominant_cluster"] == outlets.loc["d", "dominant_cluster"]
    assert outlets["dominant_cluster_share"].tolist() == [1.0] * 4
    assert outlets.loc["a", ["share_negative", "share_neutral", "share_positive", "net_sentiment"]].tolist() == [
        1.0, 0.0, 0.0, -1.0,
    ]
    assert outlets.loc["b", "net_sentiment"] == 1.0


def test_cluster_outlets_rejects_unknown_sentiment(blobs):
    vectors, _ = blobs
    articles = pd.DataFrame({"article_id": ["x"] * 3, "outlet": "o", "text": "t", "sentiment": "joyful"})
    with pytest.raises(ValueError, match=r"unknown labels \['joyful'\]"):
        cluster_outlets(
            articles, vectors[:3], n_components=2, min_cluster_size=2, min_samples=None, top_k=2, **UMAP_ARGS
        )


def test_outlet_table_keeps_its_columns(blob_result):
    result, _ = blob_result
    assert list(result.outlets.columns) == [
        "outlet", "n_articles", "nearest_outlet", "nearest_similarity", "outlet_group", "dominant_cluster",
        "dominant_cluster_share", "noise_share", "share_negative", "share_neutral", "share_positive", "net_sentiment",
    ]


# a and c are alike, b and d are alike, the two pairs are far apart: sorted order a, b, c, d splits both pairs.
PAIRS = pd.DataFrame(
    [[1.0, 0.2, 0.95, 0.1], [0.2, 1.0, 0.15, 0.9], [0.95, 0.15, 1.0, 0.2], [0.1, 0.9, 0.2, 1.0]],
    index=list("abcd"), columns=list("abcd"),
)


def test_outlet_hierarchy_puts_similar_outlets_next_to_each_other():
    order, groups = outlet_hierarchy(PAIRS)
    assert sorted(order) == list("abcd")
    assert abs(order.index("a") - order.index("c")) == 1 and abs(order.index("b") - order.index("d")) == 1
    # Top merge at mean cross distance 0.8375; the default cut at 0.7 x that separates the two pairs.
    assert groups.loc[order].tolist() == [1, 1, 2, 2]
    assert groups["a"] == groups["c"] != groups["b"] == groups["d"]


def test_outlet_hierarchy_cuts_a_given_number_of_groups():
    order, one = outlet_hierarchy(PAIRS, n_groups=1)
    assert one.to_dict() == {"a": 1, "b": 1, "c": 1, "d": 1}
    _, four = outlet_hierarchy(PAIRS, n_groups=4)
    assert four.loc[order].tolist() == [1, 2, 3, 4]


def test_outlet_hierarchy_of_one_outlet_and_bad_groups():
    order, groups = outlet_hierarchy(pd.DataFrame([[1.0]], index=["solo"], columns=["solo"]))
    assert order == ["solo"] and groups.to_dict() == {"solo": 1}
    with pytest.raises(ValueError, match="n_groups must be >= 1 or None; got 0"):
        outlet_hierarchy(PAIRS, n_groups=0)


def test_cluster_outlets_orders_and_groups_outlets(blob_result):
    result, _ = blob_result
    order = result.outlet_order
    assert sorted(order) == ["a", "b", "c", "d"] and abs(order.index("c") - order.index("d")) == 1
    groups = result.outlets.set_index("outlet")["outlet_group"]
    assert groups["c"] == groups["d"]
    assert groups.loc[order].tolist() == sorted(groups.tolist())  # numbered as they appear in the order


def test_topic_outlet_table_on_blobs(blob_result):
    result, truth = blob_result
    table = result.topic_outlet_sentiment
    cluster_of_blob = {blob: int(result.points["cluster"][truth == blob].iloc[0]) for blob in range(3)}
    by_cell = table.set_index(["cluster", "outlet"])
    assert sorted(by_cell.index) == sorted(
        [(cluster_of_blob[0], "a"), (cluster_of_blob[1], "b"), (cluster_of_blob[2], "c"), (cluster_of_blob[2], "d")]
    )
    assert by_cell["n_articles"].sum() == 120
    assert by_cell.loc[(cluster_of_blob[2], "c"), "n_articles"] == 20
    assert by_cell.loc[(cluster_of_blob[2], "d"), "cluster_share"] == 0.5
    assert by_cell.loc[(cluster_of_blob[0], "a"), ["share_negative", "net_sentiment"]].tolist() == [1.0, -1.0]
    np.testing.assert_allclose(table[["share_negative", "share_neutral", "share_positive"]].sum(axis=1), 1.0)
    assert table["net_vs_topic"].tolist() == [0.0] * 4  # each outlet is its topic's only voice or shares its tone
    assert table["keywords"].tolist() == [", ".join(result.cluster_keywords[c]) for c in table["cluster"]]


def test_topic_outlet_table_counts_shares_and_min_articles():
    points = pd.DataFrame({
        "outlet": ["x", "x", "x", "x", "y", "y", "y", "y", "y", "x"],
        "cluster": [0, 0, 0, 0, 0, 0, 1, 1, 1, -1],
    })
    sentiment = pd.Series(["negative", "negative", "positive", "neutral", "positive", "positive",
                           "positive", None, "negative", "positive"])
    table = topic_outlet_table(points, sentiment, {0: ["vote", "poll"], 1: ["goal"]}, min_articles=3)
    # (0, y) has 2 articles, under min_articles; noise (-1) is no topic.
    assert table[["cluster", "keywords", "outlet", "n_articles"]].values.tolist() == [
        [0, "vote, poll", "x", 4], [1, "goal", "y", 3],
    ]
    x0, y1 = table.to_dict("records")
    assert x0["cluster_share"] == pytest.approx(4 / 6)
    assert [x0["share_negative"], x0["share_neutral"], x0["share_positive"]] == [0.5, 0.25, 0.25]
    assert x0["net_vs_topic"] == pytest.approx(-0.25 - (3 / 6 - 2 / 6))  # the topic counts y's 2 articles too
    assert [y1["share_negative"], y1["share_neutral"], y1["share_positive"]] == [0.5, 0.0, 0.5]  # over labelled


def test_topic_outlet_table_without_sentiment():
    points = pd.DataFrame({"outlet": ["x", "y", "y"], "cluster": [0, 0, 0]})
    table = topic_outlet_table(points, None, {0: ["vote"]}, min_articles=1)
    assert tuple(table.columns) == TOPIC_OUTLET_COLUMNS
    assert table[["outlet", "n_articles", "cluster_share"]].values.tolist() == [["y", 2, 2 / 3], ["x", 1, 1 / 3]]


def test_project_tsne_gives_a_finite_map_that_keeps_blobs_apart(blobs):
    vectors, truth = blobs
    points = project_tsne(vectors, metric="cosine", random_state=0)
    assert points.shape == (120, 2) and points.dtype == np.float32 and np.isfinite(points).all()
    distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    assert np.array_equal(truth[distances.argmin(axis=1)], truth)  # every point's nearest neighbour is its blob's


def test_project_tsne_clips_perplexity_on_tiny_input(caplog):
    vectors = np.random.default_rng(0).normal(size=(7, 5))
    with caplog.at_level(logging.WARNING, logger="opensentiment_pipeline.core.analysis.clustering"):
        points = project_tsne(vectors, metric="cosine", random_state=0)
    assert points.shape == (7, 2) and np.isfinite(points).all()
    assert "perplexity=30 is too high for 7 samples; using 2" in caplog.text


def test_cluster_outlets_tsne_map_keeps_the_umap_clusters(blobs, blob_result):
    vectors, labels = blobs
    umap_result, _ = blob_result
    result = cluster_outlets(
        blob_articles(labels), vectors, n_components=2, min_cluster_size=10, min_samples=None, top_k=2,
        projection="tsne", **UMAP_ARGS,
    )
    assert np.array_equal(result.points["cluster"], umap_result.points["cluster"])
    assert np.isfinite(result.points[["x", "y"]].to_numpy()).all()
    assert not np.allclose(result.points[["x", "y"]], umap_result.points[["x", "y"]])


def test_cluster_outlets_rejects_unknown_projection(blobs):
    vectors, labels = blobs
    with pytest.raises(ValueError, match=r"projection must be one of \('umap', 'tsne'\); got 'pca'"):
        cluster_outlets(
            blob_articles(labels), vectors, n_components=2, min_cluster_size=10, min_samples=None, top_k=2,
            projection="pca", **UMAP_ARGS,
        )
