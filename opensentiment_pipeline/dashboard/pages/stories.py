"""Stories page, over `stories` (one row per story and outlet) and `outlet_agreement`: the newest and the biggest
stories with their coverage by leaning, blindspots, each outlet's sentiment and distinctive words on a chosen
story, and how often outlet pairs cover the same stories. Until `stories` is materialized the page says how."""

from __future__ import annotations

import plotly.graph_objects as go
from dash import Input, Output, dcc, html

from opensentiment_pipeline.dashboard import components as ui
from opensentiment_pipeline.dashboard.components import DashboardContext

PATH = "/stories"
TITLE = "Stories"
STORY_COLUMNS = ["story_id", "headline", "keywords", "first_day", "last_day", "n_articles", "n_outlets",
                 "share_left", "share_center", "share_right", "blindspot"]
OUTLET_COLUMNS = ["story_id", "outlet", "outlet_leaning", "outlet_articles", "sentiment", "sentiment_low",
                  "sentiment_high", "outlet_words"]
AGREEMENT_COLUMNS = ["outlet_a", "outlet_b", "shared_stories", "coverage_jaccard", "sentiment_closeness"]
SHOWN = 10  # stories per list


@ui.page_guard
def layout(ctx: DashboardContext) -> html.Div:
    stories = story_rows(ctx)
    newest = stories.sort_values(["last_day", "n_articles"], ascending=False).head(SHOWN)
    biggest = stories.sort_values(["n_articles", "last_day"], ascending=False).head(SHOWN)
    blind = stories[stories["blindspot"].fillna("").astype(str) != ""].sort_values("n_articles", ascending=False)
    columns = ["headline", "first_day", "last_day", "n_articles", "n_outlets", "blindspot"]
    options = [{"label": f"{r.headline} ({r.n_articles} articles)", "value": str(r.story_id)}
               for r in stories.sort_values("n_articles", ascending=False).head(200).itertuples()]
    return html.Div([
        html.H2(TITLE),
        html.P(f"{len(stories)} stories; coverage shares are of the outlets with a leaning.", className="note"),
        html.H3("Newest"), ui.table(newest[columns], table_id="stories-newest"),
        html.H3("Biggest"), ui.table(biggest[columns], table_id="stories-biggest"),
        dcc.Graph(figure=coverage_figure(biggest), config={"displaylogo": False})
        if biggest[["share_left", "share_center", "share_right"]].notna().any().any()
        else html.P("no covering outlet has a leaning (a rating or the bias axis' label), so there is no coverage "
                    "by leaning", className="note"),
        html.H3("Blindspots (one side barely covered it)"),
        ui.table(blind[columns], table_id="stories-blindspots", max_rows=20) if len(blind)
        else html.P("no story has a blindspot", className="note"),
        html.H3("One story, outlet by outlet"),
        dcc.Dropdown(id="stories-story", options=options, value=options[0]["value"] if options else None,
                     clearable=False),
        html.Div(id="stories-outlets"),
        html.H3("Outlet agreement"), html.Div(agreement_view(ctx)),
    ])


def register(app, ctx: DashboardContext) -> None:
    @app.callback(Output("stories-outlets", "children"), Input("stories-story", "value"))
    @ui.guarded()
    def outlets(story_id):
        rows = ctx.store.table("stories", asset="stories", columns=OUTLET_COLUMNS, where="CAST(story_id AS VARCHAR) = ?",
                               params=[str(story_id)], order_by="sentiment")
        rows = rows.assign(sentiment_95=[f"{s:.2f} ({lo:.2f} to {hi:.2f})" for s, lo, hi in
                                         zip(rows["sentiment"], rows["sentiment_low"], rows["sentiment_high"])])
        return ui.table(rows[["outlet", "outlet_leaning", "outlet_articles", "sentiment_95", "outlet_words"]],
                        table_id="stories-outlet-table")


def story_rows(ctx: DashboardContext):
    """One row per story (the story columns repeat on each of its outlets' rows)."""
    frame = ctx.store.table("stories", asset="stories", columns=STORY_COLUMNS).drop_duplicates("story_id")
    return frame.assign(first_day=frame["first_day"].astype(str).str.slice(0, 10),
                        last_day=frame["last_day"].astype(str).str.slice(0, 10))


def coverage_figure(stories) -> go.Figure:
    labels = stories["headline"].astype(str).str.slice(0, 60)
    fig = go.Figure([go.Bar(y=labels, x=stories[f"share_{side}"], name=side, orientation="h")
                     for side in ("left", "center", "right")])
    fig.update_layout(barmode="stack", height=max(300, 28 * len(stories) + 100), margin={"l": 360, "t": 30},
                      xaxis={"title": "coverage by leaning (share of rated outlets)", "range": [0, 1]},
                      yaxis={"autorange": "reversed"})
    return fig


def agreement_view(ctx: DashboardContext):
    try:
        pairs = ctx.store.table("outlet_agreement", asset="outlet_agreement", columns=AGREEMENT_COLUMNS,
                                order_by="coverage_jaccard DESC")
    except (ui.MissingAsset, ui.OutdatedTable) as err:
        return ui.notice(err)
    return ui.table(pairs, table_id="stories-agreement", max_rows=30)
