"""The outlet map at scale: `core.clustering.cluster_outlets` (UMAP + HDBSCAN + keywords + outlet similarity) on
100,000 vectors, with wall time per stage and the process's peak memory.

There are not 100k embedded news articles offline, so the vectors are built from real ones: `--real` NewsMTSC
sentences are embedded with the packaged all-MiniLM-L6-v2, and each of the `--n` points is one of them plus
Gaussian noise (per-dimension sigma `--noise`), re-normalised: the local structure of real sentence vectors at
the target size. Points get one of `--outlets` outlets at random and their source sentence's text (for
keywords). Settings are the `outlet_clusters` defaults except `min_cluster_size`, scaled to the corpus.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/cluster_scale.py --n 100000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import sys
import time

import numpy as np
import pandas as pd


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="points to cluster")
    parser.add_argument("--real", type=int, default=3000, help="real NewsMTSC sentences the points are built from")
    parser.add_argument("--noise", type=float, default=0.02, help="per-dimension Gaussian noise before re-normalising")
    parser.add_argument("--outlets", type=int, default=50)
    parser.add_argument("--min-cluster-size", type=int, default=200)
    parser.add_argument("--data", default="../shared/data/newsmtsc/train.jsonl")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def main() -> int:
    args = parse_args()
    from opensentiment_pipeline.core.analysis import clustering
    from opensentiment_pipeline.core.model import modeling
    from opensentiment_pipeline.core.vectors import encoding

    rng = np.random.default_rng(args.seed)
    with open(args.data, encoding="utf-8") as lines:
        sentences = list(dict.fromkeys(json.loads(line)["sentence_normalized"] for line in lines))[: args.real]
    spec = "packaged:all-MiniLM-L6-v2"
    base = encoding.encode_texts(modeling.load_encoder(spec, num_layers=None), modeling.load_tokenizer(spec),
                                   sentences, batch_size=64, max_length=128, device="cpu")
    source = rng.integers(0, len(sentences), args.n)
    vectors = base[source] + rng.normal(0, args.noise, (args.n, base.shape[1])).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine_to_source = float(np.mean(np.sum(vectors * base[source], axis=1)))
    articles = pd.DataFrame({"article_id": [f"a{i}" for i in range(args.n)],
                             "outlet": [f"outlet {k}" for k in rng.integers(0, args.outlets, args.n)],
                             "text": [sentences[i] for i in source],
                             "sentiment": rng.choice(["negative", "neutral", "positive"], args.n)})
    before = peak_rss_gib()
    settings = dict(n_neighbors=15, min_dist=0.1, metric="cosine", random_state=42)
    times = {}
    start = time.perf_counter()
    reduced = clustering.project_umap(vectors, n_components=2, **settings)
    times["UMAP 384 -> 2 (incl. numba JIT)"] = time.perf_counter() - start
    start = time.perf_counter()
    labels = clustering.cluster_points(reduced, min_cluster_size=args.min_cluster_size, min_samples=None)
    times["HDBSCAN on the 2-D map"] = time.perf_counter() - start
    start = time.perf_counter()
    result = clustering.cluster_outlets(articles, vectors, n_components=2, min_cluster_size=args.min_cluster_size,
                                        min_samples=None, top_k=8, **settings)
    times["cluster_outlets end to end (UMAP again, JIT warm)"] = time.perf_counter() - start

    print(f"# cluster_scale {dt.date.today()} | {platform.machine()}, {os.cpu_count()} CPUs | "
          f"python {sys.version.split()[0]}")
    print(f"{args.n:,} vectors x {vectors.shape[1]} from {len(sentences):,} real NewsMTSC sentences + noise "
          f"(mean cosine to its sentence {cosine_to_source:.3f}), {args.outlets} outlets")
    print(pd.DataFrame({"stage": list(times), "seconds": [round(t, 1) for t in times.values()]}).to_markdown(index=False))
    print(f"\nclusters: {len(set(labels)) - (1 if -1 in labels else 0)} (noise {np.mean(labels == -1):.1%}); "
          f"end to end: {result.n_clusters} clusters")
    print(f"peak RSS: {peak_rss_gib():.2f} GiB (after embedding the real sentences: {before:.2f} GiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
