"""MLflow model registry: every adapter that passed the blocking checks becomes a model version; `champion`
moves only on a win.

A version is compared with the champion only when both were scored on the same test data (same item ids
and labels, `test_fingerprint`); otherwise the alias stays and the reason says why. Registry errors (a server
that is down, a store that cannot be read) propagate: only a registered model without the alias means
"no champion yet".
"""

import hashlib
from dataclasses import dataclass

import pandas as pd

CHAMPION = "champion"


def test_fingerprint(test: pd.DataFrame) -> str:
    """A short hash of the test items and their labels, order-independent."""
    rows = sorted(f"{i}\t{label}" for i, label in zip(test["article_id"], test["label"]))
    return hashlib.sha1("\n".join(rows).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Promotion:
    version: str
    champion_version: str
    promoted: bool
    reason: str


def register_and_promote(client, *, model_name: str, adapter_run_id: str, macro_f1: float,
                         fingerprint: str) -> Promotion:
    """Register the adapter logged by `adapter_run_id` and move `champion` to it if it is better."""
    model = _registered_model(client, model_name)
    version = client.create_model_version(
        model_name, source=f"runs:/{adapter_run_id}/adapter", run_id=adapter_run_id,
        tags={"macro_f1": f"{macro_f1:.6f}", "test_fingerprint": fingerprint}).version
    champion_alias = (model.aliases or {}).get(CHAMPION)
    champion = client.get_model_version(model_name, champion_alias) if champion_alias is not None else None
    if champion is None:
        promoted, reason = True, "no champion yet"
    elif champion.tags.get("test_fingerprint") != fingerprint:
        promoted, reason = False, (f"champion v{champion.version} was scored on other test data "
                                   f"({champion.tags.get('test_fingerprint')} vs {fingerprint}); not comparable, "
                                   "champion kept (re-evaluate it on this test set, or move the alias by hand)")
    else:
        best = float(champion.tags["macro_f1"])
        promoted = macro_f1 > best
        reason = (f"macro_f1 {macro_f1:.4f} {'>' if promoted else '<='} champion v{champion.version}'s {best:.4f} "
                  "on the same test data")
    if promoted:
        client.set_registered_model_alias(model_name, CHAMPION, version)
    champion_version = version if promoted else champion.version  # int or str depending on the store
    client.set_model_version_tag(model_name, version, "promotion_reason", reason)
    return Promotion(version=str(version), champion_version=str(champion_version), promoted=promoted, reason=reason)


def _registered_model(client, model_name: str):
    """The registered model, created when the registry says it does not exist (any other error propagates)."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

    try:
        return client.get_registered_model(model_name)
    except MlflowException as err:
        if err.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
    return client.create_registered_model(model_name, description="LoRA sentiment adapters (opensentiment-pipeline)")


def champion_adapter_dir(client, *, model_name: str, cache_root, how_to_fix: str):
    """A local folder holding the adapter that `model_name`'s `champion` alias points at.

    The adapter is downloaded once per registry version into `cache_root/<model_name>-v<version>` (atomically: a
    half-downloaded folder is never used), so a nightly run reads it from disk after the first night. A registry
    without the model or without a champion stops with `how_to_fix`; any other registry error propagates.
    """
    import tempfile
    from pathlib import Path

    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

    try:
        version = client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException as err:
        # a missing model or alias is INVALID_PARAMETER_VALUE or RESOURCE_DOES_NOT_EXIST depending on the store
        if err.error_code not in (ErrorCode.Name(RESOURCE_DOES_NOT_EXIST), "INVALID_PARAMETER_VALUE"):
            raise
        raise LookupError(f"the MLflow registry at {client.tracking_uri} has no `{CHAMPION}` of {model_name!r} "
                          f"({err.message}); {how_to_fix}") from err
    target = Path(cache_root) / f"{model_name}-v{version.version}"
    if not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as staging:
            mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path="adapter", dst_path=staging,
                                                tracking_uri=client.tracking_uri)
            try:
                Path(staging, "adapter").rename(target)
            except OSError:
                if not target.is_dir():  # another run put the same version there first: use theirs
                    raise
    return target
