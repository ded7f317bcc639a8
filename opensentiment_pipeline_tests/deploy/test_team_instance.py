"""The team instance of deploy/ on real services: Postgres, Redis, an MLflow server, the Dagster webserver and
daemon, and two celery workers for steps (deploy/team_services.py starts and stops them).

One scenario drives the demo graph through them: the run is launched through the webserver's GraphQL API,
queued, launched by the daemon, its steps executed by the celery workers, and the worker process training
`sentiment_adapter` is killed. The run must be marked failed and the daemon's retry must finish the graph. A
backfill of day partitions must be cut into runs of OPENSENTIMENT_DAYS_PER_RUN days.

Skipped when Postgres, Redis or the `team` extra are missing, except in CI (CI=true), where it fails instead.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from deploy.team_services import celery_app, missing_binaries, start_team_services
from opensentiment_pipeline.defs.jobs import KIND_TAG
from opensentiment_pipeline.defs.partitions import DAILY, range_tags

DAYS_PER_RUN = 3
MLFLOW_ASSETS = {"merged_annotations", "suspect_labels", "sentiment_adapter", "evaluation_report",
                 "outlet_clusters", "outlet_leaning"}
GRAPH_ASSETS = {"raw_articles", "merged_annotations", "suspect_labels", "annotation_quality_report",
                "sentiment_examples", "sentiment_adapter", "evaluation_report", "article_embeddings",
                "outlet_clusters", "article_index", "outlet_leaning"}
SCENARIO_TIMEOUT_S = 900


def require_services() -> None:
    missing = missing_binaries()
    if not missing:
        return
    message = "team services test needs " + ", ".join(missing)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: .ci/run installs them; a skip here would hide a broken CI)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    require_services()
    # one torch thread per worker: two workers on two cores; more threads than cores makes OpenMP spin-wait
    # (15 s per training batch instead of 1 s here while other jobs ran)
    with start_team_services(tmp_path_factory.mktemp("team"), OPENSENTIMENT_DAYS_PER_RUN=str(DAYS_PER_RUN),
                             OMP_NUM_THREADS="1", MKL_NUM_THREADS="1") as services:
        yield services


def run_status(team, run_id: str) -> str | None:
    rows = team.sql("SELECT status FROM runs WHERE run_id = %s", run_id)
    return rows[0][0] if rows else None


def wait_for(what: str, probe, team, timeout: float = SCENARIO_TIMEOUT_S, every: float = 1.0):
    """Poll `probe()` until it returns something truthy; on timeout, fail with the services' logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(every)
    logs = "\n".join(f"--- {name}\n{team.log_tail(name, 15)}" for name in ("daemon", "webserver", "steps1", "steps2"))
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")


def wait_for_run_end(team, run_id: str) -> str:
    return wait_for(f"run {run_id} to end",
                    lambda: (s := run_status(team, run_id)) in ("SUCCESS", "FAILURE", "CANCELED") and s, team)


def kill_step_worker(team, step_key: str) -> None:
    """SIGKILL the celery worker process executing `step_key` (its parent worker then reports the task lost)."""
    active = celery_app(team.env).control.inspect(timeout=5).active() or {}
    pids = [task["worker_pid"] for tasks in active.values() for task in tasks
            if step_key in str(task.get("args")) + str(task.get("kwargs"))]
    assert pids, f"no celery worker is executing {step_key}: {active}"
    os.kill(pids[0], signal.SIGKILL)


@pytest.fixture(scope="module")
def scenario(team, tmp_path_factory):
    """The demo graph launched like a UI user would; the worker training its adapter killed; the retry."""
    from dagster_graphql import DagsterGraphQLClient

    client = DagsterGraphQLClient("127.0.0.1", port_number=int(team.env["OPENSENTIMENT_WEBSERVER_PORT"]))
    absent = str(tmp_path_factory.mktemp("no_experts") / "absent.parquet")  # skip the BABE comparison
    run_config = {"ops": {"sentiment_adapter": {"config": {"epochs": 4, "lora_r": 8, "max_length": 64}},
                          "annotation_quality_report": {"config": {"expert_path": absent}}}}
    first = client.submit_job_execution("__ASSET_JOB", run_config=run_config,
                                        tags={**range_tags(), KIND_TAG: "training"})

    def training_started_or_run_ended():
        if team.sql("SELECT 1 FROM event_logs WHERE run_id = %s AND dagster_event_type = 'STEP_START' "
                     "AND step_key = 'sentiment_adapter'", first):
            return "started"
        return run_status(team, first) in ("SUCCESS", "FAILURE", "CANCELED") and run_status(team, first)

    state = wait_for("sentiment_adapter to start", training_started_or_run_ended, team)
    if state != "started":
        pytest.fail(f"run {first} ended {state} before sentiment_adapter started:\n{team.log_tail('steps1')}")
    kill_step_worker(team, "sentiment_adapter")
    first_status = wait_for_run_end(team, first)
    retry = wait_for("the daemon to retry the failed run", lambda: team.sql(
        "SELECT run_id FROM run_tags WHERE key = 'dagster/parent_run_id' AND value = %s", first), team)[0][0]
    return {"first": first, "first_status": first_status, "retry": retry,
            "retry_status": wait_for_run_end(team, retry)}


def test_run_whose_worker_is_killed_is_marked_failed_and_its_retry_succeeds(team, scenario):
    assert scenario["first_status"] == "FAILURE"
    messages = [row[0] for row in team.sql("SELECT event FROM event_logs WHERE run_id = %s "
                                            "AND dagster_event_type = 'PIPELINE_FAILURE'", scenario["first"])]
    assert any("WorkerLostError" in m and "sentiment_adapter" in m for m in messages), messages
    assert scenario["retry_status"] == "SUCCESS"
    retry_tags = dict(team.sql("SELECT key, value FROM run_tags WHERE run_id = %s", scenario["retry"]))
    assert retry_tags["dagster/root_run_id"] == scenario["first"]
    assert retry_tags[KIND_TAG] == "training"


def test_runs_and_materializations_are_stored_in_postgres(team, scenario):
    runs = dict(team.sql("SELECT run_id, status FROM runs"))
    assert runs == {scenario["first"]: "FAILURE", scenario["retry"]: "SUCCESS"}
    materialized = {json.loads(key)[0] for (key,) in team.sql(
        "SELECT DISTINCT asset_key FROM event_logs WHERE run_id IN (%s, %s) "
        "AND dagster_event_type = 'ASSET_MATERIALIZATION'", scenario["first"], scenario["retry"])}
    assert GRAPH_ASSETS <= materialized
    days = team.sql("SELECT count(DISTINCT partition) FROM event_logs WHERE dagster_event_type = "
                    "'ASSET_MATERIALIZATION' AND asset_key = %s", json.dumps(["article_embeddings"]))
    assert days[0][0] == len(DAILY.get_partition_keys())


def test_steps_ran_as_celery_tasks_on_the_step_workers(team, scenario):
    events = [e for (e,) in team.sql("SELECT event FROM event_logs WHERE run_id = %s AND dagster_event_type = "
                                     "'ENGINE_EVENT' AND event LIKE %s", scenario["retry"], "%in celery worker%")]
    workers = {match for e in events for match in re.findall(r"\b(steps\d)@", e)}
    assert workers and workers <= {"steps1", "steps2"}, workers
    assert len(events) >= 4  # every step the retry re-ran: the adapter, its evaluation, embeddings, maps


def test_mlflow_runs_are_on_the_server_tagged_with_dagster_run_ids_with_their_artifacts(team, scenario):
    import mlflow

    client = mlflow.MlflowClient(team.env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("opensentiment")
    runs = client.search_runs([experiment.experiment_id])
    by_dagster_run = {}
    for run in runs:
        by_dagster_run.setdefault(run.data.tags["dagster_run_id"], set()).add(run.data.tags["dagster_asset"])
    assert set(by_dagster_run) <= {scenario["first"], scenario["retry"]}
    assert MLFLOW_ASSETS <= by_dagster_run[scenario["first"]] | by_dagster_run[scenario["retry"]]
    assert {"sentiment_adapter", "evaluation_report", "outlet_clusters"} <= by_dagster_run[scenario["retry"]]
    adapter = next(r for r in runs if r.data.tags["dagster_asset"] == "sentiment_adapter"
                   and r.data.tags["dagster_run_id"] == scenario["retry"])
    assert adapter.info.artifact_uri.startswith("mlflow-artifacts:/")
    files = {Path(a.path).name for a in client.list_artifacts(adapter.info.run_id, "adapter")}
    assert "adapter_config.json" in files
    served = list((team.root / "mlflow-artifacts").rglob("adapter_config.json"))
    assert served, "the adapter was not stored by the MLflow server"
    assert not (Path(team.env["OPENSENTIMENT_HOME"]) / "mlartifacts").exists()  # nothing on the Dagster host


def test_a_backfill_of_days_is_cut_into_runs_of_days_per_run(team, scenario):
    days = DAILY.get_partition_keys()[:2 * DAYS_PER_RUN]
    backfill = team.launch_backfill("raw_articles", days, {KIND_TAG: "embedding"})
    run_ids = wait_for("the backfill's runs", lambda: (ids := [r for (r,) in team.sql(
        "SELECT run_id FROM run_tags WHERE key = 'dagster/backfill' AND value = %s", backfill)])
        and len(ids) >= 2 and ids, team, timeout=300)
    assert sorted(wait_for_run_end(team, r) for r in run_ids) == ["SUCCESS", "SUCCESS"]
    ranges = sorted(tuple(v for _, v in sorted(team.sql(
        "SELECT key, value FROM run_tags WHERE run_id = %s AND key LIKE %s", r, "dagster/asset_partition_range_%")))
        for r in run_ids)
    # each tuple is (range_end, range_start)
    assert ranges == [(days[DAYS_PER_RUN - 1], days[0]), (days[-1], days[DAYS_PER_RUN])]
