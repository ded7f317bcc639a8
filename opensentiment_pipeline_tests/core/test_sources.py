"""Readers: exact articles and rejects on tiny fixtures, a local HTTP feed, and row counts of the shared datasets."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from opensentiment_pipeline.core.ingest.articles import content_id
from opensentiment_pipeline.core.ingest.sources import SourceSpec, read_source, read_sources
from opensentiment_pipeline.core.schema import ARTICLE_COLUMNS, REJECT_COLUMNS

DATA = Path(__file__).parents[1] / "data"
SHARED = Path(__file__).parents[2].parent / "shared" / "data"
COLUMNS = {"id": "id", "outlet": "outlet", "published_at": "published", "title": "headline", "text": "body", "label": "sentiment"}
UNKNOWN_SENTIMENT = "unknown label; expected one of ['negative', 'neutral', 'positive'] or a `label_map` key"
GOOD_ROWS = [
    {"article_id": "faulty:a1", "outlet": "the daily planet", "published_at": pd.Timestamp("2024-03-01 08:00", tz="UTC"),
     "title": "Bridge opens", "text": "The new bridge opened on time, to cheers.", "label": "positive"},
    {"article_id": "faulty:a2", "outlet": "metro news", "published_at": pd.Timestamp("2024-03-02 09:30", tz="UTC"),
     "title": "Council meets", "text": "The council met on Tuesday.", "label": "neutral"},
]


def _spec(path: Path, **kwargs) -> SourceSpec:
    return SourceSpec(**{"name": "faulty", "format": "table", "path": str(path), "columns": COLUMNS,
                         "label_map": {"pos": "positive"}, **kwargs})


def _rejects(result) -> list[list]:
    return result.rejects[["row", "field", "reason", "value"]].values.tolist()


def _good(result) -> list[dict]:
    return result.articles[list(GOOD_ROWS[0])].to_dict("records")


def test_csv_keeps_good_rows_and_reports_each_faulty_row():
    result = read_source(_spec(DATA / "articles_faulty.csv"))
    assert tuple(result.articles.columns) == ARTICLE_COLUMNS
    assert _good(result) == GOOD_ROWS
    assert result.articles["source"].tolist() == ["faulty", "faulty"]
    assert tuple(result.rejects.columns) == REJECT_COLUMNS
    assert set(result.rejects["file"]) == {str(DATA / "articles_faulty.csv")}
    assert _rejects(result) == [  # `row` counts data records; the header is not counted
        [3, "body", "empty text", ""],
        [4, "published", "unparseable date", "not a date"],
        [5, "sentiment", UNKNOWN_SENTIMENT, "ecstatic"],
        [6, "record", "expected 6 fields, found 7", "a6,Metro News,2024-03-06,Broken,too,many,fields"],
    ]
    assert result.duplicates_dropped == 0


def test_jsonl_with_the_same_mapping_gives_the_same_rows():
    result = read_source(_spec(DATA / "articles_faulty.jsonl"))
    assert _good(result) == GOOD_ROWS
    assert _rejects(result)[:3] == _rejects(read_source(_spec(DATA / "articles_faulty.csv")))[:3]
    assert _rejects(result)[3][:3] == [6, "record", "invalid JSON: Expecting value"]


def test_parquet_with_the_same_mapping_gives_the_same_rows(tmp_path):
    rows = pd.read_json(DATA / "articles_faulty.jsonl", lines=True, nrows=5, dtype=False)
    rows.to_parquet(tmp_path / "faulty.parquet")
    result = read_source(_spec(tmp_path / "faulty.parquet"))
    assert _good(result) == GOOD_ROWS
    assert _rejects(result) == _rejects(read_source(_spec(DATA / "articles_faulty.csv")))[:3]


def test_missing_mapped_column_names_file_column_and_fix():
    spec = _spec(DATA / "articles_faulty.csv", columns={**COLUMNS, "title": "headline_text"})
    with pytest.raises(ValueError, match=r"articles_faulty.csv has no column\(s\) \['headline_text'\]; available columns: "
                                         r"\['id', 'outlet', 'published', 'headline', 'body', 'sentiment'\]. Add it to `columns`"):
        read_source(spec)


def test_missing_file_names_the_path():
    with pytest.raises(FileNotFoundError, match=r"no such file: .*nowhere.csv"):
        read_source(_spec(DATA / "nowhere.csv"))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [("latin1.csv", "id,b\xf6dy\n1,Sepp\xe4l\xe4\n".encode("latin-1"),
      r"cannot read the header of .*latin1.csv: byte 0xF6 on file line 1 is not valid utf-8; .*set `encoding:`"),
     ("twice.csv", b"body,body\n1,2\n", "needs a header row of distinct column names"),
     ("junk.jsonl", b"not json\nstill not\n", "no line of .* is a JSON object"),
     ("notes.txt", b"id,body\n", "unsupported suffix '.txt'"),
     ("broken.parquet", b"PAR1 not really", "cannot read .* as Parquet")],
)
def test_unreadable_file_is_a_clear_error(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_source(SourceSpec(name="bad", format="table", path=str(tmp_path / name), columns={"text": "body"}))


def test_label_columns_become_votes_and_an_unknown_vote_is_dropped_alone():
    result = read_source(SourceSpec(name="votes", format="table", path=str(DATA / "votes_wide.csv"),
                                    columns={"id": "item", "text": "text"}, label_columns=("ann_a", "ann_b", "ann_c")))
    assert result.articles.set_index("article_id")["votes"].to_dict() == {
        "votes:v1": [{"annotator_id": "ann_a", "label": "negative"}, {"annotator_id": "ann_b", "label": "negative"},
                     {"annotator_id": "ann_c", "label": "neutral"}],
        "votes:v2": [{"annotator_id": "ann_a", "label": "neutral"}, {"annotator_id": "ann_c", "label": "neutral"}],
        "votes:v3": [{"annotator_id": "ann_a", "label": "positive"}, {"annotator_id": "ann_c", "label": "positive"}],
    }
    reason = "unknown label; the vote is dropped. Expected one of ['negative', 'neutral', 'positive'] or a `label_map` key"
    assert _rejects(result) == [[3, "ann_b", reason, "great"]]


def test_babe_votes_groups_copies_of_a_sentence_and_rejects_bad_votes():
    result = read_source(SourceSpec(name="babe", format="babe_votes", path=str(DATA / "babe_votes_long.csv")))
    articles = result.articles
    assert articles["article_id"].tolist() == ["bias:" + content_id("The senator lied again."),
                                               "bias:" + content_id("Rain is expected on Monday.")]
    assert articles[["text", "outlet", "leaning", "task", "label"]].values.tolist() == [
        ["The senator lied again.", "fox news", "right", "bias", None],
        ["Rain is expected on Monday.", "reuters", "center", "bias", None],
    ]
    assert articles["votes"].tolist() == [
        [{"annotator_id": "1", "label": "biased"}, {"annotator_id": "2", "label": "non-biased"},
         {"annotator_id": "3", "label": "biased"}],  # "Biased, unfair" counts as biased
        [{"annotator_id": "1", "label": "non-biased"}],
    ]
    assert _rejects(result) == [
        [5, "label_bias", "missing label; the vote is dropped", ""],
        [6, "annotator_id", "repeated vote by this annotator on the same sentence; the first is kept", "1"],
        [7, "text", "empty text", ""],
    ]


def test_newsmtsc_gives_one_row_per_target():
    result = read_source(SourceSpec(name="nm", format="newsmtsc", path=str(DATA / "newsmtsc_sample.jsonl"), split="train"))
    assert result.articles[["article_id", "target", "label", "split", "outlet"]].values.tolist() == [
        ["nm:s1_Alice_0_5", "Alice", "neutral", "train", "unknown"],
        ["nm:s1_Bob_14_17", "Bob", "positive", "train", "unknown"],
        ["nm:s2_Carol Smith_0_11", "Carol Smith", "negative", "train", "unknown"],  # newline in the gid collapsed
    ]
    assert result.articles["text"].tolist()[:2] == ["Alice praised Bob for his work."] * 2
    assert _rejects(result) == [[3, "targets", "no list of target objects", "[]"]]


def test_financial_phrasebank_turns_percent_into_agreement_and_rejects_conflicts():
    result = read_source(SourceSpec(name="fpb", format="financial_phrasebank", path=str(DATA / "fpb_sample.csv")))
    assert result.articles[["text", "label", "agreement"]].values.tolist() == [
        ["Operating profit rose 5 % .", "positive", 1.0], ["Net sales fell to EUR 2 mn .", "negative", 0.66]]
    reason = "sentence has conflicting labels in the source"
    assert _rejects(result) == [[3, "sentence_has_conflicting_labels", reason, "neutral"],
                                [4, "sentence_has_conflicting_labels", reason, "positive"]]


def test_article_bias_prediction_maps_its_columns(tmp_path):
    pd.DataFrame({
        "ID": ["abc", "def"], "source": ["Fox News (Online)", "NPR Online News"], "date": ["2019-05-06", ""],
        "title": ["T1", "T2"], "content_original": ["Body one.", "Body two."], "bias_text": ["right", "Left"],
        "topic": ["x", "y"],
    }).to_parquet(tmp_path / "abp.parquet")
    result = read_source(SourceSpec(name="abp", format="article_bias_prediction", path=str(tmp_path / "abp.parquet")))
    assert result.articles[["article_id", "outlet", "title", "text", "leaning", "topic", "label"]].values.tolist() == [
        ["abp:abc", "fox news (online)", "T1", "Body one.", "right", "x", None],
        ["abp:def", "npr online news", "T2", "Body two.", "left", "y", None]]
    assert result.articles["published_at"].tolist()[0] == pd.Timestamp("2019-05-06", tz="UTC")
    assert pd.isna(result.articles["published_at"].tolist()[1])  # an empty date is unknown, not a fault
    assert result.rejects.empty


def _check_feed(result, file: str) -> None:
    assert result.articles[["article_id", "outlet", "published_at", "title", "text"]].values.tolist() == [
        ["gazette:https://gazette.example/fair", "valley gazette", pd.Timestamp("2026-11-20 07:00", tz="UTC"),
         "Harvest Fair draws record crowds", "More than 8,000 visitors came. Soup & bread sold out."],
        ["gazette:https://gazette.example/road", "valley gazette", pd.Timestamp("2026-11-21 09:15", tz="UTC"),
         "Road closed for repairs", "Road closed for repairs"],  # no description: the headline is the text
    ]
    assert result.rejects.drop(columns="published_at").values.tolist() == [
        ["gazette", file, 3, "published", "unparseable date", "sometime last week"]]


def test_rss_from_a_file():
    path = str(DATA / "feed_sample.xml")
    _check_feed(read_source(SourceSpec(name="gazette", format="rss", path=path)), path)


@pytest.fixture
def feed_server() -> Iterator[str]:
    """Serves tests/data on 127.0.0.1 (a free port) for the duration of one test."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep request lines out of the test output
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(DATA)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_rss_from_a_local_http_server(feed_server):
    url = f"{feed_server}/feed_sample.xml"
    _check_feed(read_source(SourceSpec(name="gazette", format="rss", path=url)), url)


def test_rss_http_error_fails_loudly(feed_server):
    with pytest.raises(ConnectionError, match=r"cannot fetch http://127.0.0.1:\d+/missing.xml: HTTP Error 404"):
        read_source(SourceSpec(name="gazette", format="rss", path=f"{feed_server}/missing.xml"))


def test_atom_content_is_used_when_there_is_no_summary(tmp_path):
    (tmp_path / "feed.atom").write_text(
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Atom Daily</title>'
        '<entry><id>urn:1</id><title>Ferry resumes</title><updated>2026-11-22T06:00:00Z</updated>'
        '<content type="html">&lt;div&gt;The ferry &lt;i&gt;runs&lt;/i&gt; again.&lt;/div&gt;</content></entry></feed>'
    )
    result = read_source(SourceSpec(name="atom", format="rss", path=str(tmp_path / "feed.atom")))
    assert result.articles[["article_id", "outlet", "published_at", "text"]].values.tolist() == [
        ["atom:urn:1", "atom daily", pd.Timestamp("2026-11-22 06:00", tz="UTC"), "The ferry runs again."]]


def test_a_file_that_is_not_a_feed_is_a_clear_error():
    with pytest.raises(ValueError, match=r"votes_wide.csv is not a readable RSS/Atom feed"):
        read_source(SourceSpec(name="x", format="rss", path=str(DATA / "votes_wide.csv")))


def test_rss_outlet_setting_overrides_the_feed_title():
    result = read_source(SourceSpec(name="gazette", format="rss", path=str(DATA / "feed_sample.xml"), outlet="The Gazette"))
    assert set(result.articles["outlet"]) == {"the gazette"}


def test_limit_draws_a_seeded_subset_in_file_order():
    spec = dict(name="nm", format="newsmtsc", path=str(DATA / "newsmtsc_sample.jsonl"), limit=2)
    first = read_source(SourceSpec(**spec, seed=1)).articles["article_id"].tolist()
    assert first == read_source(SourceSpec(**spec, seed=1)).articles["article_id"].tolist()
    assert len(first) == 2
    assert first == sorted(first, key=["nm:s1_Alice_0_5", "nm:s1_Bob_14_17", "nm:s2_Carol Smith_0_11"].index)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"format": "xml"}, r"format must be one of \['table'"),
     ({"name": "a:b"}, "name must be a non-empty string without ':'"),
     ({"name": "bias"}, "not a task name"),
     ({"path": " "}, "path is empty"),
     ({"columns": {"body": "text"}}, r"unknown field\(s\) \['body'\] in columns"),
     ({"columns": {"title": "headline"}}, "columns must map 'text'"),
     ({"format": "newsmtsc", "columns": {"text": "x"}}, "has a fixed layout; remove `columns`"),
     ({"format": "rss", "columns": {}, "label_columns": ("a",)}, "label_columns is only read for format 'table'"),
     ({"task": "emotion"}, r"task must be one of \['bias', 'sentiment'\]; got 'emotion'"),
     ({"label_map": {"pos": "good"}}, r"label_map targets \{'pos': 'good'\} are not labels of task 'sentiment'"),
     ({"limit": 0, "seed": 1}, "limit must be a positive integer"),
     ({"limit": 5}, "limit=5 needs a seed; pass seed=<int>")],
)
def test_source_spec_errors_name_the_field_and_fix(kwargs, message):
    base = {"name": "s", "format": "table", "path": "x.csv", "columns": {"text": "body"}}
    with pytest.raises(ValueError, match=message):
        SourceSpec(**{**base, **kwargs})


def test_source_spec_warns_about_settings_without_effect():
    with pytest.warns(UserWarning, match="seed has no effect without limit"):
        SourceSpec(name="s", format="table", path="x.csv", columns={"text": "body"}, seed=3)
    with pytest.warns(UserWarning, match=r"columns\['outlet'\] is ignored because outlet= is set"):
        SourceSpec(name="s", format="table", path="x.csv", columns={"text": "body", "outlet": "o"}, outlet="X")


def test_source_spec_picks_the_format_task_and_copies_mappings():
    columns = {"text": "body"}
    spec = SourceSpec(name="s", format="table", path="x.csv", columns=columns)
    columns["title"] = "changed later"
    assert spec.columns == {"text": "body"}
    assert spec.task == "sentiment"
    assert SourceSpec(name="b", format="babe_votes", path="x.parquet").task == "bias"


def test_read_sources_deduplicates_across_sources_first_source_wins(tmp_path):
    (tmp_path / "copy.csv").write_text("key,body\nc1,the council met on tuesday\nc2,A brand new sentence.\n")
    result = read_sources(
        [_spec(DATA / "articles_faulty.csv"),
         SourceSpec(name="copy", format="table", path=str(tmp_path / "copy.csv"), columns={"id": "key", "text": "body"})],
        near_dup_threshold=0.8, seed=0)
    assert result.articles["article_id"].tolist() == ["faulty:a1", "faulty:a2", "copy:c2"]
    assert result.duplicates_dropped == 1
    assert result.rejects["source"].tolist() == ["faulty"] * 4


def test_read_sources_needs_unique_names():
    spec = _spec(DATA / "articles_faulty.csv")
    with pytest.raises(ValueError, match=r"unique names; got \['faulty', 'faulty'\]"):
        read_sources([spec, spec], near_dup_threshold=0.8, seed=0)


# --- the shared datasets (../shared/data); counts from each SOURCE.md ---------------------------------------


@pytest.mark.shared_data
@pytest.mark.parametrize(("file", "n_targets", "labels"), [
    ("train.jsonl", 8739, {"negative": 3316, "neutral": 3028, "positive": 2395}),
    ("devtest_rw.jsonl", 1146, {"negative": 429, "neutral": 455, "positive": 262}),
])
def test_shared_newsmtsc_counts(shared_data, file, n_targets, labels):
    result = read_source(SourceSpec(name="newsmtsc", format="newsmtsc", path=str(shared_data / "newsmtsc" / file)))
    assert len(result.articles) == n_targets
    assert result.articles["label"].value_counts().to_dict() == labels
    assert result.rejects.empty


@pytest.mark.shared_data
def test_shared_financial_phrasebank_drops_the_four_conflicting_rows(shared_data):
    result = read_source(SourceSpec(name="fpb", format="financial_phrasebank",
                                    path=str(shared_data / "financial_phrasebank" / "fpb_by_agreement.parquet")))
    assert len(result.articles) == 4840 - 4
    assert result.rejects["reason"].tolist() == ["sentence has conflicting labels in the source"] * 4
    assert sorted(result.articles["agreement"].unique()) == [0.5, 0.66, 0.75, 1.0]


@pytest.mark.shared_data
def test_shared_babe_sg2_votes(shared_data):
    """18,362 raw votes on 3,699 distinct raw strings -> 3,674 items.

    Grouping by `normalise_text` merges copies that differ only in punctuation ("?" vs "―") or spacing:
    3,669 items are the distinct normalised sentences of the final SG2 file, and 5 more are raw-only
    variants (mojibake, typos) that match no final sentence. One vote has no text, and 20 votes are an
    annotator's second vote on a merged sentence; 18,341 votes remain.
    """
    result = read_source(SourceSpec(name="sg2", format="babe_votes",
                                    path=str(shared_data / "babe_mbic" / "babe_sg2_raw_annotations.parquet")))
    assert len(result.articles) == 3674
    assert result.articles["votes"].map(len).sum() == 18341
    assert result.rejects.groupby("field").size().to_dict() == {"annotator_id": 20, "text": 1}
    assert result.articles["leaning"].isna().sum() == 996  # the batch added after SG1 has no `type`


@pytest.mark.shared_data
def test_shared_babe_expert_and_crowd_files_share_item_ids(shared_data):
    def ids(file: str, name: str) -> set[str]:
        spec = SourceSpec(name=name, format="babe_votes", path=str(shared_data / "babe_mbic" / file))
        return set(read_source(spec).articles["article_id"])

    sg1, mbic = ids("babe_sg1_raw_annotations.parquet", "sg1"), ids("mbic_raw_annotations.parquet", "mbic")
    assert (len(sg1), len(mbic), len(sg1 & mbic)) == (1703, 1700, 1698)


@pytest.mark.shared_data
def test_shared_article_bias_prediction_sample(shared_data):
    path = shared_data / "article_bias_prediction" / "abp_articles_text_sample_cap300_per_source.parquet"
    result = read_source(SourceSpec(name="abp", format="article_bias_prediction", path=str(path)))
    assert len(result.articles) == 8927  # 8,928 rows, one dated 2050-09-30
    assert result.articles["leaning"].value_counts().to_dict() == {"left": 3398, "right": 2822, "center": 2707}
    assert result.rejects[["row", "field", "reason", "value"]].to_dict("records") == [
        {"row": 4610, "field": "date", "reason": "publish date is in the future (after today, UTC)",
         "value": "2050-09-30"}]


def test_fixed_split_reproduces_train_test_split_over_the_file_rows(tmp_path):
    from sklearn.model_selection import train_test_split

    rows = pd.DataFrame({"sentence": [f"Sentence number {i} about sales ." for i in range(40)],
                         "label": ["positive", "negative", "neutral", "neutral"] * 10,
                         "min_agreement_pct": 100, "sentence_has_conflicting_labels": [i == 7 for i in range(40)]})
    path = tmp_path / "fpb.csv"
    rows.to_csv(path, index=False)
    result = read_source(SourceSpec(name="fpb", format="financial_phrasebank", path=str(path), test_size=0.25))
    _, expected_test = train_test_split(rows, test_size=0.25, random_state=0, stratify=rows["label"])
    test = result.articles[result.articles["split"] == "test"]
    assert sorted(test["text"]) == sorted(expected_test.loc[expected_test.index != 7, "sentence"])
    assert len(result.articles) == 39 and result.rejects["row"].tolist() == [8]  # the conflicting row, either side


def test_fixed_split_needs_every_row_labelled(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"body": ["a", "b", "c"], "sentiment": ["positive", None, "negative"]}).to_csv(path, index=False)
    spec = SourceSpec(name="t", format="table", path=str(path), columns={"text": "body", "label": "sentiment"},
                      test_size=0.5)
    with pytest.raises(ValueError, match=r"row 2, field 'sentiment': empty label"):
        read_source(spec)
