"""Search asset: a FAISS index over the articles' topic vectors, in a stable folder that `opensentiment search` reads."""

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from opensentiment_pipeline.defs.adapters import adapter_dir_of, adapter_version
from opensentiment_pipeline.defs import stored_days
from opensentiment_pipeline.defs.partitions import PARTITION_COLUMN, SINGLE_RUN
from opensentiment_pipeline.defs.resources import ArtifactStore, MlflowTracking
from opensentiment_pipeline.defs.stored_days import StoredDays

SNIPPET_CHARS = 300  # the index folder keeps a snippet, not the whole body, so it stays small


class ArticleIndexConfig(dg.Config):
    kind: str = Field(default="auto", description="flat (exact) | hnsw (approximate) | auto: flat up to "
                      "exact_max_vectors vectors, hnsw above")
    exact_max_vectors: int = Field(default=2_000_000, description="auto picks flat up to this many vectors: a "
                                   "flat index is exact and a night adds to it in seconds, while building HNSW "
                                   "over a million vectors takes hours on 2 cores (benchmarks/archive_scale.py "
                                   "measures a flat query at 1M)")
    hnsw_m: int = Field(default=32, description="HNSW graph degree: higher = better recall, more memory")
    ef_construction: int = Field(default=200, description="HNSW build-time candidate list size")
    ef_search: int = Field(default=128, description="HNSW query-time candidate list size (raised to k when smaller)")
    index_dir: str | None = Field(default=None, description="folder the new index replaces atomically; default: "
                                  "<home>/index beside the artifact store, where the CLI looks")
    query_max_length: int = Field(default=256, description="token limit when the CLI embeds a query")
    recall_queries: int = Field(default=100, description="hnsw only: articles used as queries to measure "
                                "recall@10 against exact search (metadata recall_at_10)")
    seed: int = Field(default=0, description="picks the recall queries")
    rebuild: bool = Field(default=False, description="build the index again from every stored day instead of "
                          "adding the new days to the stored one")


@dg.asset(group_name="analysis", backfill_policy=SINGLE_RUN)
def article_index(context: dg.AssetExecutionContext, config: ArticleIndexConfig, article_embeddings: StoredDays,
                  raw_articles: StoredDays, sentiment_adapter: str, artifacts: ArtifactStore,
                  mlflow_tracking: MlflowTracking) -> str:
    """Folder holding the vector index, the articles it can return, and how to embed a query for it.

    The index holds the topic vectors (article_embeddings' `embedding`, frozen base encoder), so a query is
    embedded with the adapter's base encoder (`base_model` in the manifest), not with the adapter. A night adds
    the new days' vectors to the stored index (FAISS `add`) and reads no other day; it is rebuilt from every
    stored day, a month at a time, on the first run, with `rebuild: true`, when a day it holds was embedded
    again, or when the index outgrows a flat one (exact_max_vectors)."""
    from opensentiment_pipeline.core.model import modeling
    from opensentiment_pipeline.core.vectors import search

    folder = Path(config.index_dir) if config.index_dir else Path(artifacts.root).parent / "index"
    old = _stored_manifest(folder)
    plan = stored_days.plan_fold({"article_embeddings": article_embeddings, "raw_articles": raw_articles},
                                 stored_days.read_ledger(folder) if old else {},
                                 rebuild_reason=_rebuild_reason(config, old))
    embedded = article_embeddings.non_empty(plan.days)
    version, window = stored_days.vector_signature(article_embeddings, embedded, asset="article_index")
    total = (0 if plan.rebuild else old["num_vectors"]) + article_embeddings.num_rows(embedded)
    kind = config.kind if config.kind != "auto" else ("flat" if total <= config.exact_max_vectors else "hnsw")
    if not plan.rebuild and embedded and (version, window, kind) != (old["model_version"], old.get("text_window"),
                                                                      old["kind"]):
        plan = stored_days.plan_fold({"article_embeddings": article_embeddings, "raw_articles": raw_articles}, {},
                                     rebuild_reason=f"the new days' vectors ({version}, {window}, {kind} index) "
                                     f"differ from the index's ({old['model_version']}, {old.get('text_window')}, "
                                     f"{old['kind']})")
        embedded = article_embeddings.non_empty(plan.days)
        version, window = stored_days.vector_signature(article_embeddings, embedded, asset="article_index")
    if plan.rebuild:
        context.log.info("rebuilding the index from %d stored days: %s", len(plan.days), plan.reason)
    else:
        context.log.info("adding %d new day(s) to the index of %d vectors: %s", len(plan.days), old["num_vectors"],
                         plan.days)
    version = version if embedded else old["model_version"] if old else None
    embedded_with = _embedding_adapter(version, sentiment_adapter, mlflow_tracking, artifacts)
    hnsw = {"hnsw_m": config.hnsw_m, "ef_construction": config.ef_construction, "ef_search": config.ef_search}
    start = time.perf_counter()
    with search.replacing_folder(folder) as tmp:
        index = None if plan.rebuild else search.load_index(folder)
        if not plan.rebuild:
            _link_stored_articles(folder, tmp)
        index, exact = _add_days(index, article_embeddings, raw_articles, embedded, tmp / search.ARTICLES_FILE,
                                 kind=kind, hnsw=hnsw if kind == "hnsw" else {}, with_exact=plan.rebuild)
        if index is None:
            raise ValueError("no article_embeddings row is stored: materialize article_embeddings with articles "
                             "before article_index")
        search.save_index(index, tmp)
        adapter = modeling.AdapterManifest.load(Path(embedded_with))
        manifest = {"model_version": version, "text_window": window, "vector": "topic",
                    "base_model": adapter.base_model, "num_layers": adapter.num_layers,
                    "sentiment_adapter_dir": str(embedded_with), "kind": index.kind, "num_vectors": index.num_vectors,
                    "query_max_length": config.query_max_length, "built_at": datetime.now(timezone.utc).isoformat(),
                    "dagster_run_id": context.run.run_id}
        (tmp / search.MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
        stored_days.write_ledger(tmp, plan.stored)
    build_seconds = time.perf_counter() - start
    metadata = {"num_vectors": index.num_vectors, "dimensions": index.dimensions, "index_kind": index.kind,
                "rebuilt": plan.rebuild, "rebuild_reason": plan.reason, "days_read": len(plan.days),
                "build_seconds": round(build_seconds, 3), "model_version": version,
                "index_dir": dg.MetadataValue.path(str(folder)),
                "search_command": dg.MetadataValue.md(f'`opensentiment search "your query" --index {folder}`')}
    if exact is not None and index.kind == "hnsw":
        rows = np.random.default_rng(config.seed).choice(exact.num_vectors, min(config.recall_queries,
                                                                                exact.num_vectors), replace=False)
        queries = np.stack([exact.faiss_index.reconstruct(int(r)) for r in rows])
        metadata["recall_at_10"] = search.recall_at_k(index, exact, queries, k=10)
    context.add_output_metadata(metadata)
    return str(folder)


def _stored_manifest(folder: Path) -> dict | None:
    """The manifest of the index stored in `folder`, or None when there is none to add to."""
    from opensentiment_pipeline.core.vectors import search

    path = folder / search.MANIFEST_FILE
    if not path.exists() or not (folder / stored_days.LEDGER_FILE).exists():
        return None  # no index, or one built before nights added to it
    return json.loads(path.read_text())


def _rebuild_reason(config: ArticleIndexConfig, old: dict | None) -> str:
    if config.rebuild:
        return "rebuild: true"
    if old is None:
        return "no stored index to add to"
    if config.kind not in ("auto", old["kind"]):
        return f"kind {config.kind} asked, the stored index is {old['kind']}"
    return ""


def _embedding_adapter(version: str | None, sentiment_adapter: str, mlflow_tracking: MlflowTracking,
                       artifacts: ArtifactStore) -> str:
    """The adapter whose base encoder made the vectors: queries must be embedded by the same one. The vectors
    come from the sentiment adapter or, with article_embeddings' `adapter: student_champion`, from the student."""
    from opensentiment_pipeline.core.vectors import encoder_versions

    embedded_with = adapter_dir_of(version, sentiment_adapter, mlflow_tracking, artifacts) if version else None
    if embedded_with is None:
        current = adapter_version(sentiment_adapter)
        if version is not None and version != current:
            encoder_versions.check_one_adapter(pd.DataFrame({"model_version": [version]}), asset="article_index",
                                               day_column=PARTITION_COLUMN, current=current)
        embedded_with = sentiment_adapter
    return embedded_with


def _link_stored_articles(folder: Path, tmp: Path) -> None:
    """Hard-link the stored days of the hit table into the new folder: a night writes only its own day."""
    from opensentiment_pipeline.core.vectors import search

    (tmp / search.ARTICLES_FILE).mkdir()
    for path in (folder / search.ARTICLES_FILE).glob("*.parquet"):
        os.link(path, tmp / search.ARTICLES_FILE / path.name)


def _add_days(index, article_embeddings: StoredDays, raw_articles: StoredDays, days: list[str], articles_dir: Path,
              *, kind: str, hnsw: dict, with_exact: bool):
    """Add `days`' vectors to `index` (None: start one), a month of days at a time, and write each day's hit table
    into `articles_dir`. With `with_exact` (a rebuild of an HNSW index) also an exact index, to measure recall."""
    from opensentiment_pipeline.core.vectors import encoding, search

    articles_dir.mkdir(exist_ok=True)
    raw_days = set(raw_articles.days())
    exact = None
    for batch in article_embeddings.iter_batches(days, columns=["article_id", "embedding", "sentiment",
                                                                "sentiment_confidence", PARTITION_COLUMN]):
        if batch.empty:
            continue
        vectors, ids = encoding.frame_to_matrix(batch), batch["article_id"]
        if index is None:
            index = search.build_index(vectors, ids, kind=kind, **hnsw)
        else:
            index = search.add_to_index(index, vectors, ids)
        if with_exact and kind == "hnsw":
            exact = search.build_index(vectors, ids, kind="flat") if exact is None else \
                search.add_to_index(exact, vectors, ids)
        batch_days = sorted(batch[PARTITION_COLUMN].unique())
        raw = raw_articles.read([d for d in batch_days if d in raw_days], columns=RAW_COLUMNS)
        table = index_articles(batch, raw)
        for day, rows in table.groupby(PARTITION_COLUMN, sort=True):
            rows.drop(columns=[PARTITION_COLUMN]).to_parquet(articles_dir / f"{day}.parquet", index=False)
    return index, exact


RAW_COLUMNS = ["article_id", "outlet", "published_at", "source", "title", "text"]


def index_articles(article_embeddings: pd.DataFrame, raw_articles: pd.DataFrame) -> pd.DataFrame:
    """What a search hit shows: outlet, date, source, predicted sentiment, title and a text snippet."""
    keep = ["article_id", "sentiment", "sentiment_confidence",
            *([PARTITION_COLUMN] if PARTITION_COLUMN in article_embeddings.columns else [])]
    table = article_embeddings[keep].merge(
        raw_articles[RAW_COLUMNS], on="article_id", how="left", validate="one_to_one", indicator=True)
    orphans = table.loc[table.pop("_merge") == "left_only", "article_id"]
    if len(orphans):
        raise ValueError(f"article_embeddings holds {len(orphans)} article ids that raw_articles lacks, e.g. "
                         f"{orphans.head(3).tolist()}; re-materialize article_embeddings after raw_articles")
    return table.assign(snippet=table.pop("text").str.slice(0, SNIPPET_CHARS))

