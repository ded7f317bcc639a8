"""Leaning asset: every outlet on a left-right axis read from the article embeddings alone."""

import math

import dagster as dg
import pandas as pd
from pydantic import Field

from opensentiment_pipeline.defs.partitions import PARTITION_COLUMN, SINGLE_RUN
from opensentiment_pipeline.defs.metadata import table_preview
from opensentiment_pipeline.defs.resources import ArtifactStore, MlflowTracking


class OutletLeaningConfig(dg.Config):
    reference_csv: str | None = Field(default=None, description="CSV with columns outlet,leaning (left / center / "
                                      "right), e.g. AllSides ratings; None = the `leaning` column of raw_articles "
                                      "where a source gives one. No rating at all: principal axes of the outlets")
    n_folds: int = Field(default=5, description="outlet-disjoint validation folds (GroupKFold by outlet)")
    regularization: float = Field(default=1.0, description="C of the logistic-regression probe (inverse L2 strength)")
    n_axes: int = Field(default=3, description="principal axes reported when there are no ratings")
    min_articles: int = Field(default=5, description="outlets with fewer articles are placed but neither define the "
                              "principal axes nor count in outlet_cv_spearman")
    n_bootstrap: int = Field(default=1000, description="resamples of each outlet's articles for its 95 % interval")
    seed: int = 0


@dg.asset(io_manager_key="parquet_io_manager", group_name="analysis", backfill_policy=SINGLE_RUN)
def outlet_leaning(context: dg.AssetExecutionContext, config: OutletLeaningConfig, raw_articles: pd.DataFrame,
                   article_embeddings: pd.DataFrame, mlflow_tracking: MlflowTracking,
                   artifacts: ArtifactStore) -> pd.DataFrame:
    """One row per outlet: score on a -1 (left) .. +1 (right) axis with a 95 % interval, its reference rating,
    and whether the probe was fitted on it. Without ratings the axis is the outlets' first principal axis."""
    import mlflow

    from opensentiment_pipeline.core import embeddings, encoder_versions, leaning, plots

    encoder_versions.check_one_adapter(article_embeddings, asset="outlet_leaning", day_column=PARTITION_COLUMN)
    columns = ["article_id", "outlet", *(["leaning"] if "leaning" in raw_articles.columns else [])]
    articles = article_embeddings[["article_id"]].merge(raw_articles[columns], on="article_id", how="left",
                                                        validate="one_to_one")
    if articles["outlet"].isna().any():
        raise ValueError(f"{int(articles['outlet'].isna().sum())} embedded articles are not in raw_articles; "
                         "re-materialize article_embeddings after raw_articles")
    reference = leaning.read_reference_csv(config.reference_csv) if config.reference_csv else None
    result = leaning.place_outlets(articles, embeddings.frame_to_matrix(article_embeddings), reference=reference,
                                   **config.model_dump(exclude={"reference_csv"}))
    title = ("Outlet leaning: probe on reference ratings (-1 left, +1 right)" if result.method == "probe"
             else "Outlets on principal axis 1 (no ratings; sign arbitrary)")
    png = leaning.leaning_png(result.outlets, title=title)
    out_dir = artifacts.run_dir(context, "outlet_leaning")
    result.outlets.to_csv(out_dir / "outlet_leaning.csv", index=False)
    (out_dir / "outlet_leaning.png").write_bytes(png)
    if result.axes is not None:
        result.axes.to_csv(out_dir / "principal_axes.csv", index=False)
    with mlflow_tracking.run(context, params=config.model_dump()) as run:
        mlflow.log_metrics({k: v for k, v in result.metrics.items() if math.isfinite(v)})
        mlflow.log_artifacts(str(out_dir))
    metadata = {
        **mlflow_tracking.run_metadata(run),
        "method": result.method,
        "num_outlets": len(result.outlets),
        "num_fitted_outlets": int(result.outlets["fitted_on"].sum()),
        **result.metrics,
        "leaning_plot": dg.MetadataValue.md(plots.png_markdown(png, title)),
        "outlets": dg.MetadataValue.md(table_preview(result.outlets.sort_values("score").round(3), rows=200)),
    }
    if result.axes is not None:
        metadata["principal_axes"] = dg.MetadataValue.md(table_preview(result.axes.round(3), max_chars=200))
        metadata["axis1_ends"] = dg.MetadataValue.json(
            {"low_end": list(result.axes.iloc[0]["low_end"]), "high_end": list(result.axes.iloc[0]["high_end"])})
    context.add_output_metadata(metadata)
    return result.outlets
