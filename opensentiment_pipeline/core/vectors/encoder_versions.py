"""Refuse article vectors made by more than one adapter: vectors of different encoders are not comparable.

Each stored vector carries the adapter version (MLflow run id) that made it. After a new adapter, the nightly
run embeds the new day with it while older days keep the old adapter's vectors until they are re-embedded;
a map, a bias axis or an index built on that mixture would compare two encoders' vectors and still succeed.

    >>> frame = pd.DataFrame({"model_version": ["a", "a", "b"], "partition_day": ["2026-11-01"] * 2 + ["2026-11-02"]})
    >>> check_one_adapter(frame, asset="outlet_clusters", day_column="partition_day")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: outlet_clusters: article_embeddings holds vectors from 2 adapter versions (a: 1 day, b: 1 day)...stale days (not made by b): 2026-11-01 (1 day)...
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

REEMBED_COMMAND = ("dagster asset materialize --select 'article_embeddings+' --partition-range {first}...{last} "
                   "-m opensentiment_pipeline.definitions")


def text_window(*, include_title: bool, max_length: int, max_chunks: int) -> str:
    """How much of each article a vector read, as stored in article_embeddings' `text_window` column."""
    return f"{'title + ' if include_title else ''}up to {max_chunks} x {max_length} tokens"


UNRECORDED_WINDOW = "not recorded (embedded before text_window was stored: title + lead by default)"


def check_one_text_window(frame: pd.DataFrame, *, asset: str, day_column: str) -> None:
    """Raise when the vectors read different spans of text (days embedded with title + lead next to days
    embedded whole, after `max_chunks` changed): same encoder, but not comparable vectors. The latest day's
    setting is taken as the one to keep; the message names the other days and the command that re-embeds them."""
    windows = (frame["text_window"].astype(object).where(frame["text_window"].notna(), UNRECORDED_WINDOW)
               if "text_window" in frame.columns else pd.Series(UNRECORDED_WINDOW, index=frame.index))
    found = sorted(windows.unique())
    if len(found) <= 1:
        return
    days = frame[day_column].astype(str) if day_column in frame.columns else None
    problem = (f"{asset}: article_embeddings mixes vectors that read different text: "
               f"{'; '.join(f'{w!r}: ' + _count(int((windows == w).sum()), 'article') for w in found)}")
    if days is None:
        raise ValueError(f"{problem}. Re-embed every day with one setting: make reembed")
    latest = windows[days == days.max()].mode().iloc[0]
    stale = sorted(days[windows != latest].unique())
    raise ValueError(f"{problem}. Days not embedded as the latest ({latest!r}): {format_days(stale)}. Re-embed "
                     f"them with the same article_embeddings config: "
                     f"{REEMBED_COMMAND.format(first=stale[0], last=stale[-1])} (or `make reembed` for every day)")


def check_one_adapter(frame: pd.DataFrame, *, asset: str, day_column: str, current: str | None = None) -> str | None:
    """The one adapter version in `frame`'s `model_version` column; raise naming the stale days otherwise.
    Also refuses vectors that read different spans of text (`check_one_text_window`).

    Args:
        frame: article_embeddings rows (columns model_version and, when stored per day, `day_column`).
        asset: the asset that reads them, named in the error.
        day_column: the column holding each row's day partition (YYYY-MM-DD); may be absent.
        current: the adapter version the reader needs (e.g. the current sentiment_adapter's); None = the version
            of the latest day, i.e. what the last nightly run embedded with.

    Returns:
        The version, or None for an empty frame.

    Raises:
        ValueError: when rows come from several versions, or from another version than `current`. The message
            names the stale days and the command that re-embeds them.
    """
    if frame.empty:
        return None
    check_one_text_window(frame, asset=asset, day_column=day_column)
    versions = frame["model_version"].astype(str)
    found = sorted(versions.unique())
    if found == [current] or (current is None and len(found) == 1):
        return found[0]
    days = frame[day_column].astype(str) if day_column in frame.columns else None
    if current is None and days is not None:
        current = versions[days == days.max()].mode().iloc[0]
    if len(found) > 1:
        sizes = {v: _count(days[versions == v].nunique(), "day") if days is not None
                 else _count(int((versions == v).sum()), "row") for v in found}
        problem = (f"{asset}: article_embeddings holds vectors from {len(found)} adapter versions "
                   f"({', '.join(f'{v}: {n}' for v, n in sizes.items())}); vectors of different adapters are not "
                   "comparable")
    else:
        problem = f"{asset}: article_embeddings were made by adapter {found[0]} but sentiment_adapter is {current}"
    if current is None or days is None:
        raise ValueError(f"{problem}. Re-embed every day with one adapter: make reembed")
    stale = sorted(days[versions != current].unique())
    command = REEMBED_COMMAND.format(first=stale[0], last=stale[-1])
    raise ValueError(f"{problem}; stale days (not made by {current}): {format_days(stale)}. Re-embed them: "
                     f"{command} (or `make reembed` for every day), with the run config the nightly job uses "
                     "(e.g. -c configs/embed_with_student.yaml when it embeds with the student)")


def format_days(days: list[str], limit: int = 8) -> str:
    """Sorted YYYY-MM-DD days as runs of consecutive days: '2026-11-01..2026-11-03, 2026-11-05'."""
    runs: list[list[str]] = []
    for day in days:
        if runs and dt.date.fromisoformat(day) - dt.date.fromisoformat(runs[-1][-1]) == dt.timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = [r[0] if len(r) == 1 else f"{r[0]}..{r[-1]}" for r in runs]
    more = f" and {len(parts) - limit} more runs of days" if len(parts) > limit else ""
    return ", ".join(parts[:limit]) + more + f" ({_count(len(days), 'day')})"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
