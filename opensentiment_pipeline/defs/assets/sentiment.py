"""Sentiment toward entities and over time: mentions per day, outlet x entity x week, outlet x topic x week.

The weekly tables keep their per-week counts in state folders (<home>/entity_sentiment, <home>/sentiment_trends),
so a night reads and counts the new day's rows only and recomputes the weeks they touch (trends.fold_weekly).
"""

from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from opensentiment_pipeline.defs.adapters import adapter_version
from opensentiment_pipeline.defs.metadata import table_preview
from opensentiment_pipeline.defs.partitions import DAILY, DAY_BACKFILL, PARTITION_COLUMN, SINGLE_RUN
from opensentiment_pipeline.defs.resources import ArtifactStore, MlflowTracking
from opensentiment_pipeline.defs.stored_days import StoredDays

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
    seed: int = Field(default=0, ge=0, description="seeds every week's resamples, with the week's own names")
    top_k: int = Field(default=6, ge=1, description="entities and topics drawn in the figure (most volume)")
    rebuild: bool = Field(default=False, description="recount every stored day instead of adding the new ones "
                          "to the stored weekly counts")
    state_dir: str | None = Field(default=None, description="folder of the weekly counts, replaced on each run; "
                                  "default: <home>/<asset> beside the artifact store")


STATS_FILE, TABLE_FILE, STATE_FILE = "stats.parquet", "table.parquet", "state.json"
STATE_VERSION = 1  # bump when the files a state folder holds change meaning
DAYS_PER_BATCH = 30  # days a recount reads at once: a month of mentions in memory, not the archive


@dg.asset(io_manager_key="parquet_io_manager", group_name="analysis", backfill_policy=SINGLE_RUN)
def entity_sentiment(context: dg.AssetExecutionContext, config: TrendConfig, entity_mentions: StoredDays,
                     raw_articles: StoredDays, artifacts: ArtifactStore) -> pd.DataFrame:
    """One row per outlet x entity x week (week = the Monday, YYYY-MM-DD, of the article's publish day; mentions
    in undated articles are left out and counted), from the stored daily entity_mentions rows (no article is
    re-scored): kind ("entity"), outlet, key (the entity), week, volume (mentions), articles (distinct articles),
    n_negative / n_neutral / n_positive, negative_share, positive_share, net_sentiment ((positive - negative) /
    volume, -1..1) with net_low / net_high (bootstrap interval), change (net minus the previous week's) with
    change_low / change_high and change_flagged (the interval excludes zero), and example_negative /
    example_positive (the week's most negative and most positive sentence). Weeks without mentions between an
    outlet's first and last have volume 0 and empty nets.

    The weekly counts are kept in a state folder: a night reads the new days of entity_mentions and raw_articles
    only and recomputes the weeks they touch; a changed or removed day, or `rebuild: true`, recounts every day."""
    from opensentiment_pipeline.core.analysis import trends

    def items_of(days: list[str]) -> tuple[pd.DataFrame, int]:
        mentions = entity_mentions.read(days, columns=MENTION_COLUMNS_READ)
        published = raw_articles.read(days, columns=["article_id", "published_at"])
        return trends.mention_items(mentions, published)

    folder = state_folder(config, artifacts, "entity_sentiment")
    table, metadata = fold_weekly_state(context, config, folder, entity_mentions, [raw_articles], items_of,
                                        kind="entity", entity_columns=True)
    context.add_output_metadata({
        **metadata, "num_rows": len(table),
        "flagged_changes": int(table["change_flagged"].sum()) if len(table) else 0,
        "preview": dg.MetadataValue.md(table_preview(
            table.drop(columns=["example_negative", "example_positive"]).round(3), rows=20)),
    })
    return table


MENTION_COLUMNS_READ = ["article_id", "outlet", "sentence_idx", "entity", "sentence", "p_negative", "p_positive",
                        "sentiment"]
MAP_COLUMNS = ["article_id", "outlet", "cluster", "map_fit", "sentiment", "published_at", PARTITION_COLUMN]


@dg.asset(io_manager_key="parquet_io_manager", group_name="analysis", backfill_policy=SINGLE_RUN)
def sentiment_trends(context: dg.AssetExecutionContext, config: TrendConfig, entity_sentiment: pd.DataFrame,
                     outlet_clusters: pd.DataFrame, mlflow_tracking: MlflowTracking,
                     artifacts: ArtifactStore) -> pd.DataFrame:
    """Attention and sentiment week by week, one row per kind x outlet x key x week, in the columns of
    entity_sentiment without the examples: kind "entity" rows (key = entity, volume = mentions) copied from
    entity_sentiment, and kind "topic" rows (key = the outlet map's cluster id as a string, volume = articles,
    each article's `sentiment` and publish week from the map's own rows). Noise (cluster -1) and undated articles
    have no topic row. The topic rows' weekly counts are kept in a state folder: a night counts the map's rows of
    the days it has not counted yet; when the rows of a counted day change (a re-fit of the map gives its points
    new clusters, a re-embedded day new sentiment) every day is counted again. A PNG of the most-mentioned
    entities and the largest topics (net sentiment per week, all outlets pooled) is in the metadata and in
    MLflow."""
    import mlflow

    from opensentiment_pipeline.core import plots
    from opensentiment_pipeline.core.analysis import trends

    missing = sorted(set(MAP_COLUMNS) - set(outlet_clusters.columns))
    if missing:
        raise ValueError(f"outlet_clusters lacks columns {missing} (got {list(outlet_clusters.columns)}); "
                         "re-materialize outlet_clusters with this version")
    folder = state_folder(config, artifacts, "sentiment_trends")
    topic_table, metadata = fold_topic_state(context, config, folder, outlet_clusters)
    entity_table = entity_sentiment[list(trends.WEEKLY_COLUMNS)] if len(entity_sentiment) else entity_sentiment.iloc[:0, :0]
    table = pd.concat([t for t in (entity_table, topic_table) if len(t)] or [topic_table], ignore_index=True)
    png = plots.trends_png(table, top_k=config.top_k)
    out_dir = artifacts.run_dir(context, "sentiment_trends")
    (out_dir / "sentiment_trends.png").write_bytes(png)
    with mlflow_tracking.run(context, params=config.model_dump()) as run:
        mlflow.log_artifacts(str(out_dir))
        mlflow.log_metrics({"rows": len(table), "flagged_changes": int(table["change_flagged"].sum()) if len(table) else 0})
    context.add_output_metadata({
        **mlflow_tracking.run_metadata(run), **metadata,
        "num_rows": len(table),
        "rows_by_kind": dg.MetadataValue.json(table["kind"].value_counts().to_dict() if len(table) else {}),
        "flagged_changes": int(table["change_flagged"].sum()) if len(table) else 0,
        "trends": dg.MetadataValue.md(plots.png_markdown(png, "net sentiment per week: top entities and topics")),
        "flagged": dg.MetadataValue.md(table_preview(
            table[table["change_flagged"].astype(bool)].round(3) if len(table) else table, rows=20)),
    })
    return table


def state_folder(config: TrendConfig, artifacts: ArtifactStore, name: str) -> Path:
    return Path(config.state_dir) if config.state_dir else Path(artifacts.root).parent / name


def _settings(config: TrendConfig) -> dict:
    return {"n_resamples": config.n_resamples, "level": config.level, "seed": config.seed}


def _load(folder: Path) -> tuple[pd.DataFrame | None, pd.DataFrame | None, dict]:
    """(stats, table, state.json) of a state folder; Nones and {} when it holds none of this version."""
    import json

    state_file = folder / STATE_FILE
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    if state.get("version") != STATE_VERSION:
        return None, None, {}
    return pd.read_parquet(folder / STATS_FILE), pd.read_parquet(folder / TABLE_FILE), state


def _save(folder: Path, stats: pd.DataFrame, table: pd.DataFrame, state: dict, ledger: dict) -> None:
    import json

    from opensentiment_pipeline.core.vectors import search
    from opensentiment_pipeline.defs.stored_days import write_ledger

    with search.replacing_folder(folder) as tmp:
        stats.to_parquet(tmp / STATS_FILE, index=False)
        table.to_parquet(tmp / TABLE_FILE, index=False)
        (tmp / STATE_FILE).write_text(json.dumps({"version": STATE_VERSION, **state}, indent=1, sort_keys=True))
        write_ledger(tmp, ledger)


def _fold(config: TrendConfig, stored: tuple, new_stats: pd.DataFrame, *, rebuild: bool, kind: str,
          entity_columns: bool) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """(table, stats, recomputed_all): the stored table and stats with new_stats folded in; every row is
    recomputed after a rebuild or new bootstrap settings (from the stored counts: no day is read for that)."""
    from opensentiment_pipeline.core.analysis import trends

    stats, table, state = stored
    settings = _settings(config)
    if rebuild or stats is None:
        stats, table = trends.empty_stats(), None
    fresh = table is None or state.get("settings") != settings
    if fresh:
        new_stats, stats = trends.merge_stats(stats, new_stats), trends.empty_stats()
        table = trends.weekly_rows(stats, pd.DataFrame(columns=trends.CELL), kind=kind, entity_columns=entity_columns,
                                   **settings)
    table, stats = trends.fold_weekly(table, stats, new_stats, kind=kind, entity_columns=entity_columns, **settings)
    return table, stats, fresh


def fold_weekly_state(context: dg.AssetExecutionContext, config: TrendConfig, folder: Path, primary: StoredDays,
                      companions: list[StoredDays], items_of, *, kind: str, entity_columns: bool
                      ) -> tuple[pd.DataFrame, dict]:
    """Bring the weekly table kept in `folder` up to date with `primary`'s stored days (`items_of(days)` gives
    their items and undated count; `companions` are read for the same days) and store it again; returns
    (table, metadata)."""
    from opensentiment_pipeline.core.analysis import trends
    from opensentiment_pipeline.defs.stored_days import plan_fold, read_ledger

    stats, table, state = _load(folder)
    reason = "rebuild: true" if config.rebuild else "no state yet" if stats is None else ""
    plan = plan_fold({days.asset: days for days in (primary, *companions)},
                     read_ledger(folder) if stats is not None else {}, rebuild_reason=reason)
    with_rows = set(primary.days())
    days = [day for day in plan.days if day in with_rows]  # a companion's day without primary rows has no items
    if plan.rebuild:
        context.log.info("%s: counting every stored day (%d): %s", kind, len(days), plan.reason)
    new_stats, undated = trends.empty_stats(), 0 if plan.rebuild else state.get("undated", 0)
    for start in range(0, len(days), DAYS_PER_BATCH):
        items, left_out = items_of(days[start:start + DAYS_PER_BATCH])
        new_stats = trends.merge_stats(new_stats, trends.weekly_stats(items, examples=entity_columns))
        undated += left_out
    table, stats, recomputed = _fold(config, (stats, table, state), new_stats, rebuild=plan.rebuild, kind=kind,
                                     entity_columns=entity_columns)
    _save(folder, stats, table, {"settings": _settings(config), "undated": undated}, plan.stored)
    return table, {"days_read": len(days), "rebuilt": plan.rebuild, "rebuild_reason": plan.reason,
                   "weeks_counted": len(new_stats), "all_rows_recomputed": recomputed,
                   f"undated_{'mentions' if entity_columns else 'articles'}_left_out": undated,
                   "state_dir": dg.MetadataValue.path(str(folder))}


def fold_topic_state(context: dg.AssetExecutionContext, config: TrendConfig, folder: Path, points: pd.DataFrame
                     ) -> tuple[pd.DataFrame, dict]:
    """The topic rows of the outlet map `points` (every article), counting only the days whose rows the state has
    not counted; a counted day whose rows changed (digest) recounts them all. Returns (table, metadata)."""
    from opensentiment_pipeline.core.analysis import trends
    from opensentiment_pipeline.defs.stored_days import changes, read_ledger

    stats, table, state = _load(folder)
    digests = trends.day_digests(points, [c for c in MAP_COLUMNS if c != PARTITION_COLUMN], day_column=PARTITION_COLUMN)
    folded = read_ledger(folder).get("outlet_clusters", {}) if stats is not None else {}
    change = changes(digests, folded)
    reason = ("rebuild: true" if config.rebuild else "no state yet" if stats is None else "" if change.only_new
              else f"the map's rows of days {(change.changed + change.removed)[:3]} changed (a re-fit or re-embedding)")
    days = sorted(digests) if reason else change.new
    if reason:
        context.log.info("topic rows: counting every day of the map (%d): %s", len(days), reason)
    rows = points[points[PARTITION_COLUMN].astype(str).isin(days)]
    items, undated = trends.topic_items(rows)
    new_stats = trends.weekly_stats(items, examples=False)
    undated += 0 if reason else state.get("undated", 0)
    table, stats, _ = _fold(config, (stats, table, state), new_stats, rebuild=bool(reason), kind="topic",
                            entity_columns=False)
    _save(folder, stats, table, {"settings": _settings(config), "undated": undated}, {"outlet_clusters": digests})
    return table, {"topic_days_counted": len(days), "topic_rows_rebuilt": bool(reason), "topic_rebuild_reason": reason,
                   "undated_articles_left_out": undated, "topic_state_dir": dg.MetadataValue.path(str(folder))}
