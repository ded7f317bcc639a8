"""Distillation assets: a fast student adapter learns from the sentiment adapter (the teacher), then is scored.

Off unless `student_adapter.config.enabled` is true (as in `configs/shared_data_quality.yaml`): the asset then
yields no output and Dagster skips `student_evaluation_report`, so `make demo` pays nothing for it.
"""

import json

import dagster as dg
import pandas as pd
from pydantic import Field

from opensentiment_pipeline.core.schema import SENTIMENT_LABELS
from opensentiment_pipeline.defs import registry
from opensentiment_pipeline.defs.assets.model import (
    ADAPTER_RUN_FILE,
    SentimentAdapterConfig,
    adapter_version,
    beats_baseline,
    promote,
    report_metrics,
)
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
    manifest, tokenizer, teacher = modeling.load_adapter(sentiment_adapter, device=device)
    train_rows = sentiment_examples[sentiment_examples["split"] == "train"]
    pool = distillation.unlabelled_pool(raw_articles, sentiment_examples, limit=config.unlabelled_limit, seed=config.seed)
    teach = dict(manifest=manifest, temperature=config.temperature, batch_size=config.teacher_batch_size, device=device)
    context.log.info("teacher labels %d train rows and %d unlabelled articles", len(train_rows), len(pool))
    train_soft = distillation.teacher_probabilities(teacher, tokenizer, train_rows, progress="teacher: train rows",
                                                    **teach)
    pool_soft = distillation.teacher_probabilities(teacher, tokenizer, pool, progress="teacher: unlabelled", **teach)
    frame = distillation.student_examples(sentiment_examples, train_soft, pool, pool_soft, labels=SENTIMENT_LABELS)
    del teacher
    out_dir = artifacts.run_dir(context, "student_adapter")
    teacher_version = adapter_version(sentiment_adapter)
    with mlflow_tracking.run(context, params={**config.model_dump(), "teacher_version": teacher_version}) as run:
        result = training.train_adapter(frame, out_dir=out_dir, labels=SENTIMENT_LABELS, progress=True,
                                        distill_hard_weight=config.hard_weight,
                                        log_metrics=lambda m, step: mlflow.log_metrics(dict(m), step=step),
                                        **{k: getattr(config, k) for k in TRAINING_FIELDS})
        (out_dir / ADAPTER_RUN_FILE).write_text(json.dumps({"run_id": run.info.run_id, "teacher": teacher_version}))
        mlflow.log_metrics({"best_val_macro_f1": result.best_val_macro_f1, "unlabelled_rows": len(pool),
                            "train_seconds": result.train_seconds, "trainable_params": result.trainable_params})
        mlflow.set_tag("teacher_version", teacher_version)
        mlflow.log_artifacts(str(out_dir), artifact_path="adapter")
    context.add_output_metadata({
        **mlflow_tracking.run_metadata(run),
        "teacher_version": teacher_version,
        "teacher_base_model": manifest.base_model,
        "student_base_model": config.base_model,
        "unlabelled_rows": len(pool),
        "best_val_macro_f1": result.best_val_macro_f1,
        "total_params": result.total_params,
        "train_seconds": round(result.train_seconds, 1),
        "per_epoch": dg.MetadataValue.md(pd.DataFrame(result.history).round(4).to_markdown(index=False)),
    })
    yield dg.Output(str(out_dir), data_version=dg.DataVersion(run.info.run_id))


class StudentEvaluationConfig(dg.Config):
    batch_size: int = 64
    n_bootstrap: int = Field(default=1000, description="bootstrap resamples for the macro-F1 95 % interval")
    min_group_rows: int = 10
    seed: int = 0
    device: str = "auto"


@dg.asset(group_name="model", backfill_policy=SINGLE_RUN)
def student_evaluation_report(context: dg.AssetExecutionContext, config: StudentEvaluationConfig, student_adapter: str,
                              sentiment_examples: pd.DataFrame, evaluation_report: dict,
                              mlflow_tracking: MlflowTracking, artifacts: ArtifactStore) -> dict:
    """The student on the teacher's test rows, side by side with the teacher's `evaluation_report`."""
    import time

    import mlflow

    from opensentiment_pipeline.core.model import evaluation, modeling, training

    test = sentiment_examples[sentiment_examples["split"] == "test"].reset_index(drop=True)
    device = str(modeling.resolve_device(config.device))
    manifest, tokenizer, model = modeling.load_adapter(student_adapter, device=device)
    started = time.perf_counter()
    proba = training.predict_proba(model, tokenizer, test, manifest=manifest, batch_size=config.batch_size, device=device)
    seconds = time.perf_counter() - started
    report = evaluation.evaluate_predictions(test, proba, sentiment_examples[sentiment_examples["split"] == "train"],
                                             labels=manifest.labels, n_bootstrap=config.n_bootstrap, seed=config.seed,
                                             min_group_rows=config.min_group_rows)
    report["adapter_version"] = adapter_version(student_adapter)
    report["teacher_version"] = evaluation_report["adapter_version"]
    report["test_fingerprint"] = registry.test_fingerprint(test)
    report["test_rows_per_second"] = len(test) / max(seconds, 1e-9)
    report["total_params"] = modeling.count_parameters(model)[1]
    side_by_side = evaluation.side_by_side({"teacher": report_metrics(evaluation_report), "student": report_metrics(report)})
    out_dir = artifacts.run_dir(context, "student_evaluation_report")
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    side_by_side.to_csv(out_dir / "teacher_vs_student.csv", index=False)
    with mlflow_tracking.run(context, params={**config.model_dump(), "adapter_version": report["adapter_version"],
                                              "teacher_version": report["teacher_version"]}) as run:
        mlflow.log_metrics(report_metrics(report))
        mlflow.log_artifacts(str(out_dir))
    report["evaluation_run_id"] = run.info.run_id  # student_promotion tags this run with the outcome
    context.add_output_metadata({
        **mlflow_tracking.run_metadata(run),
        **report_metrics(report),
        "adapter_version": report["adapter_version"],
        "teacher_version": report["teacher_version"],
        "test_rows_per_second": round(report["test_rows_per_second"], 1),
        "total_params": report["total_params"],
        "teacher_vs_student": dg.MetadataValue.md(side_by_side.round(4).to_markdown(index=False)),
    })
    return report


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
