"""The results database: Parquet outputs become views, artifact CSVs and given frames tables, and a refresh
replaces the whole set in one transaction."""

import duckdb
import pandas as pd
import pytest

from opensentiment_pipeline.core import results_tables


def _report() -> dict:
    labels = ["negative", "neutral", "positive"]
    scores = {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    return {"labels": labels, "n": 6, "macro_f1": 0.61, "macro_f1_ci95": [0.4, 0.8], "accuracy": 0.66, "ece": 0.1,
            "per_class": {label: scores for label in labels}, "confusion_matrix": [[2, 0, 0], [1, 1, 0], [0, 0, 2]],
            "baselines": {"majority_class": {"macro_f1": 0.2, "accuracy": 0.33}},
            "by_source": [{"source": "demo", "n": 6, "macro_f1": 0.61, "accuracy": 0.66}],
            "adapter_version": "run1", "evaluation_run_id": "run2", "test_fingerprint": "abc"}


@pytest.fixture
def store(tmp_path):
    assets = tmp_path / "assets"
    (assets / "raw_articles").mkdir(parents=True)
    pd.DataFrame({"article_id": ["a1"], "outlet": ["x"]}).to_parquet(assets / "raw_articles" / "2024-01-01.parquet")
    # A later day adds a column; an empty day has untyped columns: the view reads all three days.
    pd.DataFrame({"article_id": ["a2"], "outlet": ["y"], "extra": [1.5]}).to_parquet(
        assets / "raw_articles" / "2024-01-02.parquet")
    pd.DataFrame({"article_id": pd.Series(dtype=object), "outlet": pd.Series(dtype=object)}).to_parquet(
        assets / "raw_articles" / "2024-01-03.parquet")
    (assets / "raw_articles" / ".2024-01-04.parquet.x1.tmp").write_text("half-written")
    pd.DataFrame({"outlet": ["x", "y"], "score": [-0.5, 0.5]}).to_parquet(assets / "outlet_leaning.parquet")
    run = tmp_path / "artifacts" / "runs" / "r1" / "outlet_clusters"
    run.mkdir(parents=True)
    pd.DataFrame({"outlet": ["x", "y"], "x": [1.0, 0.2], "y": [0.2, 1.0]}).to_csv(run / "outlet_similarity.csv",
                                                                                 index=False)
    pd.DataFrame({"a": [1]}).to_csv(run / "outlet_clusters.csv", index=False)  # repeats the Parquet output
    return tmp_path


def _write(conn, root, **overrides):
    args = {"parquet_dir": root / "assets", "csv_dirs": {"outlet_clusters": root / "artifacts/runs/r1/outlet_clusters"},
            "tables": results_tables.evaluation_tables(_report()), "refreshed_at": "2024-01-05T00:00:00",
            "run_id": "dagster-run"}
    return results_tables.write_results_db(conn, **{**args, **overrides})


def test_parquet_outputs_become_views_over_every_day(store):
    conn = duckdb.connect(str(store / "results.duckdb"))
    catalog = _write(conn, store).set_index("table_name")
    assert catalog.loc["raw_articles", ["asset", "kind", "rows"]].tolist() == ["raw_articles", "view", 2]
    assert conn.execute("SELECT article_id, extra FROM raw_articles ORDER BY article_id").fetchall() == [
        ("a1", None), ("a2", 1.5)]
    assert catalog.loc["outlet_leaning", "rows"] == 2
    # the view reads the files, so a new day shows without a refresh
    pd.DataFrame({"article_id": ["a3"], "outlet": ["z"]}).to_parquet(
        store / "assets" / "raw_articles" / "2024-01-04.parquet")
    assert conn.execute("SELECT count(*) FROM raw_articles").fetchone() == (3,)


def test_artifact_csvs_and_model_tables_are_stored(store):
    conn = duckdb.connect(str(store / "results.duckdb"))
    catalog = _write(conn, store).set_index("table_name")
    assert "outlet_clusters__outlet_clusters" not in catalog.index
    assert conn.execute('SELECT outlet, y FROM outlet_clusters__outlet_similarity ORDER BY outlet').fetchall() == [
        ("x", 0.2), ("y", 1.0)]
    assert catalog.loc["model_evaluation", "asset"] == "evaluation_report"
    assert conn.execute("SELECT macro_f1, macro_f1_ci95_low FROM model_evaluation").fetchall() == [(0.61, 0.4)]
    assert conn.execute("SELECT count FROM model_confusion WHERE true_label = 'neutral' AND "
                        "predicted_label = 'negative'").fetchall() == [(1,)]
    assert conn.execute("SELECT model FROM model_baselines ORDER BY model").fetchall() == [
        ("lora_adapter",), ("majority_class",)]
    assert conn.execute("SELECT count(*) FROM model_by_outlet").fetchone() == (0,)


def test_refresh_drops_tables_that_are_gone(store):
    conn = duckdb.connect(str(store / "results.duckdb"))
    _write(conn, store)
    catalog = _write(conn, store, tables={}, csv_dirs={})
    names = {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert names == {"raw_articles", "outlet_leaning", results_tables.CATALOG}
    assert sorted(catalog["table_name"]) == ["outlet_leaning", "raw_articles"]


def test_a_bad_table_name_is_refused_and_the_old_tables_stay(store):
    conn = duckdb.connect(str(store / "results.duckdb"))
    _write(conn, store)
    with pytest.raises(ValueError, match=r"table name 'model evaluation' is not a plain SQL name"):
        _write(conn, store, tables={"model evaluation": pd.DataFrame({"a": [1]})})
    assert conn.execute("SELECT count(*) FROM model_evaluation").fetchone() == (1,)
