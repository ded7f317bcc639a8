"""Pieces every page uses: the context (store, index, links), notices for missing or outdated tables, tables,
and `guarded`, which turns a problem the user can fix into a message instead of a failed callback."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from dash import html

from opensentiment_pipeline.dashboard.store import MissingAsset, OutdatedTable, ResultsStore, StoreBusy

logger = logging.getLogger(__name__)
MAX_TABLE_ROWS = 50  # each cell is a React component: thousands of them take the browser seconds


@dataclass(frozen=True)
class DashboardContext:
    """What the pages read, and where the other UIs are."""

    store: ResultsStore
    index_dir: Path
    dagster_url: str
    mlflow_url: str

    def dagster_asset_url(self, asset: str) -> str:
        return f"{self.dagster_url.rstrip('/')}/assets/{asset}"

    def mlflow_run_url(self, experiment_id: str | None, run_id: str) -> str:
        base = self.mlflow_url.rstrip("/")
        return f"{base}/#/experiments/{experiment_id}/runs/{run_id}" if experiment_id else f"{base}/#/runs/{run_id}"


class UserFacingError(ValueError):
    """Bad input the page explains (an empty query, a date range with no articles)."""


def notice(error: Exception) -> html.Div:
    """A message for a missing asset, an outdated table, a busy store or bad input."""
    if isinstance(error, MissingAsset):
        return html.Div(className="notice missing", **{"data-asset": error.asset}, children=[
            html.Strong(f"asset {error.asset} has not been materialized"),
            html.Span(": run "), html.Code(error.command)])
    if isinstance(error, OutdatedTable):
        return html.Div(className="notice outdated", **{"data-asset": error.asset}, children=[str(error)])
    return html.Div(className="notice info", children=[str(error)])


def guarded(n_outputs: int = 1) -> Callable:
    """Decorate a callback so MissingAsset, OutdatedTable, StoreBusy and UserFacingError become a notice in its
    first output (the others are left empty); any other exception propagates, as a real bug should."""

    def wrap(callback: Callable) -> Callable:
        @functools.wraps(callback)
        def run(*args, **kwargs):
            try:
                return callback(*args, **kwargs)
            except (MissingAsset, OutdatedTable, StoreBusy, UserFacingError) as err:
                logger.info("%s: %s", callback.__name__, err)
                shown = notice(err)
                return shown if n_outputs == 1 else (shown, *([None] * (n_outputs - 1)))
        return run

    return wrap


def page_guard(build: Callable[[DashboardContext], object]) -> Callable[[DashboardContext], object]:
    """The same for a page's layout function."""

    @functools.wraps(build)
    def run(ctx: DashboardContext):
        try:
            return build(ctx)
        except (MissingAsset, OutdatedTable, StoreBusy, UserFacingError) as err:
            return notice(err)
    return run


def table(frame: pd.DataFrame, *, table_id: str, links: dict[str, Callable[[pd.Series], str]] | None = None,
          max_rows: int = MAX_TABLE_ROWS) -> html.Div:
    """An HTML table of `frame` (at most `max_rows` rows, with a note when cut). `links` maps a column to a
    function of the row that gives the URL the cell links to."""
    links = links or {}
    shown = frame.head(max_rows)
    head = html.Thead(html.Tr([html.Th(c) for c in shown.columns]))
    body = html.Tbody([html.Tr([html.Td(_cell(row, col, links)) for col in shown.columns])
                       for _, row in shown.iterrows()])
    note = [html.P(f"first {max_rows} of {len(frame)} rows", className="note")] if len(frame) > max_rows else []
    return html.Div([html.Table([head, body], id=table_id, className="results"), *note])


def _cell(row: pd.Series, column: str, links: dict) -> object:
    value = row[column]
    text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else (
        f"{value:.3f}" if isinstance(value, float) else str(value))
    return html.A(text, href=links[column](row), target="_blank") if column in links else text


def date_filter(start: str | None, end: str | None, column: str = "published_at") -> tuple[str, list]:
    """SQL condition and params for a date range; either end may be open."""
    clauses, params = [], []
    if start:
        clauses.append(f"CAST({column} AS DATE) >= CAST(? AS DATE)")
        params.append(str(start)[:10])
    if end:
        clauses.append(f"CAST({column} AS DATE) <= CAST(? AS DATE)")
        params.append(str(end)[:10])
    if start and end and str(start)[:10] > str(end)[:10]:
        raise UserFacingError(f"the date range starts on {str(start)[:10]}, after its end {str(end)[:10]}; "
                              "pick a start before the end")
    return " AND ".join(clauses), params


def in_filter(column: str, values: Sequence[str] | None) -> tuple[str, list]:
    if not values:
        return "", []
    return f"{column} IN ({', '.join('?' * len(values))})", list(values)


def where(*parts: tuple[str, list]) -> tuple[str, list]:
    clauses = [c for c, _ in parts if c]
    return " AND ".join(clauses), [p for _, ps in parts for p in ps]
