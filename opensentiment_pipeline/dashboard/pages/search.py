"""Search page: a query box with outlet, sentiment and date filters over the article_index; each result has its
similarity score and a "more like this" button that searches with that article's own vector."""

from __future__ import annotations

import pandas as pd
from dash import ALL, Input, Output, State, callback_context, dcc, html, no_update

from opensentiment_pipeline.core.schema import SENTIMENT_LABELS
from opensentiment_pipeline.dashboard import components as ui
from opensentiment_pipeline.dashboard.components import DashboardContext, UserFacingError
from opensentiment_pipeline.dashboard.search_engine import SearchEngine

PATH = "/search"
TITLE = "Search"
SENTIMENTS = SENTIMENT_LABELS
K_CHOICES = (5, 10, 20, 50)


def layout_for(engine: SearchEngine):
    @ui.page_guard
    def layout(ctx: DashboardContext) -> html.Div:
        articles = engine.loaded().articles
        days = pd.to_datetime(articles["published_at"], utc=True).dropna()
        first, last = (days.min().date(), days.max().date()) if len(days) else (None, None)
        return html.Div([
            html.H2(TITLE),
            html.Div(className="filters", children=[
                dcc.Input(id="search-query", type="text", placeholder="a phrase, a headline or a paragraph",
                          debounce=True, style={"width": "32em"}),
                html.Button("Search", id="search-go", n_clicks=0),
                html.Label(["Results", dcc.Dropdown(id="search-k", options=list(K_CHOICES), value=10,
                                                    clearable=False, style={"width": "6em"})]),
                html.Label(["Outlet", dcc.Dropdown(id="search-outlet", multi=True, placeholder="all outlets",
                                                   options=sorted(articles["outlet"].dropna().unique()))]),
                html.Label(["Sentiment", dcc.Checklist(id="search-sentiment", options=list(SENTIMENTS), value=[],
                                                       inline=True)]),
                html.Label(["Published", dcc.DatePickerRange(id="search-dates", min_date_allowed=first,
                                                             max_date_allowed=last, display_format="YYYY-MM-DD",
                                                             clearable=True)]),
            ]),
            html.P(f"{len(articles)} articles in the index; similarity is the cosine of the topic vectors.",
                   className="note"),
            dcc.Loading(html.Div(id="search-results")),
        ])
    return layout


def register(app, ctx: DashboardContext, engine: SearchEngine) -> None:
    @app.callback(Output("search-results", "children"),
                  Input("search-go", "n_clicks"), Input("search-query", "n_submit"),
                  Input({"type": "more-like", "article": ALL}, "n_clicks"),
                  State("search-query", "value"), State("search-k", "value"), State("search-outlet", "value"),
                  State("search-sentiment", "value"), State("search-dates", "start_date"),
                  State("search-dates", "end_date"), prevent_initial_call=True)
    @ui.guarded()
    def results(_clicks, _submit, more_clicks, query, k, outlets, sentiments, start, end):
        trigger = callback_context.triggered_id
        filters = {"outlets": outlets, "sentiments": sentiments, "start": start, "end": end}
        if isinstance(trigger, dict) and trigger.get("type") == "more-like":
            if not any(more_clicks or []):  # the buttons were just drawn, not clicked
                return no_update
            article = trigger["article"]
            hits = engine.search(engine.vector_of(article), int(k or 10), exclude=article, **filters)
            title = engine.loaded().articles.loc[article, "title"]
            heading = f"More like: {title or article}"
        else:
            text = (query or "").strip()
            if not text:
                raise UserFacingError("type a query first: a phrase, a headline or a paragraph")
            hits = engine.search(engine.embed(text), int(k or 10), **filters)
            heading = f"Results for “{text}”"
        if hits.empty:
            raise UserFacingError("no article in the index matches these filters (outlet, sentiment, dates); "
                                  "widen them and search again")
        return html.Div([html.H3(heading), result_list(hits)])


def result_list(hits: pd.DataFrame) -> html.Ol:
    items = []
    for row in hits.itertuples():
        day = pd.Timestamp(row.published_at).strftime("%Y-%m-%d") if pd.notna(row.published_at) else "undated"
        items.append(html.Li(className="hit", **{"data-article": str(row.article_id)}, children=[
            html.Div([html.Strong(row.title or row.article_id, className="hit-title"),
                      html.Span(f"  similarity {row.similarity:.3f}", className="score")]),
            html.Div(f"{row.outlet} · {day} · {row.sentiment} ({row.sentiment_confidence:.2f}) · {row.source}",
                     className="note"),
            html.Div(row.snippet, className="snippet"),
            html.Button("more like this", id={"type": "more-like", "article": str(row.article_id)}, n_clicks=0,
                        className="more-like"),
        ]))
    return html.Ol(items, id="search-hits")

