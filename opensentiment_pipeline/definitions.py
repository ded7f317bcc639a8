"""The one Dagster code location: assets, checks, jobs, the nightly schedule and resources.

Resources come from `resources_for(DAGSTER_DEPLOYMENT)`; paths default under the project home
(`$OPENSENTIMENT_HOME`, else ./.opensentiment) and MLflow under `$MLFLOW_TRACKING_URI` when set. With
`DAGSTER_DEPLOYMENT=team` (deploy/, README "Running for a team") every step runs as a celery task on a worker.
"""

from __future__ import annotations

import os

import dagster as dg

from dagster_duckdb import DuckDBResource

from opensentiment_pipeline.core.results_tables import RESULTS_DB_FILE
from opensentiment_pipeline.defs.assets import (analysis, distillation, ingest, labels, leaning, model, search, sentiment,
                                                stories, vectors)
from opensentiment_pipeline.defs.assets.results_db import build_results_db
from opensentiment_pipeline.defs.jobs import nightly_reembedding, reembedding_job
from opensentiment_pipeline.defs.partitions import DEPLOYMENTS
from opensentiment_pipeline.defs.sweep import adapter_sweep_job
from opensentiment_pipeline.defs.resources import (AtomicPickleIOManager, ArtifactStore, MlflowTracking, ParquetIOManager,
                                                   project_home)

ASSET_MODULES = (ingest, labels, model, distillation, vectors, search, analysis, leaning, sentiment, stories)
# results_db comes last: it runs after every Parquet asset above, so one added to ASSET_MODULES lands in it too.
ASSETS = [*dg.load_assets_from_modules(ASSET_MODULES)]
ASSETS.append(build_results_db(ASSETS))
ASSET_CHECKS = dg.load_asset_checks_from_modules(ASSET_MODULES)


def resources_for(home: str | os.PathLike | None = None, tracking_uri: str | None = None) -> dict:
    """Resources rooted at `home`; MLflow at `tracking_uri`, else $MLFLOW_TRACKING_URI, else SQLite in home."""
    root = project_home() if home is None else os.path.abspath(home)
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root}/mlflow.db"
    # A tracking server (`mlflow server --serve-artifacts`) stores artifacts itself, not on this host's disk.
    served = uri.startswith(("http://", "https://"))
    return {
        "io_manager": AtomicPickleIOManager(),  # Dagster's default, but never a half-written pickle
        "parquet_io_manager": ParquetIOManager(base_dir=os.path.join(root, "assets")),
        "artifacts": ArtifactStore(root=os.path.join(root, "artifacts")),
        "mlflow_tracking": MlflowTracking(tracking_uri=uri,
                                          artifact_location=None if served else os.path.join(root, "mlartifacts")),
        "duckdb": DuckDBResource(database=os.path.join(root, RESULTS_DB_FILE)),  # results_db's file
    }


def executor_for(deployment: str) -> dg.ExecutorDefinition | None:
    """`local`: Dagster's default executor. `team`: each step is a celery task on the `dagster` queue, so the
    day partitions of a backfill's runs spread over every worker (the `team` extra and a broker). `k8s`: each
    step is a Kubernetes job (dagster-k8s; deploy/helm/values.yaml)."""
    if deployment not in DEPLOYMENTS:
        raise ValueError(f"DAGSTER_DEPLOYMENT={deployment!r}; expected one of {list(DEPLOYMENTS)}")
    if deployment == "team":
        from dagster_celery import celery_executor

        return celery_executor.configured({"broker": {"env": "DAGSTER_CELERY_BROKER_URL"},
                                           "backend": {"env": "DAGSTER_CELERY_BACKEND_URL"}})
    if deployment == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    return None


defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=ASSET_CHECKS,
    jobs=[reembedding_job, adapter_sweep_job],
    schedules=[nightly_reembedding],
    resources=resources_for(),
    executor=executor_for(os.environ.get("DAGSTER_DEPLOYMENT", "local")),
)
