"""Which adapter is which: an adapter folder's version (the MLflow run that trained it) and the folder that made
a given version of stored vectors. Read by the model, vector and search assets."""

import json
from pathlib import Path

from opensentiment_pipeline.defs.resources import ArtifactStore, MlflowTracking


ADAPTER_RUN_FILE = "mlflow_run.json"  # written into the adapter folder: the adapter's version is its MLflow run


def adapter_version(adapter_dir: str) -> str:
    """The MLflow run id that trained the adapter in `adapter_dir`."""
    return json.loads((Path(adapter_dir) / ADAPTER_RUN_FILE).read_text())["run_id"]


def adapter_dir_of(version: str, sentiment_adapter: str, mlflow_tracking: MlflowTracking,
                   artifacts: ArtifactStore) -> str | None:
    """The folder of the adapter that embedded vectors of `version`: the sentiment adapter, or the student
    champion when article_embeddings embedded with it; None when it is neither (stale vectors)."""
    if version == adapter_version(sentiment_adapter):
        return sentiment_adapter
    from opensentiment_pipeline.defs import registry

    try:
        student = registry.champion_adapter_dir(mlflow_tracking.client(),
                                                model_name=f"{mlflow_tracking.registered_model}-student",
                                                cache_root=f"{artifacts.root}/registry", how_to_fix="")
    except LookupError:
        return None
    return str(student) if adapter_version(str(student)) == version else None
