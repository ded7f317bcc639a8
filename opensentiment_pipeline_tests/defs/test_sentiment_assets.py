"""article_sentences, entity_mentions, entity_sentiment and sentiment_trends on three hand-built articles.

The adapter is a one-layer MiniLM with an untrained head, so the tests assert what does not depend on its labels:
the sentences, the mentions, the weeks and volumes, and that the outputs are wired into the graph.
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

NO_STOP = "Acme Corp shares slid all week as its board met"  # no sentence-ending punctuation
ARTICLES = [  # article_id, outlet, day, title, text
    ("a0", "north", "2026-11-03", "Acme wins contract", "Acme Corp said profits rose. The trumpet band played for Acme."),
    ("a1", "north", "2026-11-17", "", NO_STOP),
    ("a2", "south", "2026-11-04", "Harbour news", "Trumpeters met in Acmeville."),
]
ENTITIES = [{"name": "Acme", "aliases": ["Acme Corp"]}]


def _metadata(result, asset: str) -> dict:
    """The metadata of `asset`'s materialization (a day-partitioned asset: of its first day)."""
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset]
    return {k: v.value for k, v in events[0].materialization.metadata.items()}


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
    raw = pd.DataFrame(ARTICLES, columns=["article_id", "outlet", partitions.PARTITION_COLUMN, "title", "text"]).assign(
        source="stub")

    @dg.asset(name="raw_articles", io_manager_key="parquet_io_manager")
    def raw_stub() -> pd.DataFrame:
        return raw

    @dg.asset(name="sentiment_adapter")
    def adapter_stub() -> str:
        return str(adapter_dir)

    @dg.asset(name="outlet_clusters", io_manager_key="parquet_io_manager", deps=["article_embeddings"])
    def map_stub() -> pd.DataFrame:  # a0 and a1 share topic 0; a2 is noise
        return pd.DataFrame({"article_id": ["a0", "a1", "a2"], "outlet": ["north", "north", "south"],
                             "x": 0.0, "y": 0.0, "cluster": [0, 0, -1]})

    result = dg.materialize(
        [raw_stub, adapter_stub, map_stub, vectors.article_embeddings, sentiment.entity_mentions,
         sentiment.entity_sentiment, sentiment.sentiment_trends],
        resources=definitions.resources_for(home, tracking_uri=f"sqlite:///{home}/mlflow.db"),
        run_config={"ops": {"article_embeddings": {"config": {"device": "cpu", "max_chunks": 2, "max_length": 32}},
                            "entity_mentions": {"config": {"entities": ENTITIES, "device": "cpu"}},
                            "entity_sentiment": {"config": {"n_resamples": 50}},
                            "sentiment_trends": {"config": {"n_resamples": 50}}}},
        instance=dg.DagsterInstance.ephemeral(), tags=partitions.range_tags(first="2026-11-01", last="2026-11-30"))
    assert result.success
    return home, result


def _read(home, asset: str) -> pd.DataFrame:
    folder = home / "assets" / asset
    if folder.is_dir():
        frames = [pd.read_parquet(f) for f in sorted(folder.glob("*.parquet"))]
        return pd.concat([f for f in frames if len(f)], ignore_index=True)
    return pd.read_parquet(home / "assets" / f"{asset}.parquet")


def test_sentences_are_stored_by_day_and_an_unpunctuated_article_is_one_sentence(run):
    home, result = run
    rows = _read(home, "article_sentences")
    assert rows.groupby("article_id").size().to_dict() == {"a0": 3, "a1": 1, "a2": 2}
    one = rows[rows["article_id"] == "a1"]
    assert one[["sentence", "start", "end", "outlet", "partition_day"]].values.tolist() == [
        [NO_STOP, 0, len(NO_STOP), "north", "2026-11-17"]]
    assert set(rows["sentiment"]) <= set(SENTIMENT_LABELS)
    embedded = _read(home, "article_embeddings").set_index("article_id")
    assert embedded["n_sentences"].to_dict() == {"a0": 3, "a1": 1, "a2": 2}
    assert _metadata(result, "article_embeddings")["article_sentiment"] == "sentences"


def test_mentions_follow_aliases_and_skip_names_inside_words(run):
    home, _ = run
    mentions = _read(home, "entity_mentions").sort_values(["article_id", "sentence_idx"])
    assert mentions[["article_id", "sentence_idx", "entity", "mention"]].values.tolist() == [
        ["a0", 0, "Acme", "Acme"], ["a0", 1, "Acme", "Acme Corp"], ["a0", 2, "Acme", "Acme"],
        ["a1", 0, "Acme", "Acme Corp"]]  # a2's "Acmeville" and "Trumpeters" are not mentions


def test_weekly_tables_keep_the_empty_week(run):
    home, result = run
    entity = _read(home, "entity_sentiment")
    assert entity[["outlet", "key", "week", "volume", "articles"]].values.tolist() == [
        ["north", "Acme", "2026-11-02", 3, 1], ["north", "Acme", "2026-11-09", 0, 0],
        ["north", "Acme", "2026-11-16", 1, 1]]
    assert entity["change_flagged"].tolist() == [False, False, False]  # no change is judged across an empty week
    trends = _read(home, "sentiment_trends")
    topic = trends[trends["kind"] == "topic"]
    assert topic[["outlet", "key", "week", "volume"]].values.tolist() == [
        ["north", "0", "2026-11-02", 1], ["north", "0", "2026-11-09", 0], ["north", "0", "2026-11-16", 1]]
    assert trends["kind"].value_counts().to_dict() == {"entity": 3, "topic": 3}
    metadata = _metadata(result, "sentiment_trends")
    assert metadata["trends"].startswith("![net sentiment per week: top entities and topics](data:image/png;base64,")
    assert metadata["rows_by_kind"] == {"entity": 3, "topic": 3}


def test_the_new_assets_are_in_the_graph_and_the_nightly_job():
    job = definitions.defs.resolve_job_def("reembedding_job")
    keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert {"article_sentences", "entity_mentions", "entity_sentiment", "sentiment_trends"} <= keys
