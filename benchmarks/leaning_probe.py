"""The bias axis on Article-Bias-Prediction, held-out outlets: the asset's default axis over seeds, its parts,
and the TF-IDF bar it is measured against.

Reads the ABP text sample with the pipeline's own reader (format article_bias_prediction: outlet = `source`,
leaning = AllSides `bias_text`), keeps at most `--per-outlet` articles per outlet (seeded), and prepares the
articles exactly as the pipeline does: the vectors read the raw "title. text" that `article_embeddings` embeds
(`--chunks 1`: title and lead; 8: up to 8 windows of 256 tokens, the asset's default, ~50 min per pass on a
2-core CPU), through `core.vectors.encoding.encode_texts` (cached in `--cache-dir`); the TF-IDF probe reads
`leaning.axis_texts` (boilerplate stripped), as the asset does. Every setting comes from `OutletLeaningConfig`,
the asset's config, so the figures are the asset's.

Rows, all on the same 5 outlet-disjoint folds (GroupKFold by outlet):
- the asset's default axis (0.5 x words + 0.25 x vectors + 0.25 x topic-free vectors), once per `--seeds`
  value: the seed moves the topic k-means (fitted inside each training fold) and the bootstrap, so the rows
  show how much the figure moves with it;
- its parts: the vectors + topic-free vectors without words, words + vectors without the topic-free view, the
  vectors alone, and the TF-IDF probe alone (no seed);
- rating-free principal axes (ratings hidden; each axis's Spearman with the ratings reported, none chosen by it).

    PYTHONPATH=. HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/leaning_probe.py \\
        --per-outlet 60 --chunks 1 --seeds 0,1,2,3,4
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import platform
import sys
import time

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np
import pandas as pd

logger = logging.getLogger("leaning_probe")
METRIC_KEYS = ("outlet_cv_spearman", "outlet_cv_macro_f1", "outlet_label_macro_f1", "embedding_outlet_cv_spearman",
               "topic_free_outlet_cv_spearman", "tfidf_outlet_cv_spearman", "tfidf_outlet_cv_macro_f1")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/article_bias_prediction/"
                        "abp_articles_text_sample_cap300_per_source.parquet")
    parser.add_argument("--per-outlet", type=int, default=60, help="articles kept per outlet (seeded sample)")
    parser.add_argument("--chunks", type=int, default=1, help="windows of 256 tokens per article: 1 = title and "
                        "lead, 8 = the asset's default (the whole of most articles)")
    parser.add_argument("--titles-only", action="store_true", help="the vectors and the words read the titles "
                        "alone (as headline-only sources give them)")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds of the default axis")
    parser.add_argument("--no-parts", action="store_true", help="only the default axis and the TF-IDF probe")
    parser.add_argument("--adversary", default="", help="comma-separated outlet-adversary weights of a trained "
                        "leaning projection of the vectors (leaning_training.train_leaning_projection; 0 = none)")
    parser.add_argument("--lora-epochs", type=int, default=0, help="also fine-tune a LoRA leaning adapter per fold "
                        "(leaning_training.lora_held_out_proba) for this many epochs; 0 = off")
    parser.add_argument("--lora-adversary", type=float, default=0.0, help="outlet-adversary weight inside the LoRA "
                        "training (gradient reversal on the pooled vector); 0 = plain train_adapter")
    parser.add_argument("--lora-max-length", type=int, default=128, help="tokens of title + body the adapter reads")
    parser.add_argument("--lora-per-outlet", type=int, default=20, help="articles per outlet for the LoRA adapter")
    parser.add_argument("--device", default="cpu", help="device of the LoRA training")
    parser.add_argument("--cache-dir", default="/work/cache/leaning")
    parser.add_argument("--sample-seed", type=int, default=0, help="seed of the per-outlet sample")
    return parser.parse_args()


def load_articles(path: str, *, per_outlet: int, seed: int) -> pd.DataFrame:
    """The ABP sample through the pipeline's reader, capped at `per_outlet` articles per outlet."""
    from opensentiment_pipeline.core.ingest import sources

    articles = sources.read_source(sources.SourceSpec(name="abp", format="article_bias_prediction",
                                                      path=path)).articles
    # sample(n) draws a seeded permutation prefix, so a smaller per_outlet is a subset of a larger one.
    return pd.concat([group.sample(n=min(len(group), per_outlet), random_state=seed)
                      for _, group in articles.groupby("outlet")], ignore_index=True)


def prepared(articles: pd.DataFrame, *, chunks: int, titles_only: bool, cache_dir: str
             ) -> tuple[np.ndarray, list[str]]:
    """(vectors, TF-IDF texts) as the pipeline makes them: vectors of what `article_embeddings` embeds, texts of
    `leaning.axis_texts` with the asset's boilerplate settings."""
    import leaning_vectors  # benchmarks/leaning_vectors.py, next to this script

    from opensentiment_pipeline.core.analysis import leaning
    from opensentiment_pipeline.defs.assets.leaning import OutletLeaningConfig
    from opensentiment_pipeline.defs.assets.vectors import article_texts

    config = OutletLeaningConfig()
    if titles_only:
        titles = articles["title"].fillna("").astype(str).str.strip().tolist()
        return leaning_vectors.cached_vectors(titles, cache_dir=cache_dir, max_length=64), titles
    vectors = leaning_vectors.cached_vectors(article_texts(articles, include_title=True), cache_dir=cache_dir,
                                             max_length=256, max_chunks=chunks, save_every=512)
    texts = leaning.axis_texts(articles, strip_min_share=config.strip_min_share,
                               strip_min_count=config.strip_min_count)
    return vectors, texts


def axis_rows(frame: pd.DataFrame, vectors: np.ndarray, texts: list[str], *, seeds: list[int], parts: bool
              ) -> list[dict]:
    """The default axis per seed, then its parts (seed of the first row)."""
    from opensentiment_pipeline.core.analysis import leaning
    from opensentiment_pipeline.defs.assets.leaning import OutletLeaningConfig

    default = OutletLeaningConfig().place_settings()
    variants = [(f"default axis, seed {s}", {"seed": s}) for s in seeds]
    if parts:
        variants += [("vectors + topic-free vectors (lexical_weight 0)", {"lexical_weight": 0.0}),
                     ("words + vectors (topic_free_share 0)", {"topic_free_share": 0.0}),
                     ("vectors alone (lexical_weight 0, topic_free_share 0)",
                      {"lexical_weight": 0.0, "topic_free_share": 0.0})]
    rows = []
    for name, change in variants:
        start = time.perf_counter()
        settings = {**default, "seed": seeds[0], **change}
        result = leaning.place_outlets(frame, vectors, reference=None, **settings, texts=texts, covariates=None)
        rows.append({"axis": name, **{k: result.metrics.get(k, np.nan) for k in METRIC_KEYS},
                     "warnings": len(result.warnings), "seconds": time.perf_counter() - start})
        logger.info("%s", rows[-1])
    return rows


def unsupervised_rows(frame: pd.DataFrame, vectors: np.ndarray, texts: list[str], *, seed: int) -> list[dict]:
    """Principal axes with the ratings hidden (the asset's no-rating path, its settings), after removing
    nothing / topics / topics + format; each axis's Spearman with the ratings is reported, none is chosen by it."""
    from scipy.stats import spearmanr

    from opensentiment_pipeline.core.analysis import leaning
    from opensentiment_pipeline.defs.assets.leaning import OutletLeaningConfig

    settings = {**OutletLeaningConfig().place_settings(), "seed": seed}
    rated = frame.groupby("outlet")["leaning"].agg(lambda s: s.dropna().map(leaning.LEANING_SCORE).mean())
    counts = frame["outlet"].value_counts()
    rows = []
    for variant, k, cov in (("none removed", 0, None), ("topics removed", settings["topic_clusters"], None),
                            ("topics + format removed (the asset's)", settings["topic_clusters"],
                             leaning.format_features(texts))):
        result = leaning.place_outlets(frame.assign(leaning=None), vectors, reference=None,
                                       **{**settings, "topic_clusters": k}, texts=texts, covariates=cov)
        positions = result.positions[counts.reindex(result.positions.index) >= settings["min_articles"]]
        kept = positions.join(rated.rename("reference")).dropna()
        rows.append({"removed": variant, **{f"spearman_{a}": spearmanr(kept[a], kept["reference"]).statistic
                                            for a in positions.columns}})
        logger.info("%s", rows[-1])
    return rows


PROJECTION = dict(hidden=128, epochs=30, learning_rate=1e-3, weight_decay=1e-2, dropout=0.1, batch_size=64)


def trained_rows(frame: pd.DataFrame, vectors: np.ndarray, articles: pd.DataFrame, args: argparse.Namespace
                 ) -> list[dict]:
    """Trained alternatives to the probe, on the same folds (`leaning_training.py`): a leaning projection of the
    vectors with an outlet adversary (`--adversary`), and a LoRA leaning adapter per fold (`--lora-epochs`)."""
    import leaning_training  # benchmarks/leaning_training.py, next to this script

    from opensentiment_pipeline.core.analysis import leaning
    from opensentiment_pipeline.defs.assets.leaning import OutletLeaningConfig
    from opensentiment_pipeline.defs.assets.model import SentimentAdapterConfig
    from opensentiment_pipeline.defs.assets.vectors import article_texts

    config = OutletLeaningConfig()
    rows = []

    def scored(name: str, proba: np.ndarray, y: np.ndarray, groups: np.ndarray, start: float, **extra) -> dict:
        metrics = leaning.cv_metrics(groups, y, proba, min_articles=config.min_articles)
        row = {"axis": name, "outlet_cv_spearman": metrics["outlet_cv_spearman"],
               "outlet_cv_macro_f1": metrics["outlet_cv_macro_f1"], **extra, "seconds": time.perf_counter() - start}
        logger.info("%s", row)
        return row

    labels = leaning.article_labels(frame, None)
    outlets = frame["outlet"].astype(str).to_numpy()
    rated, folds = leaning.rated_folds(outlets, labels, config.n_folds)
    x, y, groups = vectors[rated], labels[rated].to_numpy(), outlets[rated]
    for weight in [float(w) for w in args.adversary.split(",") if w]:
        start, proba, accuracy = time.perf_counter(), np.zeros((len(y), 3)), []
        for train, test in folds:
            fitted = leaning_training.train_leaning_projection(x[train], y[train], groups[train], **PROJECTION,
                                                               adversary_weight=weight, seed=args.seeds[0])
            proba[test] = fitted.predict_proba(x[test])
            accuracy.append(fitted.final_outlet_accuracy)
        rows.append(scored(f"trained projection, outlet adversary weight {weight:g}", proba, y, groups, start,
                           adversary_outlet_accuracy=float(np.mean(accuracy))))
    if args.lora_epochs:
        subset = articles.groupby("outlet").head(args.lora_per_outlet).reset_index(drop=True)
        sub_labels = leaning.article_labels(subset[["outlet", "leaning"]], None)
        sub_outlets = subset["outlet"].astype(str).to_numpy()
        sub_rated, sub_folds = leaning.rated_folds(sub_outlets, sub_labels, config.n_folds)
        settings = SentimentAdapterConfig().model_dump()
        settings.update(epochs=args.lora_epochs, max_length=args.lora_max_length, device=args.device, patience=1)
        settings.pop("seed")
        start = time.perf_counter()
        texts = np.asarray(article_texts(subset, include_title=True), dtype=object)[sub_rated]
        proba, history = leaning_training.lora_held_out_proba(
            texts, sub_labels[sub_rated].to_numpy(), sub_outlets[sub_rated], sub_folds, settings=settings,
            seed=args.seeds[0], adversary_weight=args.lora_adversary)
        print(pd.DataFrame(history).round(3).to_markdown(index=False))
        rows.append(scored(f"LoRA leaning adapter, {len(texts):,} articles, adversary {args.lora_adversary:g}",
                           proba, sub_labels[sub_rated].to_numpy(), sub_outlets[sub_rated], start))
    return rows


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    started = time.perf_counter()
    articles = load_articles(args.data, per_outlet=args.per_outlet, seed=args.sample_seed)
    vectors, texts = prepared(articles, chunks=args.chunks, titles_only=args.titles_only, cache_dir=args.cache_dir)
    frame = articles[["outlet", "leaning"]]
    seeds = args.seeds = [int(v) for v in args.seeds.split(",") if v]
    rows = axis_rows(frame, vectors, texts, seeds=seeds, parts=not args.no_parts)
    rows += trained_rows(frame, vectors, articles, args)
    table = pd.DataFrame(rows)
    spread = table[table["axis"].str.startswith("default")]
    read = "titles only" if args.titles_only else ("title + lead" if args.chunks == 1 else f"<= {args.chunks} windows")
    print(f"# leaning_probe {dt.date.today()} | {platform.machine()}, {os.cpu_count()} CPUs | "
          f"python {sys.version.split()[0]}")
    print(f"{len(articles):,} articles, {articles['outlet'].nunique()} outlets (at most {args.per_outlet} each); "
          f"vectors read {read}")
    print(table.round(3).to_markdown(index=False))
    tfidf = table["tfidf_outlet_cv_spearman"].iloc[0], table["tfidf_outlet_cv_macro_f1"].iloc[0]
    for key, bar in (("outlet_cv_spearman", tfidf[0]), ("outlet_cv_macro_f1", tfidf[1])):
        low, high = spread[key].min(), spread[key].max()
        verdict = "above" if low > bar else ("below" if high < bar else "within")
        print(f"default axis {key}: mean {spread[key].mean():.3f}, range {low:.3f}-{high:.3f} over seeds "
              f"{seeds}; TF-IDF alone {bar:.3f}: the whole range is {verdict} it")
    if not args.no_parts:
        print("\nRating-free principal axes (ratings hidden; sign arbitrary, |rho| counts):")
        print(pd.DataFrame(unsupervised_rows(frame, vectors, texts, seed=seeds[0])).round(3).to_markdown(index=False))
    print(f"\nwall time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
