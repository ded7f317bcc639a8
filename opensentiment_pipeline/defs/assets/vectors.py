"""Vector assets: two vectors per article (topic: frozen base encoder; sentiment: with the adapter), one day at a time."""

from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from opensentiment_pipeline.defs.adapters import adapter_version
from opensentiment_pipeline.defs.partitions import DAILY, DAY_BACKFILL, PARTITION_COLUMN
from opensentiment_pipeline.defs.resources import ArtifactStore, MlflowTracking


class ArticleEmbeddingsConfig(dg.Config):
    sources: list[str] = Field(default_factory=list, description="embed only rows of these sources (empty = all)")
    include_title: bool = Field(default=True, description="prepend the title to the text")
    max_length: int = Field(default=256, description="tokens per window; with max_chunks 1 longer bodies are "
                            "truncated, so the vector reads the title and lead only")
    max_chunks: int = Field(default=8, description="long articles: embed up to this many max_length windows of "
                            "the body (8 x 256 tokens: ~9,000 characters, the whole of most news articles) and "
                            "average them (token-weighted), so the bias axis reads the whole article and the "
                            "predicted sentiment too; 1 = title and lead only, ~4.8x cheaper on long articles")
    batch_size: int = 64
    device: str = Field(default="auto", description="auto (CUDA when present) | cpu | cuda")
    backend: str = Field(default="auto", description="torch | onnx (ONNX Runtime, CPU only: same vectors to cosine "
                         "0.9999, 1.1-1.9x sentence-transformers) | bf16 (CPU bfloat16 autocast, cosine >= 0.9999: "
                         "~1.7x on CPUs with AVX-512 BF16 or AMX, slower without) | auto: on the CPU from "
                         "onnx_min_texts articles on, bf16 where the CPU has native bfloat16, else onnx; fewer "
                         "articles or a GPU: torch")
    onnx_min_texts: int = Field(default=1000, description="auto: fewer articles than this embed with torch, since "
                                "exporting the two encoders to ONNX takes seconds (MiniLM) to minutes (mpnet)")
    adapter: Literal["sentiment_adapter", "student_champion"] = Field(
        default="sentiment_adapter", description="sentiment_adapter: the adapter this graph trains (the teacher when "
        "distilling); student_champion: the registry champion of <registered model>-student, the distilled MiniLM, "
        "at MiniLM's embedding cost (promote one first: --select '*student_promotion')")


STUDENT_ASSETS = ("student_adapter", "student_evaluation_report", "student_promotion")


def embedding_adapter_dir(context: dg.AssetExecutionContext, config: ArticleEmbeddingsConfig, sentiment_adapter: str,
                          mlflow_tracking: MlflowTracking, artifacts: ArtifactStore) -> str:
    """The adapter folder to embed with: the `sentiment_adapter` input, or the registry's student champion."""
    if config.adapter == "sentiment_adapter":
        return sentiment_adapter
    from opensentiment_pipeline.defs import registry

    # A run launched with --select records its selection; a job's run (or dagster.materialize) runs the job's assets.
    keys = context.run.asset_selection or context.job_def.asset_layer.executable_asset_keys
    selected = {key.to_user_string() for key in keys}
    if selected & set(STUDENT_ASSETS):
        # The graph does not order article_embeddings after the student, so this run could embed with the old one.
        raise ValueError(f"article_embeddings reads the student champion, but this run also materializes "
                         f"{sorted(selected & set(STUDENT_ASSETS))}: promote the student in one run "
                         "(--select '*student_promotion'), then embed in another (--select 'article_embeddings+')")
    model_name = f"{mlflow_tracking.registered_model}-student"
    path = registry.champion_adapter_dir(
        mlflow_tracking.client(), model_name=model_name, cache_root=f"{artifacts.root}/registry",
        how_to_fix="train and promote a student first: dagster asset materialize --select '*student_promotion' "
                   "-c configs/shared_data_quality.yaml (student_adapter.config.enabled: true)")
    context.log.info("embedding with %s's champion (%s)", model_name, path.name)
    return str(path)


def article_texts(articles: pd.DataFrame, include_title: bool) -> list[str]:
    from opensentiment_pipeline.core.schema import title_and_text

    return title_and_text(articles) if include_title else articles["text"].tolist()


EMBEDDING_FRAME_COLUMNS = ("article_id", "model_version", "embedding", "sentiment_embedding", "sentiment",
                           "sentiment_confidence", "text_window", PARTITION_COLUMN)


@dg.asset(io_manager_key="parquet_io_manager", group_name="analysis", partitions_def=DAILY,
          backfill_policy=DAY_BACKFILL)
def article_embeddings(context: dg.AssetExecutionContext, config: ArticleEmbeddingsConfig,
                       raw_articles: pd.DataFrame, sentiment_adapter: str, mlflow_tracking: MlflowTracking,
                       artifacts: ArtifactStore) -> pd.DataFrame:
    """Two L2-normalised vectors per article, with its predicted sentiment and the adapter version (MLflow run id)
    that made them: `embedding`, the topic vector from the frozen base encoder (read by search, the outlet map and
    the leaning axis), and `sentiment_embedding`, the vector the sentiment head reads (adapter on). Partitioned by
    publish day like raw_articles: a nightly run embeds one day and leaves the others as they are."""
    from opensentiment_pipeline.core.model import modeling
    from opensentiment_pipeline.core.vectors import backends, encoder_versions, encoding, topic_quality

    articles = raw_articles
    if config.sources:
        articles = raw_articles[raw_articles["source"].isin(config.sources)]
        if articles.empty and not raw_articles.empty and context.has_partition_key_range and len(context.partition_keys) > 1:
            # Over a range of days a source missing everywhere is a typo, not a quiet day.
            raise ValueError(f"sources {sorted(config.sources)} are not in raw_articles; present: "
                             f"{sorted(raw_articles['source'].unique())}")
    articles = articles.reset_index(drop=True)
    adapter_dir = embedding_adapter_dir(context, config, sentiment_adapter, mlflow_tracking, artifacts)
    version = adapter_version(adapter_dir)
    if articles.empty:
        context.log.info("no articles to embed on days %s..%s", context.partition_keys[0], context.partition_keys[-1])
        context.add_output_metadata({"num_rows": 0, "adapter_version": version})
        return pd.DataFrame({c: pd.Series(dtype=object) for c in EMBEDDING_FRAME_COLUMNS})
    device = modeling.resolve_device(config.device)
    manifest, tokenizer, model = modeling.load_adapter(adapter_dir, device=device)
    texts = article_texts(articles, config.include_title)
    backend = backends.pick_backend(config.backend, device=device, num_texts=len(texts),
                                      onnx_min_texts=config.onnx_min_texts)
    # The head reads the same mean-pooled vector that is stored as sentiment_embedding (target-dependent rows
    # such as NewsMTSC's get the sentence's overall sentiment here, not the target's).
    vectors = encoding.embed_articles(model, tokenizer, texts, labels=manifest.labels, batch_size=config.batch_size,
                                    max_length=config.max_length, device=config.device, max_chunks=config.max_chunks,
                                    backend=backend, show_progress=True)
    frame = encoding.embeddings_frame(articles["article_id"], vectors.topic, model_version=version)
    frame.insert(3, "sentiment_embedding", pd.Series(list(vectors.sentiment), dtype=object))
    frame["sentiment"] = [manifest.labels[i] for i in vectors.proba.argmax(1)]
    frame["sentiment_confidence"] = vectors.proba.max(1)
    # What text each vector read: readers refuse days embedded with different windows (encoder_versions).
    frame["text_window"] = encoder_versions.text_window(include_title=config.include_title,
                                                        max_length=config.max_length, max_chunks=config.max_chunks)
    frame[PARTITION_COLUMN] = articles[PARTITION_COLUMN].to_numpy()
    topic_labels = articles["topic"] if "topic" in articles.columns else [None] * len(articles)
    context.add_output_metadata({
        "num_rows": len(frame),
        "dimensions": int(vectors.topic.shape[1]),
        "adapter_version": version,
        "adapter": config.adapter,
        "base_model": manifest.base_model,
        "backend": backend,
        "predicted_sentiment": dg.MetadataValue.json(frame["sentiment"].value_counts().to_dict()),
        # Same-topic precision@10 within this run's articles: the topic vectors are the base encoder's.
        **topic_quality.topic_report({"topic_vectors": vectors.topic, "sentiment_vectors": vectors.sentiment},
                              topic_labels),
    })
    return frame


