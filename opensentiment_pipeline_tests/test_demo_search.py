"""`opensentiment search` on the demo corpus ranks by topic: the index holds the frozen base encoder's vectors."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from opensentiment_pipeline import cli
from opensentiment_pipeline.core.ingest import sources
from opensentiment_pipeline.core.model import modeling
from opensentiment_pipeline.core.vectors import encoding, search
from opensentiment_pipeline.defs.assets.vectors import article_texts
from opensentiment_pipeline.defs.assets.ingest import DEMO_SOURCE, SourceConfig, to_spec

BASE_MODEL = "packaged:all-MiniLM-L6-v2"
RATE_DECISIONS = ("Reserve Council holds benchmark rate at 3.5 percent",
                  "What the rate hold means for the provincial budget")
FACTORY = ("Finally: chip factory brings 900 jobs to Greyhaven", "Greyhaven welcomes chip plant news")


@pytest.fixture(scope="module")
def demo_index(tmp_path_factory):
    """The demo corpus as raw_articles reads it, embedded and indexed as article_embeddings/article_index do."""
    articles = sources.read_sources([to_spec(SourceConfig(**DEMO_SOURCE), seed=0)], near_dup_threshold=0.8,
                                    seed=0).articles
    vectors = encoding.encode_texts(modeling.load_encoder(BASE_MODEL, num_layers=None),
                                      modeling.load_tokenizer(BASE_MODEL), article_texts(articles, True),
                                      batch_size=64, max_length=256, device="cpu")
    folder = tmp_path_factory.mktemp("home") / "index"
    shown = articles[["article_id", "outlet", "published_at", "source", "title"]].assign(
        sentiment="neutral", sentiment_confidence=1.0, snippet=articles["text"])
    with search.replacing_folder(folder) as tmp:
        search.save_index(search.build_index(vectors, articles["article_id"]), tmp)
        shown.to_parquet(tmp / search.ARTICLES_FILE, index=False)
        (tmp / search.MANIFEST_FILE).write_text(json.dumps({"vector": "topic", "base_model": BASE_MODEL,
                                                            "num_layers": None, "query_max_length": 256}))
    return folder, len(articles)


def test_rate_decision_stories_rank_above_the_factory_story(demo_index, capsys):
    folder, n = demo_index
    code = cli.main(["search", "central bank raises interest rates", "--k", str(n), "--index", str(folder), "--json"])
    hits = pd.DataFrame(json.loads(capsys.readouterr().out))
    assert code == 0 and len(hits) == n
    first_rank = hits.groupby("title")["rank"].min()  # a story's rank is that of its best sentence
    assert hits.loc[0, "title"] in RATE_DECISIONS
    assert max(first_rank[list(RATE_DECISIONS)]) < min(first_rank[list(FACTORY)])
    assert max(first_rank[list(RATE_DECISIONS)]) <= 5
