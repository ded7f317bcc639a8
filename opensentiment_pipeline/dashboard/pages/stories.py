"""Stories page, over the `stories` and `outlet_agreement` tables: the newest and the biggest stories, each one's
coverage by leaning, and how outlets agree. Until `stories` is materialized the page says how to make it.

The page reads whatever columns the tables have: it sorts by the first time column and by an article count when
there is one, and draws a coverage bar from columns named left/center/right (counts or shares)."""

from __future__ import annotations

import plotly.graph_objects as go
from dash import dcc, html

from opensentiment_pipeline.dashboard import components as ui
from opensentiment_pipeline.dashboard.components import DashboardContext
from opensentiment_pipeline.dashboard.store import MissingAsset

PATH = "/stories"
TITLE = "Stories"
COUNT_COLUMNS = ("n_articles", "num_articles", "articles", "size")
LEANINGS = ("left", "center", "right")


@ui.page_guard
def layout(ctx: DashboardContext) -> html.Div:
    store = ctx.store
    if not store.has("stories"):
        raise MissingAsset("stories")
    stories = store.query('SELECT * FROM "stories"')
    times = [c for c in stories.columns if str(stories[c].dtype).startswith("datetime")]
    count = next((c for c in COUNT_COLUMNS if c in stories.columns), None)
    parts = [html.H2(TITLE), html.P(f"{len(stories)} stories", className="note")]
    if times:
        parts += [html.H3("Newest"), ui.table(stories.sort_values(times[0], ascending=False).head(20),
                                              table_id="stories-newest")]
    if count:
        biggest = stories.sort_values(count, ascending=False).head(20)
        parts += [html.H3("Biggest"), ui.table(biggest, table_id="stories-biggest")]
        if all(side in stories.columns for side in LEANINGS):
            parts.append(dcc.Graph(figure=coverage_figure(biggest), config={"displaylogo": False}))
    if not times and not count:
        parts.append(ui.table(stories, table_id="stories-table"))
    if store.has("outlet_agreement"):
        parts += [html.H3("Outlet agreement"),
                  ui.table(store.query('SELECT * FROM "outlet_agreement"'), table_id="stories-agreement")]
    else:
        parts.append(ui.notice(MissingAsset("outlet_agreement")))
    return html.Div(parts)


def coverage_figure(stories) -> go.Figure:
    label = next((c for c in ("title", "headline", "story_id") if c in stories.columns), stories.columns[0])
    fig = go.Figure([go.Bar(y=stories[label].astype(str), x=stories[side], name=side, orientation="h")
                     for side in LEANINGS])
    fig.update_layout(barmode="stack", height=max(300, 24 * len(stories) + 100), margin={"l": 240, "t": 30},
                      xaxis={"title": "coverage by leaning"})
    return fig
