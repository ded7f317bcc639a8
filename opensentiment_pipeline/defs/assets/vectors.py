"""Vector assets: two vectors per article (topic: frozen base encoder; sentiment: with the adapter) and every
sentence's sentiment, one day at a time."""

from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field, model_validator

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
    article_sentiment: Literal["sentences", "windows"] = Field(
        default="sentences", description="where the article's `sentiment` comes from: sentences = its sentences' "
        "net score (mean p_positive - p_negative) cut at +-neutral_band, and the sentiment vector is the "
        "token-weighted mean of the sentence vectors (one adapter pass over sentences); windows = the head applied "
        "to the average of the max_chunks windows (one more adapter pass). Measured on BASIL articles in "
        "benchmarks/RESULTS.md")
    neutral_band: float = Field(default=0.45, ge=0, lt=1, description="sentences: a net score within +-band is "
                                "neutral; 0.45 maximised macro-F1 of the same rule on the 1,257 NewsMTSC + Financial "
                                "PhraseBank validation sentences (benchmarks/article_sentiment_quality.py); re-run "
                                "its validation stage after training a different adapter")
    max_sentences: int = Field(default=64, ge=1, description="sentences scored per article (title first); 64 "
                               "covers the whole of 98 % of the 300 BASIL news articles (median 28 sentences)")

    @model_validator(mode="after")
    def _band_only_with_sentences(self):
        if self.article_sentiment == "windows" and "neutral_band" in self.model_fields_set:
            raise ValueError(f"neutral_band={self.neutral_band} has no effect with article_sentiment: windows "
                             "(the head's argmax labels the article); drop it or set article_sentiment: sentences")
        return self


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
                           "sentiment_confidence", "n_sentences", "negative_share", "positive_share", "net_sentiment",
                           "text_window", PARTITION_COLUMN)
SENTENCE_FRAME_COLUMNS = ("article_id", "outlet", "sentence_idx", "start", "end", "sentence", "n_tokens",
                          "p_negative", "p_neutral", "p_positive", "sentiment", "model_version", PARTITION_COLUMN)


def _empty(columns) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


@dg.multi_asset(
    outs={
        "article_embeddings": dg.AssetOut(io_manager_key="parquet_io_manager", group_name="analysis", is_required=False),
        "article_sentences": dg.AssetOut(io_manager_key="parquet_io_manager", group_name="analysis", is_required=False),
    },
    # Subsettable, so `--select article_embeddings` (and the selections written before sentences existed) still
    # work: both tables come from the same pass, and only the selected ones are stored.
    partitions_def=DAILY, backfill_policy=DAY_BACKFILL, can_subset=True)
def article_embeddings(context: dg.AssetExecutionContext, config: ArticleEmbeddingsConfig,
                       raw_articles: pd.DataFrame, sentiment_adapter: str, mlflow_tracking: MlflowTracking,
                       artifacts: ArtifactStore):
    """Two tables per publish day, from one loaded adapter (a nightly run embeds one day, other days stay).

    `article_embeddings`, one row per article: `embedding`, the L2-normalised topic vector from the frozen base
    encoder over up to max_chunks windows (read by search, the outlet map and the leaning axis);
    `sentiment_embedding`, the sentiment-aware vector (adapter on: the token-weighted mean of its sentence
    vectors, or of its windows with article_sentiment: windows); `sentiment` (negative / neutral / positive) and
    `sentiment_confidence` (0-1) from the configured article_sentiment method; `n_sentences`, `negative_share`
    and `positive_share` (fractions of its sentences predicted so), `net_sentiment` (mean over sentences of
    p_positive - p_negative, -1..1); `model_version` (the adapter's MLflow run id), `text_window`, `partition_day`.

    `article_sentences`, one row per sentence (at most max_sentences per article, title first): article_id,
    outlet, sentence_idx, start/end (character offsets into "title. text"), sentence, n_tokens, the model's
    p_negative / p_neutral / p_positive and its argmax `sentiment`, scored exactly as the evaluation scores a
    sentence; model_version, partition_day."""
    from opensentiment_pipeline.core.analysis import article_sentiment
    from opensentiment_pipeline.core.model import modeling
    from opensentiment_pipeline.core.vectors import backends, encoder_versions, encoding, sentences, topic_quality

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
        yield from _selected(context, {
            "article_embeddings": (_empty(EMBEDDING_FRAME_COLUMNS), {"num_rows": 0, "adapter_version": version}),
            "article_sentences": (_empty(SENTENCE_FRAME_COLUMNS), {"num_rows": 0})})
        return
    device = modeling.resolve_device(config.device)
    manifest, tokenizer, model = modeling.load_adapter(adapter_dir, device=device)
    texts = article_texts(articles, config.include_title)
    backend = backends.pick_backend(config.backend, device=device, num_texts=len(texts),
                                      onnx_min_texts=config.onnx_min_texts)
    vectors, scored = sentences.embed_articles_and_sentences(
        model, tokenizer, texts, articles["article_id"].tolist(), labels=manifest.labels,
        batch_size=config.batch_size, max_length=config.max_length, max_chunks=config.max_chunks,
        sentence_max_length=manifest.max_length, max_sentences=config.max_sentences, device=config.device,
        backend=backend, window_sentiment=config.article_sentiment == "windows", show_progress=True)
    by_article = article_sentiment.aggregate_sentences(scored.sentences, neutral_band=config.neutral_band)
    without = sorted(set(articles["article_id"]) - set(by_article["article_id"]))
    if without:
        raise ValueError(f"{len(without)} articles have no sentence to score (blank title and text), e.g. "
                         f"{without[:3]}; drop them at ingestion")
    by_article = articles[["article_id"]].merge(by_article, on="article_id", how="left", validate="one_to_one")
    frame = encoding.embeddings_frame(articles["article_id"], vectors.topic, model_version=version)
    frame.insert(3, "sentiment_embedding", pd.Series(list(vectors.sentiment), dtype=object))
    if config.article_sentiment == "windows":
        frame["sentiment"] = [manifest.labels[i] for i in vectors.proba.argmax(1)]
        frame["sentiment_confidence"] = vectors.proba.max(1)
    else:
        frame["sentiment"] = by_article["sentiment"].to_numpy()
        frame["sentiment_confidence"] = by_article["sentiment_confidence"].astype("float32").to_numpy()
    for column in ("n_sentences", "negative_share", "positive_share", "net_sentiment"):
        frame[column] = by_article[column].to_numpy()
    # What text each vector read: readers refuse days embedded with different windows (encoder_versions).
    frame["text_window"] = encoder_versions.text_window(include_title=config.include_title,
                                                        max_length=config.max_length, max_chunks=config.max_chunks)
    frame[PARTITION_COLUMN] = articles[PARTITION_COLUMN].to_numpy()
    sentence_rows = scored.sentences.merge(articles[["article_id", "outlet", PARTITION_COLUMN]], on="article_id",
                                           how="left", validate="many_to_one").assign(model_version=version)
    topic_labels = articles["topic"] if "topic" in articles.columns else [None] * len(articles)
    yield from _selected(context, {
        "article_embeddings": (frame, {
            "num_rows": len(frame),
            "dimensions": int(vectors.topic.shape[1]),
            "adapter_version": version,
            "adapter": config.adapter,
            "base_model": manifest.base_model,
            "backend": backend,
            "article_sentiment": config.article_sentiment,
            "predicted_sentiment": dg.MetadataValue.json(frame["sentiment"].value_counts().to_dict()),
            # Same-topic precision@10 within this run's articles: the topic vectors are the base encoder's.
            **topic_quality.topic_report({"topic_vectors": vectors.topic, "sentiment_vectors": vectors.sentiment},
                                         topic_labels),
        }),
        "article_sentences": (sentence_rows[list(SENTENCE_FRAME_COLUMNS)], {
            "num_rows": len(sentence_rows),
            "sentences_per_article": round(len(sentence_rows) / len(frame), 2),
            "predicted_sentiment": dg.MetadataValue.json(sentence_rows["sentiment"].value_counts().to_dict()),
        }),
    })


def _selected(context: dg.AssetExecutionContext, outputs: dict):
    """dg.Output for each table this run selected (a subset run stores only those)."""
    for name, (value, metadata) in outputs.items():
        if name in context.selected_output_names:
            yield dg.Output(value, output_name=name, metadata=metadata)
