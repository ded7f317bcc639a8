"""Search asset: a FAISS index over the articles' topic vectors, in a stable folder that `opensentiment search` reads."""

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from opensentiment_pipeline.defs.adapters import adapter_dir_of, adapter_version
from opensentiment_pipeline.defs.partitions import PARTITION_COLUMN, SINGLE_RUN
from opensentiment_pipeline.defs.resources import ArtifactStore, MlflowTracking

SNIPPET_CHARS = 300  # the index folder keeps a snippet, not the whole body, so it stays small


class ArticleIndexConfig(dg.Config):
    kind: str = Field(default="auto", description="flat (exact) | hnsw (approximate) | auto: flat up to "
                      "exact_max_vectors vectors, hnsw above")
    exact_max_vectors: int = Field(default=100_000, description="auto picks flat up to this many vectors "
                                   "(a flat scan of 100k x 384 takes ~10 ms per query)")
    hnsw_m: int = Field(default=32, description="HNSW graph degree: higher = better recall, more memory")
    ef_construction: int = Field(default=200, description="HNSW build-time candidate list size")
    ef_search: int = Field(default=128, description="HNSW query-time candidate list size (raised to k when smaller)")
    index_dir: str | None = Field(default=None, description="folder the new index replaces atomically; default: "
                                  "<home>/index beside the artifact store, where the CLI looks")
    query_max_length: int = Field(default=256, description="token limit when the CLI embeds a query")
    recall_queries: int = Field(default=100, description="hnsw only: articles used as queries to measure "
                                "recall@10 against exact search (metadata recall_at_10)")
    seed: int = Field(default=0, description="picks the recall queries")


@dg.asset(group_name="analysis", backfill_policy=SINGLE_RUN)
def article_index(context: dg.AssetExecutionContext, config: ArticleIndexConfig, article_embeddings: pd.DataFrame,
                  raw_articles: pd.DataFrame, sentiment_adapter: str, artifacts: ArtifactStore,
                  mlflow_tracking: MlflowTracking) -> str:
    """Folder holding the vector index, the articles it can return, and how to embed a query for it.

    The index holds the topic vectors (article_embeddings' `embedding`, frozen base encoder), so a query is
    embedded with the adapter's base encoder (`base_model` in the manifest), not with the adapter."""
    from opensentiment_pipeline.core.model import modeling
    from opensentiment_pipeline.core.vectors import encoder_versions, encoding, search

    version = encoder_versions.check_one_adapter(article_embeddings, asset="article_index", day_column=PARTITION_COLUMN)
    # The vectors come from the sentiment adapter or, with article_embeddings' `adapter: student_champion`, from the
    # student: queries must be embedded by the same base encoder, so the index records that adapter's.
    embedded_with = adapter_dir_of(version, sentiment_adapter, mlflow_tracking, artifacts) if version else None
    if embedded_with is None:
        embedded_with = sentiment_adapter
        encoder_versions.check_one_adapter(article_embeddings, asset="article_index", day_column=PARTITION_COLUMN,
                                           current=adapter_version(sentiment_adapter))
    vectors = encoding.frame_to_matrix(article_embeddings)
    kind = config.kind if config.kind != "auto" else ("flat" if len(vectors) <= config.exact_max_vectors else "hnsw")
    hnsw = {"hnsw_m": config.hnsw_m, "ef_construction": config.ef_construction, "ef_search": config.ef_search}
    start = time.perf_counter()
    index = search.build_index(vectors, article_embeddings["article_id"], kind=kind, **(hnsw if kind == "hnsw" else {}))
    build_seconds = time.perf_counter() - start
    folder = Path(config.index_dir) if config.index_dir else Path(artifacts.root).parent / "index"
    adapter = modeling.AdapterManifest.load(Path(embedded_with))
    manifest = {"model_version": version, "vector": "topic", "base_model": adapter.base_model,
                "num_layers": adapter.num_layers, "sentiment_adapter_dir": str(embedded_with), "kind": kind,
                "num_vectors": index.num_vectors, "query_max_length": config.query_max_length,
                "built_at": datetime.now(timezone.utc).isoformat(), "dagster_run_id": context.run.run_id}
    with search.replacing_folder(folder) as tmp:
        search.save_index(index, tmp)
        index_articles(article_embeddings, raw_articles).to_parquet(tmp / search.ARTICLES_FILE, index=False)
        (tmp / search.MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    metadata = {"num_vectors": index.num_vectors, "dimensions": index.dimensions, "index_kind": kind,
                "build_seconds": round(build_seconds, 3), "model_version": version,
                "index_dir": dg.MetadataValue.path(str(folder)),
                "search_command": dg.MetadataValue.md(f'`opensentiment search "your query" --index {folder}`')}
    if kind == "hnsw":
        exact = search.build_index(vectors, article_embeddings["article_id"], kind="flat")
        rows = np.random.default_rng(config.seed).choice(len(vectors), min(config.recall_queries, len(vectors)),
                                                          replace=False)
        metadata["recall_at_10"] = search.recall_at_k(index, exact, vectors[rows], k=10)
    context.add_output_metadata(metadata)
    return str(folder)


def index_articles(article_embeddings: pd.DataFrame, raw_articles: pd.DataFrame) -> pd.DataFrame:
    """What a search hit shows: outlet, date, source, predicted sentiment, title and a text snippet."""
    columns = ["article_id", "outlet", "published_at", "source", "title", "text"]
    table = article_embeddings[["article_id", "sentiment", "sentiment_confidence"]].merge(
        raw_articles[columns], on="article_id", how="left", validate="one_to_one", indicator=True)
    orphans = table.loc[table.pop("_merge") == "left_only", "article_id"]
    if len(orphans):
        raise ValueError(f"article_embeddings holds {len(orphans)} article ids that raw_articles lacks, e.g. "
                         f"{orphans.head(3).tolist()}; re-materialize article_embeddings after raw_articles")
    return table.assign(snippet=table.pop("text").str.slice(0, SNIPPET_CHARS))

