"""raw_articles through Dagster: a faulty export sets rows aside, counts them, and the share check judges them."""

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from opensentiment_pipeline import definitions
from opensentiment_pipeline.core.ingest.sources import EMPTY_SOURCE
from opensentiment_pipeline.defs import partitions
from opensentiment_pipeline.defs.assets import ingest as ingestion
from opensentiment_pipeline_tests.conftest import REPO_ROOT

FAULTY = REPO_ROOT / "opensentiment_pipeline_tests" / "data" / "articles_faulty.csv"
FAULTY_SOURCE = {"name": "faulty", "path": str(FAULTY),
                 "columns": {"id": "id", "text": "body", "title": "headline", "outlet": "outlet",
                             "published_at": "published", "label": "sentiment"},
                 "label_map": {"pos": "positive"}}


@dg.asset(partitions_def=partitions.DAILY, backfill_policy=partitions.SINGLE_RUN, io_manager_key="parquet_io_manager")
def reads_raw_articles(raw_articles: pd.DataFrame) -> pd.DataFrame:
    """A stand-in for what reads raw_articles downstream (embeddings, annotations)."""
    return raw_articles[["article_id", partitions.PARTITION_COLUMN]]


def _ingest(tmp_path, source: dict | list[dict], max_share: float, *, day: str | None = None, downstream=()):
    sources = source if isinstance(source, list) else [source]
    return dg.materialize(
        [ingestion.raw_articles, ingestion.article_ids_are_unique, *downstream],
        resources=definitions.resources_for(tmp_path, tracking_uri=f"sqlite:///{tmp_path}/m.db"),
        run_config={"ops": {"raw_articles": {"config": {"sources": sources, "max_rejected_share": max_share}}}},
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
        **({"partition_key": day} if day else {"tags": partitions.range_tags()}))


def test_faulty_rows_are_set_aside_counted_and_good_rows_kept(tmp_path):
    result = _ingest(tmp_path, FAULTY_SOURCE, max_share=0.9)
    assert result.success
    events = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert events["raw_articles"]["num_rows"].value == 2
    assert events["raw_articles"]["rejected_rows"].value == 4
    (rejects_day,) = [p for p in (tmp_path / "assets" / "rejected_rows").glob("*.parquet") if len(pd.read_parquet(p))]
    assert rejects_day.stem == partitions.whole_range()[0]  # rows dated 2024 or undated: the archive day
    rejects = pd.read_parquet(rejects_day)
    assert rejects[["row", "field"]].values.tolist() == [[3, "body"], [4, "published"], [5, "sentiment"], [6, "record"]]
    assert set(rejects["file"]) == {str(FAULTY)}
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "rejected_share_below_threshold"]
    assert check.passed and check.metadata["rejected_share_per_source"].value == {"faulty": pytest.approx(4 / 6)}


def test_share_check_fails_when_too_many_rows_are_rejected_and_blocks_what_reads_raw_articles(tmp_path):
    result = _ingest(tmp_path, FAULTY_SOURCE, max_share=0.05, downstream=[reads_raw_articles])
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "rejected_share_below_threshold"]
    assert not check.passed and check.metadata["max_rejected_share"].value == 0.05
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "1 blocking asset check failed" in failure.step_failure_data.error.to_string()
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"raw_articles", "rejected_rows"}  # stored and visible, but nothing downstream ran


def test_an_empty_source_is_named_and_fails_the_blocking_check(tmp_path):
    (tmp_path / "empty.csv").write_text("id,body\n")
    empty = {"name": "empty", "path": str(tmp_path / "empty.csv"), "columns": {"id": "id", "text": "body"}}
    result = _ingest(tmp_path, [FAULTY_SOURCE, empty], max_share=0.9, downstream=[reads_raw_articles])
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "rejected_share_below_threshold"]
    assert not check.passed and check.metadata["empty_sources"].value == ["empty"]
    assert check.metadata["rejected_share_per_source"].value == {"empty": 1.0, "faulty": pytest.approx(4 / 6)}
    events = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert events["raw_articles"]["empty_sources"].value == ["empty"]
    stored = pd.read_parquet(tmp_path / "assets" / "rejected_rows" / f"{partitions.whole_range()[0]}.parquet")
    assert stored.loc[stored["source"] == "empty", ["row", "field", "reason"]].values.tolist() == [
        [0, "file", EMPTY_SOURCE]]
    assert "reads_raw_articles" not in events


def test_the_nightly_run_files_each_reject_once(tmp_path):
    """A whole-range load, then two nightly runs of yesterday: every reject is stored exactly once, under
    its row's day (undated or unreadable rows under the archive day)."""
    first, today = partitions.whole_range()
    yesterday = (dt.date.fromisoformat(today) - dt.timedelta(days=1)).isoformat()
    (tmp_path / "feed.csv").write_text(
        "id,body,published,sentiment\n"
        f"n1,A good row from yesterday.,{yesterday}T08:00:00Z,positive\n"
        f"n2,A row from yesterday with a bad label.,{yesterday}T09:00:00Z,ecstatic\n"
        "n3,,,neutral\n"  # undated and empty
        "n4,An old good row.,2024-01-01,neutral\n")
    source = {"name": "feed", "path": str(tmp_path / "feed.csv"),
              "columns": {"id": "id", "text": "body", "published_at": "published", "label": "sentiment"}}
    assert _ingest(tmp_path, source, max_share=0.9).success
    assert _ingest(tmp_path, source, max_share=0.9, day=yesterday).success
    assert _ingest(tmp_path, source, max_share=0.9, day=yesterday).success
    stored = {p.stem: pd.read_parquet(p) for p in (tmp_path / "assets" / "rejected_rows").glob("*.parquet")}
    everything = pd.concat([f for f in stored.values() if len(f)], ignore_index=True)
    assert sorted(everything[["row", "field", partitions.PARTITION_COLUMN]].values.tolist()) == [
        [2, "sentiment", yesterday if yesterday > first else first], [3, "body", first]]


def test_missing_mapped_column_fails_the_run_and_keeps_the_stored_table(tmp_path):
    assert _ingest(tmp_path, FAULTY_SOURCE, max_share=0.9).success
    stored = _stored_bytes(tmp_path / "assets" / "raw_articles")
    assert stored
    broken = {**FAULTY_SOURCE, "columns": {**FAULTY_SOURCE["columns"], "text": "article_body"}}
    result = _ingest(tmp_path, broken, max_share=0.9)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "has no column(s) ['article_body']" in failure.step_failure_data.error.to_string()
    assert _stored_bytes(tmp_path / "assets" / "raw_articles") == stored


def _stored_bytes(folder) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.parquet"))}
