"""article_index and outlet_leaning materialize on hand-built upstream tables (no adapter training)."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from opensentiment_pipeline import definitions
from opensentiment_pipeline.core.analysis import leaning
from opensentiment_pipeline.core.model import modeling
from opensentiment_pipeline.core.vectors import search
from opensentiment_pipeline.defs.assets import leaning as leaning_assets
from opensentiment_pipeline.defs.assets import search as search_assets
from opensentiment_pipeline_tests.defs.stubs import logged_reads, materialization_metadata, stored_day_stubs, stub_asset

POSITIONS = {"left one": -1.0, "left two": -0.8, "right one": 1.0, "right two": 0.8, "newcomer": 0.6}
PER_OUTLET = 12
DAYS = ("2026-11-02", "2026-11-03", "2026-11-04")  # article i is stored on day i % 3


def _tables(*, with_leaning: bool, model_version: str = "v1") -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    outlets = np.repeat(list(POSITIONS), PER_OUTLET)
    vectors = np.column_stack([np.repeat(list(POSITIONS.values()), PER_OUTLET) + rng.normal(0, 0.3, len(outlets)),
                               rng.normal(0, 1, (len(outlets), 7))]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"x{i}" for i in range(len(outlets))]
    side = {"left one": "left", "left two": "left", "right one": "right", "right two": "right"}
    raw = pd.DataFrame({
        "article_id": ids, "outlet": outlets, "published_at": pd.Timestamp("2024-05-01", tz="UTC"),
        "title": [f"title {i}" for i in ids], "text": [f"body of {i} " * 40 for i in ids], "source": "stub",
        "leaning": [side.get(o) if with_leaning else None for o in outlets],
        # The sources' topics: every third article has none, the rest two topics by article number, so each
        # topic holds articles of every outlet.
        "topic": [None if i % 3 == 0 else f"topic {i % 2}" for i in range(len(ids))],
        "partition_day": [DAYS[i % 3] for i in range(len(ids))],
    })
    embedded = pd.DataFrame({"article_id": ids, "model_version": model_version, "embedding": list(vectors),
                             "sentiment": "neutral", "sentiment_confidence": 0.5,
                             "partition_day": raw["partition_day"]})
    return raw, embedded


def _materialize(home, raw: pd.DataFrame, embedded: pd.DataFrame, run_config: dict | None = None, *,
                 selection=("sentiment_adapter", "article_index", "outlet_leaning"), read_log=None):
    """Write the days of `raw` and `embedded` as stored days and materialize `selection` on them."""
    from opensentiment_pipeline.defs.resources import ParquetIOManager

    adapter_dir = home / "adapter"
    adapter_dir.mkdir(exist_ok=True)
    (adapter_dir / "mlflow_run.json").write_text(json.dumps({"run_id": "v1"}))
    modeling.AdapterManifest(base_model="packaged:all-MiniLM-L6-v2", labels=["negative", "neutral", "positive"],
                             num_layers=None, max_length=64, pair_input=False).save(adapter_dir)
    resources = definitions.resources_for(home, tracking_uri=f"sqlite:///{home}/mlflow.db")
    resources["parquet_io_manager"] = ParquetIOManager(base_dir=str(home / "assets"),
                                                       read_log=str(read_log) if read_log else None)
    stubs = stored_day_stubs(home / "assets", {"raw_articles": raw, "article_embeddings": embedded})
    return dg.materialize(
        [*stubs, stub_asset("sentiment_adapter", str(adapter_dir), parquet=False), search_assets.article_index,
         leaning_assets.outlet_leaning], selection=list(selection), resources=resources,
        run_config=run_config or {}, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A first run without ratings, a second with a reference CSV, a third whose index build fails."""
    home = tmp_path_factory.mktemp("home")
    first = _materialize(home, *_tables(with_leaning=False))
    first_manifest = json.loads((home / "index" / search.MANIFEST_FILE).read_text())
    ratings = home / "ratings.csv"
    ratings.write_text("outlet,leaning\nLeft One,left\nleft-two,left\nRIGHT ONE,right\nright two,right\n")
    # The stub bodies are article ids, no evidence for words to add: runs 2 and 3 read the embedding probe alone
    # (the blend is tested in core/test_leaning.py).
    second = _materialize(home, *_tables(with_leaning=False),
                          {"ops": {"outlet_leaning": {"config": {"reference_csv": str(ratings), "n_folds": 4,
                                                                 "lexical_weight": 0.0}}}})
    second_manifest = json.loads((home / "index" / search.MANIFEST_FILE).read_text())
    third = _materialize(home, *_tables(with_leaning=True, model_version="stale"),
                         {"ops": {"outlet_leaning": {"config": {"lexical_weight": 0.0}}}})
    return home, (first, second, third), (first_manifest, second_manifest)


def test_article_index_writes_a_searchable_folder_with_its_manifest(runs):
    home, (first, _, _), (manifest, _) = runs
    assert first.success
    meta = materialization_metadata(first, "article_index")
    assert (meta["num_vectors"], meta["dimensions"], meta["index_kind"]) == (60, 8, "flat")
    assert meta["build_seconds"] >= 0 and meta["model_version"] == "v1"
    assert manifest["sentiment_adapter_dir"] == str(home / "adapter") and manifest["model_version"] == "v1"
    # The index holds topic vectors: the CLI embeds queries with the adapter's base encoder, not the adapter.
    assert (manifest["vector"], manifest["base_model"], manifest["num_layers"]) == (
        "topic", "packaged:all-MiniLM-L6-v2", None)
    assert "adapter_dir" not in manifest
    index = search.load_index(home / "index")
    articles = pd.read_parquet(home / "index" / search.ARTICLES_FILE)
    assert set(articles.columns) >= {"article_id", "outlet", "published_at", "sentiment", "title", "snippet"}
    assert articles["snippet"].str.len().max() == search_assets.SNIPPET_CHARS
    _, embedded = _tables(with_leaning=False)
    hits = search.search(index, embedded["embedding"].iloc[7], k=3, allowed_ids=[f"x{i}" for i in range(20, 30)])
    assert hits["article_id"].iloc[0] != "x7" and len(hits) == 3


def test_outlet_leaning_without_ratings_reports_principal_axis_ends(runs):
    home, (first, _, _), _ = runs
    meta = materialization_metadata(first, "outlet_leaning")
    assert meta["method"] == "principal_axes" and meta["num_fitted_outlets"] == 0
    ends = meta["axis1_ends"]
    assert {frozenset(ends["low_end"]), frozenset(ends["high_end"])} == {  # the axis's sign is arbitrary
        frozenset({"left one", "left two"}), frozenset({"right one", "right two"})}
    assert meta["leaning_plot"].startswith("![") and "mlflow_run_id" in meta


def test_outlet_leaning_with_a_reference_csv_places_the_unrated_outlet(runs):
    home, (_, second, _), _ = runs
    assert second.success
    meta = materialization_metadata(second, "outlet_leaning")
    assert meta["method"] == "probe" and meta["num_fitted_outlets"] == 4 and meta["n_folds"] == 4
    # Both left outlets held out below both right ones: the best Spearman the tied references allow.
    assert meta["outlet_cv_spearman"] == pytest.approx(spearmanr([1, 2, 3, 4], [-1, -1, 1, 1]).statistic)
    assert meta["outlet_cv_macro_f1"] > 0.9  # a few noisy articles cross the line
    stored = pd.read_parquet(home / "assets" / "outlet_leaning.parquet").set_index("outlet")
    assert list(stored.reset_index().columns) == list(leaning.LEANING_COLUMNS)
    assert stored.loc["newcomer", "score"] > 0 and not stored.loc["newcomer", "fitted_on"]
    assert stored.loc["left one", "reference_leaning"] == "left"
    assert stored.loc["left one", "label"] == "left" and stored.loc["right two", "label"] == "right"
    assert stored.loc["left one", "score"] < -0.5 < 0.5 < stored.loc["right one", "score"]
    # The TF-IDF reference reads the same texts on the same folds; the stub bodies are article ids, so it
    # cannot rank the outlets and the check passes.
    assert {"tfidf_outlet_cv_macro_f1", "tfidf_outlet_cv_spearman"} <= set(meta)
    assert meta["embedding_outlet_cv_spearman"] == meta["outlet_cv_spearman"]  # lexical_weight 0: no blend
    # The per-topic view reads the sources' two topics (articles without one left out); in both the left
    # outlets sit at the left end.
    assert meta["leaning_by_topic"].startswith("Topics from the sources' topic column")
    (csv,) = [p for p in (home / "artifacts").rglob("leaning_by_topic.csv") if second.run_id in str(p)]
    by_topic = pd.read_csv(csv)
    assert sorted(by_topic["topic"]) == ["topic 0", "topic 1"] and by_topic["n_outlets"].tolist() == [5, 5]
    assert by_topic["left_outlet"].str.startswith("left").all() and by_topic["right_outlet"].str.startswith("right").all()
    (csv,) = [p for p in (home / "artifacts").rglob("topic_outlet_leaning.csv") if second.run_id in str(p)]
    cells = pd.read_csv(csv)
    # 60 articles, a third without a topic, the rest split evenly: 20 per topic over 5 outlets.
    assert len(cells) == 10 and cells.groupby("topic")["n_articles"].sum().tolist() == [20, 20]
    assert "topic_outlet_leaning" in meta
    # Which fit scored the table, and how this run brought it up to date (other settings: a refit).
    assert meta["fit"]["fit_id"] == meta["fit_id"] and meta["fit"]["n_fit_articles"] == 60
    assert meta["update"] == "refit" and meta["update_reason"].startswith("settings changed since the fit")
    # What the axis had to substitute is in the metadata, with why: 48 rated articles are too few for topics,
    # and the ratings have no center outlet to anchor the calibration on.
    assert any(w.startswith("topic_free_share 0.5: the smallest training fold has 36 articles") for w in meta["warnings"])
    assert any(w.startswith("final: calibration:") and "a class has no outlet" in w for w in meta["warnings"])
    (check,) = second.get_asset_check_evaluations()
    assert check.check_name == leaning_assets.TFIDF_CHECK and check.passed


def test_tfidf_check_warns_when_the_lexical_reference_wins():
    result = leaning_assets.tfidf_check_result({"outlet_cv_spearman": 0.5, "tfidf_outlet_cv_spearman": 0.6,
                                                "outlet_cv_macro_f1": 0.5, "tfidf_outlet_cv_macro_f1": 0.4,
                                                "embedding_outlet_cv_spearman": 0.3})
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["losses"].value == ["spearman"]
    assert result.metadata["tfidf_spearman"].value == 0.6 and result.metadata["axis_spearman"].value == 0.5
    assert result.metadata["embedding_only_spearman"].value == 0.3  # what the vectors alone reach, shown beside
    skipped = leaning_assets.tfidf_check_result({"explained_variance_ratio_axis1": 0.3})
    assert skipped.passed and skipped.metadata["compared"].value is False


def test_failed_index_build_keeps_the_previous_index(runs):
    home, (_, _, third), (_, second_manifest) = runs
    assert not third.success
    failure = [e for e in third.all_events if e.is_step_failure][0]
    assert "made by adapter stale but sentiment_adapter is v1" in str(failure.step_failure_data.error)
    assert json.loads((home / "index" / search.MANIFEST_FILE).read_text()) == second_manifest
    assert sorted(p.name for p in home.iterdir() if "index" in p.name) == ["index"]


def test_mlflow_holds_one_leaning_run_per_materialization(runs):
    import mlflow

    home, (first, second, third), _ = runs
    client = mlflow.MlflowClient(f"sqlite:///{home}/mlflow.db")
    experiment = client.get_experiment_by_name("opensentiment")
    leaning_runs = [r for r in client.search_runs([experiment.experiment_id])
                    if r.data.tags["dagster_asset"] == "outlet_leaning"]
    assert len(leaning_runs) == 3  # outlet_leaning does not depend on the index, so the third run still placed outlets
    probe = [r for r in leaning_runs if r.data.tags["dagster_run_id"] == second.run_id][0]
    expected = materialization_metadata(second, "outlet_leaning")["outlet_cv_spearman"]
    assert probe.data.metrics["outlet_cv_spearman"] == pytest.approx(expected)
    assert {"outlet_leaning.csv", "outlet_leaning.png"} <= {a.path for a in client.list_artifacts(probe.info.run_id)}


def test_a_blend_without_the_tfidf_probe_is_refused_with_the_fix(tmp_path):
    result = _materialize(tmp_path, *_tables(with_leaning=True), {"ops": {"outlet_leaning": {"config": {
        "lexical_weight": 0.5, "tfidf_regularization": 0.0}}}})
    assert not result.success
    with pytest.raises(ValueError, match="set lexical_weight 0 or a positive tfidf_regularization"):
        leaning_assets.OutletLeaningConfig(lexical_weight=0.5, tfidf_regularization=0.0)
    # Skipping the TF-IDF probe with nothing blended is fine, with or without ratings.
    unrated = _materialize(tmp_path, *_tables(with_leaning=False), {"ops": {"outlet_leaning": {"config": {
        "lexical_weight": 0.0, "tfidf_regularization": 0.0}}}})
    assert unrated.success and materialization_metadata(unrated, "outlet_leaning")["method"] == "principal_axes"


def test_a_night_reads_only_its_new_day_and_its_table_equals_a_rebuild(tmp_path):
    raw, embedded = _tables(with_leaning=True)
    config = {"lexical_weight": 0.5, "n_folds": 4}
    log = tmp_path / "reads.jsonl"
    old = (raw["partition_day"] != DAYS[-1]).to_numpy()
    first = _materialize(tmp_path, raw[old], embedded[old], {"ops": {"outlet_leaning": {"config": config}}},
                         selection=["outlet_leaning"], read_log=log)
    night = _materialize(tmp_path, raw[~old], embedded[~old], {"ops": {"outlet_leaning": {"config": config}}},
                         selection=["outlet_leaning"], read_log=log)
    assert first.success and night.success
    assert sorted(logged_reads(log, night.run_id)) == [
        ("article_embeddings", DAYS[-1]), ("raw_articles", DAYS[-1])]
    meta = materialization_metadata(night, "outlet_leaning")
    assert (meta["update"], meta["days_read"]) == ("night", 1)
    assert meta["fit_id"] == materialization_metadata(first, "outlet_leaning")["fit_id"]
    incremental = pd.read_parquet(tmp_path / "assets" / "outlet_leaning.parquet")
    assert incremental["n_articles"].sum() == len(raw)
    rebuilt = _materialize(tmp_path, raw.iloc[:0], embedded.iloc[:0],
                           {"ops": {"outlet_leaning": {"config": {**config, "rebuild": True}}}},
                           selection=["outlet_leaning"], read_log=log)
    meta = materialization_metadata(rebuilt, "outlet_leaning")
    assert (meta["update"], meta["days_read"]) == ("rebuild", 3)
    pd.testing.assert_frame_equal(incremental, pd.read_parquet(tmp_path / "assets" / "outlet_leaning.parquet"),
                                  check_exact=False, rtol=0, atol=1e-9)
