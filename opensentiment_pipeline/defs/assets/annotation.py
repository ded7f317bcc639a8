"""Annotation merging: raw annotator votes (and the sources' gold labels) → one label per item."""

import dagster as dg
import pandas as pd
from pydantic import Field

from opensentiment_pipeline.defs.metadata import table_preview
from opensentiment_pipeline.defs.resources import MlflowTracking


class MergedAnnotationsConfig(dg.Config):
    method: str = Field(default="majority_vote", description="majority_vote | dawid_skene | one_coin_dawid_skene")
    min_votes: int = Field(default=2, description="items with votes but fewer than this are dropped")
    n_iter: int = Field(default=100, description="EM iterations for the Dawid-Skene methods")


@dg.asset(io_manager_key="parquet_io_manager", group_name="annotation")
def merged_annotations(context: dg.AssetExecutionContext, config: MergedAnnotationsConfig,
                       raw_articles: pd.DataFrame, mlflow_tracking: MlflowTracking) -> pd.DataFrame:
    """One label per item with its agreement, vote count, class posterior and entropy."""
    import mlflow

    from opensentiment_pipeline.core import annotations

    if config.method not in annotations.AGGREGATORS:
        raise ValueError(f"method={config.method!r} is unknown; choose one of {sorted(annotations.AGGREGATORS)}")
    result = annotations.merge_annotations(raw_articles, method=config.method, min_votes=config.min_votes,
                                           n_iter=config.n_iter)
    stats = annotations.agreement_stats(annotations.votes_long(raw_articles))
    merged = result.merged
    with mlflow_tracking.run(context, params=config.model_dump()) as run:
        mlflow.log_metrics({**stats, **result.stats})
        mlflow.log_table(result.annotators, artifact_file="annotator_accuracy.json")
    distribution = {f"{task}/{label}": int(n) for (task, label), n in merged.groupby(["task", "label"]).size().items()}
    context.add_output_metadata({
        **mlflow_tracking.run_metadata(run),
        "num_rows": len(merged),
        **{k: float(v) for k, v in stats.items()},
        **{k: int(v) for k, v in result.stats.items()},
        "label_distribution": dg.MetadataValue.json(distribution),
        "mean_agreement": float(merged["agreement"].mean()) if len(merged) else float("nan"),
        "annotator_accuracy": dg.MetadataValue.md(table_preview(result.annotators.round(3), rows=30)),
        "low_agreement_examples": dg.MetadataValue.md(table_preview(
            merged.nsmallest(10, "agreement")[["article_id", "task", "label", "agreement", "n_votes"]])),
    })
    return merged
