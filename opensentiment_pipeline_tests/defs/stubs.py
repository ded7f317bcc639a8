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
