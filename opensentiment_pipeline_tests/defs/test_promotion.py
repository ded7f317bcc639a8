"""The champion alias moves only after every blocking check passed; registry errors are not "no champion"."""

from __future__ import annotations

import re

import dagster as dg
import mlflow
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE

from opensentiment_pipeline import definitions
from opensentiment_pipeline.defs import partitions, registry

MODEL = "opensentiment-sentiment-adapter"
UPSTREAM = ["raw_articles", "rejected_rows", "merged_annotations", "sentiment_examples"]
# lr 0: the LoRA weights and the head keep their initial values, so the adapter learns nothing.
UNTRAINED = {"epochs": 1, "learning_rate": 0.0, "num_layers": 1, "lora_r": 2, "max_length": 32}


def _client(tmp_path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")


def _seed_champion(client: mlflow.MlflowClient, fingerprint: str, macro_f1: float) -> str:
    experiment = client.create_experiment("seed")
    run = client.create_run(experiment).info.run_id
    return registry.register_and_promote(client, model_name=MODEL, adapter_run_id=run, macro_f1=macro_f1,
                                         fingerprint=fingerprint).version


def test_an_adapter_failing_the_tfidf_check_leaves_the_champion_unchanged(tmp_path):
    resources = definitions.resources_for(tmp_path, tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    assets = [*definitions.ASSETS, *definitions.ASSET_CHECKS]
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        run = dict(resources=resources, instance=instance, tags=partitions.range_tags(), raise_on_error=False)
        assert dg.materialize(assets, selection=UPSTREAM, **run).success
        examples = pd.read_parquet(tmp_path / "assets" / "sentiment_examples.parquet")
        fingerprint = registry.test_fingerprint(examples[examples["split"] == "test"])
        client = _client(tmp_path)
        # A champion scored 0.0 on the same test rows: any adapter would replace it if promotion ran.
        assert _seed_champion(client, fingerprint, macro_f1=0.0) == "1"

        result = dg.materialize(
            assets, selection=["sentiment_adapter", "evaluation_report", "adapter_promotion"],
            run_config={"ops": {"sentiment_adapter": {"config": UNTRAINED},
                                "evaluation_report": {"config": {"n_bootstrap": 50}}}}, **run)
        assert not result.success
        report = result.output_for_node("evaluation_report")
        assert report["test_fingerprint"] == fingerprint
        assert 0.0 < report["macro_f1"] < report["baselines"]["tfidf_logreg"]["macro_f1"]
        checks = {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks["adapter_beats_tfidf_baseline"] is False
        materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
        assert materialized == {"sentiment_adapter", "evaluation_report"}  # adapter_promotion never ran
        assert [str(v.version) for v in client.search_model_versions(f"name='{MODEL}'")] == ["1"]
        assert str(client.get_model_version_by_alias(MODEL, registry.CHAMPION).version) == "1"

        # Materialized on its own (no checks in the run), adapter_promotion still refuses the failed adapter.
        alone = dg.materialize(assets, selection=["adapter_promotion"], **run)
        assert not alone.success
        (failure,) = [e for e in alone.all_events if e.is_step_failure]
        assert re.search(r"does not beat the baselines \[.*'tfidf_logreg'\]", str(failure.step_failure_data.error))
        assert "not registered, champion unchanged" in str(failure.step_failure_data.error)
        assert len(client.search_model_versions(f"name='{MODEL}'")) == 1


class _Unavailable(mlflow.MlflowClient):
    """A registry that answers everything except one call, which fails as a server that is down would."""

    def __init__(self, uri: str, failing: str):
        super().__init__(uri)
        self.failing = failing

    def __getattribute__(self, name):
        if name == object.__getattribute__(self, "failing"):
            def fail(*args, **kwargs):
                raise MlflowException("registry unreachable", error_code=TEMPORARILY_UNAVAILABLE)
            return fail
        return super().__getattribute__(name)


@pytest.mark.parametrize("failing", ["get_registered_model", "get_model_version"])
def test_a_registry_error_propagates_instead_of_meaning_no_champion(tmp_path, failing):
    client = _client(tmp_path)
    assert _seed_champion(client, "same", macro_f1=0.9) == "1"
    run = client.create_run(client.get_experiment_by_name("seed").experiment_id).info.run_id
    flaky = _Unavailable(f"sqlite:///{tmp_path}/mlflow.db", failing)
    with pytest.raises(MlflowException, match="registry unreachable"):
        registry.register_and_promote(flaky, model_name=MODEL, adapter_run_id=run, macro_f1=0.1, fingerprint="same")
    assert str(client.get_model_version_by_alias(MODEL, registry.CHAMPION).version) == "1"


def test_a_missing_registered_model_is_created_and_its_first_version_is_champion(tmp_path):
    client = _client(tmp_path)
    assert _seed_champion(client, "same", macro_f1=0.5) == "1"
    assert {k: str(v) for k, v in client.get_registered_model(MODEL).aliases.items()} == {registry.CHAMPION: "1"}
