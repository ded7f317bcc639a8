"""results_db materializes after hand-built upstream assets: a view per Parquet output, the upstream run's CSV
tables, the model tables from the evaluation report, and the dashboard's URL in its metadata."""

import json

import dagster as dg
import duckdb
import pandas as pd

from opensentiment_pipeline import definitions
from opensentiment_pipeline.defs.assets.results_db import build_results_db, parquet_assets
from opensentiment_pipeline.defs.resources import ArtifactStore
from opensentiment_pipeline_tests.core.test_results_tables import _report
from opensentiment_pipeline_tests.defs.stubs import materialization_metadata


def _stubs():
    @dg.asset(name="raw_articles", io_manager_key="parquet_io_manager")
    def raw_stub() -> pd.DataFrame:
        return pd.DataFrame({"article_id": ["a1", "a2"], "outlet": ["x", "y"]})

    @dg.asset(name="outlet_clusters", io_manager_key="parquet_io_manager")
    def map_stub(context: dg.AssetExecutionContext, artifacts: ArtifactStore) -> pd.DataFrame:
        folder = artifacts.run_dir(context, "outlet_clusters")
        pd.DataFrame({"outlet": ["x", "y"], "x": [1.0, 0.3], "y": [0.3, 1.0]}).to_csv(
            folder / "outlet_similarity.csv", index=False)
        return pd.DataFrame({"article_id": ["a1", "a2"], "x": [0.0, 1.0], "y": [1.0, 0.0]})

    @dg.asset(name="evaluation_report")
    def report_stub(context: dg.AssetExecutionContext, artifacts: ArtifactStore) -> dict:
        report = {**_report(), "evaluation_run_id": None}
        (artifacts.run_dir(context, "evaluation_report") / "report.json").write_text(json.dumps(report))
        return report

    return [raw_stub, map_stub, report_stub]


def test_results_db_holds_every_upstream_table(tmp_path):
    stubs = _stubs()
    results_db = build_results_db(stubs)
    assert {k.to_user_string() for k in parquet_assets(stubs)} == {"raw_articles", "outlet_clusters"}
    result = dg.materialize([*stubs, results_db], instance=dg.DagsterInstance.ephemeral(),
                            resources=definitions.resources_for(tmp_path, tracking_uri=f"sqlite:///{tmp_path}/m.db"),
                            run_config={"ops": {"results_db": {"config": {"dashboard_url": "http://127.0.0.1:9000"}}}})
    assert result.success
    metadata = materialization_metadata(result, "results_db")
    assert metadata["dashboard"] == "http://127.0.0.1:9000"
    assert metadata["dashboard_model"] == "http://127.0.0.1:9000/model"
    with duckdb.connect(str(tmp_path / "results.duckdb"), read_only=True) as conn:
        tables = dict(conn.execute("SELECT table_name, kind FROM results_db_tables").fetchall())
        assert tables == {"raw_articles": "view", "outlet_clusters": "view", "outlet_clusters__outlet_similarity": "table",
                          "model_evaluation": "table", "model_per_class": "table", "model_confusion": "table",
                          "model_baselines": "table", "model_by_source": "table", "model_by_outlet": "table"}
        assert conn.execute("SELECT outlet FROM raw_articles ORDER BY outlet").fetchall() == [("x",), ("y",)]
        assert conn.execute("SELECT macro_f1 FROM model_evaluation").fetchall() == [(0.61,)]


def test_definitions_put_results_db_after_every_parquet_asset():
    graph = definitions.defs.resolve_asset_graph()
    upstream = {k.to_user_string() for k in graph.get(dg.AssetKey("results_db")).parent_keys}
    assert {"raw_articles", "article_embeddings", "outlet_clusters", "outlet_leaning", "evaluation_report",
            "adapter_promotion", "article_index"} <= upstream
