"""`adapter_sweep_job`: a grid of LoRA trials as nested MLflow runs under one parent run.

The best trial is chosen by *validation* macro-F1 (the split used for early stopping); test rows are
never looked at, so the sweep cannot overfit the evaluation. Promote the winner by copying its settings
into `sentiment_adapter`'s config and materializing the graph: `evaluation_report` then scores it on test.
"""

import json

import dagster as dg
import pandas as pd
from pydantic import Field

from opensentiment_pipeline.defs.assets.model import SentimentAdapterConfig
from opensentiment_pipeline.defs.resources import ArtifactStore, MlflowTracking


class AdapterSweepConfig(dg.Config):
    base: SentimentAdapterConfig = Field(default_factory=SentimentAdapterConfig,
                                         description="settings shared by every trial")
    grid: dict[str, list[str]] = Field(
        default_factory=lambda: {"learning_rate": ["5e-4", "1e-3", "2e-3"], "lora_r": ["8", "16"]},
        description="SentimentAdapterConfig field -> values to try (strings, converted to the field's type; "
                    "target_modules as comma-separated names)")


def trial_settings(base: SentimentAdapterConfig, trial: dict[str, str]) -> SentimentAdapterConfig:
    """`base` with the trial's values, validated by the config class (unknown fields fail loudly)."""
    unknown = set(trial) - set(SentimentAdapterConfig.model_fields)
    if unknown:
        raise ValueError(f"grid fields {sorted(unknown)} are not SentimentAdapterConfig fields; "
                         f"valid: {sorted(SentimentAdapterConfig.model_fields)}")
    values = {k: v.split(",") if k == "target_modules" else v for k, v in trial.items()}
    return SentimentAdapterConfig(**{**base.model_dump(), **values})


@dg.op(ins={"sentiment_examples": dg.In(asset_key=dg.AssetKey("sentiment_examples"),
                                         input_manager_key="parquet_io_manager")})
def run_adapter_sweep(context: dg.OpExecutionContext, config: AdapterSweepConfig, sentiment_examples: pd.DataFrame,
                      mlflow_tracking: MlflowTracking, artifacts: ArtifactStore) -> dict:
    """Train one adapter per grid point; log each as a nested MLflow run; report the best by val macro-F1."""
    import mlflow

    from opensentiment_pipeline.core.model import sweep, training

    trials = sweep.expand_grid(config.grid)
    context.log.info("sweep: %d trials over %s", len(trials), sorted(config.grid))
    rows = []
    with mlflow_tracking.run(context, params={"base": config.base.model_dump(), "grid": json.dumps(config.grid)}) as parent:
        for i, trial in enumerate(trials):
            settings = trial_settings(config.base, trial)
            with mlflow.start_run(run_name=f"trial-{i}", nested=True, experiment_id=parent.info.experiment_id,
                                  tags={"dagster_run_id": context.run.run_id, "sweep_parent": parent.info.run_id,
                                        "dagster_asset": "sweep_trial"}):
                mlflow.log_params(settings.model_dump())
                result = training.train_adapter(
                    sentiment_examples, out_dir=artifacts.run_dir(context, f"sweep/trial-{i}"),
                    log_metrics=lambda m, step: mlflow.log_metrics(dict(m), step=step), **settings.model_dump())
                mlflow.log_metric("best_val_macro_f1", result.best_val_macro_f1)
            rows.append({"trial": i, **trial, "best_val_macro_f1": result.best_val_macro_f1,
                         "best_epoch": result.best_epoch, "adapter_dir": result.out_dir})
        best = rows[sweep.best_trial([r["best_val_macro_f1"] for r in rows])]
        mlflow.log_metric("best_val_macro_f1", best["best_val_macro_f1"])
        mlflow.set_tags({"best_trial": str(best["trial"]), "selected_by": "validation macro-F1 (never test)"})
    table = pd.DataFrame(rows).drop(columns="adapter_dir")
    context.add_output_metadata({**mlflow_tracking.run_metadata(parent), "best_trial": best["trial"],
                                 "best_val_macro_f1": best["best_val_macro_f1"],
                                 "trials": dg.MetadataValue.md(table.round(4).to_markdown(index=False))})
    return best


@dg.job(description="Grid search over SentimentAdapterConfig; nested MLflow runs; best by validation macro-F1")
def adapter_sweep_job():
    run_adapter_sweep()
