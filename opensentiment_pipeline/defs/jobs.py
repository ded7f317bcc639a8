"""Jobs and schedules."""

from __future__ import annotations

import dagster as dg

# Everything from the embeddings down: re-embed, then re-cluster and re-place outlets.
reembedding_job = dg.define_asset_job(
    "reembedding_job",
    selection=dg.AssetSelection.assets("article_embeddings").downstream(),
    description="Embed articles with the current adapter and refresh everything built on the embeddings",
)

nightly_reembedding = dg.ScheduleDefinition(
    name="nightly_reembedding",
    job=reembedding_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    description="Every night at 02:00 UTC: re-embed and re-cluster",
    default_status=dg.DefaultScheduleStatus.RUNNING,  # a schedule nobody turns on is not nightly
)
