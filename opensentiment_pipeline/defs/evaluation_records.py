"""Recording and promoting an evaluated adapter, shared by the teacher's and the student's assets: the report's
files, MLflow run and metadata (`record_evaluation`), the baseline checks (`beats_baseline`) and the registry's
champion (`promote`)."""

import dataclasses
import json

import dagster as dg
import pandas as pd

from opensentiment_pipeline.defs import registry
from opensentiment_pipeline.defs.adapters import adapter_version
from opensentiment_pipeline.defs.metadata import table_preview
from opensentiment_pipeline.defs.resources import ArtifactStore, MlflowTracking


def record_evaluation(context: dg.AssetExecutionContext, report: dict, *, adapter_dir: str, examples: pd.DataFrame,
                      params: dict, mlflow_tracking: MlflowTracking, artifacts: ArtifactStore,
                      extra_tables: dict[str, pd.DataFrame] | None = None) -> dict:
    """Write an evaluation report (JSON, confusion matrix, `extra_tables` as CSV) to the run folder and MLflow and
    show it in the asset's metadata. Shared by `evaluation_report` and `student_evaluation_report`."""
    import mlflow

    from opensentiment_pipeline.core import plots

    report["adapter_version"] = adapter_version(adapter_dir)
    report["test_fingerprint"] = registry.test_fingerprint(examples[examples["split"] == "test"])
    metrics = report_metrics(report)
    confusion_png = plots.confusion_matrix_png(report["confusion_matrix"], report["labels"])
    out_dir = artifacts.run_dir(context, context.asset_key.to_user_string())
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    (out_dir / "confusion_matrix.png").write_bytes(confusion_png)
    for name, table in (extra_tables or {}).items():
        table.to_csv(out_dir / f"{name}.csv", index=False)
    run_params = {**params, **{k: report[k] for k in ("adapter_version", "teacher_version") if k in report}}
    with mlflow_tracking.run(context, params=run_params) as run:
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(out_dir))
    report["evaluation_run_id"] = run.info.run_id  # the promotion asset tags this run with the outcome
    context.add_output_metadata({
        **mlflow_tracking.run_metadata(run),
        **metrics,
        **{k: report[k] for k in ("adapter_version", "teacher_version") if k in report},
        "test_rows_per_second": round(report["test_rows_per_second"], 1),
        "total_params": report["total_params"],
        "scores": dg.MetadataValue.md(scores_table(report)),
        "by_outlet": dg.MetadataValue.md(table_preview(pd.DataFrame(report["by_outlet"]).round(3), rows=50)),
        "confusion_matrix": dg.MetadataValue.md(plots.png_markdown(confusion_png, "confusion matrix")),
        **{name: dg.MetadataValue.md(table.round(4).to_markdown(index=False))
           for name, table in (extra_tables or {}).items()},
    })
    return report


def report_metrics(report: dict) -> dict[str, float]:
    """Flat metric names: macro_f1, accuracy, <source>_macro_f1 and baseline scores."""
    metrics = {"macro_f1": report["macro_f1"], "accuracy": report["accuracy"], "ece": report["ece"],
               "macro_f1_ci95_low": report["macro_f1_ci95"][0], "macro_f1_ci95_high": report["macro_f1_ci95"][1]}
    for row in report["by_source"]:
        metrics[f"{row['source']}_macro_f1"] = row["macro_f1"]
        metrics[f"{row['source']}_accuracy"] = row["accuracy"]
    for row in report.get("unanimous_by_source", []):
        metrics[f"{row['source']}_allagree_accuracy"] = row["accuracy"]
    for name, scores in report["baselines"].items():
        metrics[f"baseline_{name}_macro_f1"] = scores["macro_f1"]
    for label, scores in report["per_class"].items():
        metrics[f"f1_{label}"] = scores["f1"]
    return {k: float(v) for k, v in metrics.items()}


def scores_table(report: dict) -> str:
    """Markdown: adapter vs baselines, then per-class scores."""
    rows = [{"model": "lora_adapter", "macro_f1": report["macro_f1"], "accuracy": report["accuracy"]}]
    rows += [{"model": name, "macro_f1": s["macro_f1"], "accuracy": s["accuracy"]}
             for name, s in report["baselines"].items()]
    per_class = pd.DataFrame(report["per_class"]).T.reset_index(names="label")
    return (pd.DataFrame(rows).round(4).to_markdown(index=False) + "\n\n" + per_class.round(4).to_markdown(index=False))


# One blocking check on evaluation_report per baseline; adapter_promotion re-checks them all.
BLOCKING_BASELINES = ("majority_class", "tfidf_logreg")


def beats_baseline(report: dict, baseline: str) -> dg.AssetCheckResult:
    """Passed when the adapter's macro-F1 is above the named baseline's on the same test rows."""
    adapter, other = report["macro_f1"], report["baselines"][baseline]["macro_f1"]
    return dg.AssetCheckResult(passed=adapter > other, metadata={
        "adapter_macro_f1": adapter, f"{baseline}_macro_f1": other, "margin": adapter - other})


def promote(context: dg.AssetExecutionContext, report: dict, mlflow_tracking: MlflowTracking, *,
            model_name: str) -> dict:
    """Register the evaluated adapter under `model_name` and move its `champion` alias on a win.

    Shared by `adapter_promotion` and `student_promotion` (each registered model keeps its own champion)."""
    failed = [name for name in BLOCKING_BASELINES if not beats_baseline(report, name).passed]
    if failed:
        raise ValueError(f"adapter {report['adapter_version']} does not beat the baselines "
                         f"{failed} on its test rows (macro-F1 {report['macro_f1']:.4f}); "
                         "not registered, champion unchanged")
    client = mlflow_tracking.client()
    promotion = registry.register_and_promote(
        client, model_name=model_name, adapter_run_id=report["adapter_version"],
        macro_f1=report["macro_f1"], fingerprint=report["test_fingerprint"])
    for key, value in {"registered_version": promotion.version, "promoted_to_champion": str(promotion.promoted),
                       "promotion_reason": promotion.reason}.items():
        client.set_tag(report["evaluation_run_id"], key, value)
    context.log.info("model registry %s: version %s, champion %s (%s)", model_name, promotion.version,
                     promotion.champion_version, promotion.reason)
    context.add_output_metadata({
        "registered_model": model_name,
        "adapter_version": report["adapter_version"],
        "registered_version": promotion.version,
        "champion_version": promotion.champion_version,
        "promoted": promotion.promoted,
        "promotion_reason": promotion.reason,
    })
    return dataclasses.asdict(promotion)
