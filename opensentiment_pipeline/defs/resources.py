"""Resources: where artifacts live, how DataFrames are stored, and MLflow tracking."""

import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from opensentiment_pipeline.defs.stored_days import StoredDays


def project_home() -> Path:
    """The project's home folder: `$OPENSENTIMENT_HOME`, else `.opensentiment` under the working directory."""
    return Path(os.environ.get("OPENSENTIMENT_HOME", ".opensentiment")).resolve()


class ArtifactStore(dg.ConfigurableResource):
    """Hands out run-scoped folders for large artifacts (adapters, plots, exports).

    Assets return the folder's path, so downstream assets get it as a normal input instead of
    "loading the newest file".
    """

    root: str = Field(description="Folder under which each Dagster run gets runs/<run_id>/<asset>")

    def run_dir(self, context: dg.AssetExecutionContext, name: str) -> Path:
        path = Path(self.root) / "runs" / context.run.run_id / name
        path.mkdir(parents=True, exist_ok=True)
        return path


LOCK_FILE = ".lock"  # in each day-partitioned asset's folder; unpartitioned assets use .<asset>.lock beside their file


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores DataFrame assets as Parquet files a user can open directly.

    Unpartitioned assets: <base_dir>/<asset>.parquet. Day-partitioned assets: <base_dir>/<asset>/<day>.parquet,
    one file per day of the run (an empty day gets an empty file with the columns), split on the frame's
    `partition_day` column; a downstream asset without partitions reads every stored day as one frame.
    Writes go to a temporary file (a unique, hidden name that is never read as data) that replaces the old
    one only once complete, so a failed or killed run never leaves a half-written table behind, and days
    outside a run are never touched. A lock file per asset serialises writers: two runs writing the same
    days at once each write all of their days in turn, never interleaved, and a reader takes a shared lock,
    so it sees every day from the same writer. Temporary files left by a killed writer are removed by the
    next write of that asset.
    """

    base_dir: str = Field(description="Folder holding one Parquet file (or folder of days) per asset")
    read_log: str | None = Field(default=None, description="JSON-lines file that gets one line (run id, reading "
                                 "asset, asset, day) per stored day read; None = no log")

    def _path(self, context: dg.OutputContext | dg.InputContext) -> Path:
        # An op input (e.g. the sweep job's) carries no asset key here: it is looked up by its input name,
        # which those ops name after the asset they read.
        key = context.asset_key.path if context.has_asset_key else [context.name]
        return Path(self.base_dir) / ("/".join(key) + ".parquet")

    def _folder(self, context: dg.OutputContext | dg.InputContext) -> Path:
        return Path(self.base_dir) / "/".join(context.asset_key.path)

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()} returned {type(obj).__name__}; "
                            "ParquetIOManager stores pandas DataFrames only")
        if context.has_asset_partitions:
            self._write_days(context, obj)
            return
        path = self._path(context)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path.parent / f".{path.stem}.lock", exclusive=True):
            _remove_leftovers(path.parent, f".{path.name}.*.tmp")
            _replace_parquet(obj, path)
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path))})

    def _write_days(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        from opensentiment_pipeline.defs.partitions import PARTITION_COLUMN

        name = context.asset_key.to_user_string()
        if PARTITION_COLUMN not in obj.columns:
            raise ValueError(f"{name} is partitioned by day but its frame has no {PARTITION_COLUMN!r} column")
        keys = list(context.asset_partition_keys)
        outside = sorted(set(obj[PARTITION_COLUMN]) - set(keys))
        if outside:
            raise ValueError(f"{name} has rows for days {outside[:5]} outside this run's partitions "
                             f"{keys[0]}..{keys[-1]}; nothing was written")
        folder = self._folder(context)
        folder.mkdir(parents=True, exist_ok=True)
        days = {day: part for day, part in obj.groupby(PARTITION_COLUMN, sort=False)}
        with _locked(folder / LOCK_FILE, exclusive=True):
            _remove_leftovers(folder, ".*.tmp")
            for key in keys:
                _replace_parquet(days.get(key, obj.iloc[:0]), folder / f"{key}.parquet")
        context.add_output_metadata({"path": dg.MetadataValue.path(str(folder)),
                                     "rows_per_day": dg.MetadataValue.json(
                                         {day: len(part) for day, part in sorted(days.items())})})

    def load_input(self, context: dg.InputContext) -> "pd.DataFrame | StoredDays":
        if context.has_asset_key and context.has_asset_partitions:
            days = self._stored_days(context)
            if _wants_stored_days(context):  # the asset reads the days it needs itself
                return days
            return self._read_days(context, days)
        path = self._path(context)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: materialize {path.stem} "
                                    "first (and set DAGSTER_HOME so runs share one instance)")
        with _locked(path.parent / f".{path.stem}.lock", exclusive=False):
            return pd.read_parquet(path)

    def _stored_days(self, context: dg.InputContext) -> StoredDays:
        step = context._step_context  # None when the context was built by hand (build_input_context)
        return StoredDays(asset=context.asset_key.to_user_string(), folder=self._folder(context),
                          keys=tuple(context.asset_partition_keys), reader=step.op_def.name if step else "",
                          read_log=Path(self.read_log) if self.read_log else None, run_id=step.run_id if step else "")

    def _read_days(self, context: dg.InputContext, days: StoredDays) -> pd.DataFrame:
        keys = days.keys
        stored = days.days()
        if not stored:
            raise FileNotFoundError(
                f"no day of {days.asset} between {keys[0]} and {keys[-1]} is stored in "
                f"{days.folder}: materialize it first, e.g. dagster asset materialize --select "
                f"{days.asset} --partition-range {keys[0]}...{keys[-1]}")
        return days.read(stored)


def _wants_stored_days(context: dg.InputContext) -> bool:
    """True when the reading asset annotates this input as StoredDays (a hand-built context has no type)."""
    dagster_type = context._dagster_type  # noqa: SLF001  (the public property raises when it is missing)
    return dagster_type is not None and dagster_type.typing_type is StoredDays


class AtomicPickleIOManager(dg.ConfigurableIOManagerFactory):
    """Dagster's default IO manager (one pickle per output under the instance's storage folder), except that a
    write replaces the stored pickle only once complete.

    Dagster's own writes the pickle in place, so a run killed or failing mid-write would leave a truncated
    file where the last good value (an adapter's path, an evaluation report) was.
    """

    base_dir: str | None = Field(default=None, description="Folder of the pickles; None = the Dagster "
                                 "instance's storage folder, where Dagster's default IO manager keeps them")

    def create_io_manager(self, context: dg.InitResourceContext) -> "_AtomicPickles":
        from upath import UPath

        return _AtomicPickles(base_path=UPath(self.base_dir or context.instance.storage_directory()))


class _AtomicPickles(dg.UPathIOManager):
    extension: str = ""  # the same file names as Dagster's default, so values it stored still load

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: Any) -> None:
        import pickle

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, lambda tmp: tmp.write_bytes(pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)))

    def load_from_path(self, context: dg.InputContext, path: Any) -> Any:
        import pickle

        with open(path, "rb") as handle:
            return pickle.load(handle)


def _replace_parquet(frame: pd.DataFrame, path: Path) -> None:
    _write_atomically(path, lambda tmp: frame.to_parquet(tmp, index=False))


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """`write(tmp)` into a temporary file beside `path`, then rename it over `path`: atomic on one filesystem,
    so readers see the old file or the new one. The name is unique (two writers never share a temporary
    file) and starts with a dot (it never matches a stored file's name)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def _locked(lock_path: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold an flock on `lock_path` (created if missing); released when the process ends, even by SIGKILL."""
    import fcntl

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_leftovers(folder: Path, pattern: str) -> None:
    """Temporary files of writers that died mid-write (called under the exclusive lock: no live writer has any)."""
    for leftover in folder.glob(pattern):
        leftover.unlink(missing_ok=True)


class MlflowTracking(dg.ConfigurableResource):
    """One MLflow run per materialization, tagged with the Dagster run id.

    The MLflow run id (and a link, when the tracking URI is a server) goes into the asset's metadata, so
    each UI points at the other.
    """

    tracking_uri: str = Field(description="e.g. sqlite:///.opensentiment/mlflow.db or http://mlflow:5000")
    experiment: str = Field(default="opensentiment", description="MLflow experiment name")
    registered_model: str = Field(default="opensentiment-sentiment-adapter",
                                  description="MLflow registry name for evaluated adapters")
    artifact_location: str | None = Field(
        default=None, description="Where a new experiment stores artifacts (default: next to a local store)")

    def _experiment_id(self) -> str:
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        existing = mlflow.get_experiment_by_name(self.experiment)
        if existing is not None:
            return existing.experiment_id
        return mlflow.create_experiment(self.experiment, artifact_location=self.artifact_location)

    @contextmanager
    def run(self, context: dg.AssetExecutionContext, params: Mapping[str, Any]) -> Iterator[Any]:
        """Start a run named after the asset, log `params`, yield the active run, end it (FAILED on error)."""
        import mlflow

        experiment_id = self._experiment_id()
        name = context.asset_key.to_user_string() if context.has_assets_def else context.op.name
        tags = {"dagster_run_id": context.run.run_id, "dagster_asset": name}
        with mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=tags) as run:
            mlflow.log_params(flatten_params(params))
            yield run

    def client(self):
        import mlflow

        return mlflow.MlflowClient(self.tracking_uri)

    def run_metadata(self, run: Any) -> dict[str, dg.MetadataValue]:
        """`mlflow_run_id`, plus `mlflow_run_url` when the tracking URI is an HTTP server."""
        metadata: dict[str, dg.MetadataValue] = {"mlflow_run_id": dg.MetadataValue.text(run.info.run_id)}
        if self.tracking_uri.startswith(("http://", "https://")):
            url = f"{self.tracking_uri.rstrip('/')}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
            metadata["mlflow_run_url"] = dg.MetadataValue.url(url)
        return metadata


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """MLflow params are flat strings (max 6,000 chars); nested config becomes dotted keys."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, prefix=f"{name}."))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for i, item in enumerate(value):
                flat.update(flatten_params(item, prefix=f"{name}.{i}."))
        else:
            flat[name] = str(value)[:6000]
    return flat
