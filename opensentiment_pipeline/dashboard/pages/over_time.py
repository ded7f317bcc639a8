"""Over-time page, over `sentiment_trends` (one row per kind x outlet x key x week): the weekly volume and net
sentiment, with its 95 % interval, of each outlet on one entity or one map topic. Until it is materialized the
page says how."""

from __future__ import annotations

import plotly.colors
import plotly.graph_objects as go
from dash import Input, Output, dcc, html
from plotly.subplots import make_subplots

from opensentiment_pipeline.dashboard import components as ui
from opensentiment_pipeline.dashboard.components import DashboardContext, UserFacingError

PATH = "/over-time"
TITLE = "Over time"
TREND_COLUMNS = ["kind", "outlet", "key", "week", "volume", "net_sentiment", "net_low", "net_high"]
TOP_KEYS = 50  # keys offered per kind, by volume


@ui.page_guard
def layout(ctx: DashboardContext) -> html.Div:
    ctx.store.require("sentiment_trends", asset="sentiment_trends", columns=TREND_COLUMNS)
    keys = ctx.store.query('SELECT kind, key, sum(volume) AS volume FROM "sentiment_trends" GROUP BY kind, key '
                           "ORDER BY volume DESC")
    kinds = sorted(keys["kind"].unique())
    if not kinds:
        raise UserFacingError("sentiment_trends is empty: no entity mention or map topic has a week yet")
    outlets = ctx.store.query('SELECT DISTINCT outlet FROM "sentiment_trends" ORDER BY outlet')["outlet"].tolist()
    first = keys[keys["kind"] == kinds[0]]
    return html.Div([
        html.H2(TITLE),
        html.Div(className="filters", children=[
            html.Label(["Kind", dcc.RadioItems(id="trends-kind", options=kinds, value=kinds[0], inline=True)]),
            html.Label(["Entity or topic", dcc.Dropdown(id="trends-key", options=first["key"].head(TOP_KEYS).tolist(),
                                                        value=first["key"].iloc[0], clearable=False)]),
            html.Label(["Outlet", dcc.Dropdown(id="trends-outlet", multi=True, placeholder="all outlets",
                                               options=outlets)]),
        ]),
        html.Div(id="trends-figure"),
        html.P("Net sentiment = positive share - negative share of the week's mentions (entities) or articles "
               "(topics: the outlet map's clusters), with a bootstrap 95 % interval.", className="note"),
    ])


def register(app, ctx: DashboardContext) -> None:
    @app.callback(Output("trends-key", "options"), Output("trends-key", "value"), Input("trends-kind", "value"),
                  prevent_initial_call=True)
    def keys(kind):
        frame = ctx.store.query('SELECT key, sum(volume) AS volume FROM "sentiment_trends" WHERE kind = ? '
                                "GROUP BY key ORDER BY volume DESC", [kind])
        options = frame["key"].head(TOP_KEYS).tolist()
        return options, options[0] if options else None

    @app.callback(Output("trends-figure", "children"), Input("trends-kind", "value"), Input("trends-key", "value"),
                  Input("trends-outlet", "value"))
    @ui.guarded()
    def figure(kind, key, outlets):
        condition, params = ui.where(("kind = ? AND key = ?", [kind, key]), ui.in_filter("outlet", outlets))
        rows = ctx.store.table("sentiment_trends", asset="sentiment_trends", columns=TREND_COLUMNS, where=condition,
                               params=params, order_by="week")
        if rows.empty:
            raise UserFacingError(f"no week of {kind} {key!r} for these outlets; pick other outlets or clear them")
        return dcc.Graph(id="trends-graph", figure=trend_figure(rows), config={"displaylogo": False})


def trend_figure(rows) -> go.Figure:
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.06)
    palette = plotly.colors.qualitative.Plotly
    for n, (outlet, part) in enumerate(rows.groupby("outlet", sort=True)):
        color = palette[n % len(palette)]  # the outlet's line and its volume bars share one colour
        fig.add_trace(go.Scatter(x=part["week"], y=part["net_sentiment"], mode="lines+markers", name=str(outlet),
                                 legendgroup=str(outlet), line={"color": color},
                                 error_y={"type": "data", "symmetric": False,
                                          "array": part["net_high"] - part["net_sentiment"],
                                          "arrayminus": part["net_sentiment"] - part["net_low"]}), row=1, col=1)
        fig.add_trace(go.Bar(x=part["week"], y=part["volume"], name=str(outlet), legendgroup=str(outlet),
                             marker={"color": color}, showlegend=False), row=2, col=1)
    fig.update_layout(height=560, barmode="stack", margin={"t": 30})
    fig.update_yaxes(title_text="net sentiment", range=[-1.05, 1.05], row=1, col=1)
    fig.update_yaxes(title_text="volume", row=2, col=1)
    return fig
