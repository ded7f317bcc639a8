"""Does a night's incremental result drift from a rebuild's? Read from what each left on disk.

- search: the top 10 of `n_queries` stored vectors in the night's index vs in the rebuilt index;
- map: the share of the new day's articles whose cluster after the night (placed by the fitted model) is the
  cluster a refit gives them, once each refit cluster is mapped to the night's cluster it overlaps most;
- outlet table: the largest absolute difference of any number in outlet_leaning, night vs rebuild.

A check whose inputs are missing (an asset that did not run, a column an older asset does not write) reports
"n/a: <why>" instead of a figure. Used by benchmarks/archive_scale.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

UNREADABLE = (FileNotFoundError, KeyError, ValueError, IndexError)


def drift_checks(night: Path, assets: Path, rebuilt_index: Path, *, new_day: str, seed: int) -> dict:
    """Every check: `night` holds the night's outlet_clusters.parquet, outlet_leaning.parquet and index/;
    `assets` the rebuild's (and the stored days); `rebuilt_index` the rebuild's index folder."""
    checks = {}
    for name, check in (("search_top10", lambda: search_agreement(night / "index", rebuilt_index, assets, seed=seed)),
                        ("map_clusters_new_day", lambda: cluster_agreement(
                            night / "outlet_clusters.parquet", assets / "outlet_clusters.parquet",
                            assets / "raw_articles" / f"{new_day}.parquet")),
                        ("outlet_leaning", lambda: table_difference(
                            night / "outlet_leaning.parquet", assets / "outlet_leaning.parquet", key="outlet"))):
        try:
            checks[name] = check()
        except UNREADABLE as err:
            checks[name] = f"n/a: {type(err).__name__}: {err}"
    return checks


def search_agreement(night_dir: Path, rebuilt_dir: Path, assets: Path, *, seed: int, n_queries: int = 100,
                     k: int = 10) -> dict:
    """Share of queries whose top-k ids are the same set in both indexes, and the mean overlap."""
    from opensentiment_pipeline.core.vectors import search

    night, rebuilt = search.load_index(night_dir), search.load_index(rebuilt_dir)
    queries = stored_vectors(assets / "article_embeddings", n_queries, seed=seed)
    overlaps = []
    for query in queries:
        a = set(search.search(night, query, k)["article_id"])
        b = set(search.search(rebuilt, query, k)["article_id"])
        overlaps.append(len(a & b) / k)
    overlaps = np.asarray(overlaps)
    return {"queries": len(queries), "identical_top10_share": float((overlaps == 1).mean()),
            "mean_overlap_at_10": round(float(overlaps.mean()), 4), "night_kind": night.kind,
            "rebuilt_kind": rebuilt.kind, "night_vectors": night.num_vectors, "rebuilt_vectors": rebuilt.num_vectors}


def stored_vectors(folder: Path, n: int, *, seed: int) -> np.ndarray:
    """`n` topic vectors drawn from up to 10 random stored days of article_embeddings."""
    from opensentiment_pipeline.core.vectors import encoding

    days = sorted(folder.glob("*.parquet"))
    if not days:
        raise FileNotFoundError(f"no stored day in {folder}")
    rng = np.random.default_rng(seed)
    picked = [days[i] for i in rng.choice(len(days), min(10, len(days)), replace=False)]
    frame = pd.concat([pd.read_parquet(p, columns=["embedding"]) for p in picked], ignore_index=True)
    rows = rng.choice(len(frame), min(n, len(frame)), replace=False)
    return encoding.frame_to_matrix(frame.iloc[rows])


def cluster_agreement(night_path: Path, refit_path: Path, new_day_path: Path) -> dict:
    """Share of the new day's articles in the same cluster after the night and after a refit (refit clusters
    mapped to the night's cluster they share most articles with; noise, -1, is a cluster like the others)."""
    night = pd.read_parquet(night_path, columns=["article_id", "cluster"])
    refit = pd.read_parquet(refit_path, columns=["article_id", "cluster"])
    new_ids = set(pd.read_parquet(new_day_path, columns=["article_id"])["article_id"])
    both = night.merge(refit, on="article_id", suffixes=("_night", "_refit"), validate="one_to_one")
    mapping = pd.crosstab(both["cluster_refit"], both["cluster_night"]).idxmax(axis=1)
    new = both[both["article_id"].isin(new_ids)]
    if new.empty:
        raise ValueError(f"none of the {len(new_ids)} new-day articles is in both maps")
    agree = (new["cluster_refit"].map(mapping) == new["cluster_night"])
    everyone = (both["cluster_refit"].map(mapping) == both["cluster_night"])
    return {"new_day_articles": len(new), "agreement_share": round(float(agree.mean()), 4),
            "agreement_share_all_articles": round(float(everyone.mean()), 4),
            "clusters_night": int(night["cluster"].nunique()), "clusters_refit": int(refit["cluster"].nunique())}


def table_difference(night_path: Path, rebuilt_path: Path, *, key: str) -> dict:
    """Largest absolute difference of the numeric cells of two tables matched on `key`, and where it is."""
    night, rebuilt = pd.read_parquet(night_path), pd.read_parquet(rebuilt_path)
    both = night.merge(rebuilt, on=key, suffixes=("_night", "_rebuilt"), validate="one_to_one")
    numeric = [c for c in night.columns if c != key and c in rebuilt.columns
               and pd.api.types.is_numeric_dtype(night[c]) and pd.api.types.is_numeric_dtype(rebuilt[c])]
    if not numeric:
        raise ValueError(f"no numeric column shared by {night_path.name} and {rebuilt_path.name}")
    diffs = {c: float(np.nanmax(np.abs(both[f"{c}_night"].astype(float) - both[f"{c}_rebuilt"].astype(float))))
             if len(both) else 0.0 for c in numeric}
    worst = max(diffs, key=diffs.get)
    return {"rows_night": len(night), "rows_rebuilt": len(rebuilt), "rows_matched": len(both),
            "max_abs_diff": diffs[worst], "column": worst, "columns_compared": len(numeric)}
