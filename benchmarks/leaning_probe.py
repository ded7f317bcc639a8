"""Objective bias axis on Article-Bias-Prediction: how well embeddings alone place outlets left-right.

Reads the ABP text sample with the pipeline's own reader (format article_bias_prediction: outlet = `source`,
leaning = AllSides `bias_text`), keeps at most `--per-outlet` articles per outlet (seeded), embeds title + body
cut to `--max-length` tokens with the packaged all-MiniLM-L6-v2 (or the encoder of a fine-tuned adapter folder,
`--adapter`), then runs `core.leaning.place_outlets` as the `outlet_leaning` asset does: a logistic-regression
probe validated outlet-disjoint (GroupKFold by outlet), once per `--c` value, and the principal-axes path with the
ratings hidden (its axis-1 Spearman with the ratings says whether an unsupervised axis is left-right).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/leaning_probe.py --per-outlet 60 --c 0.1,1,10
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

DEFAULT_MODEL = "packaged:all-MiniLM-L6-v2"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/article_bias_prediction/"
                        "abp_articles_text_sample_cap300_per_source.parquet")
    parser.add_argument("--per-outlet", type=int, default=60, help="articles kept per outlet (seeded sample)")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--c", default="0.1,1,10", help="comma-separated probe C values")
    parser.add_argument("--adapter", help="a sentiment_adapter folder: embed with its fine-tuned encoder")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    from opensentiment_pipeline.core import embeddings, leaning, modeling, sources
    from opensentiment_pipeline.defs.assets.analysis import article_texts

    articles = sources.read_source(sources.SourceSpec(name="abp", format="article_bias_prediction",
                                                      path=args.data)).articles
    articles = pd.concat([group.sample(n=min(len(group), args.per_outlet), random_state=args.seed)
                          for _, group in articles.groupby("outlet")], ignore_index=True)
    if args.adapter:
        _, tokenizer, model = modeling.load_adapter(args.adapter, device=embeddings.resolve_device("cpu"))
        encoder, encoder_name = modeling.encoder_of(model), f"adapter {args.adapter}"
    else:
        tokenizer, encoder = modeling.load_tokenizer(DEFAULT_MODEL), modeling.load_encoder(DEFAULT_MODEL, num_layers=None)
        encoder_name = f"{DEFAULT_MODEL} (no fine-tuning)"
    start = time.perf_counter()
    vectors = embeddings.encode_texts(encoder, tokenizer, article_texts(articles, include_title=True), batch_size=32,
                                      max_length=args.max_length, device="cpu", show_progress=True)
    embed_seconds = time.perf_counter() - start
    frame = articles[["outlet", "leaning"]]
    rows = []
    for c in [float(v) for v in args.c.split(",")]:
        result = leaning.place_outlets(frame, vectors, reference=None, n_folds=5, regularization=c, n_axes=3,
                                       min_articles=5, n_bootstrap=200, seed=args.seed)
        rows.append({"probe": f"C={c:g}", "outlet_cv_macro_f1": result.metrics["outlet_cv_macro_f1"],
                     "outlet_cv_spearman": result.metrics["outlet_cv_spearman"]})
    unsupervised = leaning.place_outlets(frame.assign(leaning=None), vectors, reference=None, n_folds=5,
                                         regularization=1.0, n_axes=3, min_articles=5, n_bootstrap=200, seed=args.seed)
    rated = frame.groupby("outlet")["leaning"].agg(lambda s: s.dropna().mode().iat[0] if s.notna().any() else None)
    axis = unsupervised.outlets.assign(reference=lambda t: t["outlet"].map(rated)).dropna(subset=["reference"])
    axis = axis[axis["n_articles"] >= 5]
    rho = spearmanr(axis["score"], axis["reference"].map(leaning.LEANING_SCORE)).statistic

    print(f"# leaning_probe {dt.date.today()} | {platform.machine()}, {os.cpu_count()} CPUs | "
          f"python {sys.version.split()[0]}")
    print(f"{len(articles):,} articles, {articles['outlet'].nunique()} outlets (at most {args.per_outlet} each), "
          f"{encoder_name}, title + body cut to {args.max_length} tokens; embedding took {embed_seconds:.0f} s")
    print(pd.DataFrame(rows).round(3).to_markdown(index=False))
    print(f"\nprincipal axis 1 without ratings: Spearman {rho:.2f} with the ratings over {len(axis)} outlets "
          f"with >= 5 articles (sign arbitrary: |rho| is what counts)")
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    sys.exit(main())
