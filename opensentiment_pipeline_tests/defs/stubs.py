"""Hand-built stand-ins for the upstream assets of the vector readers (no ingestion, no adapter training)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd


def upstream_stubs(raw: pd.DataFrame, embedded: pd.DataFrame, adapter_dir: Path,
                   points: pd.DataFrame | None = None) -> list[dg.AssetsDefinition]:
    """`raw_articles`, `article_embeddings` and `sentiment_adapter` assets that return the given values, and with
    `points` an `outlet_clusters` (the map: article_id, outlet, x, y, cluster) that returns them."""

    @dg.asset(name="raw_articles", io_manager_key="parquet_io_manager")
    def raw_stub() -> pd.DataFrame:
        return raw

    @dg.asset(name="article_embeddings", io_manager_key="parquet_io_manager")
    def embeddings_stub() -> pd.DataFrame:
        return embedded

    @dg.asset(name="sentiment_adapter")
    def adapter_stub() -> str:
        return str(adapter_dir)

    stubs = [raw_stub, embeddings_stub, adapter_stub]
    if points is not None:
        @dg.asset(name="outlet_clusters", io_manager_key="parquet_io_manager")
        def map_stub() -> pd.DataFrame:
            return points

        stubs.append(map_stub)
    return stubs
