"""Sentiment toward entities and over time: mentions per day, outlet x entity x week, outlet x topic x week."""

import dagster as dg
import pandas as pd
from pydantic import Field

from opensentiment_pipeline.defs.adapters import adapter_version
from opensentiment_pipeline.defs.metadata import table_preview
from opensentiment_pipeline.defs.partitions import DAILY, DAY_BACKFILL, PARTITION_COLUMN, SINGLE_RUN
from opensentiment_pipeline.defs.resources import ArtifactStore, MlflowTracking

MENTION_FRAME_COLUMNS = ("article_id", "outlet", "sentence_idx", "entity", "mention", "start", "end", "sentence",
                         "p_negative", "p_neutral", "p_positive", "sentiment", "model_version", PARTITION_COLUMN)


class EntityMentionsConfig(dg.Config):
    entities: list[dict] = Field(default_factory=list, description="the entities to follow, each "
                                 "{name: ..., aliases: [...]}: literal, case-sensitive, whole-word matches (e.g. "
                                 "{name: Bank of England, aliases: [BoE]}); empty = no mentions")
    batch_size: int = 64
    device: str = Field(default="auto", description="auto (CUDA when present) | cpu | cuda")


@dg.asset(io_manager_key="parquet_io_manager", group_name="analysis", partitions_def=DAILY,
          backfill_policy=DAY_BACKFILL)
def entity_mentions(context: dg.AssetExecutionContext, config: EntityMentionsConfig, article_sentences: pd.DataFrame,
                    sentiment_adapter: str) -> pd.DataFrame:
    """One row per (sentence, configured entity) found in that day's article_sentences, with the sentiment toward
    the entity: article_id, outlet, sentence_idx, entity (canonical name), mention (the surface form found),
    start/end (character offsets in the sentence), sentence, p_negative / p_neutral / p_positive from the
    (mention, sentence) pair input the adapter was trained on, their argmax `sentiment`, model_version,
    partition_day. Matches are whole words: a name inside another word is not a mention."""
    from opensentiment_pipeline.core.analysis import entities
    from opensentiment_pipeline.core.model import modeling

    listed = entities.parse_entities(config.entities)
    mentions = entities.find_mentions(article_sentences, listed)
    version = adapter_version(sentiment_adapter)
    if mentions.empty:
        context.log.info("no mentions of %d configured entities in %d sentences", len(listed), len(article_sentences))
        context.add_output_metadata({"num_rows": 0, "entities": len(listed)})
        return pd.DataFrame({c: pd.Series(dtype=object) for c in MENTION_FRAME_COLUMNS})
    manifest, tokenizer, model = modeling.load_adapter(sentiment_adapter, device=modeling.resolve_device(config.device))
    scored = entities.score_mentions(model, tokenizer, mentions, manifest=manifest, batch_size=config.batch_size,
                                     device=config.device)
    keys = article_sentences[["article_id", "sentence_idx", "outlet", PARTITION_COLUMN]]
    frame = scored.merge(keys, on=["article_id", "sentence_idx"], how="left", validate="many_to_one")
    counts = frame.groupby("entity")["sentiment"].value_counts().unstack(fill_value=0).reset_index()
    context.add_output_metadata({"num_rows": len(frame), "entities": len(listed),
                                 "mentions_by_entity": dg.MetadataValue.md(table_preview(counts, rows=30))})
    return frame.assign(model_version=version)[list(MENTION_FRAME_COLUMNS)]


class TrendConfig(dg.Config):
    n_resamples: int = Field(default=1000, ge=1, description="bootstrap resamples per week and interval")
    level: float = Field(default=0.95, gt=0, lt=1, description="central share covered by each interval")
    seed: int = 0
    top_k: int = Field(default=6, ge=1, description="entities and topics drawn in the figure (most volume)")


@dg.asset(io_manager_key="parquet_io_manager", group_name="analysis", backfill_policy=SINGLE_RUN)
def entity_sentiment(context: dg.AssetExecutionContext, config: TrendConfig, entity_mentions: pd.DataFrame) -> pd.DataFrame:
    """One row per outlet x entity x week (week = the Monday, YYYY-MM-DD), read from the stored daily
    entity_mentions rows (no article is re-read or re-scored): kind ("entity"), outlet, key (the entity), week,
    volume (mentions), articles (distinct articles), n_negative / n_neutral / n_positive, negative_share,
    positive_share, net_sentiment ((positive - negative) / volume, -1..1) with net_low / net_high (bootstrap
    interval), change (net minus the previous week's) with change_low / change_high and change_flagged (the
    interval excludes zero), and example_negative / example_positive (the week's most negative and most
    positive sentence). Weeks without mentions between an outlet's first and last have volume 0 and empty nets."""
    from opensentiment_pipeline.core.analysis import trends

    mentions = entity_mentions.rename(columns={PARTITION_COLUMN: "day"})
    table = trends.entity_weekly(mentions, n_resamples=config.n_resamples, level=config.level, seed=config.seed)
    context.add_output_metadata({
        "num_rows": len(table),
        "flagged_changes": int(table["change_flagged"].sum()) if len(table) else 0,
        "preview": dg.MetadataValue.md(table_preview(
            table.drop(columns=["example_negative", "example_positive"]).round(3), rows=20)),
    })
    return table


@dg.asset(io_manager_key="parquet_io_manager", group_name="analysis", backfill_policy=SINGLE_RUN)
def sentiment_trends(context: dg.AssetExecutionContext, config: TrendConfig, entity_sentiment: pd.DataFrame,
                     article_embeddings: pd.DataFrame, outlet_clusters: pd.DataFrame,
                     mlflow_tracking: MlflowTracking, artifacts: ArtifactStore) -> pd.DataFrame:
    """Attention and sentiment week by week, one row per kind x outlet x key x week, in the columns of
    entity_sentiment without the examples: kind "entity" rows (key = entity, volume = mentions) copied from
    entity_sentiment, and kind "topic" rows (key = the outlet map's HDBSCAN cluster id as a string, volume =
    articles, each article's `sentiment` from article_embeddings). Articles HDBSCAN calls noise (cluster -1) have
    no topic row. The topic rows are rebuilt from every article's label on each run, because the map is re-fit
    nightly and its cluster ids change; the entity rows come from stored per-day mentions. A PNG of the
    most-mentioned entities and the largest topics (net sentiment per week, all outlets pooled) is in the
    metadata and in MLflow."""
    import mlflow

    from opensentiment_pipeline.core import plots
    from opensentiment_pipeline.core.analysis import trends

    topics = (outlet_clusters[["article_id", "outlet", "cluster"]]
              .merge(article_embeddings[["article_id", "sentiment", PARTITION_COLUMN]], on="article_id",
                     how="inner", validate="one_to_one"))
    topics = topics[topics["cluster"] >= 0]
    items = pd.DataFrame({"outlet": topics["outlet"], "key": topics["cluster"].astype(int).astype(str),
                          "day": topics[PARTITION_COLUMN], "sentiment": topics["sentiment"]})
    topic_table = trends.weekly_table(items, kind="topic", n_resamples=config.n_resamples, level=config.level,
                                      seed=config.seed)
    entity_table = entity_sentiment[list(trends.WEEKLY_COLUMNS)] if len(entity_sentiment) else entity_sentiment.iloc[:0, :0]
    table = pd.concat([t for t in (entity_table, topic_table) if len(t)] or [topic_table], ignore_index=True)
    png = plots.trends_png(table, top_k=config.top_k)
    out_dir = artifacts.run_dir(context, "sentiment_trends")
    (out_dir / "sentiment_trends.png").write_bytes(png)
    with mlflow_tracking.run(context, params=config.model_dump()) as run:
        mlflow.log_artifacts(str(out_dir))
        mlflow.log_metrics({"rows": len(table), "flagged_changes": int(table["change_flagged"].sum()) if len(table) else 0})
    context.add_output_metadata({
        **mlflow_tracking.run_metadata(run),
        "num_rows": len(table),
        "rows_by_kind": dg.MetadataValue.json(table["kind"].value_counts().to_dict() if len(table) else {}),
        "flagged_changes": int(table["change_flagged"].sum()) if len(table) else 0,
        "trends": dg.MetadataValue.md(plots.png_markdown(png, "net sentiment per week: top entities and topics")),
        "flagged": dg.MetadataValue.md(table_preview(
            table[table["change_flagged"].astype(bool)].round(3) if len(table) else table, rows=20)),
    })
    return table
