"""Outlets page: the bias axis with intervals, the outlet map (coloured by outlet, leaning, sentiment or cluster),
outlet similarity, and a per-outlet table; filtered by date range, source and outlet."""

from __future__ import annotations

import plotly.graph_objects as go
from dash import Input, Output, dcc, html

from opensentiment_pipeline.dashboard import components as ui
from opensentiment_pipeline.dashboard.components import DashboardContext, UserFacingError
from opensentiment_pipeline.dashboard.store import MissingAsset

PATH = "/outlets"
TITLE = "Outlets"
LEANING_COLUMNS = ["outlet", "n_articles", "score", "score_low", "score_high", "label", "reference_leaning"]
POINT_COLUMNS = ["article_id", "outlet", "x", "y", "cluster", "title", "sentiment"]
MAX_MAP_POINTS = 10_000  # a browser draws more, but the page's first render then grows past a few seconds
COLOR_BY = ("outlet", "leaning", "sentiment", "cluster")
MAX_LEGEND_GROUPS = 25  # more colour groups than this share one trace without a legend
# The articles the outlet analysis read: the embedded ones (sentence-level sources are ingested but not embedded).
ANALYSED = "raw_articles r JOIN article_embeddings e USING (article_id)"


@ui.page_guard
def layout(ctx: DashboardContext) -> html.Div:
    store = ctx.store
    store.require("raw_articles", asset="raw_articles", columns=["article_id", "outlet", "published_at", "source"])
    store.require("article_embeddings", asset="article_embeddings", columns=["article_id", "sentiment"])
    # One scan gives the filters' choices and the date picker's bounds.
    choices = store.query(f"SELECT r.source, r.outlet, min(r.published_at)::DATE AS first, "
                          f"max(r.published_at)::DATE AS last FROM {ANALYSED} GROUP BY r.source, r.outlet")
    return html.Div([
        html.H2(TITLE),
        html.Div(className="filters", children=[
            html.Label(["Published", dcc.DatePickerRange(
                id="outlets-dates", min_date_allowed=choices["first"].min(), max_date_allowed=choices["last"].max(),
                start_date=choices["first"].min(), end_date=choices["last"].max(), display_format="YYYY-MM-DD",
                clearable=True)]),
            html.Label(["Source", dcc.Dropdown(id="outlets-source", multi=True, placeholder="all sources",
                                               options=sorted(choices["source"].dropna().unique()))]),
            html.Label(["Outlet", dcc.Dropdown(id="outlets-outlet", multi=True, placeholder="all outlets",
                                               options=sorted(choices["outlet"].dropna().unique()))]),
            html.Label(["Colour the map by", dcc.RadioItems(id="outlets-color", options=list(COLOR_BY),
                                                            value="outlet", inline=True)]),
        ]),
        html.Div(id="outlets-summary"),
        html.H3("Bias axis"), html.Div(id="outlets-axis"),
        html.H3("Outlet map"), html.Div(id="outlets-map"),
        html.H3("Outlet similarity"), html.Div(id="outlets-similarity"),
        html.P(["Computed by ", html.A("outlet_leaning", href=ctx.dagster_asset_url("outlet_leaning"),
                                       target="_blank"),
                " and ", html.A("outlet_clusters", href=ctx.dagster_asset_url("outlet_clusters"), target="_blank"),
                " (Dagster)."], className="note"),
    ])


def register(app, ctx: DashboardContext) -> None:
    inputs = [Input("outlets-dates", "start_date"), Input("outlets-dates", "end_date"),
              Input("outlets-source", "value"), Input("outlets-outlet", "value")]

    @app.callback(Output("outlets-summary", "children"), *inputs)
    @ui.guarded()
    def summary(start, end, sources, outlets):
        return outlet_table(ctx, start, end, sources, outlets)

    @app.callback(Output("outlets-axis", "children"), Input("outlets-outlet", "value"))
    @ui.guarded()
    def axis(outlets):
        return dcc.Graph(id="outlets-axis-graph", figure=axis_figure(ctx, outlets), config={"displaylogo": False})

    @app.callback(Output("outlets-map", "children"), *inputs, Input("outlets-color", "value"))
    @ui.guarded()
    def outlet_map(start, end, sources, outlets, color):
        return map_view(ctx, start, end, sources, outlets, color)

    @app.callback(Output("outlets-similarity", "children"), Input("outlets-outlet", "value"))
    @ui.guarded()
    def similarity(outlets):
        return dcc.Graph(figure=similarity_figure(ctx, outlets), config={"displaylogo": False})


def _article_filter(start, end, sources, outlets, prefix: str = "r.") -> tuple[str, list]:
    return ui.where(ui.date_filter(start, end, f"{prefix}published_at"), ui.in_filter(f"{prefix}source", sources),
                    ui.in_filter(f"{prefix}outlet", outlets))


def outlet_table(ctx: DashboardContext, start, end, sources, outlets) -> html.Div:
    """Articles and predicted sentiment shares per outlet in the filter, beside its place on the bias axis."""
    store = ctx.store
    condition, params = _article_filter(start, end, sources, outlets)
    frame = store.query(
        "SELECT r.outlet, count(*) AS articles, avg(CASE WHEN e.sentiment = 'negative' THEN 1 ELSE 0 END) AS negative, "
        "avg(CASE WHEN e.sentiment = 'neutral' THEN 1 ELSE 0 END) AS neutral, "
        "avg(CASE WHEN e.sentiment = 'positive' THEN 1 ELSE 0 END) AS positive, "
        "min(r.published_at)::DATE::VARCHAR AS first_day, max(r.published_at)::DATE::VARCHAR AS last_day "
        f"FROM {ANALYSED}"
        + (f" WHERE {condition}" if condition else "") + " GROUP BY r.outlet ORDER BY articles DESC, r.outlet",
        params)
    if frame.empty:
        raise UserFacingError(f"no articles match these filters (published {start or 'any time'} to "
                              f"{end or 'any time'}); widen the date range or clear the source and outlet filters")
    if store.has("outlet_leaning"):
        leaning = store.table("outlet_leaning", asset="outlet_leaning", columns=["outlet", "score", "label"])
        frame = frame.merge(leaning.rename(columns={"score": "leaning_score", "label": "leaning"}), on="outlet",
                            how="left")
    total = int(frame["articles"].sum())
    return html.Div([html.P(f"{total} articles from {len(frame)} outlets", id="outlets-count"),
                     ui.table(frame, table_id="outlets-table")])


def axis_figure(ctx: DashboardContext, outlets) -> go.Figure:
    """Each outlet's score with its 95 % interval, coloured by its label; the reference rating as a marker."""
    frame = ctx.store.table("outlet_leaning", asset="outlet_leaning", columns=LEANING_COLUMNS, order_by="score")
    if outlets:
        frame = frame[frame["outlet"].isin(outlets)]
    fig = go.Figure()
    for label, part in frame.groupby(frame["label"].fillna("unlabelled"), sort=True):
        fig.add_trace(go.Scatter(
            x=part["score"], y=part["outlet"], mode="markers", name=str(label), marker={"size": 10},
            error_x={"type": "data", "symmetric": False, "array": part["score_high"] - part["score"],
                     "arrayminus": part["score"] - part["score_low"]},
            customdata=part[["n_articles", "reference_leaning"]].fillna("none").to_numpy(),
            hovertemplate="%{y}: %{x:.2f}<br>articles %{customdata[0]}<br>reference %{customdata[1]}<extra></extra>"))
    rated = frame[frame["reference_leaning"].notna()]
    if len(rated):
        position = rated["reference_leaning"].map({"left": -1.0, "center": 0.0, "right": 1.0})
        fig.add_trace(go.Scatter(x=position, y=rated["outlet"], mode="markers", name="reference rating",
                                 marker={"symbol": "x", "size": 9, "color": "black"}))
    # Without reference ratings outlet_leaning places outlets on their first principal axis: no labels, no sides.
    rated_axis = frame["label"].notna().any()
    title = "leaning (-1 left .. +1 right)" if rated_axis else "principal axis 1 (no ratings; sign arbitrary)"
    fig.update_layout(height=max(300, 28 * len(frame) + 120), margin={"l": 160, "r": 20, "t": 30, "b": 40},
                      xaxis={"title": title, "range": [-1.1, 1.1]}, showlegend=bool(rated_axis or len(rated)),
                      yaxis={"categoryorder": "array", "categoryarray": frame["outlet"].tolist()})
    return fig


def map_view(ctx: DashboardContext, start, end, sources, outlets, color: str) -> html.Div:
    store = ctx.store
    store.require("outlet_clusters", asset="outlet_clusters", columns=POINT_COLUMNS)
    condition, params = _article_filter(start, end, sources, outlets)
    points = store.query("SELECT c.article_id, c.outlet, c.x, c.y, c.cluster, c.title, c.sentiment "
                         "FROM outlet_clusters c JOIN raw_articles r USING (article_id)"
                         + (f" WHERE {condition}" if condition else ""), params)
    count = len(points)
    if count == 0:
        raise UserFacingError("no mapped article matches these filters; widen the date range or clear the filters")
    if count > MAX_MAP_POINTS:  # a fixed-seed sample keeps the page quick on large stores; the note says so
        points = points.sample(MAX_MAP_POINTS, random_state=7).reset_index(drop=True)
    if color == "leaning":
        if not store.has("outlet_leaning"):
            raise UserFacingError("colouring by leaning needs outlet_leaning: "
                                  + str(MissingAsset("outlet_leaning")))
        labels = store.table("outlet_leaning", asset="outlet_leaning", columns=["outlet", "label"])
        points = points.merge(labels.rename(columns={"label": "leaning"}), on="outlet", how="left")
    points["cluster"] = points["cluster"].astype(str)
    groups = points[color].fillna("none").astype(str)
    text = points["title"].fillna("") + " (" + points["outlet"] + ", " + points["sentiment"].fillna("") + ")"
    fig = go.Figure()
    if groups.nunique() <= MAX_LEGEND_GROUPS:
        for value, rows in groups.groupby(groups, sort=True).groups.items():
            fig.add_trace(go.Scattergl(x=points.loc[rows, "x"], y=points.loc[rows, "y"], mode="markers", name=value,
                                       marker={"size": 5}, text=text[rows], hovertemplate="%{text}<extra></extra>"))
    else:  # one trace: a browser draws hundreds of WebGL traces (one per outlet) several times slower
        codes = groups.astype("category").cat.codes
        fig.add_trace(go.Scattergl(x=points["x"], y=points["y"], mode="markers", text=text,
                                   marker={"size": 4, "color": codes, "colorscale": "Turbo"},
                                   hovertemplate="%{text}<extra></extra>", showlegend=False))
    fig.update_layout(height=560, margin={"l": 20, "r": 20, "t": 30, "b": 20}, legend={"title": color},
                      xaxis={"showticklabels": False}, yaxis={"showticklabels": False})
    shown = f"{len(points)} of {count}" if count > len(points) else f"{count}"
    return html.Div([html.P(f"{shown} articles; nearby points have similar topics", className="note"),
                     dcc.Graph(id="outlets-map-graph", figure=fig, config={"displaylogo": False})])


def similarity_figure(ctx: DashboardContext, outlets) -> go.Figure:
    """Cosine similarity of the outlets' mean topic vectors, in the outlet map's dendrogram order when stored."""
    store = ctx.store
    name = "outlet_clusters__outlet_similarity"
    if not store.has(name):
        raise MissingAsset("outlet_clusters", name)
    frame = store.query(f'SELECT * FROM "{name}"').set_index("outlet")
    frame.columns = [str(c) for c in frame.columns]
    if outlets:
        keep = [o for o in frame.index if o in set(outlets)]
        frame = frame.loc[keep, keep]
    order = _dendrogram_order(store, list(frame.index))
    frame = frame.loc[order, order]
    fig = go.Figure(go.Heatmap(z=frame.to_numpy(), x=order, y=order, colorscale="Viridis",
                               hovertemplate="%{y} ~ %{x}: %{z:.3f}<extra></extra>"))
    fig.update_layout(height=max(320, 22 * len(order) + 160), margin={"l": 160, "r": 20, "t": 30, "b": 120},
                      yaxis={"autorange": "reversed"})
    return fig


def _dendrogram_order(store, outlets: list[str]) -> list[str]:
    name = "outlet_clusters__outlets"
    if not store.has(name) or "outlet_group" not in store.columns(name):
        return outlets
    groups = store.query(f'SELECT outlet, outlet_group FROM "{name}"')
    order = groups.sort_values(["outlet_group", "outlet"])["outlet"].tolist()
    return [o for o in order if o in set(outlets)] + [o for o in outlets if o not in set(order)]

