"""The outlet map's state between runs: the fit, every article's point (one Parquet file per day) and per-outlet
vector sums, and the two ways of bringing it up to date: place the new days with the stored fit (`fold`), or
fit again on a fresh sample and place every stored day (`refit`), reading the days a month at a time."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.analysis import map_fit
from opensentiment_pipeline.defs import stored_days
from opensentiment_pipeline.defs.partitions import PARTITION_COLUMN
from opensentiment_pipeline.defs.stored_days import StoredDays

# The OutletClustersConfig fields a fit depends on: changing one fits the map again.
FIT_FIELDS = ("n_components", "n_neighbors", "min_dist", "metric", "min_cluster_size", "min_samples", "top_k",
              "random_state", "projection", "max_fit_articles")
# The noise share of fewer new articles is too noisy to call drift (its standard error is ~0.05 at 100).
DRIFT_MIN_ARTICLES = 100
POINTS_DIR = "points"
SUMS_FILE = "outlet_sums.parquet"
POINT_COLUMNS = ("article_id", "outlet", "x", "y", "cluster", "map_fit", "sentiment", "title", "published_at",
                 PARTITION_COLUMN)
VECTOR_COLUMNS = ["article_id", "embedding", "sentiment", PARTITION_COLUMN]
RAW_COLUMNS = ["article_id", "outlet", "title", "published_at"]


@dataclass
class MapUpdate:
    fit: map_fit.MapFit
    sums: pd.DataFrame  # per-outlet n and sum of unit vectors over every stored article
    points_by_day: dict[str, pd.DataFrame]  # the days (re)placed this run
    n_new: int  # articles placed this run
    noise_share: float  # share of them HDBSCAN's approximate_predict called noise
    mismatch: str = ""  # why the new days cannot join this fit (vectors of another adapter or text window)


@dataclass
class MapTables:
    outlets: pd.DataFrame
    outlet_similarity: pd.DataFrame
    outlet_order: list[str]
    topic_outlet_sentiment: pd.DataFrame


def fold(fit: map_fit.MapFit, embeddings: StoredDays, raw: StoredDays, days: list[str], folder: Path) -> MapUpdate:
    """Place the articles of `days` with `fit`, adding their vectors to the stored outlet sums."""
    filled = embeddings.non_empty(days)
    version, window = stored_days.vector_signature(embeddings, filled, asset="outlet_clusters")
    if filled and (version, window) != (fit.settings["model_version"], fit.settings["text_window"]):
        return MapUpdate(fit, pd.DataFrame(), {}, 0, 0.0, mismatch=(
            f"the new days' vectors ({version}, {window}) are not those of map fit {fit.fit_id} "
            f"({fit.settings['model_version']}, {fit.settings['text_window']})"))
    sums = pd.read_parquet(folder / SUMS_FILE)
    points, sums = _place_days(fit, embeddings, raw, filled, sums, sample=None)
    return _update(fit, sums, points)


def refit(embeddings: StoredDays, raw: StoredDays, days: list[str], *, previous: map_fit.MapFit | None,
          max_fit_articles: int, **settings) -> MapUpdate:
    """Fit the map on a stratified sample of every stored article, then place all of them."""
    from opensentiment_pipeline.core.schema import title_and_text
    from opensentiment_pipeline.core.vectors import encoding
    from opensentiment_pipeline.defs.assets.analysis import map_topic_metrics

    filled = embeddings.non_empty(days)
    if not filled:
        raise ValueError("no article_embeddings row is stored: materialize article_embeddings before outlet_clusters")
    version, window = stored_days.vector_signature(embeddings, filled, asset="outlet_clusters")
    keys = embeddings.read(filled, columns=["article_id", PARTITION_COLUMN]).merge(
        raw.read(raw.stored(filled), columns=["article_id", "outlet"]), on="article_id", how="left",
        validate="one_to_one")
    _check_outlets(keys)
    chosen = set(map_fit.stratified_sample(keys, max_rows=max_fit_articles, seed=settings["random_state"]).tolist())
    text_columns = ["article_id", "outlet", "title", "text", *(["topic"] if _has(raw, "topic") else [])]
    vector_columns = ["article_id", "embedding", *(["sentiment_embedding"] if _has(embeddings, "sentiment_embedding")
                                                   else [])]
    sample_rows = pd.concat([b[b["article_id"].isin(chosen)] for b in embeddings.iter_batches(filled, vector_columns)],
                            ignore_index=True)
    texts = pd.concat([b[b["article_id"].isin(chosen)] for b in raw.iter_batches(raw.stored(filled), text_columns)],
                      ignore_index=True)
    sample = sample_rows.merge(texts, on="article_id", how="left", validate="one_to_one")
    vectors = encoding.frame_to_matrix(sample)
    count = int(previous.fit_id.split("#")[1]) + 1 if previous else 1
    fit, sample_points = map_fit.fit_map(
        vectors, sample["article_id"].tolist(), title_and_text(sample), fit_id=f"{filled[-1]}#{count}",
        fitted_through=filled[-1], **settings)
    fit.settings.update(config={**settings, "max_fit_articles": max_fit_articles}, model_version=version,
                        text_window=window,
                        topic_metrics=map_topic_metrics(sample, sample_points, vectors, sample_rows))
    points, sums = _place_days(fit, embeddings, raw, filled, None, sample=sample_points.set_index("article_id"))
    return _update(fit, sums, points)


def save(tmp: Path, update: MapUpdate, *, old_folder: Path | None) -> None:
    """Write the state into the new folder `tmp`; with `old_folder`, days not placed this run are hard-linked
    from it (a night writes its own day, not the archive's)."""
    (tmp / POINTS_DIR).mkdir()
    if old_folder is not None:
        for path in (old_folder / POINTS_DIR).glob("*.parquet"):
            if path.stem not in update.points_by_day:
                os.link(path, tmp / POINTS_DIR / path.name)
    for day, points in update.points_by_day.items():
        points.to_parquet(tmp / POINTS_DIR / f"{day}.parquet", index=False)
    update.sums.to_parquet(tmp / SUMS_FILE)
    map_fit.save_fit(update.fit, tmp)


def read_points(folder: Path) -> pd.DataFrame:
    """Every stored point (the state's own files, one per day with articles; no stored day of an asset is read)."""
    files = sorted((folder / POINTS_DIR).glob("*.parquet"))
    frames = [pd.read_parquet(path) for path in files]
    return pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)


def tables(points: pd.DataFrame, sums: pd.DataFrame, fit: map_fit.MapFit, *, n_outlet_groups: int | None,
           min_topic_articles: int) -> MapTables:
    """The outlet summary, similarity (from the sums), dendrogram order and per-cluster sentiment table."""
    from opensentiment_pipeline.core.analysis import outlet_tables

    similarity = outlet_tables.similarity_from_sums(sums)
    order, groups = outlet_tables.outlet_hierarchy(similarity, n_groups=n_outlet_groups)
    return MapTables(
        outlets=outlet_tables.outlet_table(points, similarity, groups, points["sentiment"]),
        outlet_similarity=similarity, outlet_order=order,
        topic_outlet_sentiment=outlet_tables.topic_outlet_table(points, points["sentiment"], fit.keywords,
                                                                min_articles=min_topic_articles))


def _place_days(fit: map_fit.MapFit, embeddings: StoredDays, raw: StoredDays, days: list[str],
                sums: pd.DataFrame | None, *, sample: pd.DataFrame | None):
    """Points of `days` (a sample article keeps its fit position) and the outlet sums with their vectors added."""
    from opensentiment_pipeline.core.analysis import outlet_tables
    from opensentiment_pipeline.core.vectors import encoding

    points: dict[str, pd.DataFrame] = {}
    raw_days = set(raw.days())
    for batch in embeddings.iter_batches(days, VECTOR_COLUMNS):
        batch_days = sorted(batch[PARTITION_COLUMN].unique())
        rows = batch.merge(raw.read([d for d in batch_days if d in raw_days], RAW_COLUMNS), on="article_id",
                           how="left", validate="one_to_one")
        _check_outlets(rows)
        vectors = encoding.frame_to_matrix(rows)
        sums = outlet_tables.add_sums(sums, outlet_tables.outlet_vector_sums(rows["outlet"], vectors))
        for day, index in rows.groupby(PARTITION_COLUMN, sort=True).indices.items():
            points[day] = _points(fit, rows.iloc[index], vectors[index], sample)
    return points, sums


def _points(fit: map_fit.MapFit, rows: pd.DataFrame, vectors: np.ndarray, sample: pd.DataFrame | None) -> pd.DataFrame:
    in_sample = rows["article_id"].isin(sample.index).to_numpy() if sample is not None else np.zeros(len(rows), bool)
    xy = np.zeros((len(rows), 2), dtype=np.float32)
    clusters = np.zeros(len(rows), dtype=np.int64)
    placed_xy, placed_clusters = map_fit.place(fit, vectors[~in_sample])
    xy[~in_sample], clusters[~in_sample] = placed_xy, placed_clusters
    if in_sample.any():
        fitted = sample.loc[rows.loc[in_sample, "article_id"]]
        xy[in_sample] = fitted[["x", "y"]].to_numpy()
        clusters[in_sample] = fitted["cluster"].to_numpy()
    frame = rows.assign(x=xy[:, 0], y=xy[:, 1], cluster=clusters, map_fit=fit.fit_id, placed=~in_sample)
    return frame[[*POINT_COLUMNS, "placed"]].reset_index(drop=True)


def _update(fit: map_fit.MapFit, sums: pd.DataFrame | None, points: dict[str, pd.DataFrame]) -> MapUpdate:
    placed = pd.concat(points.values(), ignore_index=True) if points else pd.DataFrame({"placed": [], "cluster": []})
    new = placed[placed["placed"].astype(bool)]
    noise = float((new["cluster"] == -1).mean()) if len(new) else 0.0
    return MapUpdate(fit, sums if sums is not None else pd.DataFrame(), points,
                     n_new=int(sum(len(p) for p in points.values())), noise_share=noise)


def _check_outlets(rows: pd.DataFrame) -> None:
    missing = rows["outlet"].isna()
    if missing.any():
        raise ValueError(f"{int(missing.sum())} embedded articles are not in raw_articles, e.g. "
                         f"{rows.loc[missing, 'article_id'].head(3).tolist()}; re-materialize article_embeddings "
                         "after raw_articles")


def _has(days: StoredDays, column: str) -> bool:
    import pyarrow.parquet as pq

    stored = days.days()
    return bool(stored) and column in pq.read_schema(days.folder / f"{stored[-1]}.parquet").names
