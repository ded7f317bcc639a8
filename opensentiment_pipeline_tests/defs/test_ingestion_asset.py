"""raw_articles through Dagster: a faulty export sets rows aside, counts them, and the share check judges them."""

import dagster as dg
import pandas as pd
import pytest

from opensentiment_pipeline import definitions
from opensentiment_pipeline.defs import partitions
from opensentiment_pipeline.defs.assets import ingestion
from opensentiment_pipeline_tests.conftest import REPO_ROOT

FAULTY = REPO_ROOT / "opensentiment_pipeline_tests" / "data" / "articles_faulty.csv"
FAULTY_SOURCE = {"name": "faulty", "path": str(FAULTY),
                 "columns": {"id": "id", "text": "body", "title": "headline", "outlet": "outlet",
                             "published_at": "published", "label": "sentiment"},
                 "label_map": {"pos": "positive"}}


def _ingest(tmp_path, source: dict, max_share: float):
    return dg.materialize(
        [ingestion.raw_articles, ingestion.article_ids_are_unique],
        resources=definitions.resources_for(tmp_path, tracking_uri=f"sqlite:///{tmp_path}/m.db"),
        run_config={"ops": {"raw_articles": {"config": {"sources": [source], "max_rejected_share": max_share}}}},
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False, tags=partitions.range_tags())


def test_faulty_rows_are_set_aside_counted_and_good_rows_kept(tmp_path):
    result = _ingest(tmp_path, FAULTY_SOURCE, max_share=0.9)
    assert result.success
    events = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert events["raw_articles"]["num_rows"].value == 2
    assert events["raw_articles"]["rejected_rows"].value == 4
    (rejects_day,) = [p for p in (tmp_path / "assets" / "rejected_rows").glob("*.parquet") if len(pd.read_parquet(p))]
    assert rejects_day.stem == partitions.whole_range()[1]  # a run's rejects are filed under its last day
    rejects = pd.read_parquet(rejects_day)
    assert rejects[["row", "field"]].values.tolist() == [[3, "body"], [4, "published"], [5, "sentiment"], [6, "record"]]
    assert set(rejects["file"]) == {str(FAULTY)}
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "rejected_share_below_threshold"]
    assert check.passed and check.metadata["rejected_share_per_source"].value == {"faulty": pytest.approx(4 / 6)}


def test_share_check_fails_when_too_many_rows_are_rejected(tmp_path):
    result = _ingest(tmp_path, FAULTY_SOURCE, max_share=0.05)
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "rejected_share_below_threshold"]
    assert not check.passed


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
