"""The nightly schedule over two consecutive nights, against a temporary Dagster instance.

Night 1 ingests and embeds 2026-11-24; then articles dated 2026-11-25 arrive in the source file, and night 2
must embed exactly those, leaving every earlier day's stored vectors byte for byte as they were.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import dagster as dg
import pandas as pd
import pytest

from opensentiment_pipeline import definitions
from opensentiment_pipeline.defs import jobs, partitions
from opensentiment_pipeline.defs.assets.ingest import DEMO_DIR
from opensentiment_pipeline.defs.resources import ParquetIOManager

TINY_TRAINING = {"epochs": 1, "lora_r": 4, "max_length": 32, "num_layers": 2}
NEW_DAY = "2026-11-25"
NEW_ARTICLES = [  # hand-written, so deduplication has nothing to drop
    ("Ferry timetable doubles crossings to the islands", "The island ferry will sail every hour from spring, "
     "doubling the crossings that residents asked for."),
    ("Chemical plant fined after river spill", "Regulators fined the Harlow chemical plant after a spill "
     "turned a stretch of the river white and killed hundreds of fish."),
    ("Library extends weekend opening hours", "The central library will open on Sundays from next month, "
     "staffed by four new librarians."),
    ("Regional airline cancels winter routes", "Two regional routes will be suspended until March, leaving "
     "travellers in the north with a six-hour drive to the nearest airport."),
    ("Council publishes quarterly budget figures", "The council's quarterly report lists spending of 41 million "
     "across housing, roads and parks, in line with the plan."),
    ("Teenagers build solar car for national race", "Students at Kelby High spent two years building a solar car "
     "that will compete in the national schools race in May."),
]


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _embedded_days(result) -> list[str]:
    return sorted(e.partition for e in result.get_asset_materialization_events()
                  if e.asset_key.to_user_string() == "article_embeddings")


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    home = tmp_path_factory.mktemp("nightly")
    source_csv = home / "news.csv"
    demo = pd.read_csv(DEMO_DIR / "news_demo.csv")
    demo.to_csv(source_csv, index=False)
    source = {"name": "wire", "path": str(source_csv),
              "columns": {"id": "id", "text": "body", "title": "headline", "outlet": "outlet",
                          "published_at": "published"},
              "label_columns": ["annotator_a", "annotator_b", "annotator_c"]}
    run_config = {"ops": {"raw_articles": {"config": {"sources": [source]}},
                          "outlet_clusters": {"config": {"min_cluster_size": 5}}}}
    resources = definitions.resources_for(home, tracking_uri=f"sqlite:///{home}/mlflow.db")
    # Every stored day any asset reads is logged: the second night must read its own day and no other.
    resources["parquet_io_manager"] = ParquetIOManager(base_dir=str(home / "assets"), read_log=str(home / "reads.jsonl"))
    defs = dg.Definitions(assets=definitions.ASSETS, asset_checks=definitions.ASSET_CHECKS,
                          jobs=[jobs.reembedding_job], schedules=[jobs.nightly_reembedding], resources=resources)
    (home / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(home / "dagster")) as instance:
        # Before the first night: ingest the days so far, train a (tiny) adapter, embed up to 2026-11-23.
        setup = dg.materialize(
            definitions.ASSETS, instance=instance, resources=resources,
            selection=dg.AssetSelection.assets("raw_articles", "merged_annotations", "sentiment_examples",
                                               "sentiment_adapter", "article_embeddings"),
            run_config={"ops": {"raw_articles": run_config["ops"]["raw_articles"],
                                "sentiment_adapter": {"config": TINY_TRAINING}}},
            tags=partitions.range_tags(last="2026-11-23"))
        assert setup.success
        job = defs.resolve_job_def("reembedding_job")
        results, snapshots = [], []
        for night in (dt.datetime(2026, 11, 25, 2, tzinfo=dt.timezone.utc),
                      dt.datetime(2026, 11, 26, 2, tzinfo=dt.timezone.utc)):
            if night.day == 26:  # the new day's news arrives in the source file
                new = pd.DataFrame([{"id": f"late-{i}", "outlet": "Harbour Times", "published": f"{NEW_DAY}T09:00:00Z",
                                     "headline": title, "body": body} for i, (title, body) in enumerate(NEW_ARTICLES)])
                pd.concat([demo, new], ignore_index=True).to_csv(source_csv, index=False)
            snapshots.append({f.stem: _sha(f) for f in (home / "assets" / "article_embeddings").glob("*.parquet")})
            context = dg.build_schedule_context(instance=instance, scheduled_execution_time=night,
                                                repository_def=defs.get_repository_def())
            (request,) = defs.get_schedule_def("nightly_reembedding").evaluate_tick(context).run_requests
            results.append((request.partition_key, job.execute_in_process(
                instance=instance, partition_key=request.partition_key, run_config=run_config)))
        yield home, demo, results, snapshots


def test_each_night_runs_the_day_before(nights):
    _, _, results, _ = nights
    assert [key for key, _ in results] == ["2026-11-24", NEW_DAY]
    assert all(result.success for _, result in results)


def test_second_night_embeds_only_the_new_days_articles(nights):
    home, _, results, _ = nights
    _, second = results[1]
    assert _embedded_days(second) == [NEW_DAY]
    new_day = pd.read_parquet(home / "assets" / "article_embeddings" / f"{NEW_DAY}.parquet")
    raw_new_day = pd.read_parquet(home / "assets" / "raw_articles" / f"{NEW_DAY}.parquet")
    assert len(new_day) == len(NEW_ARTICLES)
    assert sorted(new_day["article_id"]) == sorted(raw_new_day["article_id"])
    assert set(raw_new_day["title"]) == {title for title, _ in NEW_ARTICLES}


def test_second_night_leaves_earlier_vectors_untouched(nights):
    home, demo, _, snapshots = nights
    before_second, = snapshots[1:]
    after = {f.stem: _sha(f) for f in (home / "assets" / "article_embeddings").glob("*.parquet")}
    assert set(after) - set(before_second) == {NEW_DAY}
    assert {day: after[day] for day in before_second} == before_second
    # the first night embedded 2026-11-24 and nothing else; the setup had embedded the days before it
    assert set(before_second) - set(snapshots[0]) == {"2026-11-24"}
    stored = pd.concat([pd.read_parquet(f) for f in (home / "assets" / "article_embeddings").glob("*.parquet")])
    assert len(stored) == stored["article_id"].nunique() == 297 + len(NEW_ARTICLES)  # 3 demo reprints dropped


def test_the_index_and_map_cover_every_day_after_each_night(nights):
    _, _, results, _ = nights
    for (_, result), expected in zip(results, (297, 297 + len(NEW_ARTICLES))):
        (index_event,) = [e for e in result.get_asset_materialization_events()
                          if e.asset_key.to_user_string() == "article_index"]
        assert index_event.materialization.metadata["num_vectors"].value == expected


def test_second_night_reads_no_stored_day_but_its_own(nights):
    home, _, results, _ = nights
    _, second = results[1]
    reads = [json.loads(line) for line in (home / "reads.jsonl").read_text().splitlines()]
    second_reads = [r for r in reads if r["run_id"] == second.run_id]
    (event,) = [e for e in second.get_asset_materialization_events()
                if e.asset_key.to_user_string() == "outlet_clusters"]
    assert not event.materialization.metadata["refitted"].value, event.materialization.metadata["refit_reason"]
    readers = {r["reader"] for r in second_reads}
    assert {"article_index", "outlet_clusters", "outlet_leaning", "stories"} <= readers
    assert sorted({r["day"] for r in second_reads}) == [NEW_DAY], \
        sorted({(r["reader"], r["asset"], r["day"]) for r in second_reads if r["day"] != NEW_DAY})[:10]
    # the first night rebuilt what had no state yet, so it read the earlier days: the log does see them
    first_days = {r["day"] for r in reads if r["run_id"] == results[0][1].run_id}
    assert len(first_days) > 1
