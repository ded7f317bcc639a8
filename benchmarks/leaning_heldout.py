"""The bias axis on outlets it has never seen: trained on Article-Bias-Prediction (AllSides ratings), it places
the GoodNewsEveryone outlets from their headlines alone, judged against Ad Fontes Media's numeric left-right
score (an independent rating).

The ABP articles (rated) and the GoodNewsEveryone headlines (unrated, outlet names prefixed "GNE " so no name
match can lend them an ABP rating) go through `place_outlets` together with the asset's settings
(`OutletLeaningConfig`): every GNE outlet is scored by the probes fitted on all ABP outlets, as an unrated
outlet is in the asset. Three axes: the asset's default blend, the vectors alone (lexical_weight 0) and the
TF-IDF probe alone (lexical_weight 1). `--abp-input titles` (chosen in advance as the primary setting: the
same kind of input as the headlines) trains on ABP titles; `lead` on ABP title + lead (raw "title. text", first
256 tokens, at most 60 articles per outlet).

Reported: Spearman with Ad Fontes over every GNE outlet with a score, and over those absent from ABP (the
`IN_ABP` table below says which GNE outlets ABP holds under some name; it is used for this split only); the
axis's own outlet-disjoint Spearman on ABP with the same input; a 95 % bootstrap interval over outlets for each
Spearman; whether any placed outlet shares its calibrated score with another (clipped ends would); and the
rating-free principal axis (the asset's no-rating path, ratings hidden, nothing chosen by a rating) of each
corpus against its own rating.

    PYTHONPATH=. HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/leaning_heldout.py --abp-input titles
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

logger = logging.getLogger("leaning_heldout")
PREFIX = "GNE "
# GoodNewsEveryone `source` values whose outlet ABP's sample holds under some name (e.g. PoliticoPulse -> Politico,
# CNN -> "CNN - Editorial"). Only the "absent from ABP" split reads it; nothing is placed by it.
IN_ABP = frozenset({
    "BussinesInsider", "BuzzFeed", "CNN", "Economist", "FoxNews", "FreeBacon", "HotAir", "HuffPost", "Intercept",
    "Jacobin", "Marketwatch", "MotherJones", "NBC", "NPR", "NYP", "NYT", "NationalReview", "NewsBusters",
    "PoliticoPulse", "ProPublica", "RealClearPolitics", "Slate", "TheAtlantic", "TheBlaze", "TheHill",
    "TheNewYorker", "TheWeek", "ThinkProgress", "Time", "Vice", "Vox", "WP", "WT", "dailybeast", "dailykos",
    "dailymail", "dailywire", "democracynow",
})
# Scores in this copy of the GNE file whose sign is opposite to the published Ad Fontes chart (Daily Kos far
# left, Newsmax and The Daily Signal right); a sensitivity row leaves them out, the main rows keep them.
SIGN_SUSPECT = frozenset({"dailykos", "NewsMax", "dailysignal"})


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--abp", default="../shared/data/article_bias_prediction/"
                        "abp_articles_text_sample_cap300_per_source.parquet")
    parser.add_argument("--gne", default="../shared/data/goodnewseveryone/gne-release-v1.0.tsv")
    parser.add_argument("--abp-input", choices=("titles", "lead"), default="titles")
    parser.add_argument("--per-outlet", type=int, default=60, help="ABP articles per outlet with --abp-input lead")
    parser.add_argument("--n-outlet-bootstrap", type=int, default=2000, help="resamples of outlets per interval")
    parser.add_argument("--cache-dir", default="/work/cache/leaning")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def load(args: argparse.Namespace) -> tuple[pd.DataFrame, np.ndarray, list[str], pd.Series]:
    """(articles: outlet, leaning; vectors; TF-IDF texts; GNE outlet -> Ad Fontes score)."""
    import leaning_probe  # benchmarks/leaning_probe.py, next to this script
    import leaning_vectors

    from opensentiment_pipeline.core.ingest import sources

    if args.abp_input == "titles":
        abp = sources.read_source(sources.SourceSpec(name="abp", format="article_bias_prediction",
                                                     path=args.abp)).articles
    else:
        abp = leaning_probe.load_articles(args.abp, per_outlet=args.per_outlet, seed=args.seed)
    abp_vectors, abp_texts = leaning_probe.prepared(abp, chunks=1, titles_only=args.abp_input == "titles",
                                                    cache_dir=args.cache_dir)
    gne = pd.read_csv(args.gne, sep="\t")
    headlines = gne["headline"].fillna("").astype(str).str.strip().tolist()
    gne_vectors = leaning_vectors.cached_vectors(headlines, cache_dir=args.cache_dir, max_length=64)
    articles = pd.concat([abp[["outlet", "leaning"]],
                          pd.DataFrame({"outlet": PREFIX + gne["source"].astype(str), "leaning": None})],
                         ignore_index=True)
    ad_fontes = gne.groupby("source")["bias_horizontal"].first().dropna()
    return articles, np.vstack([abp_vectors, gne_vectors]), [*abp_texts, *headlines], ad_fontes


def spearman_interval(x: np.ndarray, y: np.ndarray, *, n: int, seed: int) -> tuple[float, float, float]:
    """(Spearman, 2.5 %, 97.5 %) with the interval from resampling the outlets (pairs) with replacement."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n):
        pick = rng.integers(0, len(x), len(x))
        if np.ptp(x[pick]) > 0 and np.ptp(y[pick]) > 0:
            draws.append(spearmanr(x[pick], y[pick]).statistic)
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(spearmanr(x, y).statistic), float(low), float(high)


def judged(table: pd.DataFrame, ad_fontes: pd.Series, min_articles: int, *, n: int, seed: int) -> dict:
    """Spearman (with its interval over outlets) of calibrated scores with Ad Fontes (all GNE outlets with a
    score, those absent from ABP, and without the sign-suspect scores) and with AllSides (ABP, held out)."""
    gne = table[table["outlet"].str.startswith(PREFIX)].assign(source=lambda t: t["outlet"].str[len(PREFIX):])
    gne = gne[gne["source"].isin(ad_fontes.index)].assign(ad_fontes=lambda t: t["source"].map(ad_fontes))
    abp = table[table["fitted_on"] & (table["n_articles"] >= min_articles)]
    parts = {"gne_all": gne, "gne_absent_from_abp": gne[~gne["source"].isin(IN_ABP)],
             "gne_absent_no_sign_suspect": gne[~gne["source"].isin(IN_ABP | SIGN_SUSPECT)]}
    row = {}
    for name, part in parts.items():
        rho, low, high = spearman_interval(part["score"], part["ad_fontes"], n=n, seed=seed)
        row.update({f"{name}_n": len(part), f"{name}_spearman": rho, f"{name}_low": low, f"{name}_high": high})
    reference = abp["reference_leaning"].map({"left": -1.0, "center": 0.0, "right": 1.0})
    rho, low, high = spearman_interval(abp["raw_score"], reference, n=n, seed=seed)
    row.update({"abp_n": len(abp), "abp_cv_spearman": rho, "abp_low": low, "abp_high": high})
    placed = table["score"].to_numpy()
    row["tied_scores"] = int(len(placed) - len(np.unique(placed)))
    row["at_plus_minus_one"] = int(np.sum(np.abs(placed) >= 1.0))
    return row


def rating_free_rows(articles: pd.DataFrame, vectors: np.ndarray, texts: list[str], ad_fontes: pd.Series,
                     *, n: int, seed: int) -> list[dict]:
    """The asset's no-rating path (principal axes after topics and format are removed, its settings) on each
    corpus alone, axis 1 against that corpus's rating. Nothing is chosen by a rating; the sign is arbitrary."""
    from opensentiment_pipeline.core.analysis import leaning
    from opensentiment_pipeline.defs.assets.leaning import OutletLeaningConfig

    settings = OutletLeaningConfig().place_settings()
    is_gne = articles["outlet"].str.startswith(PREFIX).to_numpy()
    rows = []
    for corpus, mask in (("ABP", ~is_gne), ("GoodNewsEveryone", is_gne)):
        part = articles[mask].reset_index(drop=True)
        part_texts = [t for t, m in zip(texts, mask) if m]
        result = leaning.place_outlets(part.assign(leaning=None), vectors[mask], reference=None, **settings,
                                       texts=part_texts, covariates=leaning.format_features(part_texts))
        counts = part["outlet"].value_counts()
        position = result.positions["axis1"][counts.reindex(result.positions.index) >= settings["min_articles"]]
        if corpus == "ABP":
            truth = part.groupby("outlet")["leaning"].agg(lambda s: s.map(leaning.LEANING_SCORE).mean())
        else:
            truth = pd.Series(ad_fontes.to_numpy(), index=PREFIX + ad_fontes.index)
        kept = pd.concat([position, truth.rename("truth")], axis=1, join="inner").dropna()
        rho, low, high = spearman_interval(kept["axis1"], kept["truth"], n=n, seed=seed)
        rows.append({"corpus": corpus, "rating": "AllSides" if corpus == "ABP" else "Ad Fontes",
                     "outlets": len(kept), "axis1_spearman": rho, "low": low, "high": high,
                     "explained_variance_axis1": result.metrics["explained_variance_ratio_axis1"]})
        logger.info("%s", rows[-1])
    return rows


def main() -> int:
    from opensentiment_pipeline.core.analysis import leaning
    from opensentiment_pipeline.defs.assets.leaning import OutletLeaningConfig

    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    started = time.perf_counter()
    articles, vectors, texts, ad_fontes = load(args)
    settings = OutletLeaningConfig().place_settings()
    rows = []
    for name, change in (("default axis (0.5 words + 0.25 vectors + 0.25 topic-free)", {}),
                         ("vectors alone + topic-free (lexical_weight 0)", {"lexical_weight": 0.0}),
                         ("TF-IDF alone (lexical_weight 1)", {"lexical_weight": 1.0})):
        start = time.perf_counter()
        result = leaning.place_outlets(articles, vectors, reference=None, **{**settings, **change}, texts=texts,
                                       covariates=None)
        rows.append({"axis": name, **judged(result.outlets, ad_fontes, settings["min_articles"],
                                            n=args.n_outlet_bootstrap, seed=args.seed),
                     "warnings": len(result.warnings), "seconds": time.perf_counter() - start})
        logger.info("%s", rows[-1])
    print(f"# leaning_heldout {dt.date.today()} | {platform.machine()}, {os.cpu_count()} CPUs | "
          f"python {sys.version.split()[0]}")
    is_gne = articles["outlet"].str.startswith(PREFIX)
    print(f"ABP: {int((~is_gne).sum()):,} articles ({args.abp_input}), {articles.loc[~is_gne, 'outlet'].nunique()} "
          f"outlets; GoodNewsEveryone: {int(is_gne.sum()):,} headlines, {articles.loc[is_gne, 'outlet'].nunique()} "
          f"outlets, {len(ad_fontes)} with an Ad Fontes score")
    table = pd.DataFrame(rows).set_index("axis").T
    print(table.round(3).to_markdown())
    print("\nRating-free axis 1 (ratings hidden; sign arbitrary):")
    print(pd.DataFrame(rating_free_rows(articles, vectors, texts, ad_fontes, n=args.n_outlet_bootstrap,
                                        seed=args.seed)).round(3).to_markdown(index=False))
    print(f"\nwall time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
