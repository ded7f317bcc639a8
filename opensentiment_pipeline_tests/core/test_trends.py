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
        "article_id": ["a", "a", "b"], "sentence_idx": [0, 1, 0], "outlet": "o", "day": ["2026-11-02", "2026-11-02", "2026-11-04"],
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


def _mentions(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """n mentions over three weeks, three outlets, two entities; an article's mentions share its day."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2026-11-05", "2026-11-25", freq="D").strftime("%Y-%m-%d")
    day = rng.choice(days, n)
    return pd.DataFrame({
        "outlet": rng.choice(["a", "b", "c"], n), "key": rng.choice(["x", "y"], n), "day": day,
        "week": trends.week_start(pd.Series(day)), "sentiment": rng.choice(["negative", "neutral", "positive"], n),
        "article_id": [f"{d}-{i % 5}" for i, d in enumerate(day)], "sentence_idx": np.arange(n) % 3,
        "sentence": [f"s{i}" for i in range(n)], "p_negative": rng.random(n).round(1),
        "p_positive": rng.random(n).round(1)})


SETTINGS = {"n_resamples": 100, "level": 0.9, "seed": 3}


@pytest.mark.parametrize("entity_columns", [True, False])
def test_folding_day_by_day_in_any_order_equals_one_pass(entity_columns):
    items = _mentions()
    kind = "entity" if entity_columns else "topic"
    once, once_stats = trends.fold_weekly(trends.weekly_rows(trends.empty_stats(), pd.DataFrame(columns=trends.CELL),
                                                             kind=kind, entity_columns=entity_columns, **SETTINGS),
                                          trends.empty_stats(), trends.weekly_stats(items, examples=entity_columns),
                                          kind=kind, entity_columns=entity_columns, **SETTINGS)
    table, stats = once.iloc[:0], trends.empty_stats()
    days = sorted(set(items["day"]))
    for day in days[::2] + days[1::2]:  # a late day folded after newer ones changes nothing either
        table, stats = trends.fold_weekly(table, stats, trends.weekly_stats(items[items["day"] == day],
                                                                            examples=entity_columns),
                                          kind=kind, entity_columns=entity_columns, **SETTINGS)
    pd.testing.assert_frame_equal(table, once, check_exact=True)
    pd.testing.assert_frame_equal(stats, once_stats, check_exact=True)
    assert len(once) == len(once.drop_duplicates(trends.CELL)) and once["volume"].sum() == len(items)


def test_a_new_week_recomputes_only_itself_the_week_after_and_the_filled_gap():
    items = _items([("o", "k", "2026-11-02", "negative"), ("o", "k", "2026-11-23", "positive"),
                    ("o", "j", "2026-11-02", "neutral")]).assign(week=lambda f: trends.week_start(f["day"]))
    old = trends.weekly_stats(items.iloc[[0, 2]], examples=False)
    new = trends.weekly_stats(items.iloc[[1]], examples=False)
    assert trends.affected_cells(old, new).values.tolist() == [
        ["o", "k", "2026-11-02"], ["o", "k", "2026-11-09"], ["o", "k", "2026-11-16"], ["o", "k", "2026-11-23"]]
    late = trends.weekly_stats(items.iloc[[0]].assign(week="2026-11-09"), examples=False)
    assert trends.affected_cells(trends.merge_stats(old, new), late).values.tolist() == [
        ["o", "k", "2026-11-09"], ["o", "k", "2026-11-16"]]


def test_a_weeks_interval_depends_on_its_own_counts_only():
    one = trends.cell_draws(np.array([3, 1, 4]), ("entity", "o", "k", "2026-11-02"), n_resamples=50, seed=0)
    again = trends.cell_draws(np.array([3, 1, 4]), ("entity", "o", "k", "2026-11-02"), n_resamples=50, seed=0)
    other = trends.cell_draws(np.array([3, 1, 4]), ("entity", "o", "k", "2026-11-09"), n_resamples=50, seed=0)
    assert one.tolist() == again.tolist() and one.tolist() != other.tolist()


def test_undated_mentions_are_left_out_and_counted_and_weeks_follow_the_publish_day():
    mentions = pd.DataFrame({"article_id": ["a", "b", "c"], "sentence_idx": 0, "outlet": "o", "entity": "Acme",
                             "sentence": "Acme.", "p_negative": 0.1, "p_positive": 0.8, "sentiment": "positive"})
    published = pd.DataFrame({"article_id": ["a", "b", "c"],
                              "published_at": pd.to_datetime(["2026-11-29T23:59Z", None, "2019-05-01T08:00Z"], utc=True)})
    items, undated = trends.mention_items(mentions, published)
    assert undated == 1 and items[["article_id", "week"]].values.tolist() == [["a", "2026-11-23"], ["c", "2019-04-29"]]
    with pytest.raises(ValueError, match=r"not in raw_articles' days, e.g. \['c'\]"):
        trends.mention_items(mentions, published.iloc[:2])


def test_examples_tie_to_the_smallest_article_and_sentence_whatever_the_order():
    rows = pd.DataFrame({"outlet": "o", "key": "k", "week": "2026-11-02", "sentiment": "negative",
                         "article_id": ["b", "a", "a"], "sentence_idx": [0, 2, 1], "sentence": ["b0", "a2", "a1"],
                         "p_negative": 0.9, "p_positive": 0.1})
    assert trends.weekly_stats(rows, examples=True)["example_negative"].tolist() == ["a1"]
    examples = [c for c in trends.STAT_COLUMNS if c.startswith("example_")]
    split = trends.merge_stats(trends.weekly_stats(rows.iloc[:2], examples=True),
                               trends.weekly_stats(rows.iloc[2:], examples=True))
    assert split[examples].equals(trends.weekly_stats(rows, examples=True)[examples])


def test_day_digests_change_with_a_days_rows_only():
    points = pd.DataFrame({"article_id": ["a", "b", "c"], "cluster": [0, 1, 1], "partition_day": ["d1", "d1", "d2"]})
    before = trends.day_digests(points, ["article_id", "cluster"], day_column="partition_day")
    after = trends.day_digests(points.assign(cluster=[0, 1, 2]), ["article_id", "cluster"], day_column="partition_day")
    shuffled = trends.day_digests(points.iloc[::-1], ["article_id", "cluster"], day_column="partition_day")
    assert before["d1"] == after["d1"] and before["d2"] != after["d2"] and shuffled == before
