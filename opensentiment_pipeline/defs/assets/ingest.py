"""Ingestion: every configured source → one normalised, deduplicated article table plus its rejects."""

from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import pandas as pd
from pydantic import Field

from opensentiment_pipeline.defs.metadata import label_distribution, table_preview
from opensentiment_pipeline.defs.partitions import DAILY, DAY_BACKFILL, PARTITION_COLUMN
from opensentiment_pipeline.defs.stored_days import StoredDays

if TYPE_CHECKING:
    from opensentiment_pipeline.core.schema import IngestResult

BUILTIN_PREFIX = "builtin:"
DEMO_DIR = Path(__file__).resolve().parents[2] / "demo_data"


class SourceConfig(dg.Config):
    """One input: a file (CSV, JSONL, Parquet), a known dataset layout, or an RSS/Atom feed."""

    name: str = Field(description="Short name; becomes the `source` column and prefixes article ids")
    format: str = Field(default="table", description="table | newsmtsc | financial_phrasebank | babe_votes | "
                                                    "article_bias_prediction | rss")
    path: str = Field(description="File path, feed URL, or builtin:news_demo.csv for the shipped demo corpus")
    columns: dict[str, str] = Field(default_factory=dict, description="schema field -> column in the file "
                                    "(id, text, title, outlet, published_at, label, target, leaning, topic, split, agreement)")
    label_columns: list[str] = Field(default_factory=list, description="columns that each hold one annotator's vote")
    task: str | None = Field(default=None, description="label space of labels and votes: sentiment | bias "
                             "(default: the format's own, sentiment for tables)")
    label_map: dict[str, str] = Field(default_factory=dict, description="raw label -> canonical label")
    split: str | None = Field(default=None, description="fixed split for every row: train | val | test "
                              "(any case; dev and validation mean val)")
    outlet: str | None = Field(default=None, description="outlet for every row, when the source names none")
    limit: int | None = Field(default=None, description="seeded random subsample of this many items (None = all)")
    test_size: float | None = Field(default=None, description="fixed stratified train/test split of the file's rows "
                                    "(all rows, file order, before rejects): Financial PhraseBank's 80/20 is 0.2")
    split_seed: int = Field(default=0, description="random_state of the test_size split")
    encoding: str = Field(default="utf-8", description="text encoding of a CSV/TSV/JSONL file, e.g. latin-1 or "
                          "cp1252; a line with bytes invalid in it is rejected with a hint")
    max_feed_bytes: int = Field(default=20_000_000, description="largest RSS/Atom document read; a bigger one "
                                "fails the run with a clear error")


DEMO_SOURCE = {
    "name": "demo",
    "path": BUILTIN_PREFIX + "news_demo.csv",
    "columns": {"id": "id", "text": "body", "title": "headline", "outlet": "outlet", "published_at": "published"},
    "label_columns": ["annotator_a", "annotator_b", "annotator_c"],
}


class RawArticlesConfig(dg.Config):
    sources: list[SourceConfig] = Field(default_factory=lambda: [SourceConfig(**DEMO_SOURCE)],
                                        description="Inputs to read; default: the shipped demo corpus")
    near_duplicate_threshold: float = Field(default=0.8, description="MinHash Jaccard above which two texts "
                                            "of one source are near-duplicates")
    seed: int = Field(default=0, description="Seed for subsampling and MinHash")
    max_rejected_share: float = Field(default=0.05, ge=0.0, le=1.0, description="the blocking check "
                                      "rejected_share_below_threshold fails (and stops what reads raw_articles) when "
                                      "more than this share of any source's rows is rejected; an empty source counts "
                                      "as fully rejected")


def resolve_path(path: str) -> str:
    """`builtin:<file>` names a file shipped in opensentiment_pipeline/demo_data; anything else is used as is."""
    if path.startswith(BUILTIN_PREFIX):
        resolved = DEMO_DIR / path[len(BUILTIN_PREFIX):]
        if not resolved.exists():
            shipped = sorted(p.name for p in DEMO_DIR.iterdir() if not p.name.startswith("_"))
            raise FileNotFoundError(f"{path}: no such builtin file; shipped files are {shipped}")
        return str(resolved)
    return path


def to_spec(source: SourceConfig, seed: int):
    """The core's SourceSpec for one configured source (builtin: paths resolved)."""
    from opensentiment_pipeline.core.ingest import sources

    fields = source.model_dump()
    fields["path"] = resolve_path(source.path)
    fields["label_columns"] = tuple(fields["label_columns"])
    # The seed only drives `limit`'s subsample; SourceSpec warns about a seed that has no effect.
    return sources.SourceSpec(seed=seed if source.limit is not None else None, **fields)


@dg.multi_asset(
    outs={
        "raw_articles": dg.AssetOut(io_manager_key="parquet_io_manager", is_required=False, description=(
            "One normalised table of articles/sentences: article_id, outlet, published_at (UTC), title, text, "
            "source, plus the source's labels and raw annotator votes")),
        "rejected_rows": dg.AssetOut(io_manager_key="parquet_io_manager", is_required=False, description=(
            "Input rows set aside, with file, row, field and reason")),
    },
    group_name="ingestion",
    partitions_def=DAILY,
    backfill_policy=DAY_BACKFILL,
    can_subset=True,  # `--select raw_articles+` must work without naming rejected_rows too
    check_specs=[dg.AssetCheckSpec("rejected_share_below_threshold", asset="raw_articles", blocking=True,
                                   description="no source loses more than max_rejected_share of its rows, and none "
                                               "is empty; blocking: what reads raw_articles waits for it")],
)
def raw_articles(context: dg.AssetExecutionContext, config: RawArticlesConfig):
    from opensentiment_pipeline.core.ingest import sources
    from opensentiment_pipeline.core.ingest.articles import publish_days

    # Every run reads whole sources (files or feeds hold no per-day index) and keeps the run's days, so
    # deduplication and ids are the same whichever days a run covers.
    result = sources.read_sources([to_spec(s, config.seed) for s in config.sources],
                                  near_dup_threshold=config.near_duplicate_threshold, seed=config.seed)
    days = list(context.partition_keys)
    everything = result.articles.assign(**{PARTITION_COLUMN: publish_days(result.articles["published_at"],
                                                                            first_day=DAILY.get_first_partition_key())})
    articles = everything[everything[PARTITION_COLUMN].isin(days)].reset_index(drop=True)
    all_rejects = result.rejects.assign(**{PARTITION_COLUMN: reject_days(result.rejects)})
    rejects = all_rejects[all_rejects[PARTITION_COLUMN].isin(days)].reset_index(drop=True)
    context.log.info("read %d rows from %d sources (%d rejected, %d duplicates dropped); %d rows and %d rejects "
                     "fall on days %s..%s", len(everything), len(config.sources), len(all_rejects),
                     result.duplicates_dropped, len(articles), len(rejects), days[0], days[-1])
    empty = empty_sources(all_rejects)
    if empty:
        context.log.warning("empty source(s) %s: no rows at all; the check rejected_share_below_threshold fails", empty)
    selected = context.selected_output_names
    if "rejected_rows" in selected:
        yield dg.Output(rejects, output_name="rejected_rows", metadata={
            "num_rows": len(rejects),
            "num_rejects_read": len(all_rejects),
            "rejects_per_source": dg.MetadataValue.json(all_rejects["source"].value_counts().to_dict()),
            "empty_sources": dg.MetadataValue.json(empty),
            "preview": dg.MetadataValue.md(table_preview(rejects)),
        })
    if "raw_articles" in selected:
        yield from articles_outputs(context, config, articles, everything, all_rejects, result)


def articles_outputs(context: dg.AssetExecutionContext, config: RawArticlesConfig, articles: pd.DataFrame,
                     everything: pd.DataFrame, rejects: pd.DataFrame, result: "IngestResult"):
    """The raw_articles output (the run's days) and the rejected-share check result (over all rows read)."""
    yield dg.Output(articles, output_name="raw_articles", metadata={
        "num_rows": len(articles),
        "num_rows_read": len(everything),
        "rows_per_source": dg.MetadataValue.json(articles["source"].value_counts().to_dict()),
        "num_outlets": int(articles["outlet"].nunique()),
        "duplicates_dropped": result.duplicates_dropped,
        "rejected_rows": len(rejects),
        "empty_sources": dg.MetadataValue.json(empty_sources(rejects)),
        "gold_label_distribution": dg.MetadataValue.json(label_distribution(articles)),
        "preview": dg.MetadataValue.md(table_preview(articles[["article_id", "outlet", "published_at", "title", "text"]])),
    })
    shares = rejected_shares(result.rows_read, rejects)
    worst = max(shares.values(), default=0.0)
    if context.selected_asset_check_keys:
        yield dg.AssetCheckResult(asset_key="raw_articles", check_name="rejected_share_below_threshold",
                                  passed=worst <= config.max_rejected_share,
                                  metadata={"rejected_share_per_source": dg.MetadataValue.json(shares),
                                            "max_rejected_share": config.max_rejected_share,
                                            "empty_sources": dg.MetadataValue.json(empty_sources(rejects))})


def reject_days(rejects: pd.DataFrame) -> pd.Series:
    """The day each reject is filed under: its row's publish day, as an article of that row would be.

    Rows without a readable date (undated corpora, a bad date, an unparseable record, an empty source) and rows
    dated in the future go to the archive day. So each input row's rejects live in one day partition, which a
    rerun of that day replaces: the nightly run, which reads whole sources but keeps yesterday, never files the
    same reject twice.
    """
    from opensentiment_pipeline.core.ingest.articles import publish_days

    first, last = DAILY.get_first_partition_key(), DAILY.get_last_partition_key()
    days = publish_days(pd.to_datetime(rejects["published_at"], utc=True), first_day=first)
    return days.where(days <= last, first).astype(object)


def empty_sources(rejects: pd.DataFrame) -> list[str]:
    """Sources that gave no row at all (their one reject has row 0, field "file")."""
    from opensentiment_pipeline.core.ingest.sources import EMPTY_SOURCE

    return sorted(rejects.loc[rejects["reason"] == EMPTY_SOURCE, "source"].unique().tolist())


def rejected_shares(rows_read: dict[str, int], rejects: pd.DataFrame) -> dict[str, float]:
    """Share of each source's input rows that were rejected (a row with several faults counts once; an empty
    source's one file-level reject makes its share 1.0). `rows_read` counts items before `limit`, so a
    subsampled source is judged on its whole file, as its rejects are."""
    rejected_rows = rejects.drop_duplicates(["source", "file", "row"])["source"].value_counts()
    return {str(source): float(rejected_rows.get(source, 0) / n) if n else 0.0 for source, n in sorted(rows_read.items())}


@dg.asset_check(asset="raw_articles", description="article_id must be unique over the days the run ingested")
def article_ids_are_unique(context: dg.AssetCheckExecutionContext, raw_articles: StoredDays) -> dg.AssetCheckResult:
    """Reads the ids of the run's own days only, so a night checks its day without re-reading the archive. An id
    filed under an earlier day too (a source that re-dated an article) is refused by the incremental readers
    downstream, which name it (article_index: "ids are already in the index")."""
    days = run_days(context.run.tags, raw_articles.days())
    ids = raw_articles.read(days, columns=["article_id"])["article_id"]
    duplicated = ids[ids.duplicated()]
    return dg.AssetCheckResult(passed=duplicated.empty, metadata={
        "days_checked": len(days), "num_duplicate_ids": len(duplicated),
        "examples": dg.MetadataValue.json(duplicated.head(5).tolist())})


def run_days(tags: dict[str, str], stored: list[str]) -> list[str]:
    """The stored days a run covered, from its partition tags (one day, or a range); every stored day when the
    run names no partition."""
    from opensentiment_pipeline.defs.partitions import RANGE_END_TAG, RANGE_START_TAG

    if "dagster/partition" in tags:
        first = last = tags["dagster/partition"]
    elif RANGE_START_TAG in tags:
        first, last = tags[RANGE_START_TAG], tags[RANGE_END_TAG]
    else:
        return stored
    return [day for day in stored if first <= day <= last]
