"""The sweep job logs nested trials under one parent and picks by validation; `compare_runs` shows them."""

import dagster as dg
import mlflow
import pytest

from opensentiment_pipeline import cli, definitions
from opensentiment_pipeline.core.model.sweep import best_trial, expand_grid
from opensentiment_pipeline.defs import partitions
from opensentiment_pipeline.defs.sweep import adapter_sweep_job
from opensentiment_pipeline.runs import compare_runs


def test_expand_grid_is_the_sorted_product_and_rejects_empty_entries():
    assert expand_grid({"r": [8, 16], "lr": [1]}) == [{"lr": 1, "r": 8}, {"lr": 1, "r": 16}]
    with pytest.raises(ValueError, match=r"grid entries \['r'\] have no values"):
        expand_grid({"r": []})
    assert best_trial([0.5, 0.7, 0.7]) == 1


def test_sweep_job_nests_trials_and_picks_the_best_by_validation(tmp_path, capsys):
    resources = definitions.resources_for(tmp_path, tracking_uri=f"sqlite:///{tmp_path}/m.db")
    instance = dg.DagsterInstance.ephemeral()
    upstream = [a for a in definitions.ASSETS if {k.to_user_string() for k in a.keys}
                & {"raw_articles", "merged_annotations", "sentiment_examples"}]
    assert dg.materialize(upstream, resources=resources, instance=instance, tags=partitions.range_tags()).success
    defs = dg.Definitions(assets=upstream, jobs=[adapter_sweep_job], resources=resources)
    run_config = {"ops": {"run_adapter_sweep": {"config": {
        "base": {"epochs": 1, "max_length": 48, "lora_r": 4, "target_modules": ["query", "value"]},
        "grid": {"learning_rate": ["1e-3", "3e-3"]}}}}}
    result = defs.resolve_job_def("adapter_sweep_job").execute_in_process(instance=instance, run_config=run_config)
    assert result.success
    best = result.output_for_node("run_adapter_sweep")

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/m.db")
    runs = client.search_runs([client.get_experiment_by_name("opensentiment").experiment_id])
    parent = [r for r in runs if r.data.tags.get("dagster_asset") == "run_adapter_sweep"][0]
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.params["learning_rate"] for r in trials) == ["0.001", "0.003"]
    scores = {r.data.params["learning_rate"]: r.data.metrics["best_val_macro_f1"] for r in trials}
    assert best["best_val_macro_f1"] == max(scores.values())
    assert parent.data.tags["selected_by"] == "validation macro-F1 (never test)"

    table = compare_runs(f"sqlite:///{tmp_path}/m.db", experiment="opensentiment", last=5, asset="sweep_trial")
    assert table.shape[1] == 2
    assert "param.learning_rate" in table.index  # differs between the two trials
    assert "param.max_length" not in table.index  # the same in every run shown: left out
    uri = f"sqlite:///{tmp_path}/m.db"
    assert cli.main(["runs", "--tracking-uri", uri, "--asset", "sweep_trial", "--last", "2"]) == 0
    printed = capsys.readouterr().out
    assert "param.learning_rate" in printed and "metric.best_val_macro_f1" in printed
    assert cli.main(["runs", "--tracking-uri", uri, "--experiment", "nope"]) == 1
    assert "no MLflow experiment 'nope'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no MLflow experiment 'nope'"):
        compare_runs(f"sqlite:///{tmp_path}/m.db", experiment="nope", last=5, asset=None)
