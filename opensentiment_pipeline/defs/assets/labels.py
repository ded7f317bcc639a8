"""Annotation merging: raw annotator votes (and the sources' gold labels) → one label per item, and two
checks of those labels: crowd versus experts, and items a cross-validated text model contradicts."""

from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field, field_validator

from opensentiment_pipeline.core.labels.annotations import AGGREGATORS
from opensentiment_pipeline.defs.metadata import table_preview
from opensentiment_pipeline.defs.partitions import SINGLE_RUN
from opensentiment_pipeline.defs.resources import ArtifactStore, MlflowTracking

BABE_DIR = "../shared/data/babe_mbic"  # relative to the working directory, like configs/shared_data.yaml


class MergedAnnotationsConfig(dg.Config):
    # Default from annotation_quality_report on BABE SG1 experts vs MBIC crowd: Dawid-Skene agreed most with
    # the experts (accuracy 0.778, kappa 0.557 against majority vote's 0.739 / 0.484; docs/labels.md has the table).
    method: str = Field(default="dawid_skene", description=" | ".join(AGGREGATORS))
    min_votes: int = Field(default=2, description="items with votes but fewer than this are dropped")
    n_iter: int = Field(default=100, description="EM iterations for the Dawid-Skene methods")

    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str) -> str:
        if method not in AGGREGATORS:
            raise ValueError(f"method={method!r} is unknown; choose one of {sorted(AGGREGATORS)}")
        return method


@dg.asset(io_manager_key="parquet_io_manager", group_name="annotation", backfill_policy=SINGLE_RUN)
def merged_annotations(context: dg.AssetExecutionContext, config: MergedAnnotationsConfig,
                       raw_articles: pd.DataFrame, mlflow_tracking: MlflowTracking) -> pd.DataFrame:
    """One label per item with its agreement, vote count, class posterior and entropy."""
    import mlflow

    from opensentiment_pipeline.core.labels import annotations

    result = annotations.merge_annotations(raw_articles, method=config.method, min_votes=config.min_votes,
                                           n_iter=config.n_iter)
    stats = annotations.agreement_stats(annotations.votes_long(raw_articles))
    merged, annotators = result.merged, result.annotators.sort_values(["accuracy", "annotator_id"])
    voted = merged[merged["n_votes"] > 0]
    votes_per_item = {str(n): int(c) for n, c in voted["n_votes"].value_counts().sort_index().items()}
    extra = {"mean_annotator_accuracy": float(annotators["accuracy"].mean()) if len(annotators) else float("nan")}
    with mlflow_tracking.run(context, params=config.model_dump()) as run:
        mlflow.log_metrics({**stats, **result.stats, **extra})
        mlflow.log_table(annotators, artifact_file="annotator_accuracy.json")
        mlflow.log_dict(votes_per_item, "votes_per_item.json")
    distribution = {f"{task}/{label}": int(n) for (task, label), n in merged.groupby(["task", "label"]).size().items()}
    context.add_output_metadata({
        **mlflow_tracking.run_metadata(run),
        "num_rows": len(merged),
        **{k: float(v) for k, v in {**stats, **extra}.items()},
        **{k: int(v) for k, v in result.stats.items()},
        "label_distribution": dg.MetadataValue.json(distribution),
        "votes_per_item": dg.MetadataValue.json(votes_per_item),
        "mean_agreement": float(merged["agreement"].mean()) if len(merged) else float("nan"),
        "annotator_accuracy": dg.MetadataValue.md(table_preview(annotators.round(3), rows=30)),  # least reliable first
        "low_agreement_examples": dg.MetadataValue.md(table_preview(
            merged.nsmallest(10, "agreement")[["article_id", "task", "label", "agreement", "n_votes"]])),
    })
    return merged


class AnnotationQualityReportConfig(dg.Config):
    expert_path: str = Field(default=f"{BABE_DIR}/babe_sg1_raw_annotations.parquet", description=(
        "Raw expert votes, BABE layout (one row per sentence and annotator). When this or crowd_path is "
        "missing, the report is skipped with a warning and metadata status 'skipped: <path> not found'"))
    crowd_path: str = Field(default=f"{BABE_DIR}/mbic_raw_annotations.parquet", description=(
        "Raw crowd votes on the same sentences, BABE/MBIC layout"))
    methods: list[str] = Field(default_factory=lambda: list(AGGREGATORS), description="merging methods to compare")
    n_iter: int = Field(default=100, description="EM iterations for the Dawid-Skene methods")


@dg.asset(io_manager_key="parquet_io_manager", group_name="annotation", backfill_policy=SINGLE_RUN)
def annotation_quality_report(context: dg.AssetExecutionContext, config: AnnotationQualityReportConfig,
                              mlflow_tracking: MlflowTracking) -> pd.DataFrame:
    """Crowd votes merged with each method versus the expert majority on the same sentences: one row per
    method with n_items, accuracy and Cohen's kappa. Empty (status 'skipped: …') when a vote file is missing."""
    import mlflow

    from opensentiment_pipeline.core.labels import annotation_quality as quality
    from opensentiment_pipeline.core.schema import empty_frame

    missing = [path for path in (config.expert_path, config.crowd_path) if not Path(path).is_file()]
    if missing:
        context.log.warning(f"annotation_quality_report skipped: {missing[0]} not found (working directory "
                            f"{Path.cwd()}); set expert_path/crowd_path in this asset's config to the files")
        context.add_output_metadata({"status": f"skipped: {missing[0]} not found"})
        return empty_frame(quality.QUALITY_COLUMNS)
    expert, expert_rejects = quality.read_votes(config.expert_path, name="experts")
    crowd, crowd_rejects = quality.read_votes(config.crowd_path, name="crowd")
    report = quality.compare_with_experts(expert, crowd, methods=config.methods, n_iter=config.n_iter)
    metrics = {**{f"expert_agreement_{r.method}": r.accuracy for r in report.itertuples()},
               **{f"expert_kappa_{r.method}": r.cohen_kappa for r in report.itertuples()}}
    with mlflow_tracking.run(context, params=config.model_dump()) as run:
        mlflow.log_metrics({**metrics, "n_items": int(report["n_items"].iloc[0])})
        mlflow.log_table(report, artifact_file="annotation_quality_report.json")
    context.add_output_metadata({
        **mlflow_tracking.run_metadata(run), "status": "ok", **{k: float(v) for k, v in metrics.items()},
        "n_items": int(report["n_items"].iloc[0]), "n_expert_ties": int(report["n_expert_ties"].iloc[0]),
        "rejected_vote_rows": dg.MetadataValue.json({"experts": expert_rejects, "crowd": crowd_rejects}),
        "best_method": quality.best_method(report) or "none: kappa is undefined for every method",
        "report": dg.MetadataValue.md(table_preview(report.round(4))),
    })
    return report


class SuspectLabelsConfig(dg.Config):
    n_folds: int = Field(default=5, description="cross-validation folds; a task with a class smaller than this "
                                                "is skipped (listed in metadata skipped_tasks)")
    seed: int = Field(default=0, description="seed of the fold shuffle and the model")


@dg.asset(io_manager_key="parquet_io_manager", group_name="annotation", backfill_policy=SINGLE_RUN)
def suspect_labels(context: dg.AssetExecutionContext, config: SuspectLabelsConfig,
                   merged_annotations: pd.DataFrame, raw_articles: pd.DataFrame, artifacts: ArtifactStore,
                   mlflow_tracking: MlflowTracking) -> pd.DataFrame:
    """Items whose merged label a cross-validated TF-IDF + logistic regression model contradicts (cleanlab),
    ranked per task (rank 1 = most suspicious), and the same table as a CSV for annotators to re-check."""
    import mlflow

    from opensentiment_pipeline.core.labels import annotation_quality as quality

    result = quality.flag_suspect_labels(merged_annotations, raw_articles, n_folds=config.n_folds, seed=config.seed)
    suspects = result.suspects
    for task, reason in result.skipped.items():
        context.log.warning(f"suspect_labels: task {task!r} not checked: {reason}")
    csv_path = artifacts.run_dir(context, "suspect_labels") / "suspect_labels.csv"
    suspects.to_csv(csv_path, index=False)
    per_task = {task: int((suspects["task"] == task).sum()) for task in result.checked}
    with mlflow_tracking.run(context, params=config.model_dump()) as run:
        mlflow.log_metrics({"num_suspects": len(suspects), **{f"suspects_{t}": n for t, n in per_task.items()}})
        mlflow.log_artifact(str(csv_path))
    context.add_output_metadata({
        **mlflow_tracking.run_metadata(run), "num_suspects": len(suspects),
        "suspects_per_task": dg.MetadataValue.json(per_task),
        "checked_per_task": dg.MetadataValue.json(result.checked),
        "skipped_tasks": dg.MetadataValue.json(result.skipped),
        "csv_path": dg.MetadataValue.path(str(csv_path)),
        "top_suspects": dg.MetadataValue.md(table_preview(suspects.nsmallest(10, "label_quality")[
            ["task", "text", "label", "suggested_label", "label_quality", "agreement", "n_votes"]])),
    })
    return suspects
