"""FAISS-backed search: exact order on hand-built vectors, filters that still fill k, safe index folders,
and HNSW recall against exact search on real article embeddings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opensentiment_pipeline.core.vectors import search

# Five 2-D unit vectors at 0, 10, 20, 30 and 90 degrees: similarity to "a" falls in the order a, b, c, d, e.
ANGLES = {"a": 0.0, "b": 10.0, "c": 20.0, "d": 30.0, "e": 90.0}


def _vectors() -> tuple[np.ndarray, list[str]]:
    ids = list(ANGLES)
    radians = np.deg2rad(list(ANGLES.values()))
    return np.stack([np.cos(radians), np.sin(radians)], axis=1).astype(np.float32), ids


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_search_returns_nearest_ids_in_order_with_cosine_similarity(kind):
    vectors, ids = _vectors()
    hits = search.search(search.build_index(vectors, ids, kind=kind), vectors[0], k=3)
    assert hits["article_id"].tolist() == ["a", "b", "c"]
    assert hits["rank"].tolist() == [1, 2, 3]
    assert hits["similarity"].tolist() == pytest.approx(np.cos(np.deg2rad([0.0, 10.0, 20.0])), abs=1e-6)


def test_identical_query_has_similarity_one_even_unnormalised():
    vectors, ids = _vectors()
    hits = search.search(search.build_index(vectors * 3.0, ids), vectors[3] * 0.5, k=1)
    assert hits["article_id"].tolist() == ["d"]
    assert hits["similarity"].iloc[0] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_filter_keeps_only_allowed_ids_and_still_fills_k(kind):
    vectors, ids = _vectors()
    index = search.build_index(vectors, ids, kind=kind)
    hits = search.search(index, vectors[0], k=2, allowed_ids=["e", "c", "not-indexed"])
    assert hits["article_id"].tolist() == ["c", "e"]
    assert search.search(index, vectors[0], k=10, allowed_ids=["d"])["article_id"].tolist() == ["d"]
    assert search.search(index, vectors[0], k=3, allowed_ids=[]).empty


@pytest.mark.parametrize("exact_below", [search.EXACT_FILTER_MAX_ROWS, 0])  # 0: FAISS's filtered graph walk
def test_selective_filter_on_a_large_hnsw_index_fills_k(monkeypatch, exact_below):
    monkeypatch.setattr(search, "EXACT_FILTER_MAX_ROWS", exact_below)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3000, 16)).astype(np.float32)
    ids = [f"n{i}" for i in range(3000)]
    index = search.build_index(vectors, ids, kind="hnsw", hnsw_m=8, ef_search=16)
    allowed = ids[::97]  # 31 rows scattered over the graph
    hits = search.search(index, vectors[5], k=10, allowed_ids=allowed)
    exact = search.search(search.build_index(vectors, ids), vectors[5], k=10, allowed_ids=allowed)
    assert hits["article_id"].tolist() == exact["article_id"].tolist()


def test_k_larger_than_the_index_returns_every_row():
    vectors, ids = _vectors()
    assert len(search.search(search.build_index(vectors, ids), vectors[0], k=50)) == 5


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"vectors": np.ones(3), "ids": ["a"]}, ValueError, r"must be 2-D .* got shape \(3,\)"),
        ({"vectors": np.ones((2, 3)), "ids": ["a"]}, ValueError, "2 vectors and 1 ids"),
        ({"vectors": np.ones((2, 3)), "ids": ["a", "a"]}, ValueError, r"1 repeat, e.g. \['a'\]"),
        ({"vectors": np.zeros((1, 3)), "ids": ["a"]}, ValueError, "1 all-zero rows"),
        ({"vectors": np.full((1, 3), np.nan), "ids": ["a"]}, ValueError, "NaN or inf in 1 rows"),
        ({"vectors": np.ones((1, 3)), "ids": ["a"], "kind": "ivf"}, ValueError, "unknown index kind 'ivf'"),
    ],
)
def test_build_index_rejects_bad_input_with_what_it_got(kwargs, error, match):
    with pytest.raises(error, match=match):
        search.build_index(**kwargs)


def test_search_rejects_a_query_of_the_wrong_size_and_a_bare_string_filter():
    vectors, ids = _vectors()
    index = search.build_index(vectors, ids)
    with pytest.raises(ValueError, match="query_vector has 3 dimensions but the index holds 2-dimensional"):
        search.search(index, np.ones(3), k=1)
    with pytest.raises(TypeError, match="not the single string 'abc'"):
        search.search(index, vectors[0], k=1, allowed_ids="abc")
    with pytest.raises(ValueError, match="k must be a positive integer; got 0"):
        search.search(index, vectors[0], k=0)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_saved_index_reloads_with_identical_results(tmp_path, kind):
    vectors, ids = _vectors()
    index = search.build_index(vectors, ids, kind=kind)
    search.save_index(index, tmp_path)
    loaded = search.load_index(tmp_path)
    assert (loaded.kind, loaded.num_vectors, loaded.dimensions) == (kind, 5, 2)
    pd.testing.assert_frame_equal(search.search(loaded, vectors[2], k=5), search.search(index, vectors[2], k=5))


def test_load_index_names_the_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing \['vectors.faiss', 'ids.json', 'index.json'\]"):
        search.load_index(tmp_path)


def test_failed_build_leaves_the_previous_folder_untouched(tmp_path):
    target = tmp_path / "index"
    with search.replacing_folder(target) as tmp:
        (tmp / "marker.txt").write_text("first")
    with pytest.raises(RuntimeError, match="build failed"):
        with search.replacing_folder(target) as tmp:
            (tmp / "marker.txt").write_text("second, half-written")
            raise RuntimeError("build failed")
    assert (target / "marker.txt").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["index"]  # no temp or backup folders left behind
    with search.replacing_folder(target) as tmp:
        (tmp / "marker.txt").write_text("third")
    assert (target / "marker.txt").read_text() == "third"
    assert [p.name for p in tmp_path.iterdir()] == ["index"]


@pytest.mark.shared_data
def test_hnsw_recall_at_10_against_exact_search_on_real_article_embeddings(shared_data):
    from opensentiment_pipeline.core.model import modeling
    from opensentiment_pipeline.core.vectors import encoding

    frame = pd.read_parquet(
        shared_data / "article_bias_prediction" / "abp_articles_text_sample_cap300_per_source.parquet",
        columns=["ID", "title"],
    )
    frame = frame[frame["title"].str.strip().str.len() > 0].sample(n=2000, random_state=0)
    spec = "packaged:all-MiniLM-L6-v2"
    vectors = encoding.encode_texts(modeling.load_encoder(spec, num_layers=None), modeling.load_tokenizer(spec),
                                      frame["title"].tolist(), batch_size=64, max_length=48, device="cpu")
    ids = frame["ID"].astype(str).tolist()
    exact = search.build_index(vectors, ids, kind="flat")
    approximate = search.build_index(vectors, ids, kind="hnsw")  # the defaults article_index uses
    queries = vectors[np.random.default_rng(0).choice(len(vectors), size=200, replace=False)]
    assert search.recall_at_k(approximate, exact, queries, k=10) >= 0.95


def test_adding_rows_searches_as_building_with_them_and_refuses_repeats_and_other_sizes():
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(60, 8)).astype(np.float32)
    ids = [f"r{i}" for i in range(60)]
    grown = search.add_to_index(search.build_index(vectors[:40], ids[:40]), vectors[40:], ids[40:])
    whole = search.build_index(vectors, ids)
    assert grown.ids == whole.ids
    for query in vectors[::5]:
        pd.testing.assert_frame_equal(search.search(grown, query, 10), search.search(whole, query, 10))
    with pytest.raises(ValueError, match="1 ids are already in the index or repeat, e.g. \\['r3'\\]"):
        search.add_to_index(grown, vectors[:1], ["r3"])
    with pytest.raises(ValueError, match="holds 8-dimensional vectors; got 4"):
        search.add_to_index(grown, vectors[:1, :4], ["new"])
