"""The synthetic archive the scale benchmark writes (benchmarks/synthetic_archive.py) is what the pipeline stores:
the ParquetIOManager reads its days back with the real assets' columns, ids are unique, vectors are unit rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from synthetic_archive import ASSETS, Outlets, Pool, make_outlets, write_archive

from opensentiment_pipeline.core.ingest import sources
from opensentiment_pipeline.core.vectors import encoding
from opensentiment_pipeline.defs.assets.ingest import SourceConfig, to_spec
from opensentiment_pipeline.defs.assets.sentiment import MENTION_FRAME_COLUMNS
from opensentiment_pipeline.defs.assets.vectors import EMBEDDING_FRAME_COLUMNS, SENTENCE_FRAME_COLUMNS
from opensentiment_pipeline.defs.stored_days import StoredDays

DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]
BODY = ("The Senate voted on the budget late on Tuesday. Trump said the plan would pass. Critics in Congress "
        "disagreed and asked for more time to read it. ") * 12


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((6, 8)).astype(np.float32)
    pool = Pool(titles=[f"Headline {i}" for i in range(6)], bodies=[f"{i} {BODY}" for i in range(6)],
                outlets=np.array(["Paper A", "Paper A", "Paper B", "Paper B", "Paper C", "Paper C"]),
                leanings=np.array(["left", "left", "center", "center", "right", "right"]),
                topics=np.array(["budget"] * 6, dtype=object),
                vectors=vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    outlets = make_outlets(pool, 5)
    home = tmp_path_factory.mktemp("archive")
    stats = write_archive(home, DAYS, 31, pool, outlets, seed=0, model_version="run-1", text_window="title + lead")
    return home, outlets, stats


def stored(home, asset: str) -> StoredDays:
    return StoredDays(asset=asset, folder=home / asset, keys=tuple(DAYS + ["2026-11-04"]))


def test_every_asset_stores_one_file_per_day(archive):
    home, _, stats = archive
    for asset in ASSETS:
        assert stored(home, asset).days() == DAYS
    assert stats["rows"]["raw_articles"] == stats["rows"]["article_embeddings"] == 31
    assert [stored(home, "raw_articles").num_rows([d]) for d in DAYS] == [11, 10, 10]


def test_tables_have_the_real_assets_columns(archive):
    home, _, _ = archive
    assert list(stored(home, "article_embeddings").read().columns) == list(EMBEDDING_FRAME_COLUMNS)
    assert list(stored(home, "article_sentences").read().columns) == list(SENTENCE_FRAME_COLUMNS)
    mentions = stored(home, "entity_mentions").read()
    assert list(mentions.columns) == list(MENTION_FRAME_COLUMNS)
    assert set(mentions["entity"]) == {"Senate", "Donald Trump", "Congress"}


def test_raw_articles_match_what_ingestion_stores(archive, tmp_path):
    home, _, _ = archive
    raw = stored(home, "raw_articles").read()
    csv = tmp_path / "wire.csv"
    raw.assign(id=raw["article_id"].str.split(":").str[1]).to_csv(csv, index=False)
    spec = to_spec(SourceConfig(name="wire", path=str(csv), columns={
        "id": "id", "title": "title", "text": "text", "outlet": "outlet", "published_at": "published_at",
        "leaning": "leaning", "topic": "topic"}), seed=0)
    ingested = sources.read_sources([spec], near_dup_threshold=1.0, seed=0).articles
    ours = raw.drop(columns="partition_day").set_index("article_id").loc[ingested["article_id"]].reset_index()
    assert list(ours.columns) == list(ingested.columns)
    assert dict(ours.dtypes.astype(str)) == dict(ingested.dtypes.astype(str))
    pd.testing.assert_frame_equal(ours.drop(columns="votes"), ingested.drop(columns="votes"), check_exact=False)


def test_leads_of_a_day_are_distinct_so_ingestion_keeps_them(archive):
    home, _, _ = archive
    raw = stored(home, "raw_articles").read()
    for _, day in raw.groupby("partition_day"):
        assert day["text"].is_unique
        assert day.groupby("outlet")["leaning"].nunique().max() == 1


def test_ids_are_unique_and_shared_across_tables(archive):
    home, _, _ = archive
    raw = stored(home, "raw_articles").read()
    embeddings = stored(home, "article_embeddings").read()
    assert raw["article_id"].is_unique
    assert embeddings["article_id"].tolist() == raw["article_id"].tolist()
    assert set(stored(home, "article_sentences").read()["article_id"]) == set(raw["article_id"])


def test_vectors_are_float32_unit_rows(archive):
    home, _, _ = archive
    embeddings = stored(home, "article_embeddings").read()
    for column in ("embedding", "sentiment_embedding"):
        matrix = encoding.frame_to_matrix(embeddings, column)
        assert matrix.dtype == np.float32 and matrix.shape == (31, 8)
        np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-6)


def test_outlets_are_renamed_and_keep_their_real_leaning():
    pool = Pool(titles=["a", "b"], bodies=["x", "y"], outlets=np.array(["Real One", "Real Two"]),
                leanings=np.array(["left", "right"]), topics=np.array([None, None]), vectors=np.eye(2, dtype=np.float32))
    outlets = make_outlets(pool, 3)
    assert isinstance(outlets, Outlets)
    assert outlets.names == ["outlet 000", "outlet 001", "outlet 002"]
    assert outlets.leanings == ["left", "right", "left"]
    assert [r.tolist() for r in outlets.rows] == [[0], [1], [0]]
    assert [r.tolist() for r in outlets.row_outlets] == [[0, 2], [1]]
    assert outlets.leads.tolist() == [[0, 0], [1, 0]]  # one lead slot in a body shorter than a slot
