"""Small helpers that turn results into Dagster metadata people can read in the UI."""

from __future__ import annotations

import pandas as pd


def table_preview(frame: pd.DataFrame, *, rows: int = 10, max_chars: int = 80) -> str:
    """A Markdown table of the first `rows` rows, long cells cut to `max_chars`."""
    if frame.empty:
        return "_(no rows)_"
    head = frame.head(rows).copy()
    for column in head.columns:
        head[column] = head[column].map(lambda v: str(v) if len(str(v)) <= max_chars else str(v)[: max_chars - 1] + "…")
    return head.to_markdown(index=False)


def label_distribution(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    """{task: {label: count}} over rows that have a label."""
    labelled = frame.dropna(subset=["label"])
    return {str(task): {str(k): int(v) for k, v in part["label"].value_counts().sort_index().items()}
            for task, part in labelled.groupby("task", sort=True)}
