"""article_sentences, entity_mentions, entity_sentiment and sentiment_trends on four hand-built articles, over two
runs: the days up to 2026-11-16, then the new day 2026-11-17 alone, then a rebuild.

The adapter is a one-layer MiniLM with an untrained head, so the tests assert what does not depend on its labels:
the sentences, the mentions, the weeks and volumes, that the second run reads the new day only and equals the
rebuild, and that the outputs are wired into the graph.
"""

from __future__ import annotations

import json

import dagster as dg
import pandas as pd
import pytest

from opensentiment_pipeline import definitions
from opensentiment_pipeline.core.model import modeling, training
from opensentiment_pipeline.core.schema import SENTIMENT_LABELS
from opensentiment_pipeline.defs import partitions
from opensentiment_pipeline.defs.assets import sentiment, vectors
from opensentiment_pipeline.defs.resources import ParquetIOManager
from opensentiment_pipeline_tests.defs.stubs import day_stub_asset, stub_asset

NO_STOP = "Acme Corp shares slid all week as its board met"  # no sentence-ending punctuation
ARTICLES = [  # article_id, outlet, day, published_at, title, text
    ("a0", "north", "2026-11-03", "2026-11-03T10:00Z", "Acme wins contract",
     "Acme Corp said profits rose. The trumpet band played for Acme."),
    ("a1", "north", "2026-11-17", "2026-11-17T08:00Z", "", NO_STOP),
    ("a2", "south", "2026-11-04", "2026-11-04T09:00Z", "Harbour news", "Trumpeters met in Acmeville."),
    ("a3", "north", "2026-11-01", None, "", "Acme Corp thanked its staff"),  # undated: filed under the first day
]
NEW_DAY = "2026-11-17"
ENTITIES = [{"name": "Acme", "aliases": ["Acme Corp"]}]


def _metadata(result, asset: str) -> dict:
    """The metadata of `asset`'s materialization (a day-partitioned asset: of its first day)."""
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset]
    return {k: v.value for k, v in events[0].materialization.metadata.items()}


MAP = {"rows": None}  # what the outlet_clusters stand-in returns on the next run


def _map_rows(days) -> pd.DataFrame:  # a0, a1 and the undated a3 share topic 0; a2 is noise
    rows = pd.DataFrame({"article_id": ["a0", "a1", "a2", "a3"], "outlet": ["north", "north", "south", "north"],
                         "x": 0.0, "y": 0.0, "cluster": [0, 0, -1, 0], "map_fit": "fit-1",
                         "sentiment": ["positive", "negative", "neutral", "neutral"], "title": "",
                         "published_at": pd.to_datetime([a[3] for a in ARTICLES], utc=True),
                         partitions.PARTITION_COLUMN: [a[2] for a in ARTICLES]})
    return rows[rows[partitions.PARTITION_COLUMN].isin(days)].reset_index(drop=True)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    home = tmp_path_factory.mktemp("sentiment_home")
    adapter_dir = home / "adapter"
    model = modeling.load_classifier("packaged:all-MiniLM-L6-v2", labels=SENTIMENT_LABELS, num_layers=1)
    model = modeling.add_lora(model, lora_r=2, lora_alpha=4, lora_dropout=0.0, target_modules=["query", "value"])
    training.save_adapter(model, modeling.load_tokenizer("packaged:all-MiniLM-L6-v2"), adapter_dir,
                          modeling.AdapterManifest(base_model="packaged:all-MiniLM-L6-v2", labels=list(SENTIMENT_LABELS),
                                                   num_layers=1, max_length=32, pair_input=True))
    (adapter_dir / "mlflow_run.json").write_text(json.dumps({"run_id": "v1"}))
    raw = pd.DataFrame(ARTICLES, columns=["article_id", "outlet", partitions.PARTITION_COLUMN, "published_at", "title",
                                          "text"]).assign(source="stub")
    raw["published_at"] = pd.to_datetime(raw["published_at"], utc=True)

    raw_stub = day_stub_asset("raw_articles", raw)

    @dg.asset(name="outlet_clusters", io_manager_key="parquet_io_manager", deps=["article_embeddings"])
    def map_stub() -> pd.DataFrame:
        return MAP["rows"]

    adapter_stub = stub_asset("sentiment_adapter", str(adapter_dir), parquet=False)
    assets = [raw_stub, adapter_stub, map_stub, vectors.article_embeddings, sentiment.entity_mentions,
              sentiment.entity_sentiment, sentiment.sentiment_trends]
    resources = definitions.resources_for(home, tracking_uri=f"sqlite:///{home}/mlflow.db")
    resources["parquet_io_manager"] = ParquetIOManager(base_dir=str(home / "assets"), read_log=str(home / "reads.jsonl"))
    trend_config = {"config": {"n_resamples": 50}}
    ops = {"article_embeddings": {"config": {"device": "cpu", "max_chunks": 2, "max_length": 32}},
           "entity_mentions": {"config": {"entities": ENTITIES, "device": "cpu"}},
           "entity_sentiment": trend_config, "sentiment_trends": trend_config}

    def materialize(first: str, last: str, **kwargs):
        result = dg.materialize(assets, resources=resources, run_config={"ops": ops},
                                instance=dg.DagsterInstance.ephemeral(),
                                tags=partitions.range_tags(first=first, last=last), **kwargs)
        assert result.success
        return result

    MAP["rows"] = _map_rows([a[2] for a in ARTICLES if a[2] < NEW_DAY])
    first = materialize("2026-11-01", "2026-11-16")
    MAP["rows"] = _map_rows([a[2] for a in ARTICLES])
    second = materialize(NEW_DAY, NEW_DAY)
    tables = {asset: _read(home, asset) for asset in ("entity_sentiment", "sentiment_trends")}
    rebuild_config = {"config": {"n_resamples": 50, "rebuild": True}}
    rebuild = dg.materialize(assets, resources=resources, instance=dg.DagsterInstance.ephemeral(),
                             selection=["entity_sentiment", "sentiment_trends"],
                             run_config={"ops": {"entity_sentiment": rebuild_config,
                                                 "sentiment_trends": rebuild_config}})
    assert rebuild.success
    return home, first, second, rebuild, tables


def _read(home, asset: str) -> pd.DataFrame:
    folder = home / "assets" / asset
    if folder.is_dir():
        frames = [pd.read_parquet(f) for f in sorted(folder.glob("*.parquet"))]
        return pd.concat([f for f in frames if len(f)], ignore_index=True)
    return pd.read_parquet(home / "assets" / f"{asset}.parquet")


def test_sentences_are_stored_by_day_and_an_unpunctuated_article_is_one_sentence(run):
    home, result, *_ = run
    rows = _read(home, "article_sentences")
    assert rows.groupby("article_id").size().to_dict() == {"a0": 3, "a1": 1, "a2": 2, "a3": 1}
    one = rows[rows["article_id"] == "a1"]
    assert one[["sentence", "start", "end", "outlet", "partition_day"]].values.tolist() == [
        [NO_STOP, 0, len(NO_STOP), "north", "2026-11-17"]]
    assert set(rows["sentiment"]) <= set(SENTIMENT_LABELS)
    embedded = _read(home, "article_embeddings").set_index("article_id")
    assert embedded["n_sentences"].to_dict() == {"a0": 3, "a1": 1, "a2": 2, "a3": 1}
    assert _metadata(result, "article_embeddings")["article_sentiment"] == "sentences"


def test_mentions_follow_aliases_and_skip_names_inside_words(run):
    home, *_ = run
    mentions = _read(home, "entity_mentions").sort_values(["article_id", "sentence_idx"])
    assert mentions[["article_id", "sentence_idx", "entity", "mention"]].values.tolist() == [
        ["a0", 0, "Acme", "Acme"], ["a0", 1, "Acme", "Acme Corp"], ["a0", 2, "Acme", "Acme"],
        ["a1", 0, "Acme", "Acme Corp"], ["a3", 0, "Acme", "Acme Corp"]]  # a2's "Acmeville" and "Trumpeters" are not mentions


def test_weekly_tables_keep_the_empty_week_and_leave_undated_articles_out(run):
    home, _, second, _, _ = run
    entity = _read(home, "entity_sentiment")
    # a3 is undated (filed under the first day, 2026-11-01): no row for the week of 2026-10-26, and counted
    assert entity[["outlet", "key", "week", "volume", "articles"]].values.tolist() == [
        ["north", "Acme", "2026-11-02", 3, 1], ["north", "Acme", "2026-11-09", 0, 0],
        ["north", "Acme", "2026-11-16", 1, 1]]
    assert entity["change_flagged"].tolist() == [False, False, False]  # no change is judged across an empty week
    trends = _read(home, "sentiment_trends")
    topic = trends[trends["kind"] == "topic"]
    assert topic[["outlet", "key", "week", "volume", "n_positive", "n_negative"]].values.tolist() == [
        ["north", "0", "2026-11-02", 1, 1, 0], ["north", "0", "2026-11-09", 0, 0, 0],
        ["north", "0", "2026-11-16", 1, 0, 1]]
    assert trends["kind"].value_counts().to_dict() == {"entity": 3, "topic": 3}
    assert _metadata(second, "entity_sentiment")["undated_mentions_left_out"] == 1
    metadata = _metadata(second, "sentiment_trends")
    assert metadata["undated_articles_left_out"] == 1
    assert metadata["trends"].startswith("![net sentiment per week: top entities and topics](data:image/png;base64,")
    assert metadata["rows_by_kind"] == {"entity": 3, "topic": 3}


def test_the_new_day_is_the_only_stored_day_the_weekly_tables_read(run):
    home, first, second, _, _ = run
    reads = [json.loads(line) for line in (home / "reads.jsonl").read_text().splitlines()]
    weekly = ("entity_sentiment", "sentiment_trends")
    night = {(r["asset"], r["day"]) for r in reads if r["run_id"] == second.run_id and r["reader"] in weekly}
    assert night == {("entity_mentions", NEW_DAY), ("raw_articles", NEW_DAY)}
    first_days = {f"2026-11-{d:02d}" for d in range(1, 17)}  # the first run stored (and read) every day up to 16
    assert {r["day"] for r in reads if r["run_id"] == first.run_id and r["reader"] == "entity_sentiment"} == first_days
    assert not _metadata(second, "entity_sentiment")["rebuilt"] and _metadata(first, "entity_sentiment")["rebuilt"]
    assert not _metadata(second, "sentiment_trends")["topic_rows_rebuilt"]


def test_the_second_run_equals_a_rebuild(run):
    home, _, _, rebuild, tables = run
    assert _metadata(rebuild, "entity_sentiment")["rebuild_reason"] == "rebuild: true"
    for asset, table in tables.items():
        pd.testing.assert_frame_equal(table, _read(home, asset), check_exact=True)


def test_a_refit_map_recounts_the_topic_rows(tmp_path):
    points = _map_rows([a[2] for a in ARTICLES])
    resources = definitions.resources_for(tmp_path, tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    entity = stub_asset("entity_sentiment", pd.DataFrame())
    results = []
    for clusters in ([0, 0, -1, 0], [0, 1, 2, 0]):
        MAP["rows"] = points.assign(cluster=clusters, map_fit=f"fit-{clusters[1]}")
        results.append(dg.materialize([entity, stub_asset("outlet_clusters", MAP["rows"]), sentiment.sentiment_trends],
                                      resources=resources, instance=dg.DagsterInstance.ephemeral(),
                                      run_config={"ops": {"sentiment_trends": {"config": {"n_resamples": 20}}}}))
    meta = _metadata(results[1], "sentiment_trends")
    assert meta["topic_rows_rebuilt"] and "changed" in meta["topic_rebuild_reason"]
    topic = results[1].output_for_node("sentiment_trends")
    assert topic[["key", "week", "volume"]].values.tolist() == [
        ["0", "2026-11-02", 1], ["1", "2026-11-16", 1], ["2", "2026-11-02", 1]]


def test_the_new_assets_are_in_the_graph_and_the_nightly_job():
    job = definitions.defs.resolve_job_def("reembedding_job")
    keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert {"article_sentences", "entity_mentions", "entity_sentiment", "sentiment_trends"} <= keys
