"""Reading the results database for the dashboard: tables by name, with the asset that makes each one.

Every read opens the DuckDB file read-only and closes it again, so the pipeline can refresh `results_db` while the
dashboard runs. A table that is absent raises `MissingAsset` (which asset and the command that makes it); one
that lacks columns a page needs raises `OutdatedTable` (a store written by an older version). Pages turn both
into a message, never a traceback.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from opensentiment_pipeline.core.results_tables import CATALOG, RESULTS_DB_FILE

LOCK_RETRIES = 10  # the pipeline holds the write lock for well under a second while it refreshes the file


def materialize_command(asset: str) -> str:
    """The command that materializes `asset` with what it needs, then refreshes the results database."""
    selection = f"*{asset},results_db" if asset != "results_db" else "*results_db"
    return (f"dagster asset materialize --select '{selection}' --partition-range \"$(opensentiment days)\" "
            "-m opensentiment_pipeline.definitions")


class MissingAsset(LookupError):
    """A table the page needs is not in the results database: its asset has not been materialized."""

    def __init__(self, asset: str, table: str | None = None):
        self.asset, self.table, self.command = asset, table or asset, materialize_command(asset)
        super().__init__(f"asset {asset} has not been materialized: run `{self.command}`")


class OutdatedTable(ValueError):
    """A table lacks columns this version reads: it was written by an older version of the pipeline."""

    def __init__(self, table: str, asset: str, missing: Sequence[str]):
        self.table, self.asset, self.missing = table, asset, list(missing)
        super().__init__(f"table {table} lacks the columns {self.missing}: it was written by an older version of "
                         f"the pipeline. Re-materialize {asset} and results_db: `{materialize_command(asset)}`")


class StoreBusy(RuntimeError):
    """The pipeline held the database's write lock through every retry."""


@dataclass(frozen=True)
class ResultsStore:
    """The results database at `path` (`<home>/results.duckdb`)."""

    path: Path

    @classmethod
    def at_home(cls, home: str | Path) -> "ResultsStore":
        return cls(Path(home) / RESULTS_DB_FILE)

    def query(self, sql: str, params: Sequence | None = None) -> pd.DataFrame:
        """Run read-only `sql` (with `?` parameters) and return the result as a frame."""
        import duckdb

        if not self.path.exists():
            raise MissingAsset("results_db")
        for attempt in range(LOCK_RETRIES):
            try:
                with duckdb.connect(str(self.path), read_only=True) as conn:
                    conn.execute("SET TimeZone = 'UTC'")  # days are UTC days everywhere else (partitions, stories)
                    return conn.execute(sql, list(params or [])).df()
            except duckdb.IOException as err:
                if "lock" not in str(err).lower():
                    raise
                time.sleep(0.1 * (attempt + 1))
        raise StoreBusy(f"{self.path} stayed locked by a writer (the pipeline refreshing results_db); reload the "
                        "page in a moment")

    def catalog(self) -> pd.DataFrame:
        """`results_db_tables`: table_name, asset, kind, rows, source, refreshed_at, dagster_run_id."""
        return self._schema()[0].copy()

    def has(self, table: str) -> bool:
        return table in self._schema()[1]

    def table(self, table: str, *, asset: str, columns: Sequence[str], where: str = "",
              params: Sequence | None = None, order_by: str = "", limit: int | None = None) -> pd.DataFrame:
        """`columns` of `table` (made by `asset`), optionally filtered by a `where` clause with `?` params."""
        self.require(table, asset=asset, columns=columns)
        cols = ", ".join(f'"{c}"' for c in columns)
        sql = f'SELECT {cols} FROM "{table}"' + (f" WHERE {where}" if where else "")
        sql += (f" ORDER BY {order_by}" if order_by else "") + (f" LIMIT {int(limit)}" if limit else "")
        return self.query(sql, params)

    def require(self, table: str, *, asset: str, columns: Sequence[str]) -> None:
        """Raise MissingAsset when `table` is absent, OutdatedTable when it lacks any of `columns`."""
        if not self.has(table):
            raise MissingAsset(asset, table)
        present = set(self.columns(table))
        missing = [c for c in columns if c not in present]
        if missing:
            raise OutdatedTable(table, asset, missing)

    def columns(self, table: str) -> list[str]:
        return list(self._schema()[1].get(table, []))

    def _schema(self) -> tuple[pd.DataFrame, dict[str, list[str]]]:
        """The catalog and every table's columns, read once per version of the file (results_db replaces it)."""
        if not self.path.exists():
            raise MissingAsset("results_db")
        return _read_schema(self, self.path.stat().st_mtime_ns)



@functools.lru_cache(maxsize=8)
def _read_schema(store: ResultsStore, _mtime_ns: int) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    try:
        catalog = store.query(f"SELECT * FROM {CATALOG} ORDER BY table_name")
    except Exception as err:
        if type(err).__name__ == "CatalogException":  # a DuckDB file without the catalog: not made by results_db
            raise MissingAsset("results_db") from None
        raise
    columns = store.query("SELECT table_name, column_name FROM information_schema.columns "
                          "ORDER BY table_name, ordinal_position")
    by_table = {name: part["column_name"].tolist() for name, part in columns.groupby("table_name", sort=False)}
    return catalog, by_table
