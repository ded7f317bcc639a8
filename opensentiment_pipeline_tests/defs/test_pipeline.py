"""The Dagster layer: definitions load, and the whole graph materializes on the demo corpus."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from opensentiment_pipeline import definitions
from opensentiment_pipeline.defs import partitions

ASSET_KEYS = {"raw_articles", "rejected_rows", "merged_annotations", "sentiment_examples", "sentiment_adapter",
              "evaluation_report", "adapter_promotion", "article_embeddings", "outlet_clusters", "article_index", "outlet_leaning", "suspect_labels", "annotation_quality_report"}
FAST_TRAINING = {"epochs": 4, "lora_r": 8, "max_length": 64}


def test_definitions_load_with_every_asset_and_the_nightly_job_embeds_and_refreshes_the_analysis():
    dg.Definitions.validate_loadable(definitions.defs)
    keys = {key.to_user_string() for key in definitions.defs.resolve_asset_graph().get_all_asset_keys()}
    assert ASSET_KEYS <= keys
    schedule = definitions.defs.get_schedule_def("nightly_reembedding")
    assert schedule.cron_schedule == "0 2 * * *"
    job_assets = {k.to_user_string() for k in definitions.defs.resolve_job_def("reembedding_job")
                  .asset_layer.executable_asset_keys}
    assert job_assets == {"raw_articles", "rejected_rows", "article_embeddings", "outlet_clusters", "article_index",
                          "outlet_leaning", "article_sentences", "entity_mentions", "entity_sentiment",
                          "sentiment_trends", "stories", "outlet_agreement", "results_db"}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One materialization of the whole graph on the demo corpus, every store under a temp folder."""
    home = tmp_path_factory.mktemp("home")
    tracking_uri = f"sqlite:///{home}/mlflow.db"
    result = dg.materialize(
        [*definitions.ASSETS, *definitions.ASSET_CHECKS],
        resources=definitions.resources_for(home, tracking_uri=tracking_uri),
        # annotation_quality_report reads ../shared when present; its own test covers it, so skip it here
        run_config={"ops": {"sentiment_adapter": {"config": FAST_TRAINING},
                            "annotation_quality_report": {"config": {"expert_path": str(home / "absent.parquet")}}}},
        instance=dg.DagsterInstance.ephemeral(),
        tags=partitions.range_tags(),  # every day partition in one run, as `make demo` does
    )
    return result, home, tracking_uri


def _metadata(result, asset: str) -> dict:
    """The asset's output metadata (a range run records one event per day, all with the run's metadata)."""
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset]
    partitioned = asset in ("raw_articles", "rejected_rows", "article_embeddings")
    assert len(events) == (len(partitions.DAILY.get_partition_keys()) if partitioned else 1)
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def test_demo_run_succeeds_with_metadata_a_user_can_read(demo_run):
    result, home, _ = demo_run
    assert result.success
    raw = _metadata(result, "raw_articles")
    assert raw["num_rows"] == 297  # 300 demo rows minus 3 reprinted near-duplicates (see demo_data/README.md)
    assert raw["duplicates_dropped"] == 3
    assert raw["rejected_rows"] == 0
    assert raw["num_outlets"] == 6
    merged = _metadata(result, "merged_annotations")
    assert merged["num_rows"] == 297
    assert 0.4 < merged["krippendorff_alpha"] < 1.0  # the demo corpus has real disagreements
    adapter = _metadata(result, "sentiment_adapter")
    assert 0 < adapter["trainable_params"] < adapter["total_params"] / 10
    assert "epoch" in adapter["per_epoch"] and "val_macro_f1" in adapter["per_epoch"]
    report = _metadata(result, "evaluation_report")
    assert 0.0 <= report["macro_f1"] <= 1.0 and "demo_macro_f1" in report
    assert report["confusion_matrix"].startswith("![")
    promotion = _metadata(result, "adapter_promotion")  # after the blocking checks passed
    assert (promotion["registered_version"], promotion["champion_version"]) == ("1", "1")
    assert promotion["promotion_reason"] == "no champion yet"
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    # distillation is off by default: the student assets are skipped, and the run still succeeds
    assert not {"student_adapter", "student_evaluation_report", "student_promotion"} & materialized
    clusters = _metadata(result, "outlet_clusters")
    assert clusters["num_articles"] == 297
    assert clusters["umap_scatter"].startswith("![")
    leaning = _metadata(result, "outlet_leaning")
    assert leaning["method"] == "principal_axes"  # the demo sources give no outlet leaning to fit a probe on
    assert leaning["leaning_plot"].startswith("![") and leaning["update"] == "refit"  # a first run fits the axis
    assert _metadata(result, "article_index")["num_vectors"] == 297
    assert _metadata(result, "article_embeddings")["backend"] == "torch"  # 297 texts: below onnx_min_texts


def test_demo_run_stores_parquet_and_an_adapter_version_per_vector(demo_run):
    result, home, _ = demo_run
    embeddings = pd.concat([pd.read_parquet(f) for f in sorted((home / "assets" / "article_embeddings").glob("*.parquet"))])
    assert set(embeddings["partition_day"]) == {"2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23", "2026-11-24"}
    adapter_run = result.output_for_node("sentiment_adapter")
    assert len(embeddings) == 297 and embeddings["embedding"].map(len).eq(384).all()
    # Two vectors per article: the topic vector (base encoder) and the sentiment-aware one (adapter on).
    assert embeddings["sentiment_embedding"].map(len).eq(384).all()
    cosine = [float(np.dot(a, b)) for a, b in zip(embeddings["embedding"], embeddings["sentiment_embedding"])]
    assert np.mean(cosine) < 0.9999  # the trained adapter moved the vectors
    assert embeddings["model_version"].nunique() == 1
    assert set(embeddings["sentiment"]) <= {"negative", "neutral", "positive"}
    assert (home / "artifacts").is_dir() and str(home) in adapter_run


def test_mlflow_holds_one_run_per_model_asset_with_metrics_and_dagster_tags(demo_run):
    import mlflow

    result, _, tracking_uri = demo_run
    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("opensentiment")
    runs = client.search_runs([experiment.experiment_id])
    by_asset = {run.data.tags["dagster_asset"]: run for run in runs}
    assert {"sentiment_adapter", "evaluation_report", "merged_annotations", "outlet_clusters"} <= set(by_asset)
    assert all(run.data.tags["dagster_run_id"] == result.run_id for run in runs)
    adapter_run = by_asset["sentiment_adapter"]
    assert adapter_run.data.params["lora_r"] == "8"
    history = client.get_metric_history(adapter_run.info.run_id, "val_macro_f1")
    assert [m.step for m in history] == list(range(FAST_TRAINING["epochs"]))
    eval_run = by_asset["evaluation_report"]
    assert eval_run.data.metrics["macro_f1"] == _metadata(result, "evaluation_report")["macro_f1"]
    artifacts = {a.path for a in client.list_artifacts(eval_run.info.run_id)}
    assert {"confusion_matrix.png", "report.json"} <= artifacts
