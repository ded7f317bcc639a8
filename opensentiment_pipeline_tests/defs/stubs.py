"""Hand-built stand-ins for the upstream assets of the vector readers (no ingestion, no adapter training)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd


def stub_asset(name: str, value, *, parquet: bool = True, deps: list[str] | None = None) -> dg.AssetsDefinition:
    """An asset called `name` that returns `value` (stored as Parquet when `parquet`, else pickled)."""

    @dg.asset(name=name, io_manager_key="parquet_io_manager" if parquet else "io_manager", deps=deps)
    def _stub():
        return value

    return _stub


def day_stub_asset(name: str, frame: pd.DataFrame) -> dg.AssetsDefinition:
    """A day-partitioned asset called `name` that stores the rows of `frame` (which has a partition_day column)
    under their days, as raw_articles and article_embeddings are stored; materialize it with
    `tags=partitions.range_tags()` (every day in one run)."""
    from opensentiment_pipeline.defs.partitions import DAILY, PARTITION_COLUMN, SINGLE_RUN

    if PARTITION_COLUMN not in frame.columns:
        raise ValueError(f"{name}: a day-partitioned stub needs a {PARTITION_COLUMN} column")

    @dg.asset(name=name, io_manager_key="parquet_io_manager", partitions_def=DAILY, backfill_policy=SINGLE_RUN)
    def _stub(context):  # (unannotated: this module postpones annotations, which Dagster cannot read)
        return frame[frame[PARTITION_COLUMN].isin(set(context.partition_keys))]

    return _stub


def upstream_stubs(raw: pd.DataFrame, embedded: pd.DataFrame, adapter_dir: Path,
                   points: pd.DataFrame | None = None) -> list[dg.AssetsDefinition]:
    """Day-partitioned `raw_articles` and `article_embeddings` (raw's rows filed under their embedding's day) and a
    `sentiment_adapter` that return the given values, and with `points` an `outlet_clusters` (the map:
    article_id, outlet, x, y, cluster) that returns them. Materialize with `tags=partitions.range_tags()`."""
    from opensentiment_pipeline.defs.partitions import PARTITION_COLUMN

    if PARTITION_COLUMN not in raw.columns:
        days = embedded.set_index("article_id")[PARTITION_COLUMN]
        raw = raw.assign(**{PARTITION_COLUMN: raw["article_id"].map(days).to_numpy()})
    stubs = [day_stub_asset("raw_articles", raw), day_stub_asset("article_embeddings", embedded),
             stub_asset("sentiment_adapter", str(adapter_dir), parquet=False)]
    if points is not None:
        stubs.append(stub_asset("outlet_clusters", points))
    return stubs


def stored_day_stubs(base_dir: Path, frames: dict[str, pd.DataFrame]) -> list[dg.AssetsDefinition]:
    """Day-partitioned stand-ins for `frames` ({asset: rows with a `partition_day` column}): each day is written
    to <base_dir>/<asset>/<day>.parquet as the ParquetIOManager stores it, and the returned assets (DAILY) are
    for a run that leaves them out of its selection, so downstream assets read them as stored days."""
    from opensentiment_pipeline.defs.partitions import DAILY, PARTITION_COLUMN

    stubs = []
    for name, frame in frames.items():
        folder = base_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        for day, part in frame.groupby(PARTITION_COLUMN):
            part.reset_index(drop=True).to_parquet(folder / f"{day}.parquet", index=False)

        @dg.asset(name=name, io_manager_key="parquet_io_manager", partitions_def=DAILY)
        def _stub():
            raise RuntimeError("a stored-day stub is written by stored_day_stubs, not materialized")

        stubs.append(_stub)
    return stubs


def materialization_metadata(result, asset: str) -> dict:
    """The metadata values of `asset`'s one materialization in the run `result`."""
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def logged_reads(read_log: Path, run_id: str, *, reader: str | None = None) -> set[tuple[str, str]]:
    """(asset, day) of every stored day the run read (by `reader` only, when given), from ParquetIOManager's
    read log."""
    import json

    reads = [json.loads(line) for line in Path(read_log).read_text().splitlines()]
    return {(r["asset"], r["day"]) for r in reads if r["run_id"] == run_id and reader in (None, r["reader"])}
