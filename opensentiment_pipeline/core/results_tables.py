"""The results database: write every result table into a DuckDB connection, and flatten an evaluation report.

`write_results_db` replaces everything in the database in one transaction, so a reader sees the old set of
tables or the new one, never a mix. Parquet outputs become views (they always read the newest stored files);
CSV artifacts and the given frames become tables. docs/results_db.md describes the tables.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

logger = logging.getLogger(__name__)

RESULTS_DB_FILE = "results.duckdb"  # in the project home, beside assets/ and index/
CATALOG = "results_db_tables"
SCHEMA_VERSION = 1  # bump when a table's columns change meaning; the dashboard names the version it needs
CATALOG_COLUMNS = ["table_name", "asset", "kind", "rows", "source", "refreshed_at", "dagster_run_id",
                   "schema_version"]
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def write_results_db(conn, *, parquet_dir: Path, csv_dirs: Mapping[str, Path], tables: Mapping[str, pd.DataFrame],
                     refreshed_at: str, run_id: str) -> pd.DataFrame:
    """Replace the contents of the DuckDB `conn` and return the catalog (one row per table, CATALOG_COLUMNS).

    Args:
        parquet_dir: the Parquet IO manager's folder: `<asset>.parquet` files and `<asset>/<day>.parquet` folders.
        csv_dirs: asset name -> its latest run's artifact folder; each `<name>.csv` becomes `<asset>__<name>`
            (a CSV named like its asset repeats the Parquet output and is skipped).
        tables: more tables to store as they are (table name -> frame), e.g. `evaluation_tables(report)`.
        refreshed_at, run_id: written into the catalog.
    """
    entries = [*_parquet_entries(Path(parquet_dir)), *_csv_entries(csv_dirs)]
    for name in tables:
        _check_name(name)
    conn.execute("BEGIN TRANSACTION")
    try:
        for name, kind in conn.execute("SELECT table_name, table_type FROM information_schema.tables "
                                       "WHERE table_schema = 'main'").fetchall():
            conn.execute(f'DROP {"VIEW" if kind == "VIEW" else "TABLE"} "{name}"')
        rows = []
        for name, asset, kind, source, sql in entries:
            conn.execute(f'CREATE {kind.upper()} "{name}" AS {sql}')
            rows.append((name, asset, kind, source))
        for name, frame in tables.items():
            conn.register("_frame", frame)
            conn.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _frame')
            conn.unregister("_frame")
            rows.append((name, _asset_of_model_table(name), "table", "pipeline"))
        catalog = pd.DataFrame([{
            "table_name": name, "asset": asset, "kind": kind,
            "rows": int(conn.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0]),
            "source": source, "refreshed_at": refreshed_at, "dagster_run_id": run_id, "schema_version": SCHEMA_VERSION,
        } for name, asset, kind, source in rows], columns=CATALOG_COLUMNS)
        conn.register("_catalog", catalog)
        conn.execute(f'CREATE TABLE "{CATALOG}" AS SELECT * FROM _catalog')
        conn.unregister("_catalog")
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    return catalog


def evaluation_tables(report: Mapping) -> dict[str, pd.DataFrame]:
    """The evaluation report as flat tables: model_evaluation (one row), model_per_class, model_confusion (long:
    true_label, predicted_label, count), model_baselines, model_by_source, model_by_outlet."""
    labels = list(report["labels"])
    low, high = report["macro_f1_ci95"]
    evaluation = pd.DataFrame([{
        "adapter_version": report.get("adapter_version"), "evaluation_run_id": report.get("evaluation_run_id"),
        "n": int(report["n"]), "macro_f1": float(report["macro_f1"]), "macro_f1_ci95_low": float(low),
        "macro_f1_ci95_high": float(high), "accuracy": float(report["accuracy"]), "ece": float(report["ece"]),
        "test_fingerprint": report.get("test_fingerprint")}])
    per_class = pd.DataFrame([{"label": label, **report["per_class"][label]} for label in labels])
    matrix = report["confusion_matrix"]
    confusion = pd.DataFrame([{"true_label": t, "predicted_label": p, "count": int(matrix[i][j])}
                              for i, t in enumerate(labels) for j, p in enumerate(labels)])
    baselines = pd.DataFrame([{"model": "lora_adapter", "macro_f1": float(report["macro_f1"]),
                               "accuracy": float(report["accuracy"])}]
                             + [{"model": name, "macro_f1": float(s["macro_f1"]), "accuracy": float(s["accuracy"])}
                                for name, s in report["baselines"].items()])
    groups = {f"model_by_{g}": pd.DataFrame(report.get(f"by_{g}", []), columns=[g, "n", "macro_f1", "accuracy"])
              for g in ("source", "outlet")}
    return {"model_evaluation": evaluation, "model_per_class": per_class, "model_confusion": confusion,
            "model_baselines": baselines, **groups}


def _asset_of_model_table(name: str) -> str:
    if name == "model_champion":
        return "adapter_promotion"
    return "evaluation_report" if name.startswith("model_") else name


def _parquet_entries(folder: Path) -> list[tuple[str, str, str, str, str]]:
    """(table, asset, kind, source, SELECT) per Parquet output: a file, or a folder of day files."""
    entries = []
    if not folder.is_dir():
        return entries
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_file() and path.suffix == ".parquet":
            source = str(path.resolve())
        elif path.is_dir() and any(p.suffix == ".parquet" and not p.name.startswith(".") for p in path.iterdir()):
            source = str(path.resolve() / "*.parquet")
        else:
            continue
        name = path.stem if path.is_file() else path.name
        if not _NAME.match(name):
            logger.warning("skipping %s: %r is not a plain SQL table name", path, name)
            continue
        # union_by_name: an empty day file holds untyped columns, and a column added later is NULL in older days
        entries.append((name, name, "view", source, f"SELECT * FROM read_parquet({_quote(source)}, union_by_name=true)"))
    return entries


def _csv_entries(csv_dirs: Mapping[str, Path]) -> list[tuple[str, str, str, str, str]]:
    entries = []
    for asset, folder in sorted(csv_dirs.items()):
        for path in sorted(Path(folder).glob("*.csv")):
            if path.stem == asset:
                continue
            name = f"{asset}__{path.stem}"
            if not _NAME.match(name):
                logger.warning("skipping %s: %r is not a plain SQL table name", path, name)
                continue
            entries.append((name, asset, "table", str(path.resolve()),
                            f"SELECT * FROM read_csv_auto({_quote(str(path.resolve()))}, header=true)"))
    return entries


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(f"table name {name!r} is not a plain SQL name (letters, digits, underscores); rename it")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
