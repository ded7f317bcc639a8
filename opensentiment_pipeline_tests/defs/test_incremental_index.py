"""The search index over nights: a night adds its day's vectors to the stored index and reads no other day, and
the result searches exactly as an index rebuilt from every day."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from opensentiment_pipeline import definitions
from opensentiment_pipeline.core.model import modeling
from opensentiment_pipeline.core.vectors import search
from opensentiment_pipeline.defs import partitions
from opensentiment_pipeline.defs.assets import search as search_assets
from opensentiment_pipeline.defs.resources import ParquetIOManager
from opensentiment_pipeline_tests.defs.stubs import logged_reads, materialization_metadata, upstream_stubs

DAYS = ["2026-11-20", "2026-11-21", "2026-11-22"]
PER_DAY = 40


def _tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(3)
    n = PER_DAY * len(DAYS)
    ids = [f"n{i}" for i in range(n)]
    vectors = rng.normal(size=(n, 16)).astype(np.float32)
    days = np.repeat(DAYS, PER_DAY)
    raw = pd.DataFrame({"article_id": ids, "outlet": [f"outlet {i % 4}" for i in range(n)], "title": ids,
                        "text": "words", "published_at": pd.to_datetime(days, utc=True), "source": "stub",
                        "partition_day": days})
    embedded = pd.DataFrame({"article_id": ids, "embedding": list(vectors / np.linalg.norm(vectors, axis=1)[:, None]),
                             "model_version": "v1", "partition_day": days, "sentiment": "neutral",
                             "sentiment_confidence": 0.5, "text_window": "title + up to 8 x 256 tokens"})
    return raw, embedded


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    home = tmp_path_factory.mktemp("index_nights")
    adapter_dir = home / "adapter"
    adapter_dir.mkdir()
    (adapter_dir / "mlflow_run.json").write_text(json.dumps({"run_id": "v1"}))
    modeling.AdapterManifest(base_model="packaged:all-MiniLM-L6-v2", labels=["negative", "neutral", "positive"],
                             num_layers=None, max_length=64, pair_input=False).save(adapter_dir)
    raw, embedded = _tables()
    resources = definitions.resources_for(home, tracking_uri=f"sqlite:///{home}/mlflow.db")
    resources["parquet_io_manager"] = ParquetIOManager(base_dir=str(home / "assets"),
                                                       read_log=str(home / "reads.jsonl"))
    assets = [*upstream_stubs(raw, embedded, adapter_dir), search_assets.article_index]
    (home / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(home / "dagster")) as instance:
        def run(**kwargs):
            result = dg.materialize(assets, instance=instance, resources=resources, **kwargs)
            assert result.success
            return result

        first = run(tags=partitions.range_tags(DAYS[0], DAYS[1]))
        night = run(partition_key=DAYS[2])
        nightly = search.load_index(home / "index"), pd.read_parquet(home / "index" / search.ARTICLES_FILE)
        rebuilt = run(selection=["article_index"], run_config={"ops": {"article_index": {"config": {"rebuild": True}}}},
                      tags=partitions.range_tags())
        yield {"home": home, "embedded": embedded, "runs": (first, night, rebuilt), "nightly": nightly,
               "rebuilt": (search.load_index(home / "index"), pd.read_parquet(home / "index" / search.ARTICLES_FILE))}


def _metadata(result) -> dict:
    return materialization_metadata(result, "article_index")


def test_the_night_adds_its_day_and_reads_no_other(nights):
    first, night, _ = nights["runs"]
    assert _metadata(first)["rebuilt"] and _metadata(first)["num_vectors"] == 2 * PER_DAY
    meta = _metadata(night)
    assert not meta["rebuilt"] and meta["days_read"] == 1 and meta["num_vectors"] == 3 * PER_DAY
    by_index = logged_reads(nights["home"] / "reads.jsonl", night.run_id, reader="article_index")
    assert by_index == {("article_embeddings", DAYS[2]), ("raw_articles", DAYS[2])}


def test_search_over_the_nightly_index_equals_search_over_a_rebuilt_one(nights):
    (nightly, nightly_articles), (rebuilt, rebuilt_articles) = nights["nightly"], nights["rebuilt"]
    assert _metadata(nights["runs"][2])["rebuilt"]
    assert nightly.ids == rebuilt.ids
    vectors = np.stack(nights["embedded"]["embedding"].to_numpy())
    for query in vectors[::7]:
        assert search.search(nightly, query, 10)["article_id"].tolist() == \
            search.search(rebuilt, query, 10)["article_id"].tolist()
    pd.testing.assert_frame_equal(nightly_articles.sort_values("article_id").reset_index(drop=True),
                                  rebuilt_articles.sort_values("article_id").reset_index(drop=True))
