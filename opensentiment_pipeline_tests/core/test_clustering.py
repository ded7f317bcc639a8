"""Clustering tests on well-separated synthetic blobs and hand-built texts. UMAP's first fit pays ~9 s of JIT."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from opensentiment_pipeline.core.clustering import (
    POINT_COLUMNS,
    class_tfidf,
    cluster_keywords,
    cluster_outlets,
    cluster_points,
    project_umap,
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


@pytest.fixture(scope="session")
def blob_result(blobs):
    # Outlets a and b each cover one blob; c and d split the third, so they are each other's nearest.
    vectors, labels = blobs
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
    return cluster_outlets(
        articles, vectors, n_components=2, min_cluster_size=10, min_samples=None, top_k=2, **UMAP_ARGS
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
    with caplog.at_level(logging.WARNING, logger="opensentiment_pipeline.core.clustering"):
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
