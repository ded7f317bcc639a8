"""deploy/ without services: the instance file, the Helm values (no cluster here) and the per-deployment choices."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

from opensentiment_pipeline import definitions
from opensentiment_pipeline.defs.partitions import DAILY, SINGLE_RUN, day_backfill_policy

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"

# Keys of the `dagster/dagster` chart's values, from its schema (helm/dagster/schema/schema/charts/dagster/
# values.py and subschema/daemon.py, postgresql.py, run_launcher.py in dagster-io/dagster at 1.13): a key the
# chart does not know is rejected by `helm install` (values.schema.json); these sets catch it here first.
CHART_TOP_LEVEL = {"dagsterWebserver", "dagster-user-deployments", "postgresql", "generatePostgresqlPasswordSecret",
                   "generateCeleryConfigSecret", "rabbitmq", "redis", "flower", "ingress", "imagePullSecrets",
                   "computeLogManager", "scheduler", "runLauncher", "pythonLogs", "dagsterDaemon", "busybox",
                   "migrate", "telemetry", "serviceAccount", "global", "retention", "additionalInstanceConfig"}
CHART_POSTGRESQL = {"image", "enabled", "postgresqlHost", "postgresqlUsername", "postgresqlPassword",
                    "postgresqlDatabase", "postgresqlParams", "postgresqlScheme", "service"}
CHART_QUEUED_COORDINATOR = {"maxConcurrentRuns", "tagConcurrencyLimits", "dequeueIntervalSeconds",
                            "dequeueNumWorkers", "dequeueUseThreads", "blockOpConcurrencyLimitedRuns"}
CHART_RUN_RETRIES = {"enabled", "maxRetries", "retryOnAssetOrOpFailure"}
CHART_USER_DEPLOYMENT_REQUIRED = {"name", "image", "dagsterApiGrpcArgs", "port"}
RUN_LAUNCHER_TYPES = {"K8sRunLauncher", "CeleryK8sRunLauncher", "CustomRunLauncher"}


@pytest.fixture(scope="module")
def instance_yaml() -> dict:
    return yaml.safe_load((DEPLOY / "dagster.yaml").read_text())


@pytest.fixture(scope="module")
def helm_values() -> dict:
    return yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def test_instance_reads_every_credential_and_address_from_the_environment(instance_yaml):
    db = instance_yaml["storage"]["postgres"]["postgres_db"]
    assert {k: v for k, v in db.items() if k != "scheme"} == {
        "username": {"env": "DAGSTER_PG_USERNAME"}, "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": {"env": "DAGSTER_PG_HOST"}, "port": {"env": "DAGSTER_PG_PORT"}, "db_name": {"env": "DAGSTER_PG_DB"}}
    assert "run_launcher" not in instance_yaml  # the daemon launches runs; celery executes their steps
    workers = yaml.safe_load((DEPLOY / "celery.yaml").read_text())["execution"]["config"]
    assert workers == {"broker": {"env": "DAGSTER_CELERY_BROKER_URL"}, "backend": {"env": "DAGSTER_CELERY_BACKEND_URL"}}


def test_queue_allows_one_training_run_and_several_embedding_runs(instance_yaml):
    config = instance_yaml["run_coordinator"]["config"]
    assert instance_yaml["run_coordinator"]["class"] == "QueuedRunCoordinator"
    limits = {(limit["key"], limit["value"]): limit["limit"] for limit in config["tag_concurrency_limits"]}
    assert limits[("opensentiment/kind", "training")] == 1
    assert 1 < limits[("opensentiment/kind", "embedding")] < config["max_concurrent_runs"]


def test_helm_values_use_only_keys_the_chart_knows(helm_values):
    assert set(helm_values) <= CHART_TOP_LEVEL, set(helm_values) - CHART_TOP_LEVEL
    assert set(helm_values["postgresql"]) <= CHART_POSTGRESQL
    assert helm_values["runLauncher"]["type"] in RUN_LAUNCHER_TYPES
    assert set(helm_values["runLauncher"]["config"]) == {"k8sRunLauncher"}
    daemon = helm_values["dagsterDaemon"]
    coordinator = daemon["runCoordinator"]
    assert coordinator["type"] == "QueuedRunCoordinator"
    assert set(coordinator["config"]["queuedRunCoordinator"]) <= CHART_QUEUED_COORDINATOR
    assert set(daemon["runRetries"]) <= CHART_RUN_RETRIES
    (deployment,) = helm_values["dagster-user-deployments"]["deployments"]
    assert CHART_USER_DEPLOYMENT_REQUIRED <= set(deployment)
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "opensentiment_pipeline.definitions"]
    env = {item["name"]: item["value"] for item in deployment["env"]}
    assert env["DAGSTER_DEPLOYMENT"] == "k8s"
    assert helm_values["dagsterWebserver"]["service"]["type"] == "ClusterIP"  # not exposed by default


def test_helm_values_and_instance_file_apply_the_same_limits_monitoring_and_retries(instance_yaml, helm_values):
    daemon = helm_values["dagsterDaemon"]
    queued = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    config = instance_yaml["run_coordinator"]["config"]
    assert queued["tagConcurrencyLimits"] == config["tag_concurrency_limits"]
    assert queued["maxConcurrentRuns"] == config["max_concurrent_runs"]
    assert {_camel(k): v for k, v in instance_yaml["run_monitoring"].items()} == daemon["runMonitoring"]
    assert {_camel(k): v for k, v in instance_yaml["run_retries"].items()} == daemon["runRetries"]


def test_laptop_backfills_one_run_and_team_backfills_runs_of_days():
    assert day_backfill_policy("local", "3") == SINGLE_RUN
    team = day_backfill_policy("team", "3")
    assert team.max_partitions_per_run == 3
    assert day_backfill_policy("k8s", "10").max_partitions_per_run == 10


@pytest.mark.parametrize(("deployment", "days", "message"), [
    ("prod", "3", r"DAGSTER_DEPLOYMENT='prod'; expected one of \['local', 'team', 'k8s'\]"),
    ("team", "0", r"OPENSENTIMENT_DAYS_PER_RUN='0'; expected a whole number of days >= 1"),
    ("team", "a week", r"OPENSENTIMENT_DAYS_PER_RUN='a week'"),
])
def test_bad_deployment_settings_are_named(deployment, days, message):
    with pytest.raises(ValueError, match=message):
        day_backfill_policy(deployment, days)


def test_team_and_k8s_definitions_load_with_their_distributed_executors(monkeypatch):
    pytest.importorskip("dagster_celery", reason="the `team` extra is not installed")
    pytest.importorskip("dagster_k8s", reason="the `team` extra is not installed")
    monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("DAGSTER_CELERY_BACKEND_URL", "redis://127.0.0.1:1/1")
    for deployment, executor in (("team", "celery"), ("k8s", "k8s")):
        defs = dg.Definitions(assets=definitions.ASSETS, asset_checks=definitions.ASSET_CHECKS,
                              resources=definitions.resources_for("/tmp/unused", tracking_uri="http://mlflow:5000"),
                              executor=definitions.executor_for(deployment))
        dg.Definitions.validate_loadable(defs)
        assert defs.resolve_implicit_global_asset_job_def().executor_def.name == executor
    assert definitions.executor_for("local") is None
    with pytest.raises(ValueError, match=r"DAGSTER_DEPLOYMENT='cloud'"):
        definitions.executor_for("cloud")


def test_a_tracking_server_keeps_artifacts_off_the_dagster_host(tmp_path):
    served = definitions.resources_for(tmp_path, tracking_uri="http://127.0.0.1:5000")["mlflow_tracking"]
    local = definitions.resources_for(tmp_path, tracking_uri=f"sqlite:///{tmp_path}/m.db")["mlflow_tracking"]
    assert served.artifact_location is None  # the server's --serve-artifacts root
    assert local.artifact_location == str(tmp_path / "mlartifacts")


def test_nightly_job_is_tagged_as_an_embedding_run():
    job = definitions.defs.resolve_job_def("reembedding_job")
    assert job.tags["opensentiment/kind"] == "embedding"
    assert job.partitions_def == DAILY
