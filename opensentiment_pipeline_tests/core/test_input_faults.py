"""Faulty input at ingestion: split values, broken quoting, empty sources, encodings, broken and oversized feeds.

Each fault must either reach the rejects with file, row, field and reason, or stop the read with an error that
names the problem and the fix; good rows around a fault still arrive.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from opensentiment_pipeline.core.ingest.articles import UNKNOWN_SPLIT
from opensentiment_pipeline.core.ingest.sources import EMPTY_SOURCE, SourceSpec, read_source, read_sources

DATA = Path(__file__).parents[1] / "data"


def _table(path: Path, name: str = "t", **kwargs) -> SourceSpec:
    columns = {"id": "id", "text": "body", "split": "split", "published_at": "date"}
    return SourceSpec(**{"name": name, "format": "table", "path": str(path), **kwargs,
                         "columns": {**columns, **kwargs.get("columns", {})}})


def _rejects(result) -> list[list]:
    return result.rejects[["row", "field", "reason", "value"]].values.tolist()


# --- 1. split values ----------------------------------------------------------------------------------------


def test_split_values_are_case_folded_dev_and_validation_mean_val_and_others_are_rejected(tmp_path):
    values = ["Train", " TEST ", "dev", "Validation", "VAL", "", "holdout", "tests"]
    lines = [f"r{i},Sentence number {i} about topic {i * 7}.,{v}," for i, v in enumerate(values, start=1)]
    (tmp_path / "s.csv").write_text("id,body,split,date\n" + "\n".join(lines) + "\n")
    result = read_source(_table(tmp_path / "s.csv"))
    assert result.articles[["article_id", "split"]].values.tolist() == [
        ["t:r1", "train"], ["t:r2", "test"], ["t:r3", "val"], ["t:r4", "val"], ["t:r5", "val"], ["t:r6", None]]
    assert _rejects(result) == [[7, "split", UNKNOWN_SPLIT, "holdout"], [8, "split", UNKNOWN_SPLIT, "tests"]]
    assert UNKNOWN_SPLIT.startswith("unknown split; expected one of ['dev', 'test', 'train', 'val', 'validation']")


@pytest.mark.parametrize(("given", "stored"), [("Test", "test"), ("DEV", "val"), ("validation", "val"), ("train", "train")])
def test_source_split_setting_is_normalised(tmp_path, given, stored):
    (tmp_path / "s.csv").write_text("id,body,date\n1,One sentence.,\n")
    spec = SourceSpec(name="s", format="table", path=str(tmp_path / "s.csv"), columns={"text": "body"}, split=given)
    assert spec.split == stored
    assert read_source(spec).articles["split"].tolist() == [stored]


def test_source_split_setting_must_be_known():
    with pytest.raises(ValueError, match=r"split must be one of \['dev', 'test', 'train', 'val', 'validation'\] .*got 'holdout'"):
        SourceSpec(name="s", format="table", path="x.csv", columns={"text": "body"}, split="holdout")


def test_dedup_protects_test_and_val_rows_whatever_their_case(tmp_path):
    # The train source comes first, yet its copies lose: a "Test" row is protected, a "Dev" row wins over train.
    (tmp_path / "train.csv").write_text("id,body\nx,The harbour reopened after the storm.\ny,Prices of bread rose again.\n")
    (tmp_path / "eval.csv").write_text(
        "id,body,split\na,The harbour reopened after the storm.,Test\nb,Prices of bread rose again.,Dev\n")
    result = read_sources([SourceSpec(name="tr", format="table", path=str(tmp_path / "train.csv"),
                                      columns={"id": "id", "text": "body"}),
                           SourceSpec(name="ev", format="table", path=str(tmp_path / "eval.csv"),
                                      columns={"id": "id", "text": "body", "split": "split"})],
                          near_dup_threshold=0.8, seed=0)
    assert result.articles[["article_id", "split"]].values.tolist() == [["ev:a", "test"], ["ev:b", "val"]]
    assert result.duplicates_dropped == 2


# --- 6. unterminated quotes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("tail", "kept"), [
    # the open quote runs to the end of the file: the csv module reports "unexpected end of data"
    ('r3,"Open quote never closed,train,\nr4,Fourth row.,test,\nr5,Fifth row.,,\n', ["r1", "r2", "r4", "r5"]),
    # it stops at the next row's opening quote: "',' expected after '\"'"
    ('r3,"Open quote never closed,train,\nr4,Fourth row.,test,\nr5,"Fifth, quoted",,\n', ["r1", "r2", "r4", "r5"]),
    # it stops at a stray quote followed by a comma and the field count happens to match: one silent article before
    ('r3,"Open quote never closed,train,\nr4,Fourth row.,test,\nr5,Fifth row",,\n', ["r1", "r2", "r4", "r5"]),
])
def test_unterminated_quote_rejects_its_row_and_the_rows_it_swallowed_still_arrive(tmp_path, tail, kept):
    (tmp_path / "q.csv").write_text("id,body,split,date\nr1,First row.,train,\nr2,Second row.,,\n" + tail)
    result = read_source(_table(tmp_path / "q.csv"))
    assert result.articles["article_id"].tolist() == [f"t:{k}" for k in kept]
    rejects = _rejects(result)
    assert rejects[0][:2] == [3, "record"] and rejects[0][3] == 'r3,"Open quote never closed,train,'
    assert "unterminated quote" in rejects[0][2] and "resumes on line 5" in rejects[0][2]
    assert len(rejects) == 1


def test_quoted_multi_line_texts_are_not_mistaken_for_an_open_quote(tmp_path):
    body = '"First paragraph, with a comma.\n\nSecond paragraph: ""quoted"" words."'
    (tmp_path / "m.csv").write_text(f"id,body,split,date\nr1,{body},train,\nr2,Next row.,test,\n")
    result = read_source(_table(tmp_path / "m.csv"))
    assert result.articles["text"].tolist() == [
        'First paragraph, with a comma.\n\nSecond paragraph: "quoted" words.', "Next row."]
    assert result.rejects.empty


# --- 7. empty sources ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "content"), [
    ("header_only.csv", b"id,body,split,date\n"), ("blank.csv", b""), ("empty.jsonl", b""), ("blank.jsonl", b"\n\n")])
def test_an_empty_source_is_one_reject_for_the_whole_file(tmp_path, name, content, caplog):
    (tmp_path / name).write_bytes(content)
    result = read_source(_table(tmp_path / name))
    assert result.articles.empty
    assert _rejects(result) == [[0, "file", EMPTY_SOURCE, ""]]
    assert f"{tmp_path / name}: {EMPTY_SOURCE}" in caplog.text


def test_a_feed_without_entries_is_an_empty_source(tmp_path):
    (tmp_path / "f.xml").write_text('<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title></channel></rss>')
    assert _rejects(read_source(SourceSpec(name="f", format="rss", path=str(tmp_path / "f.xml")))) == [
        [0, "file", EMPTY_SOURCE, ""]]


# --- 8. and 12. broken and oversized feeds ------------------------------------------------------------------


def test_malformed_rss_names_the_line_and_column(tmp_path):
    (tmp_path / "bad.xml").write_text('<?xml version="1.0"?>\n<rss version="2.0"><channel>\n'
                                      "<item><title>Open</title><guid>g1</guid></itm>\n</channel></rss>\n")
    with pytest.raises(ValueError, match=r"bad.xml is not a readable RSS/Atom feed: not well-formed XML at line 3, "
                                         r"column 42 \(mismatched tag\)"):
        read_source(SourceSpec(name="f", format="rss", path=str(tmp_path / "bad.xml")))


def test_html_entities_undefined_in_xml_are_read_not_refused(tmp_path):
    (tmp_path / "nbsp.xml").write_text('<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item>'
                                       "<guid>g1</guid><title>Bridge&nbsp;opens</title><description>On&nbsp;time."
                                       "</description></item></channel></rss>")
    result = read_source(SourceSpec(name="f", format="rss", path=str(tmp_path / "nbsp.xml")))
    assert result.articles[["article_id", "title", "text"]].values.tolist() == [["f:g1", "Bridge opens", "On time."]]


def test_a_feed_file_over_the_size_cap_is_refused():
    size = (DATA / "feed_sample.xml").stat().st_size
    with pytest.raises(ValueError, match=rf"feed_sample.xml is {size:,} bytes, over max_feed_bytes=100; .*raise `max_feed_bytes`"):
        read_source(SourceSpec(name="f", format="rss", path=str(DATA / "feed_sample.xml"), max_feed_bytes=100))
    assert len(read_source(SourceSpec(name="f", format="rss", path=str(DATA / "feed_sample.xml"),
                                      max_feed_bytes=size)).articles) == 2


@pytest.fixture
def chunked_server() -> Iterator[str]:
    """Serves 64 kB of feed-like bytes without a Content-Length header, so only the read cap can stop it."""

    class Endless(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.end_headers()
            self.wfile.write(b"<rss>" + b" " * 65_536)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/feed"
    finally:
        server.shutdown()
        server.server_close()


def test_a_feed_download_over_the_size_cap_is_refused(chunked_server):
    with pytest.raises(ValueError, match=r"/feed is more, over max_feed_bytes=1,000;"):
        read_source(SourceSpec(name="f", format="rss", path=chunked_server, max_feed_bytes=1000))


def test_a_declared_content_length_over_the_cap_is_refused_before_reading(tmp_path):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(DATA)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/feed_sample.xml"
        size = (DATA / "feed_sample.xml").stat().st_size
        with pytest.raises(ValueError, match=rf"is {size:,} bytes \(Content-Length\), over max_feed_bytes=10;"):
            read_source(SourceSpec(name="f", format="rss", path=url, max_feed_bytes=10))
    finally:
        server.shutdown()
        server.server_close()


def test_max_feed_bytes_must_be_positive():
    with pytest.raises(ValueError, match="max_feed_bytes must be a positive integer; got 0"):
        SourceSpec(name="f", format="rss", path="f.xml", max_feed_bytes=0)


# --- 9. encodings -------------------------------------------------------------------------------------------


def test_latin1_file_reads_with_the_encoding_option(tmp_path):
    (tmp_path / "l.csv").write_bytes("id,body\n1,Sepp\xe4l\xe4 won the race.\n2,Caf\xe9 opens.\n".encode("latin-1"))
    result = read_source(SourceSpec(name="l", format="table", path=str(tmp_path / "l.csv"),
                                    columns={"id": "id", "text": "body"}, encoding="latin-1"))
    assert result.articles["text"].tolist() == ["Seppälä won the race.", "Café opens."]


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_a_line_with_bytes_invalid_in_the_encoding_is_rejected_alone_with_the_hint(tmp_path, suffix):
    if suffix == "csv":
        content = "id,body\n1,Plain row.\n2,Caf\xe9 row.\n3,Another plain row.\n".encode("latin-1")
    else:
        content = '{"id": 1, "body": "Plain row."}\n{"id": 2, "body": "Caf\xe9 row."}\n{"id": 3, "body": "Another."}\n'.encode("latin-1")
    (tmp_path / f"mixed.{suffix}").write_bytes(content)
    result = read_source(SourceSpec(name="m", format="table", path=str(tmp_path / f"mixed.{suffix}"),
                                    columns={"id": "id", "text": "body"}))
    assert result.articles["article_id"].tolist() == ["m:1", "m:3"]
    ((row, field, reason, value),) = _rejects(result)
    line = 3 if suffix == "csv" else 2
    assert (row, field) == (2, "record")
    assert reason == (f"byte 0xE9 on file line {line} is not valid utf-8; if the file is in another encoding, "
                      "set `encoding:` on source 'm' (e.g. encoding: latin-1)")
    assert "Caf\\xe9 row." in value  # shown, not lost, and storable as Parquet
    result.rejects.to_parquet(tmp_path / "rejects.parquet")


def test_unknown_encoding_is_named():
    with pytest.raises(ValueError, match="encoding 'latin-42' is not a codec Python knows"):
        SourceSpec(name="s", format="table", path="x.csv", columns={"text": "body"}, encoding="latin-42")


# --- 10. rejects carry the row's date -----------------------------------------------------------------------


def test_a_reject_carries_the_publish_date_of_its_row(tmp_path):
    (tmp_path / "d.csv").write_text("id,body,split,date\n1,,train,2026-11-20T08:00:00Z\n2,Fine.,bogus,not a date\n")
    rejects = read_source(_table(tmp_path / "d.csv")).rejects
    assert rejects[["row", "field"]].values.tolist() == [[1, "body"], [2, "date"], [2, "split"]]
    assert rejects["published_at"].tolist()[0] == pd.Timestamp("2026-11-20 08:00", tz="UTC")
    assert rejects["published_at"].iloc[1:].isna().all()


def test_rows_read_counts_the_whole_file_even_when_a_limit_subsamples_it():
    # The rejected share must compare rejects (whole file) with rows of the whole file, not with the subsample.
    spec = SourceSpec(name="faulty", format="table", path=str(DATA / "articles_faulty.csv"), limit=1, seed=0,
                      columns={"id": "id", "text": "body", "published_at": "published", "label": "sentiment"},
                      label_map={"pos": "positive"})
    result = read_source(spec)
    assert len(result.articles) == 1 and result.rejects["row"].nunique() == 4
    assert result.rows_read == {"faulty": 6}
