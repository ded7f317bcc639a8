"""The one Dagster code location: assets, checks, jobs, the nightly schedule and resources.

Resources come from `resources_for(DAGSTER_DEPLOYMENT)`; paths default under the project home
(`$OPENSENTIMENT_HOME`, else ./.opensentiment) and MLflow under `$MLFLOW_TRACKING_URI` when set.
"""

from __future__ import annotations

import os

import dagster as dg

from opensentiment_pipeline.defs.assets import analysis, annotation, distillation, ingestion, leaning, model, search
from opensentiment_pipeline.defs.jobs import nightly_reembedding, reembedding_job
from opensentiment_pipeline.defs.sweep import adapter_sweep_job
from opensentiment_pipeline.defs.resources import (AtomicPickleIOManager, ArtifactStore, MlflowTracking, ParquetIOManager,
                                                   project_home)

ASSET_MODULES = (ingestion, annotation, model, distillation, analysis, search, leaning)
ASSETS = dg.load_assets_from_modules(ASSET_MODULES)
ASSET_CHECKS = dg.load_asset_checks_from_modules(ASSET_MODULES)


def resources_for(home: str | os.PathLike | None = None, tracking_uri: str | None = None) -> dict:
    """Resources rooted at `home`; MLflow at `tracking_uri`, else $MLFLOW_TRACKING_URI, else SQLite in home."""
    root = project_home() if home is None else os.path.abspath(home)
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root}/mlflow.db"
    return {
        "io_manager": AtomicPickleIOManager(),  # Dagster's default, but never a half-written pickle
        "parquet_io_manager": ParquetIOManager(base_dir=os.path.join(root, "assets")),
        "artifacts": ArtifactStore(root=os.path.join(root, "artifacts")),
        "mlflow_tracking": MlflowTracking(tracking_uri=uri, artifact_location=os.path.join(root, "mlartifacts")),
    }


defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=ASSET_CHECKS,
    jobs=[reembedding_job, adapter_sweep_job],
    schedules=[nightly_reembedding],
    resources=resources_for(),
)
