import pandas as pd
import pytest

from opensentiment_pipeline.core.vectors.encoder_versions import check_one_adapter, format_days, text_window

COMMAND = "dagster asset materialize --select 'article_embeddings+' --partition-range {} -m opensentiment_pipeline.definitions"


def _frame(versions_by_day: dict[str, list[str]]) -> pd.DataFrame:
    rows = [(day, v) for day, versions in versions_by_day.items() for v in versions]
    return pd.DataFrame(rows, columns=["partition_day", "model_version"])


def test_one_version_is_returned():
    frame = _frame({"2026-11-01": ["a", "a"], "2026-11-02": ["a"]})
    assert check_one_adapter(frame, asset="outlet_clusters", day_column="partition_day") == "a"
    assert check_one_adapter(frame, asset="article_index", day_column="partition_day", current="a") == "a"
    assert check_one_adapter(frame.iloc[:0], asset="outlet_clusters", day_column="partition_day") is None


def test_days_not_made_by_the_latest_days_adapter_are_named_with_the_command():
    # Old adapter on 1-3 and 5, new one on 4 and 6 (the night after a new adapter), one mixed day.
    frame = _frame({"2026-11-01": ["old"], "2026-11-02": ["old"], "2026-11-03": ["old", "new"],
                    "2026-11-04": ["new"], "2026-11-05": ["old"], "2026-11-06": ["new", "new"]})
    with pytest.raises(ValueError) as err:
        check_one_adapter(frame, asset="outlet_leaning", day_column="partition_day")
    assert str(err.value) == (
        "outlet_leaning: article_embeddings holds vectors from 2 adapter versions (new: 3 days, old: 4 days); "
        "vectors of different adapters are not comparable; stale days (not made by new): 2026-11-01..2026-11-03, "
        f"2026-11-05 (4 days). Re-embed them: {COMMAND.format('2026-11-01...2026-11-05')} "
        "(or `make reembed` for every day), with the run config the nightly job uses "
        "(e.g. -c configs/embed_with_student.yaml when it embeds with the student)")


def test_a_version_other_than_the_current_adapter_marks_every_day_stale():
    frame = _frame({"2026-11-01": ["old"], "2026-11-02": ["old"]})
    with pytest.raises(ValueError, match=r"^article_index: article_embeddings were made by adapter old but "
                                         r"sentiment_adapter is new; stale days \(not made by new\): "
                                         r"2026-11-01\.\.2026-11-02 \(2 days\)\. Re-embed them: dagster asset"):
        check_one_adapter(frame, asset="article_index", day_column="partition_day", current="new")


def test_without_days_the_error_says_to_reembed_everything():
    frame = pd.DataFrame({"model_version": ["a", "b", "b"]})
    with pytest.raises(ValueError, match=r"2 adapter versions \(a: 1 row, b: 2 rows\).*Re-embed every day with one "
                                         r"adapter: make reembed$"):
        check_one_adapter(frame, asset="outlet_clusters", day_column="partition_day")


def test_format_days_groups_consecutive_days_and_caps_the_list():
    assert format_days(["2026-10-31", "2026-11-01", "2026-11-03"]) == "2026-10-31..2026-11-01, 2026-11-03 (3 days)"
    days = [f"2026-11-{d:02d}" for d in range(1, 30, 2)]
    assert format_days(days, limit=2) == "2026-11-01, 2026-11-03 and 13 more runs of days (15 days)"


def test_vectors_that_read_different_text_are_refused_naming_the_days_to_reembed():
    whole = text_window(include_title=True, max_length=256, max_chunks=8)
    frame = pd.DataFrame({"model_version": ["a"] * 4, "partition_day": ["2026-11-01", "2026-11-02", "2026-11-03",
                                                                       "2026-11-03"],
                          "text_window": [None, None, whole, whole]})  # two days stored before the column existed
    with pytest.raises(ValueError) as err:
        check_one_adapter(frame, asset="outlet_leaning", day_column="partition_day")
    message = str(err.value)
    assert "outlet_leaning: article_embeddings mixes vectors that read different text" in message
    assert "Days not embedded as the latest ('title + up to 8 x 256 tokens'): 2026-11-01..2026-11-02 (2 days)" in message
    assert "--partition-range 2026-11-01...2026-11-02" in message
    same = frame.assign(text_window=whole)
    assert check_one_adapter(same, asset="outlet_leaning", day_column="partition_day") == "a"
    # Frames from before the column existed, all alike, are still read.
    assert check_one_adapter(frame.drop(columns="text_window").iloc[:2], asset="x", day_column="partition_day") == "a"
