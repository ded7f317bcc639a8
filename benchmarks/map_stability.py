"""How stable the map's clusters are: a new day placed by the stored fit against a refit, beside two refits.

The night places a new day's articles with the fit it keeps (umap-learn `transform`, hdbscan
`approximate_predict`); a refit fits UMAP and HDBSCAN again on a sample that holds the new day. Their clusters
are compared on the new day's articles, once each refit cluster is mapped to the cluster it shares most of
them with (noise, -1, counts as a cluster), and by the adjusted Rand index. Beside it, the same comparison
between two refits that differ only in their sample or only in UMAP's seed: how much two fits of the same
archive disagree on their own, which is as close as any placement can come to "what a refit would say".

Two corpora: the synthetic archive `archive_scale.py --keep` left in `--home` (its stored days, the new day
2026-12-01, fits on a stratified sample of `--max-fit`, as outlet_clusters does), and `--real` real
Article-Bias-Prediction articles (the archive benchmark's cached vectors), two thirds fitted, one third placed.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/map_stability.py \\
        --home /work/cache/archive_scale/runs/100000 --min-cluster-size 10 50
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.analysis import map_fit
from opensentiment_pipeline.defs.assets.analysis import OutletClustersConfig

NEW_DAY = "2026-12-01"


def agreement(night: np.ndarray, refit: np.ndarray) -> tuple[float, float]:
    """(share of articles in the same cluster once refit clusters are mapped by majority overlap, ARI)."""
    from sklearn.metrics import adjusted_rand_score

    mapping = pd.crosstab(refit, night).idxmax(axis=1)
    return float((pd.Series(refit).map(mapping).to_numpy() == night).mean()), float(adjusted_rand_score(night, refit))


class Fit:
    """UMAP fitted on `vectors[rows]` with outlet_clusters' settings; clusters for any min_cluster_size."""

    def __init__(self, vectors: np.ndarray, rows: np.ndarray, *, seed: int, config: OutletClustersConfig):
        import umap

        self.vectors, self.rows = vectors, rows
        args = map_fit.umap_args(len(rows), n_neighbors=config.n_neighbors, min_dist=config.min_dist,
                                 metric=config.metric, n_components=config.n_components, random_state=seed)
        self.reducer = umap.UMAP(n_components=config.n_components, **args).fit(vectors[rows])
        self.min_samples = config.min_samples

    def labels(self, targets: np.ndarray, min_cluster_size: int) -> np.ndarray:
        """Clusters of the rows `targets`: the fit's own label for a row it was fitted on, else placed."""
        import hdbscan

        clusterer = hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, min_samples=self.min_samples,
                                    prediction_data=True).fit(self.reducer.embedding_)
        position = pd.Series(np.arange(len(self.rows)), index=self.rows)
        inside = np.isin(targets, self.rows)
        out = np.empty(len(targets), dtype=np.int64)
        out[inside] = clusterer.labels_[position[targets[inside]].to_numpy()]
        if (~inside).any():
            out[~inside] = hdbscan.approximate_predict(clusterer, self.reducer.transform(
                self.vectors[targets[~inside]]))[0]
        return out


def compare(name: str, vectors: np.ndarray, archive_rows, all_rows, new_rows: np.ndarray, sizes: list[int],
            config: OutletClustersConfig) -> list[dict]:
    """`archive_rows(seed)` / `all_rows(seed)`: the rows a night's fit and a refit are fitted on."""
    start = time.perf_counter()
    night, refit = Fit(vectors, archive_rows(0), seed=0, config=config), Fit(vectors, all_rows(0), seed=0, config=config)
    other_sample = Fit(vectors, all_rows(1), seed=0, config=config)
    other_seed = Fit(vectors, all_rows(0), seed=1, config=config)
    rows = []
    for size in sizes:
        placed, refitted = night.labels(new_rows, size), refit.labels(new_rows, size)
        row = {"corpus": name, "min_cluster_size": size, "new_articles": len(new_rows),
               "clusters_night": int(placed.max() + 1), "clusters_refit": int(refitted.max() + 1),
               "noise_night": round(float(np.mean(placed < 0)), 3), "noise_refit": round(float(np.mean(refitted < 0)), 3)}
        for label, other in (("placed_vs_refit", placed), ("refit_vs_other_sample", other_sample.labels(new_rows, size)),
                             ("refit_vs_other_seed", other_seed.labels(new_rows, size))):
            share, ari = agreement(other, refitted)
            row[label], row[f"{label}_ari"] = round(share, 4), round(ari, 3)
        rows.append(row)
        print(row, flush=True)
    print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    return rows


def synthetic(home: Path, sizes: list[int], max_fit: int, config: OutletClustersConfig) -> list[dict]:
    from opensentiment_pipeline.core.vectors import encoding

    def days(asset: str, columns: list[str]) -> pd.DataFrame:
        return pd.concat([pd.read_parquet(p, columns=columns) for p in sorted((home / "assets" / asset).glob("*.parquet"))],
                         ignore_index=True)

    embedded = days("article_embeddings", ["article_id", "embedding", "partition_day"])
    keys = embedded[["article_id", "partition_day"]].merge(days("raw_articles", ["article_id", "outlet"]),
                                                             on="article_id", how="left", validate="one_to_one")
    vectors = encoding.frame_to_matrix(embedded).astype(np.float32)
    row_of = pd.Series(np.arange(len(embedded)), index=embedded["article_id"])
    new = (embedded["partition_day"] == NEW_DAY).to_numpy()
    if not new.any():
        raise ValueError(f"{home} holds no article of the new day {NEW_DAY}: run archive_scale.py --keep first")

    def sample(mask):
        return lambda seed: row_of[map_fit.stratified_sample(keys[mask], max_rows=max_fit, seed=seed)].to_numpy()

    return compare(f"synthetic {len(embedded) - new.sum()} + {new.sum()}", vectors, sample(~new),
                   sample(np.ones(len(new), bool)), np.flatnonzero(new), sizes, config)


def real(cache: Path, sizes: list[int], config: OutletClustersConfig, seed: int) -> list[dict]:
    vectors = np.load(cache)["vectors"].astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(vectors))
    archive, new = np.sort(order[: 2 * len(order) // 3]), np.sort(order[2 * len(order) // 3:])
    everything = np.arange(len(vectors))
    other = np.sort(np.random.default_rng(seed + 1).permutation(everything)[: len(everything) * 9 // 10])
    # every article for the refit; the other sample leaves a tenth out
    return compare(f"real ABP {len(archive)} + {len(new)}", vectors, lambda s: archive,
                   lambda s: everything if s == 0 else other, new, sizes, config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="one size's folder that archive_scale.py --keep left")
    parser.add_argument("--real", type=Path, default=Path("/work/cache/archive_scale/pool_vectors_3000_0.npz"))
    parser.add_argument("--min-cluster-size", type=int, nargs="+", default=[OutletClustersConfig().min_cluster_size])
    parser.add_argument("--max-fit", type=int, default=OutletClustersConfig().max_fit_articles)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = OutletClustersConfig()
    print(f"# map_stability {dt.date.today()} | {platform.machine()}, {os.cpu_count()} CPUs", flush=True)
    rows = real(args.real, args.min_cluster_size, config, args.seed) if args.real.exists() else []
    if args.home:
        rows += synthetic(args.home, args.min_cluster_size, args.max_fit, config)
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
