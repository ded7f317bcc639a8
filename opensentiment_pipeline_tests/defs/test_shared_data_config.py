"""configs/shared_data.yaml materializes the whole graph on the real datasets (subsampled through config)."""

import copy

import dagster as dg
import pytest
import yaml

from opensentiment_pipeline import definitions
from opensentiment_pipeline.defs import partitions
from opensentiment_pipeline_tests.conftest import REPO_ROOT

LIMITS = {"newsmtsc": 400, "newsmtsc_rw": 150, "newsmtsc_mt": 100, "fpb": 300, "babe": 200, "abp": 120}


def subsampled_config() -> dict:
    """The shipped config with a `limit` per source and a short training run: same graph, CI-sized."""
    config = copy.deepcopy(yaml.safe_load((REPO_ROOT / "configs" / "shared_data.yaml").read_text()))
    for source in config["ops"]["raw_articles"]["config"]["sources"]:
        source["limit"] = LIMITS[source["name"]]
    config["ops"]["sentiment_adapter"]["config"].update(epochs=3, max_length=64)
    config["ops"]["outlet_clusters"]["config"].update(min_cluster_size=5)
    return config


@pytest.mark.shared_data
def test_shared_data_config_materializes_every_asset(shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)  # the config's paths are relative to the repo root, as for the CLI
    result = dg.materialize([*definitions.ASSETS, *definitions.ASSET_CHECKS],
                            resources=definitions.resources_for(tmp_path, tracking_uri=f"sqlite:///{tmp_path}/m.db"),
                            run_config=subsampled_config(), instance=dg.DagsterInstance.ephemeral(),
                            tags=partitions.range_tags())
    assert result.success
    events = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    rows = events["raw_articles"]["rows_per_source"].value
    assert set(rows) == set(LIMITS) and all(rows[name] <= limit for name, limit in LIMITS.items())
    merged = events["merged_annotations"]
    assert merged["krippendorff_alpha"].value > 0  # BABE SG2 experts agree more than chance
    report = events["evaluation_report"]
    assert {"newsmtsc_rw_macro_f1", "newsmtsc_mt_macro_f1", "fpb_macro_f1", "fpb_allagree_accuracy",
            "macro_f1", "accuracy"} <= set(report)
    assert "newsmtsc_rw_allagree_accuracy" not in report  # NewsMTSC reports no agreement: no unanimous subset
    assert events["article_embeddings"]["num_rows"].value == rows["abp"]
    assert events["outlet_clusters"]["num_articles"].value == rows["abp"]


@pytest.mark.shared_data
def test_full_config_keeps_the_published_test_sets_whole(shared_data, monkeypatch):
    """configs/shared_data_full.yaml: NewsMTSC devtest_rw (1,146 targets) and FPB's 968-row 20 % of
    train_test_split(4,840 rows, random_state=0, stratify=label) reach evaluation intact, and no train row
    repeats a test row."""
    from opensentiment_pipeline.core.ingest.sources import read_sources
    from opensentiment_pipeline.defs.assets.ingest import SourceConfig, to_spec

    monkeypatch.chdir(REPO_ROOT)
    config = yaml.safe_load((REPO_ROOT / "configs" / "shared_data_full.yaml").read_text())["ops"]
    specs = [to_spec(SourceConfig(**source), seed=0) for source in config["raw_articles"]["config"]["sources"]]
    articles = read_sources(specs, near_dup_threshold=0.8, seed=0).articles
    sizes = articles.groupby(["source", "split"]).size().to_dict()
    assert sizes[("newsmtsc_rw", "test")] == 1146 and sizes[("fpb", "test")] == 968
    test, train = articles[articles["split"] == "test"], articles[articles["split"] == "train"]
    key = lambda frame: set(zip(frame["text"].str.lower(), frame["target"].fillna("")))  # noqa: E731
    assert not key(test) & key(train)
