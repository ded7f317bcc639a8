"""results_db: every result table in one DuckDB file that the dashboard, SQL and BI tools read.

Three kinds of table, found rather than listed, so a new asset's output appears without a code change:
- a view over every Parquet output of the Parquet IO manager (`<home>/assets/<asset>.parquet`, or the day files
  `<home>/assets/<asset>/*.parquet`), so a view always reads the newest stored days;
- a table `<asset>__<name>` per CSV that an upstream asset's latest run left in its artifact folder
  (`<artifacts>/runs/<run_id>/<asset>/<name>.csv`, e.g. outlet_clusters__outlet_similarity);
- the model tables (`model_*`) from evaluation_report's report.json and adapter_promotion's metadata.
`results_db_tables` lists every table with its asset, kind, rows and source. docs/results_db.md is the schema.
"""

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from dagster_duckdb import DuckDBResource

from opensentiment_pipeline.core import results_tables
from opensentiment_pipeline.core.results_tables import CATALOG
from opensentiment_pipeline.defs.partitions import SINGLE_RUN
from opensentiment_pipeline.defs.resources import ArtifactStore, MlflowTracking

# Read through their run's artifacts or metadata, not the Parquet IO manager: results_db runs after them.
EXTRA_UPSTREAM = ("evaluation_report", "adapter_promotion", "article_index")
DEFAULT_DASHBOARD_URL = "http://127.0.0.1:8050"


class ResultsDbConfig(dg.Config):
    dashboard_url: str = Field(default=DEFAULT_DASHBOARD_URL, description="where `opensentiment dashboard` "
                               "serves (linked from this asset's metadata)")


def parquet_assets(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetKey]:
    """Keys of every asset stored by the Parquet IO manager: results_db orders itself after each of them."""
    keys = []
    for asset in assets:
        for key in asset.keys:
            if asset.get_io_manager_key_for_asset_key(key) == "parquet_io_manager":
                keys.append(key)
    return keys


def build_results_db(assets: Sequence[dg.AssetsDefinition]) -> dg.AssetsDefinition:
    """The results_db asset, downstream of every Parquet asset in `assets` and of EXTRA_UPSTREAM."""
    known = {key for asset in assets for key in asset.keys}
    upstream = [*parquet_assets(assets), *(dg.AssetKey(k) for k in EXTRA_UPSTREAM if dg.AssetKey(k) in known)]

    @dg.asset(group_name="results", deps=upstream, backfill_policy=SINGLE_RUN)
    def results_db(context: dg.AssetExecutionContext, config: ResultsDbConfig, duckdb: DuckDBResource,
                   artifacts: ArtifactStore, mlflow_tracking: MlflowTracking) -> dg.MaterializeResult:
        """DuckDB file with a view per Parquet result, the upstream runs' CSV tables and the model tables."""
        assets_dir = Path(artifacts.root).parent / "assets"
        names = [key.to_user_string() for key in upstream]
        missing = sorted(n for n in names if _latest_run_id(context, n) is None)
        csv_dirs = {n: _run_folder(context, artifacts, n) for n in names if n not in missing}
        model = _model_tables(context, artifacts, mlflow_tracking)
        with duckdb.get_connection() as conn:
            catalog = results_tables.write_results_db(
                conn, parquet_dir=assets_dir, csv_dirs={k: v for k, v in csv_dirs.items() if v is not None},
                tables=model, refreshed_at=datetime.now(timezone.utc).isoformat(), run_id=context.run.run_id)
        if missing:
            context.log.warning("%s not materialized in this Dagster instance yet: their tables are not in "
                                "results_db, and the dashboard pages that read them say so", missing)
        url = config.dashboard_url.rstrip("/")
        return dg.MaterializeResult(metadata={
            "path": dg.MetadataValue.path(duckdb.database),
            "dashboard": dg.MetadataValue.url(url),
            "dashboard_outlets": dg.MetadataValue.url(f"{url}/outlets"),
            "dashboard_search": dg.MetadataValue.url(f"{url}/search"),
            "dashboard_model": dg.MetadataValue.url(f"{url}/model"),
            "num_tables": len(catalog),
            "tables": dg.MetadataValue.md(catalog[["table_name", "asset", "kind", "rows"]].to_markdown(index=False)),
            "not_yet_materialized": dg.MetadataValue.json(missing),
            "sql_command": dg.MetadataValue.md(
                f"`python -c \"import duckdb; print(duckdb.connect('{duckdb.database}', read_only=True)"
                f".sql('SELECT * FROM {CATALOG}'))\"`"),
        })

    return results_db


def _latest_run_id(context: dg.AssetExecutionContext, asset: str) -> str | None:
    event = context.instance.get_latest_materialization_event(dg.AssetKey(asset))
    return event.run_id if event is not None else None


def _run_folder(context: dg.AssetExecutionContext, artifacts: ArtifactStore, asset: str) -> Path | None:
    """The artifact folder of `asset`'s latest materialization (None when there is none, or it wrote none)."""
    run_id = _latest_run_id(context, asset)
    if run_id is None:
        return None
    folder = Path(artifacts.root) / "runs" / run_id / asset
    return folder if folder.is_dir() else None


def _model_tables(context: dg.AssetExecutionContext, artifacts: ArtifactStore,
                  mlflow_tracking: MlflowTracking) -> dict[str, pd.DataFrame]:
    """model_* tables: the latest evaluation report and the registry champion (empty when not materialized)."""
    folder = _run_folder(context, artifacts, "evaluation_report")
    if folder is None or not (folder / "report.json").exists():
        return {}
    report = json.loads((folder / "report.json").read_text())
    # report.json is written before its MLflow run starts; the run id is in the materialization's metadata.
    run_id = report.get("evaluation_run_id") or _metadata(context, "evaluation_report").get("mlflow_run_id")
    report["evaluation_run_id"] = run_id
    tables = results_tables.evaluation_tables(report)
    experiment_id = mlflow_tracking.client().get_run(run_id).info.experiment_id if run_id else None
    tables["model_evaluation"] = tables["model_evaluation"].assign(mlflow_experiment_id=experiment_id)
    event = context.instance.get_latest_materialization_event(dg.AssetKey("adapter_promotion"))
    if event is not None and event.asset_materialization is not None:
        meta = {k: v.value for k, v in event.asset_materialization.metadata.items()}
        tables["model_champion"] = pd.DataFrame([{
            "registered_model": meta.get("registered_model"), "champion_version": str(meta.get("champion_version")),
            "registered_version": str(meta.get("registered_version")), "promoted": bool(meta.get("promoted")),
            "promotion_reason": meta.get("promotion_reason"), "adapter_version": meta.get("adapter_version"),
            "evaluation_run_id": run_id, "mlflow_experiment_id": experiment_id,
            "tracking_uri": mlflow_tracking.tracking_uri, "dagster_run_id": event.run_id}])
    return tables


def _metadata(context: dg.AssetExecutionContext, asset: str) -> dict:
    """The metadata values of `asset`'s latest materialization ({} when there is none)."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey(asset))
    if event is None or event.asset_materialization is None:
        return {}
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}
