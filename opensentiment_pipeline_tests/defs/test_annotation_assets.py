"""The annotation assets on the demo corpus: merged labels, suspect labels and the crowd-vs-expert report."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from opensentiment_pipeline import definitions
from opensentiment_pipeline.defs import partitions
from opensentiment_pipeline.defs.assets import ingest as ingestion
from opensentiment_pipeline.defs.assets import labels as annotation
from opensentiment_pipeline_tests.defs.stubs import materialization_metadata

SENTENCES = [f"Sentence number {i} about the budget." for i in range(6)]
# Majority labels: experts B B B B N N, crowd B B B N N B -> accuracy 4/6, kappa 1/4 (see test_annotation_quality).
EXPERT_MAJORITY = ["Biased"] * 4 + ["Non-biased"] * 2
CROWD_MAJORITY = ["Biased"] * 3 + ["Non-biased"] * 2 + ["Biased"]


def _vote_file(path, majority: list[str], annotator_column: str, annotators: tuple[str, ...]) -> str:
    """A BABE-layout file: each sentence gets `majority` from two annotators and the other label from one."""
    flip = {"Biased": "Non-biased", "Non-biased": "Biased"}
    rows = [(text, "reuters", "center", label if k < 2 else flip[label], who)
            for text, label in zip(SENTENCES, majority) for k, who in enumerate(annotators)]
    pd.DataFrame(rows, columns=["text", "outlet", "type", "label_bias", annotator_column]).to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def annotation_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    report_config = {
        "expert_path": _vote_file(home / "experts.csv", EXPERT_MAJORITY, "annotator_id", ("1", "2", "3")),
        "crowd_path": _vote_file(home / "crowd.csv", CROWD_MAJORITY, "worker_pseudo_id", ("w1", "w2", "w3")),
        "methods": ["majority_vote", "dawid_skene"],
    }
    result = dg.materialize(
        [ingestion.raw_articles, annotation.merged_annotations, annotation.suspect_labels,
         annotation.annotation_quality_report],
        resources=definitions.resources_for(home, tracking_uri=f"sqlite:///{home}/m.db"),
        run_config={"ops": {"annotation_quality_report": {"config": report_config}}},
        instance=dg.DagsterInstance.ephemeral(), tags=partitions.range_tags(),
    )
    return result, home


def test_merged_annotations_reports_agreement_and_votes_per_item(annotation_run):
    result, _ = annotation_run
    assert result.success
    merged = materialization_metadata(result, "merged_annotations")
    assert merged["num_rows"] == 297
    assert merged["votes_per_item"] == {"2": 6, "3": 291}  # each annotator left 2 demo rows blank
    assert merged["n_voted_items"] == 297.0 and merged["n_annotators"] == 3.0
    assert 0.4 < merged["krippendorff_alpha"] < 1.0 and 0.4 < merged["fleiss_kappa"] < 1.0
    assert 0.8 < merged["mean_item_agreement"] <= 1.0
    assert 0.5 < merged["mean_annotator_accuracy"] <= 1.0  # Dawid-Skene's estimate, the default method
    table = merged["annotator_accuracy"].splitlines()
    assert len(table) == 2 + 3 and "annotator_a" in merged["annotator_accuracy"]


def test_suspect_labels_are_ranked_and_exported_as_csv(annotation_run):
    result, _ = annotation_run
    meta = materialization_metadata(result, "suspect_labels")
    stored = result.output_for_node("suspect_labels")
    assert meta["num_suspects"] == len(stored) > 0
    assert meta["suspects_per_task"] == {"sentiment": len(stored)} and meta["checked_per_task"] == {"sentiment": 297}
    assert meta["skipped_tasks"] == {}
    assert stored["rank"].tolist() == list(range(1, len(stored) + 1))
    assert (stored["label"] != stored["suggested_label"]).all()
    exported = pd.read_csv(meta["csv_path"])
    assert exported["article_id"].tolist() == stored["article_id"].tolist()
    assert meta["top_suspects"].count("\n") == 11  # header, rule and the 10 most suspicious items


def test_quality_report_matches_the_hand_computed_agreement(annotation_run):
    import mlflow

    result, home = annotation_run
    meta = materialization_metadata(result, "annotation_quality_report")
    assert meta["status"] == "ok" and meta["n_items"] == 6
    assert meta["expert_agreement_majority_vote"] == pytest.approx(4 / 6)
    assert meta["expert_kappa_majority_vote"] == pytest.approx(1 / 4)
    assert {"expert_agreement_dawid_skene", "expert_kappa_dawid_skene"} <= set(meta)
    client = mlflow.MlflowClient(f"sqlite:///{home}/m.db")
    runs = client.search_runs([client.get_experiment_by_name("opensentiment").experiment_id])
    by_asset = {run.data.tags["dagster_asset"]: run for run in runs}
    assert {"merged_annotations", "suspect_labels", "annotation_quality_report"} <= set(by_asset)
    assert by_asset["annotation_quality_report"].data.metrics["expert_kappa_majority_vote"] == pytest.approx(1 / 4)
    num_suspects = materialization_metadata(result, "suspect_labels")["num_suspects"]
    assert by_asset["suspect_labels"].data.metrics["num_suspects"] == num_suspects


def test_quality_report_without_vote_files_is_skipped_not_failed(tmp_path):
    missing = str(tmp_path / "nowhere" / "sg1.parquet")
    result = dg.materialize(
        [annotation.annotation_quality_report],
        resources=definitions.resources_for(tmp_path, tracking_uri=f"sqlite:///{tmp_path}/m.db"),
        run_config={"ops": {"annotation_quality_report": {"config": {"expert_path": missing}}}},
        instance=dg.DagsterInstance.ephemeral(), tags=partitions.range_tags(),
    )
    assert result.success
    assert materialization_metadata(result, "annotation_quality_report")["status"] == f"skipped: {missing} not found"
    assert result.output_for_node("annotation_quality_report").empty
    assert not (tmp_path / "m.db").exists()  # nothing was measured, so no MLflow run


def test_default_quality_methods_are_every_aggregator():
    from opensentiment_pipeline.core.labels.annotations import AGGREGATORS

    assert annotation.AnnotationQualityReportConfig().methods == list(AGGREGATORS)
    assert annotation.MergedAnnotationsConfig().method == "dawid_skene"


def test_an_unknown_merge_method_is_refused_by_the_config_with_the_choices():
    with pytest.raises(ValueError, match=r"method='vote' is unknown; choose one of \['dawid_skene', 'majority_vote'"):
        annotation.MergedAnnotationsConfig(method="vote")
