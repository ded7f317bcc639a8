"""The Dash app: a navigation bar, one page per URL path, and `serve` to run it.

Dash serves its JavaScript and CSS from the installed package (`serve_locally=True`) and this app names no
external script or stylesheet, so the dashboard works with no network at all.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from dash import Dash, Input, Output, dcc, html

from opensentiment_pipeline.dashboard import components as ui
from opensentiment_pipeline.dashboard.components import DashboardContext
from opensentiment_pipeline.dashboard.pages import model, outlets, over_time, search, stories
from opensentiment_pipeline.dashboard.search_engine import SearchEngine
from opensentiment_pipeline.dashboard.store import ResultsStore

logger = logging.getLogger(__name__)
ASSETS_DIR = Path(__file__).parent / "assets"
DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"
DEFAULT_MLFLOW_URL = "http://127.0.0.1:5000"
PAGES = (outlets, stories, over_time, search, model)


def context_for(home: str | os.PathLike, *, dagster_url: str | None = None,
                mlflow_url: str | None = None) -> DashboardContext:
    """The dashboard's view of a project home: results.duckdb and index/, and where the other UIs run
    (`$DAGSTER_UI_URL`, `$MLFLOW_UI_URL`, else their local defaults)."""
    home = Path(home).expanduser().absolute()
    return DashboardContext(store=ResultsStore.at_home(home), index_dir=home / "index",
                            dagster_url=dagster_url or os.environ.get("DAGSTER_UI_URL", DEFAULT_DAGSTER_URL),
                            mlflow_url=mlflow_url or os.environ.get("MLFLOW_UI_URL", DEFAULT_MLFLOW_URL))


def create_app(ctx: DashboardContext) -> Dash:
    """The dashboard over `ctx`; nothing is read until a page is opened."""
    app = Dash(__name__, title="opensentiment", serve_locally=True, assets_folder=str(ASSETS_DIR),
               suppress_callback_exceptions=True, update_title=None)
    engine = SearchEngine(ctx.index_dir)
    layouts = {page.PATH: page.layout for page in PAGES if page is not search}
    layouts[search.PATH] = search.layout_for(engine)
    app.layout = html.Div([
        dcc.Location(id="url"),
        html.Nav(className="nav", children=[
            html.Span("opensentiment", className="brand"),
            dcc.Link("Overview", href="/"),
            *[dcc.Link(page.TITLE, href=page.PATH, id=f"nav-{page.PATH.strip('/')}") for page in PAGES],
            html.A("Dagster UI", href=ctx.dagster_url, target="_blank", className="external"),
            html.A("MLflow UI", href=ctx.mlflow_url, target="_blank", className="external"),
        ]),
        html.Main(id="page"),
    ])

    @app.callback(Output("page", "children"), Input("url", "pathname"))
    def show(path):
        if path in (None, "", "/"):
            return overview(ctx)
        build = layouts.get(path.rstrip("/"))
        if build is None:
            return html.Div(className="notice info", children=[f"no page {path}; pick one above"])
        return build(ctx)

    outlets.register(app, ctx)
    stories.register(app, ctx)
    over_time.register(app, ctx)
    search.register(app, ctx, engine)
    return app


@ui.page_guard
def overview(ctx: DashboardContext) -> html.Div:
    """Every table in the results database, with its asset and row count, and how to query it with SQL."""
    catalog = ctx.store.catalog()
    refreshed = catalog["refreshed_at"].iloc[0] if len(catalog) else "never"
    path = shown_path(ctx.store.path)
    return html.Div([
        html.H2("Overview"),
        html.P(["The results database ", html.Code(path), f" was refreshed at {refreshed}. "
                "Query it with any DuckDB client opened read-only, e.g. ",
                html.Code(f"python -c \"import duckdb; print(duckdb.connect('{path}', read_only=True)"
                          f".sql('SELECT * FROM results_db_tables'))\""), "."]),
        ui.table(catalog[["table_name", "asset", "kind", "rows"]], table_id="overview-tables",
                 links={"asset": lambda row: ctx.dagster_asset_url(row["asset"])}),
    ])


def shown_path(path: Path) -> str:
    """`path` relative to the working directory when it lies inside it (as `make dashboard` runs), else absolute."""
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else str(path)


def serve(home: str | os.PathLike, *, host: str, port: int, dagster_url: str | None = None,
          mlflow_url: str | None = None) -> None:
    """Run the dashboard until interrupted (Flask's threaded server: one researcher or a small team)."""
    ctx = context_for(home, dagster_url=dagster_url, mlflow_url=mlflow_url)
    logger.info("dashboard over %s on http://%s:%d", ctx.store.path, host, port)
    create_app(ctx).run(host=host, port=port, debug=False)
