"""Scale-out: a 30-day embedding backfill on the team instance with 1 celery worker and with 2.

`--n` Article-Bias-Prediction articles (title + body) get publish dates spread evenly over `--days` days. A whole
team instance starts on this machine (deploy/team_services.py: Postgres, Redis, MLflow server, webserver, daemon,
celery workers). One run ingests every day, merges the demo labels and trains a small adapter (one epoch on the
demo corpus; its quality does not matter here, all six layers are kept so an embedding costs what it costs in
production). Then
`article_embeddings` is backfilled over the `--days` days through the webserver's GraphQL API, as a user would
from the UI; the team backfill policy cuts it into runs of `--days-per-run` days, which the queue runs side by
side and whose steps the celery workers take. Once with one worker, once with two. Each worker gets
`--threads` torch threads, so one worker uses one core and two use two.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/team_scaleout.py --n 600 --days 30 --days-per-run 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nightly_cost import write_corpus  # noqa: E402  (the same ABP corpus, dated round-robin over the days)

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=600, help="articles in the corpus")
    parser.add_argument("--days", type=int, default=30, help="days they are spread over = days backfilled")
    parser.add_argument("--days-per-run", type=int, default=5, help="OPENSENTIMENT_DAYS_PER_RUN")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker process")
    parser.add_argument("--data", default="../shared/data/article_bias_prediction/"
                        "abp_articles_text_sample_cap300_per_source.parquet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed per backfill")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    today = dt.datetime.now(dt.timezone.utc).date()
    first_day = today - dt.timedelta(days=args.days)
    os.environ["OPENSENTIMENT_FIRST_DAY"] = first_day.isoformat()  # read when partitions.py is imported
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from deploy.team_services import STEP_QUEUE, start_team_services, start_worker, wait_for_workers
    from opensentiment_pipeline.defs.assets.ingest import DEMO_SOURCE
    from opensentiment_pipeline.defs.jobs import KIND_TAG
    from opensentiment_pipeline.defs.partitions import DAILY, range_tags

    work = Path(tempfile.mkdtemp(prefix="team_scaleout_"))
    source = write_corpus(args, first_day, work / "corpus.csv")
    days = DAILY.get_partition_keys()[1:args.days + 1]  # the dated days, not the archive
    threads = str(args.threads)
    with start_team_services(work / "team", step_workers=2, OPENSENTIMENT_FIRST_DAY=first_day.isoformat(),
                             OPENSENTIMENT_DAYS_PER_RUN=str(args.days_per_run), OMP_NUM_THREADS=threads,
                             MKL_NUM_THREADS=threads) as team:
        from dagster_graphql import DagsterGraphQLClient

        client = DagsterGraphQLClient("127.0.0.1", port_number=int(team.env["OPENSENTIMENT_WEBSERVER_PORT"]))
        setup = client.submit_job_execution(
            "__ASSET_JOB",
            asset_selection=["raw_articles", "merged_annotations", "sentiment_examples", "sentiment_adapter"],
            run_config={"ops": {
                "raw_articles": {"config": {"sources": [DEMO_SOURCE, source], "max_rejected_share": 0.5}},
                "sentiment_adapter": {"config": {"epochs": 1, "lora_r": 8, "max_length": 64}}}},
            tags={**range_tags(), KIND_TAG: "training"})
        status = wait_runs(team, [setup], args.timeout)
        assert status == ["SUCCESS"], f"setup run {setup}: {status}\n{team.log_tail('daemon')}"
        results = {}
        for workers in (1, 2):
            if workers == 1:
                team.stop("steps2")
            else:
                start_worker(team, "steps2", STEP_QUEUE, concurrency=1)
                wait_for_workers(team, ["steps1", "steps2"])
            results[workers] = backfill(team, days, KIND_TAG, args)
    report(args, results)
    return 0


def wait_runs(team, run_ids: list[str], timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = [s for (s,) in team.sql("SELECT status FROM runs WHERE run_id = ANY(%s)", run_ids)]
        if len(status) == len(run_ids) and all(s in ("SUCCESS", "FAILURE", "CANCELED") for s in status):
            return status
        time.sleep(1)
    raise TimeoutError(f"runs {run_ids} not finished after {timeout:.0f} s")


def backfill(team, days: list[str], kind_tag: str, args) -> dict:
    """Backfill article_embeddings over `days`; wall time from launch to the last run's end, and step times."""
    start = time.time()
    backfill_id = team.launch_backfill("article_embeddings", days, {kind_tag: "embedding"})
    expected = math.ceil(len(days) / args.days_per_run)
    deadline = time.monotonic() + args.timeout
    while True:
        runs = [r for (r,) in team.sql(
            "SELECT run_id FROM run_tags WHERE key = 'dagster/backfill' AND value = %s", backfill_id)]
        if len(runs) == expected:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"backfill made {len(runs)} runs, expected {expected}")
        time.sleep(1)
    status = wait_runs(team, runs, args.timeout)
    assert status == ["SUCCESS"] * expected, status
    # event_logs.timestamp is naive UTC, so its epoch is the real one
    end = max(t for (t,) in team.sql("SELECT extract(epoch FROM max(timestamp)) FROM event_logs "
                                     "WHERE run_id = ANY(%s)", runs))
    steps = team.sql("SELECT run_id, dagster_event_type, extract(epoch FROM timestamp) FROM event_logs "
                     "WHERE run_id = ANY(%s) AND step_key = 'article_embeddings' AND dagster_event_type IN "
                     "('STEP_START', 'STEP_SUCCESS')", runs)
    starts = {r: t for r, kind, t in steps if kind == "STEP_START"}
    step_seconds = [t - starts[r] for r, kind, t in steps if kind == "STEP_SUCCESS"]
    workers = {w for (e,) in team.sql("SELECT event FROM event_logs WHERE run_id = ANY(%s) AND event LIKE %s",
                                      runs, "%in celery worker%") for w in ("steps1", "steps2") if f"{w}@" in e}
    return {"wall": float(end) - start, "runs": len(runs), "step_sum": float(sum(step_seconds)),
            "step_max": float(max(step_seconds)), "workers_used": sorted(workers)}


def report(args, results: dict) -> None:
    print(f"# team_scaleout {dt.date.today()} | {os.cpu_count()} CPUs | {args.n} articles over {args.days} days, "
          f"{args.days_per_run} days per run, {args.threads} torch thread(s) per worker")
    print("| celery workers | runs | workers used | backfill wall (s) | sum of embedding steps (s) | "
          "longest step (s) |")
    print("|---|---|---|---|---|---|")
    for workers, r in results.items():
        print(f"| {workers} | {r['runs']} | {', '.join(r['workers_used'])} | {r['wall']:.1f} | "
              f"{r['step_sum']:.1f} | {r['step_max']:.1f} |")
    print(f"\nspeed-up 2 workers vs 1: {results[1]['wall'] / results[2]['wall']:.2f}x (wall)")


if __name__ == "__main__":
    sys.exit(main())
