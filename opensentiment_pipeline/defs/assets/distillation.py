"""Distillation assets: a fast student adapter learns from the sentiment adapter (the teacher), then is scored.

Off unless `student_adapter.config.enabled` is true (as in `configs/shared_data_quality.yaml`): the asset then
yields no output and Dagster skips `student_evaluation_report`, so `make demo` pays nothing for it.
"""

import json

import dagster as dg
import pandas as pd
from pydantic import Field

from opensentiment_pipeline.core.schema import SENTIMENT_LABELS
from opensentiment_pipeline.defs.adapters import ADAPTER_RUN_FILE, adapter_version
from opensentiment_pipeline.defs.assets.model import EvaluationReportConfig, SentimentAdapterConfig
from opensentiment_pipeline.defs.evaluation_records import beats_baseline, promote, record_evaluation, report_metrics
from opensentiment_pipeline.defs.partitions import SINGLE_RUN
from opensentiment_pipeline.defs.resources import ArtifactStore, MlflowTracking

TRAINING_FIELDS = tuple(SentimentAdapterConfig.model_fields)


class StudentAdapterConfig(SentimentAdapterConfig):
    enabled: bool = Field(default=False, description="train the student (off by default: it costs a second training run)")
    temperature: float = Field(default=2.0, description="softens the teacher's probabilities (Hinton et al. 2015)")
    hard_weight: float = Field(default=0.5, description="weight of the human label against the teacher on labelled rows")
    unlabelled_limit: int = Field(default=10000, description="most unlabelled articles (not examples) labelled by "
                                  "the teacher for the student; 0 = labelled rows only")
    teacher_batch_size: int = 64


def ignored_settings(config: StudentAdapterConfig) -> list[str]:
    """Fields of a disabled student's config that differ from the defaults (they would have no effect)."""
    defaults = StudentAdapterConfig().model_dump()
    return sorted(k for k, v in config.model_dump().items() if k != "enabled" and v != defaults[k])


@dg.asset(group_name="model", backfill_policy=SINGLE_RUN, output_required=False)
def student_adapter(context: dg.AssetExecutionContext, config: StudentAdapterConfig, sentiment_adapter: str,
                    sentiment_examples: pd.DataFrame, raw_articles: pd.DataFrame, mlflow_tracking: MlflowTracking,
                    artifacts: ArtifactStore):
    """A small adapter (MiniLM by default) trained on the teacher's soft labels over train rows and unlabelled news.

    Never sees test rows; validation rows keep their human labels, so its epoch is chosen on human judgement."""
    if not config.enabled:
        ignored = ignored_settings(config)
        if ignored:  # settings for a student that will not be trained: most likely a forgotten `enabled: true`
            context.log.warning(f"student_adapter settings {ignored} are set but enabled is false, so no student is "
                                "trained; add `enabled: true` to student_adapter's config to train it")
        else:
            context.log.info("distillation is off: set student_adapter.config.enabled to train a student")
        return
    import mlflow

    from opensentiment_pipeline.core.model import distillation, modeling, training

    device = str(modeling.resolve_device(config.device))
    taught = distillation.distillation_set(sentiment_adapter, sentiment_examples, raw_articles,
                                           temperature=config.temperature, batch_size=config.teacher_batch_size,
                                           unlabelled_limit=config.unlabelled_limit, seed=config.seed, device=device)
    out_dir = artifacts.run_dir(context, "student_adapter")
    teacher_version = adapter_version(sentiment_adapter)
    with mlflow_tracking.run(context, params={**config.model_dump(), "teacher_version": teacher_version}) as run:
        result = training.train_adapter(taught.examples, out_dir=out_dir, labels=SENTIMENT_LABELS, progress=True,
                                        distill_hard_weight=config.hard_weight,
                                        log_metrics=lambda m, step: mlflow.log_metrics(dict(m), step=step),
                                        **{k: getattr(config, k) for k in TRAINING_FIELDS})
        (out_dir / ADAPTER_RUN_FILE).write_text(json.dumps({"run_id": run.info.run_id, "teacher": teacher_version}))
        mlflow.log_metrics({"best_val_macro_f1": result.best_val_macro_f1, "unlabelled_rows": taught.unlabelled_rows,
                            "train_seconds": result.train_seconds, "trainable_params": result.trainable_params})
        mlflow.set_tag("teacher_version", teacher_version)
        mlflow.log_artifacts(str(out_dir), artifact_path="adapter")
    context.add_output_metadata({
        **mlflow_tracking.run_metadata(run),
        "teacher_version": teacher_version,
        "teacher_base_model": taught.teacher_base_model,
        "student_base_model": config.base_model,
        "unlabelled_rows": taught.unlabelled_rows,
        "best_val_macro_f1": result.best_val_macro_f1,
        "total_params": result.total_params,
        "train_seconds": round(result.train_seconds, 1),
        "per_epoch": dg.MetadataValue.md(pd.DataFrame(result.history).round(4).to_markdown(index=False)),
    })
    yield dg.Output(str(out_dir), data_version=dg.DataVersion(run.info.run_id))


class StudentEvaluationConfig(EvaluationReportConfig):
    """The teacher's evaluation settings: the student is scored exactly as the teacher is."""


@dg.asset(group_name="model", backfill_policy=SINGLE_RUN)
def student_evaluation_report(context: dg.AssetExecutionContext, config: StudentEvaluationConfig, student_adapter: str,
                              sentiment_examples: pd.DataFrame, evaluation_report: dict,
                              mlflow_tracking: MlflowTracking, artifacts: ArtifactStore) -> dict:
    """The student on the teacher's test rows, scored as `evaluation_report` scores the teacher, side by side."""
    from opensentiment_pipeline.core.model import evaluation

    report = evaluation.evaluate_adapter(student_adapter, sentiment_examples, **config.model_dump())
    report["teacher_version"] = evaluation_report["adapter_version"]
    side_by_side = evaluation.side_by_side({"teacher": report_metrics(evaluation_report),
                                            "student": report_metrics(report)})
    return record_evaluation(context, report, adapter_dir=student_adapter, examples=sentiment_examples,
                             params=config.model_dump(), mlflow_tracking=mlflow_tracking, artifacts=artifacts,
                             extra_tables={"teacher_vs_student": side_by_side})


@dg.asset_check(asset=student_evaluation_report, blocking=True,
                description="the student's macro-F1 must beat predicting the majority class")
def student_beats_majority_baseline(student_evaluation_report: dict) -> dg.AssetCheckResult:
    return beats_baseline(student_evaluation_report, "majority_class")


@dg.asset_check(asset=student_evaluation_report, blocking=True,
                description="the student's macro-F1 must beat TF-IDF + logistic regression on the same test rows")
def student_beats_tfidf_baseline(student_evaluation_report: dict) -> dg.AssetCheckResult:
    return beats_baseline(student_evaluation_report, "tfidf_logreg")


@dg.asset(group_name="model", backfill_policy=SINGLE_RUN)
def student_promotion(context: dg.AssetExecutionContext, student_evaluation_report: dict,
                      mlflow_tracking: MlflowTracking) -> dict:
    """The student's registry version under `<registered model>-student`, with its own `champion` alias.

    Runs only after the student's blocking checks passed. Students keep their own champion so that the fast
    model a nightly run should embed with is never displaced by a slower teacher that scores higher."""
    return promote(context, student_evaluation_report, mlflow_tracking,
                   model_name=f"{mlflow_tracking.registered_model}-student")
