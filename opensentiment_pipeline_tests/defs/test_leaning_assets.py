"""article_index and outlet_leaning materialize on hand-built upstream tables (no adapter training)."""

from __future__ import annotations

import json
import types

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from opensentiment_pipeline import definitions
from opensentiment_pipeline.defs import partitions
from opensentiment_pipeline.core.analysis import leaning
from opensentiment_pipeline.core.model import modeling
from opensentiment_pipeline.core.vectors import search
from opensentiment_pipeline.defs.assets import leaning as leaning_assets
from opensentiment_pipeline.defs.assets import search as search_assets
from opensentiment_pipeline_tests.defs.stubs import upstream_stubs

POSITIONS = {"left one": -1.0, "left two": -0.8, "right one": 1.0, "right two": 0.8, "newcomer": 0.6}
PER_OUTLET = 12


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
    })
    embedded = pd.DataFrame({"article_id": ids, "model_version": model_version, "embedding": list(vectors),
                             "sentiment": "neutral", "sentiment_confidence": 0.5,
                             "partition_day": "2026-11-01"})  # published before the first day: the archive day
    return raw, embedded


def _map(embedded: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
    """A stand-in outlet map: two vector dimensions as x, y; every third article is noise (-1), the rest fall in
    two clusters by article number, so each cluster holds articles of every outlet."""
    vectors = np.stack(embedded["embedding"].to_numpy())
    number = np.arange(len(embedded))
    return pd.DataFrame({"article_id": embedded["article_id"], "outlet": raw["outlet"].to_numpy(),
                         "x": vectors[:, 0], "y": vectors[:, 1], "cluster": np.where(number % 3 == 0, -1, number % 2)})


def _materialize(home, raw: pd.DataFrame, embedded: pd.DataFrame, run_config: dict | None = None):
    adapter_dir = home / "adapter"
    adapter_dir.mkdir(exist_ok=True)
    (adapter_dir / "mlflow_run.json").write_text(json.dumps({"run_id": "v1"}))
    modeling.AdapterManifest(base_model="packaged:all-MiniLM-L6-v2", labels=["negative", "neutral", "positive"],
                             num_layers=None, max_length=64, pair_input=False).save(adapter_dir)

    return dg.materialize(
        [*upstream_stubs(raw, embedded, adapter_dir, points=_map(embedded, raw)), search_assets.article_index,
         leaning_assets.outlet_leaning],
        resources=definitions.resources_for(home, tracking_uri=f"sqlite:///{home}/mlflow.db"),
        run_config=run_config or {}, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
            tags=partitions.range_tags())


def _metadata(result, asset: str) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset]
    return {k: v.value for k, v in event.materialization.metadata.items()}


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
    meta = _metadata(first, "article_index")
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
    hits = search.search(index, embedded["embedding"].iloc[7], k=3, allowed_ids=articles["article_id"][20:30])
    assert hits["article_id"].iloc[0] != "x7" and len(hits) == 3


def test_outlet_leaning_without_ratings_reports_principal_axis_ends(runs):
    home, (first, _, _), _ = runs
    meta = _metadata(first, "outlet_leaning")
    assert meta["method"] == "principal_axes" and meta["num_fitted_outlets"] == 0
    ends = meta["axis1_ends"]
    assert {frozenset(ends["low_end"]), frozenset(ends["high_end"])} == {  # the axis's sign is arbitrary
        frozenset({"left one", "left two"}), frozenset({"right one", "right two"})}
    assert meta["leaning_plot"].startswith("![") and "mlflow_run_id" in meta


def test_outlet_leaning_with_a_reference_csv_places_the_unrated_outlet(runs):
    home, (_, second, _), _ = runs
    assert second.success
    meta = _metadata(second, "outlet_leaning")
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
    # The per-topic view: the sources give no topics, so it reads the map's two clusters (noise left out), and in
    # both the left outlets sit at the left end.
    assert meta["leaning_by_topic"].startswith("Topics from the outlet map's 2 clusters")
    (csv,) = [p for p in (home / "artifacts").rglob("leaning_by_topic.csv") if second.run_id in str(p)]
    by_topic = pd.read_csv(csv)
    assert sorted(by_topic["topic"]) == [0, 1] and by_topic["n_outlets"].tolist() == [5, 5]
    assert by_topic["left_outlet"].str.startswith("left").all() and by_topic["right_outlet"].str.startswith("right").all()
    (csv,) = [p for p in (home / "artifacts").rglob("topic_outlet_leaning.csv") if second.run_id in str(p)]
    cells = pd.read_csv(csv)
    # 60 articles, a third noise, the rest split evenly: 20 per topic over 5 outlets.
    assert len(cells) == 10 and cells.groupby("topic")["n_articles"].sum().tolist() == [20, 20]
    assert "topic_outlet_leaning" in meta
    # The map shows the axis: every article carries its outlet's calibrated score.
    assert meta["leaning_map"].startswith("![")
    page = (home / "artifacts").rglob("leaning_map.html")
    assert any(second.run_id in str(p) and "newcomer" in p.read_text() for p in page)
    # What the axis had to substitute is in the metadata, with why: 48 rated articles are too few for topics,
    # and the ratings have no center outlet to anchor the calibration on.
    assert any(w.startswith("topic_free_share 0.5: the smallest training fold has 36 articles") for w in meta["warnings"])
    assert any(w.startswith("final: calibration:") and "a class has no outlet" in w for w in meta["warnings"])
    (check,) = second.get_asset_check_evaluations()
    assert check.check_name == leaning_assets.TFIDF_CHECK and check.passed


def test_a_map_drawn_from_older_vectors_is_refused_with_the_command_that_redraws_it():
    raw, embedded = _tables(with_leaning=True)
    articles = raw[["article_id", "outlet", "title"]]
    stale_map = _map(embedded, raw).iloc[5:]  # the map lacks the first five articles
    placed = types.SimpleNamespace(outlets=pd.DataFrame({"outlet": list(POSITIONS), "score": list(POSITIONS.values()),
                                                         "label": ["left", "left", "right", "right", "right"]}),
                                   article_scores=np.linspace(-1, 1, len(articles)))
    with pytest.raises(ValueError, match=r"outlet_clusters has no map position for 5 of 60 embedded articles .*"
                                         r"--select 'outlet_clusters,outlet_leaning'"):
        leaning.map_points(articles, stale_map, placed)
    points = leaning.map_points(articles, _map(embedded.iloc[::-1], raw.iloc[::-1]), placed)  # map in another order
    assert points["article_id"].tolist() == articles["article_id"].tolist()  # in the articles' order, as the scores
    assert points["leaning_score"].tolist() == [POSITIONS[o] for o in articles["outlet"]]
    assert (points["leaning_label"] == np.where(articles["outlet"].str.startswith("left"), "left", "right")).all()
    assert points["article_score"].tolist() == pytest.approx(placed.article_scores.tolist())
    np.testing.assert_allclose(points["x"], np.stack(embedded["embedding"].to_numpy())[:, 0], rtol=1e-6)


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
    expected = _metadata(second, "outlet_leaning")["outlet_cv_spearman"]
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
    assert unrated.success and _metadata(unrated, "outlet_leaning")["method"] == "principal_axes"
