"""`opensentiment search` against a small index built in a temp folder with the packaged base encoder."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from opensentiment_pipeline import cli
from opensentiment_pipeline.core.vectors import search

BASE_MODEL = "packaged:all-MiniLM-L6-v2"
ARTICLES = [  # article_id, outlet, sentiment, title
    ("a1", "Daily Ledger", "negative", "Central bank raises interest rates again as inflation bites"),
    ("a2", "Daily Ledger", "negative", "Mortgage costs soar after the rate decision"),
    ("a3", "Daily Ledger", "positive", "Savers cheer higher interest on deposits"),
    ("a4", "Coastal Times", "negative", "Storm floods the harbour and closes the ferry"),
    ("a5", "Coastal Times", "neutral", "Ferry timetable changes for the winter season"),
    ("a6", "Coastal Times", "positive", "Local team wins the regional football final"),
    ("a7", "Metro Wire", "negative", "Bank shares fall as rate fears spread"),
    ("a8", "Metro Wire", "neutral", "City council publishes its annual budget"),
]


@pytest.fixture(scope="module")
def index_home(tmp_path_factory):
    """<home>/index as article_index writes it, but from the base encoder (no adapter to train)."""
    from opensentiment_pipeline.core.model import modeling
    from opensentiment_pipeline.core.vectors import encoding

    home = tmp_path_factory.mktemp("home")
    frame = pd.DataFrame(ARTICLES, columns=["article_id", "outlet", "sentiment", "title"])
    vectors = encoding.encode_texts(modeling.load_encoder(BASE_MODEL, num_layers=None),
                                      modeling.load_tokenizer(BASE_MODEL), frame["title"].tolist(),
                                      batch_size=8, max_length=64, device="cpu")
    articles = frame.assign(
        outlet=frame["outlet"].str.lower(), sentiment_confidence=0.9, source="test", snippet=frame["title"],
        published_at=pd.to_datetime(["2024-03-0%d" % (i % 9 + 1) for i in range(len(frame))], utc=True))
    with search.replacing_folder(home / "index") as tmp:
        search.save_index(search.build_index(vectors, frame["article_id"]), tmp)
        articles.to_parquet(tmp / search.ARTICLES_FILE, index=False)
        (tmp / search.MANIFEST_FILE).write_text(json.dumps({"base_model": BASE_MODEL, "query_max_length": 64}))
    return home


def _rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()[1:]]


def test_search_prints_the_matching_article_first_with_similarity_one(index_home, capsys):
    code = cli.main(["search", ARTICLES[3][3], "--k", "3", "--home", str(index_home)])
    out = capsys.readouterr().out
    assert code == 0
    header, *lines = out.strip().splitlines()
    assert header.split() == ["rank", "sim", "outlet", "date", "sentiment", "text"]
    assert len(lines) == 3
    assert lines[0].split()[:6] == ["1", "1.000", "coastal", "times", "2024-03-04", "negative"]
    assert "Storm floods the harbour" in lines[0]


def test_filters_apply_before_top_k_so_k_results_come_back(index_home, capsys):
    code = cli.main(["search", "storm and flooding at sea", "--k", "3", "--outlet", "DAILY-ledger",
                     "--sentiment", "negative", "--home", str(index_home), "--json"])
    results = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [r["similarity"] for r in results] == sorted([r["similarity"] for r in results], reverse=True)
    assert {r["article_id"] for r in results} == {"a1", "a2"}  # the only negative Daily Ledger articles
    assert all(r["outlet"] == "daily ledger" and r["sentiment"] == "negative" for r in results)
    assert [r["rank"] for r in results] == [1, 2]
    code = cli.main(["search", "interest rates", "--k", "2", "--sentiment", "negative", "--index",
                     str(index_home / "index"), "--json"])
    results = json.loads(capsys.readouterr().out)
    assert code == 0 and len(results) == 2 and {r["sentiment"] for r in results} == {"negative"}
    assert set(results[0]) == {"rank", "similarity", "article_id", "outlet", "published_at", "source", "sentiment",
                               "sentiment_confidence", "title", "snippet"}


def test_missing_index_says_how_to_build_one(tmp_path, capsys):
    assert cli.main(["search", "anything", "--home", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"no search index at {tmp_path / 'index'}" in err
    assert "run `make demo` or materialize article_index first" in err


def test_unknown_outlet_suggests_close_names(index_home, capsys):
    assert cli.main(["search", "rates", "--outlet", "daily ledgr", "--home", str(index_home)]) == 1
    assert "no outlet 'daily ledgr' in the index; did you mean 'daily ledger'?" in capsys.readouterr().err


def test_filter_that_matches_nothing_exits_1(index_home, capsys):
    assert cli.main(["search", "rates", "--outlet", "metro wire", "--sentiment", "positive",
                     "--home", str(index_home)]) == 1
    assert "no article matches --outlet 'metro wire' --sentiment positive" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "q", "--k", "0"], "expected a positive integer; got 0"),
        (["search", "q", "--sentiment", "angry"], "invalid choice: 'angry'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_bad_usage_exits_2_with_argparse_message(argv, message, capsys):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_help_exits_0_and_documents_every_option(capsys):
    assert cli.main(["search", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--k", "--outlet", "--sentiment", "--home", "--index", "--json"):
        assert option in out


def test_sentiment_choices_match_the_schema():
    from opensentiment_pipeline.core.schema import SENTIMENT_LABELS

    assert cli.SENTIMENTS == SENTIMENT_LABELS  # spelled out in cli.py so --help imports no pandas
