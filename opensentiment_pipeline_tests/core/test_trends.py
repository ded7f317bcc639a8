"""Weekly volume and net sentiment with bootstrap intervals, empty weeks and flagged changes."""

import numpy as np
import pandas as pd
import pytest

from opensentiment_pipeline.core.analysis import trends


def _items(rows):
    return pd.DataFrame(rows, columns=["outlet", "key", "day", "sentiment"])


def test_an_empty_week_keeps_zero_volume_and_no_change_is_flagged_across_it():
    items = _items([("o", "Acme", "2026-11-02", "negative")] * 4 + [("o", "Acme", "2026-11-17", "positive")] * 4)
    table = trends.weekly_table(items, kind="entity", n_resamples=200, level=0.95, seed=0)
    assert table["week"].tolist() == ["2026-11-02", "2026-11-09", "2026-11-16"]
    assert table["volume"].tolist() == [4, 0, 4]
    assert table["net_sentiment"].tolist()[::2] == [-1.0, 1.0] and np.isnan(table["net_sentiment"][1])
    assert np.isnan(table["net_low"][1]) and np.isnan(table["change"][2]) and np.isnan(table["change"][1])
    assert table["change_flagged"].tolist() == [False, False, False]


def test_a_change_is_flagged_only_when_its_interval_excludes_zero():
    week1 = [("o", "k", "2026-11-02", "negative")] * 30
    week2 = [("o", "k", "2026-11-09", "positive")] * 30
    mixed = [("p", "k", d, s) for d in ("2026-11-03", "2026-11-10") for s in ("negative", "positive", "neutral")]
    table = trends.weekly_table(_items(week1 + week2 + mixed), kind="topic", n_resamples=500, level=0.95, seed=1)
    o = table[table["outlet"] == "o"]
    assert o["change"].tolist()[1] == 2.0 and o["change_flagged"].tolist() == [False, True]
    assert (o["change_low"].tolist()[1], o["change_high"].tolist()[1]) == (2.0, 2.0)
    p = table[table["outlet"] == "p"]
    assert p["net_sentiment"].tolist() == [0.0, 0.0] and p["change"].tolist()[1] == 0.0
    assert p["change_low"].tolist()[1] < 0 < p["change_high"].tolist()[1]
    assert p["change_flagged"].tolist() == [False, False]
    assert set(table["kind"]) == {"topic"}


def test_week_start_is_the_monday_and_bad_days_are_named():
    assert trends.week_start(pd.Series(["2026-11-29", "2026-11-30"])).tolist() == ["2026-11-23", "2026-11-30"]
    with pytest.raises(ValueError, match=r"could not read \['soon'\]"):
        trends.week_start(pd.Series(["2026-11-29", "soon"]))


def test_entity_weekly_counts_articles_and_picks_examples():
    mentions = pd.DataFrame({
        "article_id": ["a", "a", "b"], "outlet": "o", "day": ["2026-11-02", "2026-11-02", "2026-11-04"],
        "entity": "Acme", "sentence": ["Acme thrives.", "Acme sued.", "Acme met."],
        "p_negative": [0.1, 0.8, 0.2], "p_positive": [0.8, 0.1, 0.2],
        "sentiment": ["positive", "negative", "neutral"]})
    table = trends.entity_weekly(mentions, n_resamples=50, level=0.9, seed=0)
    assert table[["key", "week", "volume", "articles", "example_negative", "example_positive"]].values.tolist() == [
        ["Acme", "2026-11-02", 3, 2, "Acme sued.", "Acme thrives."]]
    assert table["net_sentiment"].tolist() == [0.0]


def test_empty_input_gives_an_empty_table_with_the_columns():
    table = trends.weekly_table(_items([]), kind="entity", n_resamples=10, level=0.9, seed=0)
    assert table.empty and list(table.columns) == list(trends.WEEKLY_COLUMNS)


def test_top_keys_rank_by_volume_and_the_figure_draws_with_and_without_rows():
    from opensentiment_pipeline.core import plots

    items = _items([("o", "b", "2026-11-02", "negative")] * 3 + [("p", "a", "2026-11-02", "positive")] * 2
                   + [("o", "a", "2026-11-09", "neutral")] * 2)
    table = trends.weekly_table(items, kind="entity", n_resamples=20, level=0.9, seed=0)
    assert trends.top_keys(table, kind="entity", k=1) == ["a"]  # 4 mentions over two outlets beat b's 3
    assert trends.pooled_weekly(table, ["a"], kind="entity")[["week", "volume", "net_sentiment"]].values.tolist() == [
        ["2026-11-02", 2, 1.0], ["2026-11-09", 2, 0.0]]
    for frame in (table, table.iloc[:0]):
        assert plots.trends_png(frame, top_k=3).startswith(plots.PNG_SIGNATURE)
