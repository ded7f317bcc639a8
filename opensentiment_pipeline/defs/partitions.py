"""Day partitions: `raw_articles` and `article_embeddings` are stored one Parquet file per publish day.

The nightly schedule then ingests and embeds one new day instead of everything. The first partition is the
archive: it also holds undated items (labelled corpora such as NewsMTSC) and everything published before it,
so a 2012 article and a sentence without a date are filed there, not lost. Its date is
`$OPENSENTIMENT_FIRST_DAY` (default 2026-11-01); moving it later refiles the archive on the next backfill.
The last partition is today (UTC), or `$OPENSENTIMENT_LAST_DAY` when set: the test suite pins it, so the set of
days (and what a whole-range run covers) does not grow with the calendar.

Every asset has a single-run backfill policy, so a range of days (a first load, or a re-embedding after a new
adapter) is one run that reads each source once, and `dagster asset materialize --partition-range` works on a
selection that mixes day-partitioned and unpartitioned assets. On a team instance (`DAGSTER_DEPLOYMENT=team` or `k8s`,
deploy/) the two day-partitioned assets instead cut a backfill into runs of `$OPENSENTIMENT_DAYS_PER_RUN` days
(default 7), which the queue and the celery workers run side by side.
"""

from __future__ import annotations

import datetime as dt
import os

import dagster as dg

FIRST_DAY = os.environ.get("OPENSENTIMENT_FIRST_DAY", "2026-11-01")
LAST_DAY = os.environ.get("OPENSENTIMENT_LAST_DAY") or None


def daily_partitions(first_day: str, last_day: str | None) -> dg.DailyPartitionsDefinition:
    """Days first_day..last_day (inclusive), or first_day..today (UTC) when last_day is None.

    Up to today, end_offset=1 makes today's partition exist, so an article published this morning can be
    ingested now; the nightly run re-ingests the whole day once it is over."""
    if last_day is None:
        return dg.DailyPartitionsDefinition(start_date=first_day, end_offset=1, timezone="UTC")
    try:
        end = dt.date.fromisoformat(last_day) + dt.timedelta(days=1)  # Dagster's end_date is exclusive
    except ValueError as err:
        raise ValueError(f"OPENSENTIMENT_LAST_DAY={last_day!r}: expected a day as YYYY-MM-DD") from err
    if end.isoformat() <= first_day:
        raise ValueError(f"OPENSENTIMENT_LAST_DAY={last_day} is before OPENSENTIMENT_FIRST_DAY={first_day}")
    return dg.DailyPartitionsDefinition(start_date=first_day, end_date=end.isoformat(), timezone="UTC")


DAILY = daily_partitions(FIRST_DAY, LAST_DAY)
SINGLE_RUN = dg.BackfillPolicy.single_run()
DEPLOYMENTS = ("local", "team", "k8s")
PARTITION_COLUMN = "partition_day"  # the day a row is stored under (YYYY-MM-DD)



def day_backfill_policy(deployment: str, days_per_run: str) -> dg.BackfillPolicy:
    """How a backfill of day partitions is cut into runs: one run on a laptop (`local`), runs of `days_per_run`
    days on a team instance (`team`, `k8s`), so that several workers share a long backfill."""
    if deployment == "local":
        return SINGLE_RUN
    if deployment not in DEPLOYMENTS:
        raise ValueError(f"DAGSTER_DEPLOYMENT={deployment!r}; expected one of {list(DEPLOYMENTS)}")
    if not days_per_run.isdigit() or int(days_per_run) < 1:
        raise ValueError(f"OPENSENTIMENT_DAYS_PER_RUN={days_per_run!r}; expected a whole number of days >= 1")
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=int(days_per_run))


DAY_BACKFILL = day_backfill_policy(os.environ.get("DAGSTER_DEPLOYMENT", "local"),
                                   os.environ.get("OPENSENTIMENT_DAYS_PER_RUN", "7"))

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def whole_range() -> tuple[str, str]:
    """(first, last) partition key: the archive day and today (UTC), or the pinned last day."""
    return DAILY.get_first_partition_key(), DAILY.get_last_partition_key()


def range_tags(first: str | None = None, last: str | None = None) -> dict[str, str]:
    """Run tags that make one run materialize the days first..last (default: all of them), as
    `dagster asset materialize --partition-range first...last` does."""
    whole = whole_range()
    return {RANGE_START_TAG: first or whole[0], RANGE_END_TAG: last or whole[1]}
