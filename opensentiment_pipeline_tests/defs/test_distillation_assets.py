"""Distillation through Dagster: a student scored beside its teacher and registered with its own champion.

(That it is off and skipped by default is asserted on the whole demo graph in test_pipeline.py.)
"""

from __future__ import annotations

import json

import dagster as dg
import mlflow
import pytest

from opensentiment_pipeline import definitions
from opensentiment_pipeline.defs import partitions

SELECTION = ["raw_articles", "rejected_rows", "merged_annotations", "sentiment_examples", "sentiment_adapter",
             "evaluation_report", "adapter_promotion", "student_adapter", "student_evaluation_report",
             "student_promotion"]
FAST = {"epochs": 4, "lora_r": 8, "max_length": 64}  # as test_pipeline: enough to beat TF-IDF on the demo


def _materialize(home, student: dict, instance):
    assets = [a for a in definitions.ASSETS if any(k.to_user_string() in SELECTION for k in a.keys)]
    return dg.materialize(
        [*assets, *definitions.ASSET_CHECKS], selection=SELECTION,
        resources=definitions.resources_for(home, tracking_uri=f"sqlite:///{home}/mlflow.db"),
        run_config={"ops": {"sentiment_adapter": {"config": FAST}, "student_adapter": {"config": student}}},
        instance=instance, tags=partitions.range_tags(), raise_on_error=False)


def _materialized(result) -> dict:
    return {e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()}


def test_enabled_student_learns_from_the_teacher_and_is_scored_beside_it(tmp_path):
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:  # later runs load this one's outputs
        _student_then_embed_with_it(tmp_path, instance)


def _student_then_embed_with_it(tmp_path, instance):
    result = _materialize(tmp_path, {"enabled": True, **FAST, "epochs": 4, "unlabelled_limit": 40}, instance)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    done = _materialized(result)
    student, report = done["student_adapter"], done["student_evaluation_report"]
    assert student["teacher_version"] == done["evaluation_report"]["adapter_version"]
    # the demo corpus has no unlabelled articles: every article is an example, so the pool is empty
    assert student["unlabelled_rows"] == 0
    table = report["teacher_vs_student"]
    assert [cell.strip() for cell in table.splitlines()[0].split("|")[1:4]] == ["metric", "teacher", "student"]
    assert "| macro_f1 " in table
    assert 0.0 <= report["macro_f1"] <= 1.0 and report["teacher_version"] == student["teacher_version"]
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run = client.get_run(student["mlflow_run_id"])
    assert run.data.tags["teacher_version"] == student["teacher_version"]
    assert run.data.params["hard_weight"] == "0.5"
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["student_beats_tfidf_baseline"] and checks["student_beats_majority_baseline"]
    # the registry holds both, each with its own champion
    promoted = done["student_promotion"]
    assert promoted["registered_model"] == "opensentiment-sentiment-adapter-student"
    assert promoted["adapter_version"] == student["mlflow_run_id"] and promoted["promoted"]
    assert client.get_model_version_by_alias("opensentiment-sentiment-adapter-student", "champion").run_id == \
        student["mlflow_run_id"]
    assert client.get_model_version_by_alias("opensentiment-sentiment-adapter", "champion").run_id == \
        student["teacher_version"]
    # article_embeddings can embed with the promoted student instead of the teacher (MiniLM's inference cost)
    embedded = _embed_with_student(tmp_path, instance, selection=["article_embeddings", "article_index"])
    assert embedded.success, [e.message for e in embedded.all_events if e.is_failure]
    meta = _materialized(embedded)["article_embeddings"]
    assert meta["adapter"] == "student_champion" and meta["adapter_version"] == student["mlflow_run_id"]
    # the index accepts the student's vectors and embeds queries with the student's base encoder
    index = json.loads((tmp_path / "index" / "index_manifest.json").read_text())
    assert index["model_version"] == student["mlflow_run_id"]
    assert index["sentiment_adapter_dir"].endswith("opensentiment-sentiment-adapter-student-v1")
    cached = list((tmp_path / "artifacts" / "registry").iterdir())
    assert [p.name for p in cached] == ["opensentiment-sentiment-adapter-student-v1"]
    # in the run that also promotes a student it refuses: the graph would not order the two
    mixed = _embed_with_student(tmp_path, instance, selection=["article_embeddings", "student_promotion"])
    failure = next(e for e in mixed.all_events if e.is_step_failure and e.step_key == "article_embeddings")
    assert "promote the student in one run" in failure.event_specific_data.error.to_string()


def _embed_with_student(home, instance, selection: list[str]):
    return dg.materialize(
        [*definitions.ASSETS, *definitions.ASSET_CHECKS], selection=selection,
        resources=definitions.resources_for(home, tracking_uri=f"sqlite:///{home}/mlflow.db"),
        run_config={"ops": {"article_embeddings": {"config": {"adapter": "student_champion"}}}},
        instance=instance, tags=partitions.range_tags(), raise_on_error=False)


def test_embedding_with_a_student_before_any_was_promoted_says_how_to_get_one(tmp_path):
    from opensentiment_pipeline.defs import registry

    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    with pytest.raises(LookupError, match=r"no `champion` of 'x-student'.*--select '\*student_promotion'"):
        registry.champion_adapter_dir(client, model_name="x-student", cache_root=tmp_path / "cache",
                                      how_to_fix="run --select '*student_promotion' first")
    assert not (tmp_path / "cache").exists()


def test_a_disabled_student_with_settings_is_named_as_forgotten():
    from opensentiment_pipeline.defs.assets.distillation import StudentAdapterConfig, ignored_settings

    assert ignored_settings(StudentAdapterConfig()) == []
    assert ignored_settings(StudentAdapterConfig(epochs=5, temperature=3.0)) == ["epochs", "temperature"]
    assert ignored_settings(StudentAdapterConfig(enabled=True, epochs=5)) == ["epochs"]  # the caller checks enabled
    # the shipped quality config trains its student
    import yaml

    from opensentiment_pipeline_tests.conftest import REPO_ROOT
    config = yaml.safe_load((REPO_ROOT / "configs" / "shared_data_quality.yaml").read_text())
    assert config["ops"]["student_adapter"]["config"]["enabled"] is True
