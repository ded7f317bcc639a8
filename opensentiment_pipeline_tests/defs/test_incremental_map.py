"""The outlet map over nights: fitted on a bounded sample, a night places its day's articles with the stored fit
and reads no other day; the outlet sums it keeps equal sums over every article."""

from __future__ import annotations

import hashlib

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from opensentiment_pipeline import definitions
from opensentiment_pipeline.core.analysis import outlet_tables
from opensentiment_pipeline.defs import map_state, partitions
from opensentiment_pipeline.defs.assets import analysis
from opensentiment_pipeline.defs.resources import ParquetIOManager
from opensentiment_pipeline_tests.defs.stubs import day_stub_asset, logged_reads, materialization_metadata

DAYS = ["2026-11-20", "2026-11-21", "2026-11-22"]
PER_DAY = 60
TOPICS = 3
FIT = {"max_fit_articles": 90, "min_cluster_size": 8, "n_neighbors": 10}


def _tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three well-separated topics, each article from one of four outlets, spread evenly over the days."""
    rng = np.random.default_rng(7)
    n = PER_DAY * len(DAYS)
    topic = np.arange(n) % TOPICS
    centres = np.eye(TOPICS, 12) * 4
    vectors = (centres[topic] + rng.normal(0, 0.3, (n, 12))).astype(np.float32)
    days = np.repeat(DAYS, PER_DAY)
    ids = [f"m{i}" for i in range(n)]
    raw = pd.DataFrame({"article_id": ids, "outlet": [f"outlet {i % 4}" for i in range(n)],
                        "title": [f"topic{t} story" for t in topic], "text": [f"words about topic{t}" for t in topic],
                        "published_at": pd.to_datetime(days, utc=True), "source": "stub", "partition_day": days,
                        "topic": [f"t{t}" for t in topic]})
    embedded = pd.DataFrame({"article_id": ids, "embedding": list(vectors), "model_version": "v1",
                             "text_window": "title + up to 8 x 256 tokens", "partition_day": days,
                             "sentiment": np.array(["negative", "neutral", "positive"])[topic],
                             "sentiment_confidence": 0.5})
    return raw, embedded


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    home = tmp_path_factory.mktemp("map_nights")
    raw, embedded = _tables()
    resources = definitions.resources_for(home, tracking_uri=f"sqlite:///{home}/mlflow.db")
    resources["parquet_io_manager"] = ParquetIOManager(base_dir=str(home / "assets"),
                                                       read_log=str(home / "reads.jsonl"))
    assets = [day_stub_asset("raw_articles", raw), day_stub_asset("article_embeddings", embedded),
              analysis.outlet_clusters]
    config = {"ops": {"outlet_clusters": {"config": FIT}}}
    (home / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(home / "dagster")) as instance:
        def run(**kwargs):
            result = dg.materialize(assets, instance=instance, resources=resources, **kwargs)
            assert result.success
            return result

        first = run(tags=partitions.range_tags(DAYS[0], DAYS[1]), run_config=config)
        before = {p.name: _sha(p) for p in (home / "map" / map_state.POINTS_DIR).glob("*.parquet")}
        night = run(partition_key=DAYS[2], run_config=config)
        yield {"home": home, "raw": raw, "embedded": embedded, "first": first, "night": night, "before": before}


def _metadata(result) -> dict:
    return materialization_metadata(result, "outlet_clusters")


def test_the_map_is_fitted_on_a_bounded_sample(nights):
    meta = _metadata(nights["first"])
    assert meta["refitted"] and meta["refit_reason"] == "no stored map fit"
    assert meta["fit_articles"] == FIT["max_fit_articles"] and meta["num_articles"] == 2 * PER_DAY


def test_the_night_places_its_day_with_the_stored_fit_and_reads_no_other(nights):
    first, night = _metadata(nights["first"]), _metadata(nights["night"])
    assert not night["refitted"] and night["days_read"] == 1 and night["new_articles"] == PER_DAY
    assert night["map_fit"] == first["map_fit"] == f"{DAYS[1]}#1"
    assert logged_reads(nights["home"] / "reads.jsonl", nights["night"].run_id) == \
        {("article_embeddings", DAYS[2]), ("raw_articles", DAYS[2])}
    after = {p.name: _sha(p) for p in (nights["home"] / "map" / map_state.POINTS_DIR).glob("*.parquet")}
    assert {name: after[name] for name in nights["before"]} == nights["before"]  # earlier days' points untouched
    assert set(after) - set(nights["before"]) == {f"{DAYS[2]}.parquet"}


def test_placed_articles_land_in_their_topics_cluster(nights):
    points = pd.read_parquet(nights["home"] / "assets" / "outlet_clusters.parquet")
    topics = points.merge(nights["raw"][["article_id", "topic"]], on="article_id")
    fitted = topics[~topics["placed"]]
    cluster_of_topic = fitted[fitted["cluster"] >= 0].groupby("topic")["cluster"].agg(lambda c: c.mode().iloc[0])
    assert cluster_of_topic.nunique() == TOPICS
    new = topics[topics["partition_day"] == DAYS[2]]
    assert new["placed"].all() and (new["map_fit"] == f"{DAYS[1]}#1").all()
    assert (new["cluster"].to_numpy() == new["topic"].map(cluster_of_topic).to_numpy()).mean() >= 0.9


def test_outlet_sums_after_the_night_equal_sums_over_every_article(nights):
    stored = pd.read_parquet(nights["home"] / "map" / map_state.SUMS_FILE)
    embedded = nights["embedded"].merge(nights["raw"][["article_id", "outlet"]], on="article_id")
    scratch = outlet_tables.outlet_vector_sums(embedded["outlet"], np.stack(embedded["embedding"].to_numpy()))
    pd.testing.assert_frame_equal(stored, scratch, check_exact=False, rtol=0, atol=1e-9)
