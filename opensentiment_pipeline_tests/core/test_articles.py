"""Exact-output tests for article normalisation, ids and validation."""

from __future__ import annotations

import pandas as pd
import pytest

from opensentiment_pipeline.core.ingest.articles import (
    Rejects,
    build_articles,
    content_id,
    map_labels,
    normalise_outlet,
    normalise_text,
    parse_published,
    validate_articles,
)
from opensentiment_pipeline.core.schema import ARTICLE_COLUMNS, REJECT_COLUMNS


def _table(texts: list[str], *, targets: list[str | None] | None = None, tasks: list[str] | None = None) -> pd.DataFrame:
    n = len(texts)
    return pd.DataFrame({
        "article_id": [f"x:{i}" for i in range(n)],
        "outlet": "unknown",
        "published_at": pd.Series([pd.NaT] * n, dtype="datetime64[ns, UTC]"),
        "title": "",
        "text": texts,
        "source": "x",
        "split": None,
        "target": targets or [None] * n,
        "task": tasks or ["sentiment"] * n,
        "label": None,
        "agreement": pd.Series([float("nan")] * n, dtype="float64"),
        "leaning": None,
        "topic": None,
        "votes": [[] for _ in range(n)],
    }, columns=list(ARTICLE_COLUMNS))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("  Fox   News ", "fox news"), ("usa-today", "usa today"), ("USA Today", "usa today"), ("new_york_times", "new york times"),
     ("", "unknown"), ("   ", "unknown"), (None, "unknown"), (float("nan"), "unknown")],
)
def test_normalise_outlet(raw, expected):
    assert normalise_outlet(raw) == expected


@pytest.mark.parametrize("spelling", ["Fox\u2013News", "fox \u2014 news", "FOX\u2010news", "fox_news", " Fox-News "])
def test_ingestion_leaning_reference_and_cli_filter_agree_on_an_outlet_name(spelling):
    # One normaliser: an en dash in a leaning reference file or on the command line matches "fox news" in the table.
    from opensentiment_pipeline import cli
    from opensentiment_pipeline.core.analysis import leaning

    assert normalise_outlet(spelling) == leaning.normalise_outlet(spelling) == cli._normalise(spelling) == "fox news"


def test_normalise_text_drops_case_punctuation_and_spacing():
    assert normalise_text("  “Don’t”  STOP—now!\n ﬁne_print ") == "don t stop now fine_print"
    assert normalise_text("Last year ? when") == normalise_text("Last year ― when")
    assert normalise_text(None) == ""


def test_content_id_is_stable_and_ignores_formatting_but_not_target():
    assert content_id("Alice praised Bob.") == "26a70e5a46d2efdb"
    assert content_id("  ALICE praised   Bob!") == content_id("Alice praised Bob.")
    assert content_id("Alice praised Bob.", "Bob") != content_id("Alice praised Bob.", "Alice")
    assert content_id("Alice praised Bob.", None) == content_id("Alice praised Bob.", "")


def test_parse_published_takes_naive_as_utc_and_flags_only_unparseable_values():
    values = pd.Series(["2024-03-01T10:00:00+02:00", "2024-03-02 09:30", "Fri, 20 Nov 2026 08:00:00 GMT", "", None, "soon"])
    parsed, failed = parse_published(values)
    assert str(parsed.dtype) == "datetime64[ns, UTC]"
    assert parsed.tolist()[:3] == [
        pd.Timestamp("2024-03-01 08:00", tz="UTC"),
        pd.Timestamp("2024-03-02 09:30", tz="UTC"),
        pd.Timestamp("2026-11-20 08:00", tz="UTC"),
    ]
    assert parsed[3:].isna().all()
    assert failed.tolist() == [False, False, False, False, False, True]


def test_parse_published_localises_naive_datetime_columns():
    parsed, failed = parse_published(pd.Series(pd.to_datetime(["2020-01-01 12:00"])))
    assert parsed.tolist() == [pd.Timestamp("2020-01-01 12:00", tz="UTC")]
    assert not failed.any()


def test_map_labels_casefolds_and_reports_unknown():
    labels, unknown = map_labels(pd.Series([" POS ", "neutral", "Negative", None, "joy"]), {"pos": "positive"}, "sentiment")
    assert labels.tolist() == ["positive", "neutral", "negative", None, None]
    assert unknown.tolist() == [False, False, False, False, True]


def test_build_articles_rejects_faulty_rows_and_names_ids_by_source():
    frame = pd.DataFrame({"key": ["k1", "k1", "", "k4"], "body": ["Good.", "Again.", "No id.", "  "]})
    rejects = Rejects("demo", "demo.csv")
    articles = build_articles(frame, [1, 2, 3, 4], {"id": "key", "text": "body"}, rejects=rejects, source="demo",
                              task="sentiment", label_map={}, outlet=None, split="train", label_columns=())
    assert articles["article_id"].tolist() == ["demo:k1"]
    assert articles["split"].tolist() == ["train"]
    assert rejects.frame()[["row", "field", "reason", "value"]].values.tolist() == [
        [2, "key", "repeated id; the first row with it is kept", "k1"],
        [3, "key", "empty id", ""],
        [4, "body", "empty text", "  "],
    ]
    assert tuple(rejects.frame().columns) == REJECT_COLUMNS


def test_build_articles_gives_content_ids_by_task_without_an_id_column():
    frame = pd.DataFrame({"body": ["Same text.", "same   text!"]})
    articles = build_articles(frame, [1, 2], {"text": "body"}, rejects=Rejects("d", "f"), source="d", task="bias",
                              label_map={}, outlet="The Outlet", split=None, label_columns=())
    first = "bias:" + content_id("Same text.")
    assert articles["article_id"].tolist() == [first, first + "#2"]
    assert articles["outlet"].tolist() == ["the outlet", "the outlet"]


def test_validate_articles_accepts_a_clean_table():
    table = _table(["One.", "Two."])
    assert validate_articles(table).equals(table)


def test_validate_articles_names_column_and_values():
    table = _table(["One.", "Two.", "Three."]).assign(label=["positive", "joyful", None])
    table.loc[2, "article_id"] = "x:0"
    with pytest.raises(ValueError, match=r"column 'label', check label_in_task_labels: values \['joyful'\] at rows \[1\]") as err:
        validate_articles(table)
    assert "column 'article_id', check field_uniqueness: values ['x:0']" in str(err.value)


def test_validate_articles_checks_votes_and_column_order():
    bad_votes = _table(["One."]).assign(votes=[[{"annotator_id": "a", "label": "great"}]])
    with pytest.raises(ValueError, match="column 'votes', check votes_are_annotator_label_dicts_in_task_labels"):
        validate_articles(bad_votes)
    with pytest.raises(ValueError, match=r"table, check column_ordered: values \['votes', 'topic', 'leaning'"):
        validate_articles(_table(["One."])[list(reversed(ARTICLE_COLUMNS))])
    with pytest.raises(ValueError, match=r"table, check column_in_dataframe: values \['votes'\]"):
        validate_articles(_table(["One."]).drop(columns="votes"))
