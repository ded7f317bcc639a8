"""The nightly job and its schedule.

Each night ingests yesterday's articles (one day partition of raw_articles), embeds only them (the same day of
article_embeddings and article_sentences) and scores that day's entity mentions (entity_mentions), then folds
that day into what covers every day: the search index, the outlet map, the bias axis, the stories and the weekly
tables each keep a state folder and read the new day alone (`defs/stored_days.py`); the map and the axis refit
on their own schedule. Other days' stored rows and vectors are not touched, nor read.
After a new adapter, re-embed every day with one run:
`dagster asset materialize --select 'article_embeddings+' --partition-range <first>...<today>` (`make reembed`);
the readers see the re-embedded days and rebuild from every day.

What the nightly run reads is run config: set `$OPENSENTIMENT_NIGHTLY_CONFIG` to a YAML file such as
configs/shared_data.yaml (the same format as `dagster asset materialize -c`); its entries for assets outside the
nightly job are ignored. Without it the job reads the demo corpus.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dagster as dg
import yaml

from opensentiment_pipeline.defs.partitions import DAILY

NIGHTLY_HOUR_UTC = 2
KIND_TAG = "opensentiment/kind"  # run tag the team instance's queue limits by (training | embedding)
NIGHTLY_ASSETS = ("raw_articles", "article_embeddings", "article_index", "outlet_clusters", "outlet_leaning",
                  "entity_mentions", "entity_sentiment", "sentiment_trends", "stories", "outlet_agreement",
                  "results_db")


def nightly_config(path: str | None = None) -> dict | None:
    """Run config for the nightly job from a `dagster ... -c` style YAML file (default:
    $OPENSENTIMENT_NIGHTLY_CONFIG), keeping only the entries of assets the job materializes."""
    path = path or os.environ.get("OPENSENTIMENT_NIGHTLY_CONFIG")
    if not path:
        return None
    try:
        config = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"OPENSENTIMENT_NIGHTLY_CONFIG={path}: cannot read it as YAML run config: {err}") from err
    ops = config.get("ops", {}) if isinstance(config, dict) else None
    if not isinstance(ops, dict):
        raise ValueError(f"{path}: expected a mapping with an `ops:` section, as for `dagster asset materialize -c`")
    return {"ops": {name: value for name, value in ops.items() if name in NIGHTLY_ASSETS}}


reembedding_job = dg.define_asset_job(
    "reembedding_job",
    selection=dg.AssetSelection.assets("raw_articles", "rejected_rows", "article_embeddings", "article_sentences")
    | dg.AssetSelection.assets("article_embeddings", "article_sentences").downstream(),
    partitions_def=DAILY,
    config=nightly_config(),
    tags={KIND_TAG: "embedding"},  # deploy/dagster.yaml limits how many embedding runs share the workers
    description="Ingest and embed one day of articles (vectors and sentences), score its entity mentions, then "
                "refresh the index, outlet map, bias axis and the weekly sentiment tables",
)


def day_before(moment: dt.datetime) -> str:
    """The partition key of the UTC day before `moment` (the last complete day at 02:00)."""
    return (moment.astimezone(dt.timezone.utc) - dt.timedelta(days=1)).strftime("%Y-%m-%d")


@dg.schedule(
    job=reembedding_job,
    cron_schedule=f"0 {NIGHTLY_HOUR_UTC} * * *",
    execution_timezone="UTC",
    description="Every night at 02:00 UTC: ingest and embed yesterday's articles, re-cluster, re-index",
    default_status=dg.DefaultScheduleStatus.RUNNING,  # a schedule nobody turns on is not nightly
)
def nightly_reembedding(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = day_before(context.scheduled_execution_time)
    return dg.RunRequest(run_key=day, partition_key=day)
