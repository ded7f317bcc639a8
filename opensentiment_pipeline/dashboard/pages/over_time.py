"""Over-time page, over `sentiment_trends` (and `entity_sentiment`): volume and net sentiment by week per outlet and
topic or entity. Until those tables are materialized the page says how to make them.

With columns week, outlet and net_sentiment (and net_sentiment_low / _high for its interval) it draws one line per
outlet; otherwise it shows the table as stored."""

from __future__ import annotations

import plotly.graph_objects as go
from dash import dcc, html

from opensentiment_pipeline.dashboard import components as ui
from opensentiment_pipeline.dashboard.components import DashboardContext
from opensentiment_pipeline.dashboard.store import MissingAsset

PATH = "/over-time"
TITLE = "Over time"
TREND_COLUMNS = ("week", "outlet", "net_sentiment")


@ui.page_guard
def layout(ctx: DashboardContext) -> html.Div:
    store = ctx.store
    if not store.has("sentiment_trends"):
        raise MissingAsset("sentiment_trends")
    trends = store.query('SELECT * FROM "sentiment_trends"')
    parts = [html.H2(TITLE)]
    if all(c in trends.columns for c in TREND_COLUMNS):
        parts.append(dcc.Graph(figure=trend_figure(trends), config={"displaylogo": False}))
    parts += [html.H3("Weekly table"), ui.table(trends, table_id="trends-table")]
    if store.has("entity_sentiment"):
        parts += [html.H3("Entities"), ui.table(store.query('SELECT * FROM "entity_sentiment"'),
                                                table_id="entity-table")]
    else:
        parts.append(ui.notice(MissingAsset("entity_sentiment")))
    return html.Div(parts)


def trend_figure(trends) -> go.Figure:
    fig = go.Figure()
    weekly = trends.groupby(["outlet", "week"], as_index=False).mean(numeric_only=True).sort_values("week")
    for outlet, part in weekly.groupby("outlet"):
        band = {}
        if {"net_sentiment_low", "net_sentiment_high"} <= set(part.columns):
            band = {"error_y": {"type": "data", "symmetric": False,
                                "array": part["net_sentiment_high"] - part["net_sentiment"],
                                "arrayminus": part["net_sentiment"] - part["net_sentiment_low"]}}
        fig.add_trace(go.Scatter(x=part["week"], y=part["net_sentiment"], mode="lines+markers", name=str(outlet),
                                 **band))
    fig.update_layout(height=460, yaxis={"title": "net sentiment (positive - negative share)"})
    return fig
