"""Dashboard pages without a browser: what a missing asset, an older store and bad input show."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from opensentiment_pipeline.dashboard import app as dashboard_app
from opensentiment_pipeline.dashboard.components import UserFacingError
from opensentiment_pipeline.dashboard.pages import model, outlets, stories
from opensentiment_pipeline.dashboard.store import MissingAsset, OutdatedTable, ResultsStore


def _text(component) -> str:
    """All text inside a Dash component tree."""
    if component is None:
        return ""
    if isinstance(component, (str, int, float)):
        return str(component)
    if isinstance(component, (list, tuple)):
        return " ".join(_text(c) for c in component)
    return _text(getattr(component, "children", None))


def test_no_results_database_names_results_db_and_its_command(tmp_path):
    ctx = dashboard_app.context_for(tmp_path)
    shown = _text(dashboard_app.overview(ctx))
    assert "asset results_db has not been materialized" in shown
    assert "--select '*results_db'" in shown


def test_a_table_missing_from_the_store_raises_its_asset(demo_home, tmp_path):
    shutil.copy(demo_home / "results.duckdb", tmp_path / "results.duckdb")
    with duckdb.connect(str(tmp_path / "results.duckdb")) as conn:
        conn.execute("DROP VIEW IF EXISTS stories")
        conn.execute("DELETE FROM results_db_tables WHERE table_name = 'stories'")
    store = ResultsStore.at_home(tmp_path)
    with pytest.raises(MissingAsset, match=r"asset stories has not been materialized: run `dagster asset "
                                           r"materialize --select '\*stories,results_db'"):
        store.require("stories", asset="stories", columns=["story_id"])
    assert "asset stories has not been materialized" in _text(stories.layout(dashboard_app.context_for(tmp_path)))


def test_a_store_from_an_older_version_names_the_missing_columns(demo_home, tmp_path):
    shutil.copy(demo_home / "results.duckdb", tmp_path / "results.duckdb")
    with duckdb.connect(str(tmp_path / "results.duckdb")) as conn:
        conn.execute("CREATE TABLE old_leaning AS SELECT outlet, score FROM outlet_leaning")
        conn.execute("DROP VIEW outlet_leaning")
        conn.execute("ALTER TABLE old_leaning RENAME TO outlet_leaning")
    ctx = dashboard_app.context_for(tmp_path)
    with pytest.raises(OutdatedTable, match=r"table outlet_leaning lacks the columns \['n_articles', 'score_low', "
                                            r"'score_high', 'label', 'reference_leaning'\]: it was written by an "
                                            r"older version"):
        outlets.axis_figure(ctx, None)


def test_a_date_range_with_no_articles_says_so(demo_home):
    ctx = dashboard_app.context_for(demo_home)
    with pytest.raises(UserFacingError, match=r"no articles match these filters \(published 1999-01-01 to "
                                              r"1999-01-31\)"):
        outlets.outlet_table(ctx, "1999-01-01", "1999-01-31", None, None)
    with pytest.raises(UserFacingError, match=r"the date range starts on 2026-11-24, after its end 2026-11-20"):
        outlets.outlet_table(ctx, "2026-11-24", "2026-11-20", None, None)


def test_outlet_table_counts_the_filtered_articles(demo_home):
    store = ResultsStore.at_home(demo_home)
    day = str(store.query("SELECT min(published_at)::DATE::VARCHAR AS d FROM raw_articles").iloc[0]["d"])
    expected = int(store.query("SELECT count(*) AS n FROM raw_articles JOIN article_embeddings USING (article_id) "
                               "WHERE published_at::DATE = ?::DATE", [day]).iloc[0]["n"])
    shown = _text(outlets.outlet_table(dashboard_app.context_for(demo_home), day, day, None, None))
    assert shown.startswith(f"{expected} articles from ")


def _links(component) -> list[str]:
    """Every href inside a Dash component tree."""
    if isinstance(component, (list, tuple)):
        return [h for c in component for h in _links(c)]
    if not hasattr(component, "children"):
        return []
    own = [component.href] if getattr(component, "href", None) else []
    return own + _links(component.children)


def test_model_page_links_to_its_mlflow_run_and_dagster_asset(demo_home):
    ctx = dashboard_app.context_for(demo_home, dagster_url="http://dagster:3000", mlflow_url="http://mlflow:5000")
    store = ResultsStore.at_home(demo_home)
    run = store.query("SELECT evaluation_run_id, mlflow_experiment_id FROM model_evaluation").iloc[0]
    links = _links(model.layout(ctx))
    assert f"http://mlflow:5000/#/experiments/{run['mlflow_experiment_id']}/runs/{run['evaluation_run_id']}" in links
    assert "http://dagster:3000/assets/evaluation_report" in links
    assert "macro-F1" in _text(model.layout(ctx))
