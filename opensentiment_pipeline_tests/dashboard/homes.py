"""Project homes for the dashboard tests and its speed benchmark: the same files the pipeline stores (Parquet
outputs, artifact CSVs, the search index, results.duckdb), written from given articles and vectors in seconds.

The tests write the demo corpus with its real topic vectors (so a search ranks as in `make demo`); the
benchmark writes synthetic articles with random vectors at ABP size and at 100k.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from opensentiment_pipeline.core import results_tables
from opensentiment_pipeline.core.vectors import search

SENTIMENTS = ("negative", "neutral", "positive")
LEANINGS = ("left", "center", "right")
RUN_ID = "fixture-run"


def write_home(home: Path, articles: pd.DataFrame, vectors: np.ndarray, *, base_model: str,
               store_vectors: bool = True) -> Path:
    """Write a results home for `articles` (article_id, outlet, published_at, title, text, source) and their
    `(n, d)` topic `vectors`; sentiment cycles through SENTIMENTS and each outlet gets a fixed place on the axis."""
    home = Path(home)
    assets = home / "assets"
    days = pd.to_datetime(articles["published_at"], utc=True).dt.strftime("%Y-%m-%d")
    sentiment = [SENTIMENTS[i % 3] for i in range(len(articles))]
    embeddings = pd.DataFrame({"article_id": articles["article_id"], "sentiment": sentiment,
                               "sentiment_confidence": 0.9, "partition_day": days})
    if store_vectors:
        embeddings["embedding"] = list(vectors.astype(np.float32))
    _write_days(assets / "raw_articles", articles.assign(partition_day=days))
    _write_days(assets / "article_embeddings", embeddings)
    xy = _project(vectors)
    outlets = sorted(articles["outlet"].unique())
    codes = {o: i for i, o in enumerate(outlets)}
    points = pd.DataFrame({"article_id": articles["article_id"], "outlet": articles["outlet"], "x": xy[:, 0],
                           "y": xy[:, 1], "cluster": articles["outlet"].map(codes) % 4,
                           "title": articles["title"], "sentiment": sentiment})
    points.to_parquet(assets / "outlet_clusters.parquet", index=False)
    _leaning(outlets).to_parquet(assets / "outlet_leaning.parquet", index=False)
    _stories(articles, outlets).to_parquet(assets / "stories.parquet", index=False)
    _agreement(outlets).to_parquet(assets / "outlet_agreement.parquet", index=False)
    _trends(articles, sentiment).to_parquet(assets / "sentiment_trends.parquet", index=False)
    run = home / "artifacts" / "runs" / RUN_ID / "outlet_clusters"
    run.mkdir(parents=True, exist_ok=True)
    _similarity(articles["outlet"], vectors).to_csv(run / "outlet_similarity.csv")
    pd.DataFrame({"outlet": outlets, "outlet_group": [codes[o] % 3 for o in outlets]}).to_csv(
        run / "outlets.csv", index=False)
    _write_index(home / "index", articles, vectors, sentiment, base_model)
    tables = {**results_tables.evaluation_tables(_report()), "model_champion": _champion()}
    tables["model_evaluation"] = tables["model_evaluation"].assign(mlflow_experiment_id="1")
    with duckdb.connect(str(home / "results.duckdb")) as conn:
        results_tables.write_results_db(conn, parquet_dir=assets, csv_dirs={"outlet_clusters": run}, tables=tables,
                                        refreshed_at="2026-11-30T00:00:00+00:00", run_id=RUN_ID)
    return home


def synthetic_articles(n: int, *, n_outlets: int, n_days: int, seed: int) -> pd.DataFrame:
    """`n` articles spread over `n_outlets` outlets and `n_days` days (ending 2026-11-30)."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-11-30", tz="UTC") - pd.Timedelta(days=n_days - 1)
    day = rng.integers(0, n_days, n)
    return pd.DataFrame({
        "article_id": [f"syn-{i:06d}" for i in range(n)],
        "outlet": [f"outlet {k:03d}" for k in rng.integers(0, n_outlets, n)],
        "published_at": start + pd.to_timedelta(day, unit="D"),
        "title": [f"Synthetic story {i}" for i in range(n)],
        "text": [f"Synthetic article body number {i} about topic {i % 50}." for i in range(n)],
        "source": "synthetic",
    })


def _write_days(folder: Path, frame: pd.DataFrame) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for day, part in frame.groupby("partition_day"):
        part.to_parquet(folder / f"{day}.parquet", index=False)


def _project(vectors: np.ndarray) -> np.ndarray:
    centred = vectors - vectors.mean(0)
    _, _, vt = np.linalg.svd(centred[: min(len(centred), 5000)], full_matrices=False)
    return (centred @ vt[:2].T).astype(np.float32)


def _leaning(outlets: list[str]) -> pd.DataFrame:
    score = np.linspace(-0.8, 0.8, len(outlets)) if len(outlets) > 1 else np.zeros(1)
    label = [LEANINGS[0] if s < -0.25 else LEANINGS[2] if s > 0.25 else LEANINGS[1] for s in score]
    return pd.DataFrame({"outlet": outlets, "n_articles": 10, "score": score, "score_low": score - 0.1,
                         "score_high": score + 0.1, "reference_leaning": [l if i % 2 == 0 else None
                                                                         for i, l in enumerate(label)],
                         "fitted_on": True, "label": label, "raw_score": score})


def _stories(articles: pd.DataFrame, outlets: list[str]) -> pd.DataFrame:
    """Three stories, each covered by every outlet (the stories asset's columns, one row per story and outlet)."""
    day = pd.to_datetime(articles["published_at"], utc=True).dt.date
    rows = []
    for n in range(3):
        for i, outlet in enumerate(outlets):
            rows.append({"story_id": n, "headline": str(articles["title"].iloc[n]), "keywords": "rate, council",
                         "first_day": day.min(), "last_day": day.max(), "n_articles": 10 * (n + 1),
                         "n_outlets": len(outlets), "outlets": ", ".join(outlets), "share_left": 0.5,
                         "share_center": 0.25, "share_right": 0.25, "n_unrated_outlets": 0,
                         "leaning_source": "fixture", "blindspot": "right" if n == 2 else "", "outlet": outlet,
                         "outlet_leaning": LEANINGS[i % 3], "outlet_articles": 2, "sentiment": 0.1 * i - 0.2,
                         "sentiment_low": 0.1 * i - 0.4, "sentiment_high": 0.1 * i, "outlet_words": "rate, hold"})
    return pd.DataFrame(rows)


def _agreement(outlets: list[str]) -> pd.DataFrame:
    pairs = [(a, b) for i, a in enumerate(outlets) for b in outlets[i + 1:]]
    return pd.DataFrame({"outlet_a": [a for a, _ in pairs], "outlet_b": [b for _, b in pairs], "stories_a": 3,
                         "stories_b": 3, "shared_stories": 3, "coverage_jaccard": 1.0, "sentiment_gap": 0.2,
                         "sentiment_closeness": 0.9})


def _trends(articles: pd.DataFrame, sentiment: list[str]) -> pd.DataFrame:
    """Weekly topic rows per outlet (the sentiment_trends columns the dashboard reads)."""
    frame = pd.DataFrame({"outlet": articles["outlet"].to_numpy(), "sentiment": sentiment,
                          "week": pd.to_datetime(articles["published_at"], utc=True).dt.tz_localize(None)
                          .dt.to_period("W").dt.start_time})
    frame["net"] = frame["sentiment"].map({"negative": -1.0, "neutral": 0.0, "positive": 1.0})
    weekly = frame.groupby(["outlet", "week"], as_index=False).agg(volume=("net", "size"), net_sentiment=("net", "mean"))
    return weekly.assign(kind="topic", key="0", net_low=weekly["net_sentiment"] - 0.2,
                         net_high=weekly["net_sentiment"] + 0.2)


def _similarity(outlets: pd.Series, vectors: np.ndarray) -> pd.DataFrame:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    means = pd.DataFrame(unit).groupby(outlets.to_numpy()).mean()
    means = means.div(np.linalg.norm(means.to_numpy(), axis=1), axis=0)
    sim = means.to_numpy() @ means.to_numpy().T
    names = pd.Index(means.index, name="outlet")
    return pd.DataFrame(sim, index=names, columns=names)


def _write_index(folder: Path, articles: pd.DataFrame, vectors: np.ndarray, sentiment: list[str],
                 base_model: str) -> None:
    shown = articles[["article_id", "outlet", "published_at", "source", "title"]].assign(
        sentiment=sentiment, sentiment_confidence=0.9, snippet=articles["text"].str.slice(0, 300))
    with search.replacing_folder(folder) as tmp:
        search.save_index(search.build_index(vectors, articles["article_id"]), tmp)
        shown.to_parquet(tmp / search.ARTICLES_FILE, index=False)
        (tmp / search.MANIFEST_FILE).write_text(json.dumps({
            "vector": "topic", "base_model": base_model, "num_layers": None, "query_max_length": 256,
            "built_at": "2026-11-30T00:00:00+00:00"}))


def _report() -> dict:
    labels = list(SENTIMENTS)
    per_class = {"negative": (0.8, 0.7, 0.75, 20), "neutral": (0.6, 0.7, 0.65, 30), "positive": (0.7, 0.6, 0.65, 10)}
    return {"labels": labels, "n": 60, "macro_f1": 0.683, "macro_f1_ci95": [0.58, 0.77], "accuracy": 0.68,
            "ece": 0.07, "confusion_matrix": [[14, 5, 1], [6, 21, 3], [1, 3, 6]],
            "per_class": {k: dict(zip(("precision", "recall", "f1", "support"), v)) for k, v in per_class.items()},
            "baselines": {"majority_class": {"macro_f1": 0.21, "accuracy": 0.5},
                          "tfidf_logreg": {"macro_f1": 0.52, "accuracy": 0.55}},
            "by_source": [], "by_outlet": [], "adapter_version": "adapter-run", "evaluation_run_id": "eval-run",
            "test_fingerprint": "fixture"}


def _champion() -> pd.DataFrame:
    return pd.DataFrame([{"registered_model": "opensentiment-sentiment", "champion_version": "1",
                          "registered_version": "1", "promoted": True, "promotion_reason": "no champion yet",
                          "adapter_version": "adapter-run", "evaluation_run_id": "eval-run",
                          "mlflow_experiment_id": "1", "tracking_uri": "sqlite:///mlflow.db",
                          "dagster_run_id": RUN_ID}])
