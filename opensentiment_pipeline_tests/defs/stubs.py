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


def upstream_stubs(raw: pd.DataFrame, embedded: pd.DataFrame, adapter_dir: Path,
                   points: pd.DataFrame | None = None) -> list[dg.AssetsDefinition]:
    """`raw_articles`, `article_embeddings` and `sentiment_adapter` assets that return the given values, and with
    `points` an `outlet_clusters` (the map: article_id, outlet, x, y, cluster) that returns them."""

    stubs = [stub_asset("raw_articles", raw), stub_asset("article_embeddings", embedded),
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
