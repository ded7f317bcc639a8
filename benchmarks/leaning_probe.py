"""Objective bias axis on Article-Bias-Prediction: how well embeddings alone place outlets left-right.

Reads the ABP text sample with the pipeline's own reader (format article_bias_prediction: outlet = `source`,
leaning = AllSides `bias_text`), keeps at most `--per-outlet` articles per outlet (seeded), strips boilerplate
(`core.boilerplate`, unless `--no-strip`), and embeds title + body with a frozen encoder: the first
`--max-length` tokens (`--chunks 1`, title and lead) or up to `--chunks` windows of the body. Vectors are cached
in `--cache-dir` (one .npz per encoder + window setting, keyed by a hash of each text), so a second run with the
same texts embeds nothing.

Then, on the same 5 outlet-disjoint folds (GroupKFold by outlet), as the `outlet_leaning` asset does:
- the embedding probe (`core.leaning.place_outlets`), once per `--c` value, with calibrated scores, intervals and
  three-way labels;
- the TF-IDF + logistic-regression reference (`core.leaning.tfidf_reference`);
- with `--hybrid w`, the asset's blended axis (`place_outlets(texts=..., lexical_weight=w)`);
- unsupervised axes with the ratings hidden (`core.leaning.unsupervised_axes`), each reported with its Spearman
  against the ratings (which were not used to pick it).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/leaning_probe.py --per-outlet 60 --chunks 1,8 --c 0.1,1,10
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import logging
import os
import platform
import sys
import time
from pathlib import Path

# One thread each for BLAS and torch unless the caller says otherwise (set before numpy and torch load): the
# probes are small, and on a shared 2-core machine two threads per process spin against each other (a tiny torch
# model trained ~10x slower with two threads than with one).
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DEFAULT_MODEL = "packaged:all-MiniLM-L6-v2"
logger = logging.getLogger("leaning_probe")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/article_bias_prediction/"
                        "abp_articles_text_sample_cap300_per_source.parquet")
    parser.add_argument("--per-outlet", type=int, default=60, help="articles kept per outlet (seeded sample)")
    parser.add_argument("--encoder", default=DEFAULT_MODEL, help="model spec or local folder of a frozen encoder, "
                        "or adapter:<sentiment_adapter folder> for its fine-tuned encoder")
    parser.add_argument("--max-length", type=int, default=256, help="tokens per window")
    parser.add_argument("--chunks", default="1,8", help="comma-separated window counts: 1 = title + lead, "
                        "8 = up to 8 windows of the body (~9,000 characters)")
    parser.add_argument("--no-strip", action="store_true", help="embed the raw texts (no boilerplate stripping)")
    parser.add_argument("--c", default="0.1,1,10", help="comma-separated probe C values")
    parser.add_argument("--tfidf-c", default="1,10", help="comma-separated C values of the TF-IDF reference")
    parser.add_argument("--topic-clusters", type=int, default=20, help="k-means topics removed on the "
                        "unsupervised path")
    parser.add_argument("--adversary", default="0,1", help="comma-separated outlet-adversary weights of the "
                        "leaning projection (0 = no adversary)")
    parser.add_argument("--outlet-directions", default="0,16", help="comma-separated numbers of same-leaning "
                        "outlet directions projected out before the probe (core.leaning.outlet_identity_directions)")
    parser.add_argument("--std-c", default="", help="comma-separated C values of a probe on standardised vectors "
                        "(StandardScaler + LR; unit vectors give every feature ~0.05 spread, so plain C is strong)")
    parser.add_argument("--window-level", action="store_true", help="also a probe fitted on single windows, "
                        "its probabilities averaged over each article's windows (token-weighted); first --std-c")
    parser.add_argument("--hybrid", default="", help="comma-separated TF-IDF weights w of the asset's blended "
                        "axis (place_outlets' lexical_weight): w * the TF-IDF probabilities + (1 - w) * the "
                        "embedding probe's (standardised with the first --std-c if given, else plain with the "
                        "first --c; first --tfidf-c), per article, same folds")
    parser.add_argument("--topic-free", default="", help="comma-separated topic_free_share values s of the hybrid "
                        "rows: the embedding part is (1 - s) x the probe on the vectors + s x a probe on the "
                        "topic-free vectors (minus their --topic-clusters k-means topic centroid)")
    parser.add_argument("--topic-seeds", default="", help="comma-separated seeds of the topic k-means (and the "
                        "bootstrap) in the hybrid rows, to see how much the topic-free view moves with them; "
                        "default: --seed")
    parser.add_argument("--nested", action="store_true", help="also the nested estimate: inside each outer "
                        "training fold, inner outlet-disjoint folds choose the lexical weight (0.3, 0.5, 0.7) and "
                        "the topic-free share (0, 0.5, 1) by inner Spearman + macro-F1; the outer fold is scored "
                        "with the chosen pair (standardised probe with the first --std-c, else C 0.1; first "
                        "--tfidf-c; no outlet directions removed)")
    parser.add_argument("--by-topic", action="store_true", help="also print the asset's per-topic table "
                        "(core.leaning.leaning_by_topic, ABP's topic column, 3 articles per outlet and topic) for the "
                        "first --hybrid weight's axis")
    parser.add_argument("--lora-epochs", type=int, default=0, help="also fine-tune a LoRA leaning adapter per fold "
                        "(leaning_training.lora_held_out_proba) for this many epochs; 0 = off")
    parser.add_argument("--lora-adversary", type=float, default=0.0, help="outlet-adversary weight inside the LoRA "
                        "training (leaning_training.train_adversarial_lora: gradient reversal on the pooled "
                        "vector); 0 = plain train_adapter")
    parser.add_argument("--lora-max-length", type=int, default=128, help="tokens of title + body the adapter reads")
    parser.add_argument("--lora-per-outlet", type=int, default=0, help="articles per outlet for the LoRA adapter "
                        "(a subset of --per-outlet, for a CPU budget; 0 = all)")
    parser.add_argument("--cache-dir", default="/tmp/leaning_probe_cache")
    parser.add_argument("--embed-only", action="store_true", help="fill the cache and stop")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def load_articles(path: str, *, per_outlet: int, seed: int, strip: bool) -> pd.DataFrame:
    """The ABP sample capped at `per_outlet` articles per outlet, with `embed_text` = title + (stripped) body.

    Boilerplate is found on every article of the file (recurrence within an outlet needs many of its articles),
    before sampling, so an article's stripped text, and its cache key, do not depend on `per_outlet`.
    """
    from opensentiment_pipeline.core.analysis import leaning
    from opensentiment_pipeline.core.ingest import boilerplate, sources

    articles = sources.read_source(sources.SourceSpec(name="abp", format="article_bias_prediction",
                                                      path=path)).articles
    body = articles["text"].tolist()
    if strip:
        body = boilerplate.strip_boilerplate(body, articles["outlet"].tolist(), **leaning.STRIP_DEFAULTS)
    titles = articles["title"].fillna("").astype(str).str.strip()
    articles = articles.assign(body=body, embed_text=[f"{t}. {b}" if t else b for t, b in zip(titles, body)])
    # sample(n) draws a seeded permutation prefix, so a smaller per_outlet is a subset of a larger one.
    return pd.concat([group.sample(n=min(len(group), per_outlet), random_state=seed)
                      for _, group in articles.groupby("outlet")], ignore_index=True)


class WindowCache:
    """Per-window mean-pooled vectors of texts, cached in one .npz per encoder and window length.

    A text is cut into windows of `max_length` tokens (`core.encoding.chunk_token_ids`); window 0 is what
    `encode_texts(max_chunks=1)` reads (title + lead). Windows are embedded in passes, window 0 of every text
    first, so each pass's cost is known and an interrupted run keeps the passes it finished.
    """

    def __init__(self, cache_dir: Path, *, encoder_spec: str, max_length: int):
        key = hashlib.sha256(f"{encoder_spec}|{max_length}".encode()).hexdigest()[:16]
        self.path, self.encoder_spec, self.max_length = cache_dir / f"windows_{key}.npz", encoder_spec, max_length
        self.windows: dict[tuple[str, int], tuple[np.ndarray, int]] = {}  # (text hash, window) -> (vector, tokens)
        self.seconds: dict[int, float] = {}  # window index -> seconds spent embedding that pass (all texts)
        if self.path.exists():
            stored = np.load(self.path)
            for h, w, v, n in zip(stored["hashes"], stored["window"], stored["vectors"], stored["tokens"]):
                self.windows[(str(h), int(w))] = (v, int(n))
            self.seconds = dict(zip(stored["pass_index"].tolist(), stored["pass_seconds"].tolist()))

    def fill(self, texts: list[str], *, max_windows: int, device: str, batch_size: int = 16) -> None:
        """Embed windows 0 .. max_windows - 1 of every text that are not cached yet."""
        from opensentiment_pipeline.core.vectors import encoding

        tokenizer, load = self._loader()
        ids, owner = encoding.chunk_token_ids(tokenizer, texts, max_length=self.max_length,
                                                max_chunks=max_windows)
        hashes = [text_hash(t) for t in texts]
        position = np.zeros(len(owner), dtype=int)  # window index within its text
        for i in range(1, len(owner)):
            position[i] = position[i - 1] + 1 if owner[i] == owner[i - 1] else 0
        encoder = None
        for window in range(max_windows):
            todo = [i for i in np.flatnonzero(position == window) if (hashes[owner[i]], window) not in self.windows]
            todo = list({hashes[owner[i]]: i for i in todo}.values())  # duplicated texts once
            if not todo:
                continue
            encoder = encoder or load().to(device).eval()
            logger.info("window %d: embedding %d windows with %s", window, len(todo), self.encoder_spec)
            start = time.perf_counter()
            pooled = pool_windows(encoder, tokenizer, [ids[i] for i in todo], batch_size=batch_size, device=device)
            self.seconds[window] = self.seconds.get(window, 0.0) + time.perf_counter() - start
            for i, vector in zip(todo, pooled):
                self.windows[(hashes[owner[i]], window)] = (vector, len(ids[i]))
            self.save()

    def cost(self, texts: list[str], *, max_windows: int) -> tuple[float, float]:
        """(windows per text, embedding seconds for `texts`) at `max_windows`: each cached pass's seconds per
        window times the windows of `texts` in that pass."""
        hashes = [text_hash(t) for t in texts]
        windows, seconds = 0, 0.0
        for w in range(max_windows):
            n = sum((h, w) in self.windows for h in hashes)
            cached = sum(1 for _, window in self.windows if window == w)
            windows += n
            seconds += n * self.seconds.get(w, float("nan")) / max(cached, 1)
        return windows / len(texts), seconds

    def _loader(self):
        """The tokenizer and a loader of the encoder: a model spec, or "adapter:<folder>" for the encoder of a
        fine-tuned sentiment_adapter."""
        from opensentiment_pipeline.core.model import modeling

        if self.encoder_spec.startswith("adapter:"):
            _, tokenizer, model = modeling.load_adapter(self.encoder_spec[len("adapter:"):],
                                                        device="cpu")
            return tokenizer, lambda: modeling.encoder_of(model)
        return (modeling.load_tokenizer(self.encoder_spec),
                lambda: modeling.load_encoder(self.encoder_spec, num_layers=None))

    def vectors(self, texts: list[str], *, max_windows: int) -> np.ndarray:
        """`(len(texts), hidden)` unit vectors: the token-weighted mean of each text's first `max_windows`
        windows, as `encode_texts(max_chunks=max_windows)` computes it."""
        rows = []
        for t in texts:
            h = text_hash(t)
            parts = [self.windows[(h, w)] for w in range(max_windows) if (h, w) in self.windows]
            if not parts:
                raise KeyError(f"text {h[:12]} is not cached; run fill() first")
            weights = np.array([n for _, n in parts], dtype=float)
            rows.append(np.average(np.stack([v for v, _ in parts]), axis=0, weights=weights))
        matrix = np.stack(rows)
        return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)

    def save(self) -> None:
        keys = list(self.windows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, hashes=np.array([h for h, _ in keys]), window=np.array([w for _, w in keys]),
                 vectors=np.stack([self.windows[k][0] for k in keys]),
                 tokens=np.array([self.windows[k][1] for k in keys]),
                 pass_index=np.array(list(self.seconds), dtype=int),
                 pass_seconds=np.array(list(self.seconds.values()), dtype=float))
        tmp.replace(self.path)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def pool_windows(encoder, tokenizer, windows: list[np.ndarray], *, batch_size: int, device: str) -> np.ndarray:
    """Mean-pooled (not normalised) vectors of token-id windows, batched longest first as encode_texts does."""
    import torch

    from opensentiment_pipeline.core.model import modeling
    from opensentiment_pipeline.core.vectors import encoding

    order = encoding.length_order(windows)
    out = np.empty((len(windows), encoder.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(windows), batch_size):
            batch = order[start:start + batch_size]
            input_ids, mask = encoding.pad_batch([windows[i] for i in batch], pad_id=tokenizer.pad_token_id,
                                                   side=tokenizer.padding_side)
            hidden = encoder(input_ids=input_ids.to(device), attention_mask=mask.to(device)).last_hidden_state
            out[batch] = modeling.mean_pool(hidden.float(), mask.to(device)).cpu().numpy()
            if start // batch_size % 20 == 0:
                logger.info("  %d / %d windows", start + len(batch), len(windows))
    return out


def probe_rows(frame: pd.DataFrame, vectors: np.ndarray, *, name: str, cs: list[float], directions: list[int],
               seed: int) -> list[dict]:
    from opensentiment_pipeline.core.analysis import leaning

    rows = []
    for c in cs:
        for k in directions:
            start = time.perf_counter()
            result = leaning.place_outlets(frame, vectors, reference=None, **PLACE_SETTINGS, regularization=c,
                                           seed=seed, outlet_directions=k)
            rows.append({"vectors": name, "probe": f"LR C={c:g}" + (f", {k} outlet directions removed" if k else ""),
                         **{key: result.metrics[key] for key in METRIC_KEYS}, "probe_s": time.perf_counter() - start})
            logger.info("%s", rows[-1])
    return rows


def tfidf_rows(frame: pd.DataFrame, texts: list[str], *, cs: list[float]) -> list[dict]:
    from opensentiment_pipeline.core.analysis import leaning

    rows = []
    for c in cs:
        start = time.perf_counter()
        metrics = leaning.tfidf_reference(texts, frame, reference=None, n_folds=PLACE_SETTINGS["n_folds"],
                                          regularization=c, min_articles=PLACE_SETTINGS["min_articles"])
        rows.append({"vectors": "TF-IDF 1-2 grams, title + body", "probe": f"LR C={c:g}",
                     "outlet_cv_macro_f1": metrics["tfidf_outlet_cv_macro_f1"],
                     "outlet_cv_spearman": metrics["tfidf_outlet_cv_spearman"], "probe_s": time.perf_counter() - start})
        logger.info("%s", rows[-1])
    return rows


def unsupervised_rows(frame: pd.DataFrame, vectors: np.ndarray, texts: list[str], *, name: str, topic_clusters: int,
                      seed: int) -> list[dict]:
    """Principal axes with the ratings hidden, after removing nothing / topics / topics + format; each axis's
    Spearman with the ratings is reported, but axis 1 of the last variant is the one chosen in advance."""
    from scipy.stats import spearmanr

    from opensentiment_pipeline.core.analysis import leaning

    rated = frame.groupby("outlet")["leaning"].agg(lambda s: s.dropna().map(leaning.LEANING_SCORE).mean())
    covariates = leaning.format_features(texts)
    k = min(topic_clusters, len(texts) // leaning.ARTICLES_PER_TOPIC)  # what remove_directions will use
    rows = []
    for variant, k, cov in (("none removed", 0, None), (f"topics removed (k={k})", k, None),
                            (f"topics (k={k}) + format removed", k, covariates)):
        result = leaning.place_outlets(frame.assign(leaning=None), vectors, reference=None, **PLACE_SETTINGS,
                                       regularization=1.0, seed=seed, topic_clusters=k, covariates=cov)
        counts = frame["outlet"].value_counts()
        positions = result.positions[counts.reindex(result.positions.index) >= PLACE_SETTINGS["min_articles"]]
        row = {"vectors": name, "removed": variant}
        for axis in positions.columns:
            kept = positions.join(rated.rename("reference")).dropna()
            row[f"spearman_{axis}"] = spearmanr(kept[axis], kept["reference"]).statistic
        rows.append(row)
        logger.info("%s", row)
    return rows


def adversarial_rows(frame: pd.DataFrame, vectors: np.ndarray, *, name: str, weights: list[float],
                     seed: int) -> list[dict]:
    """The leaning projection (`leaning_training.py`) with and without the outlet adversary, on the same
    outlet-disjoint folds: trained on each fold's training outlets, scored on its held-out ones."""
    import leaning_training  # benchmarks/leaning_training.py, next to this script

    from opensentiment_pipeline.core.analysis import leaning

    labels = leaning.article_labels(frame, None)
    outlets = frame["outlet"].astype(str).to_numpy()
    rated, folds = leaning.rated_folds(outlets, labels, PLACE_SETTINGS["n_folds"])
    x, y, groups = vectors[rated], labels[rated].to_numpy(), outlets[rated]
    rows = []
    for weight in weights:
        start = time.perf_counter()
        proba, outlet_accuracy = np.zeros((len(y), 3)), []
        for train, test in folds:
            fitted = leaning_training.train_leaning_projection(x[train], y[train], groups[train], **PROJECTION,
                                                               adversary_weight=weight, seed=seed)
            proba[test] = fitted.predict_proba(x[test])
            outlet_accuracy.append(fitted.final_outlet_accuracy)
        metrics = leaning.cv_metrics(groups, y, proba, min_articles=PLACE_SETTINGS["min_articles"])
        rows.append({"vectors": name, "probe": f"projection, adversary weight {weight:g}",
                     "outlet_cv_macro_f1": metrics["outlet_cv_macro_f1"],
                     "outlet_cv_spearman": metrics["outlet_cv_spearman"],
                     "adversary_outlet_accuracy": float(np.mean(outlet_accuracy)),
                     "probe_s": time.perf_counter() - start})
        logger.info("%s", rows[-1])
    return rows


def held_out_proba(frame: pd.DataFrame, fit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(probabilities, labels, outlets) of the rated articles on place_outlets' folds: `fit(train, y)` gets a
    fold's training row numbers (among the rated rows) and returns an object whose `predict(rows)` gives the
    held-out rows' (n, 3) probabilities."""
    from opensentiment_pipeline.core.analysis import leaning

    labels = leaning.article_labels(frame, None)
    outlets = frame["outlet"].astype(str).to_numpy()
    rated, folds = leaning.rated_folds(outlets, labels, PLACE_SETTINGS["n_folds"])
    y = labels[rated].to_numpy()
    proba = np.zeros((len(y), 3))
    for train, test in folds:
        proba[test] = fit(train, y).predict(test)
    return proba, y, outlets[rated]


def metric_row(name: str, probe: str, proba: np.ndarray, y: np.ndarray, groups: np.ndarray, start: float) -> dict:
    from opensentiment_pipeline.core.analysis import leaning

    metrics = leaning.cv_metrics(groups, y, proba, min_articles=PLACE_SETTINGS["min_articles"])
    row = {"vectors": name, "probe": probe, "outlet_cv_macro_f1": metrics["outlet_cv_macro_f1"],
           "outlet_cv_spearman": metrics["outlet_cv_spearman"], "probe_s": time.perf_counter() - start}
    logger.info("%s", row)
    return row


def standardised_rows(frame: pd.DataFrame, vectors: np.ndarray, *, name: str, cs: list[float],
                      seed: int) -> list[dict]:
    """The article-level probe on standardised vectors (`place_outlets(standardize=True)`), per C."""
    from opensentiment_pipeline.core.analysis import leaning

    rows = []
    for c in cs:
        start = time.perf_counter()
        result = leaning.place_outlets(frame, vectors, reference=None, **PLACE_SETTINGS, regularization=c, seed=seed,
                                       standardize=True)
        rows.append({"vectors": name, "probe": f"StandardScaler + LR C={c:g}",
                     **{key: result.metrics[key] for key in METRIC_KEYS}, "probe_s": time.perf_counter() - start})
        logger.info("%s", rows[-1])
    return rows


def hybrid_rows(frame: pd.DataFrame, vectors: np.ndarray, texts: list[str], *, name: str, weights: list[float],
                c: float, standardize: bool, tfidf_c: float, seed: int, topics: list | None = None,
                shares: list[float] = (0.0,), topic_clusters: int = 20, topic_seeds: list[int] = ()) -> list[dict]:
    """The asset's blended axis (`place_outlets(lexical_weight=w, topic_free_share=s)`): w x the TF-IDF probe's
    probabilities + (1 - w) x the embedding probe's, per article, on the same folds; with s > 0 the embedding
    probe's part is itself (1 - s) x the probe on the vectors + s x the probe on the topic-free vectors."""
    from opensentiment_pipeline.core.analysis import leaning

    rows = []
    for w, share, topic_seed in [(w, s, t) for s in shares for w in weights for t in (topic_seeds or [seed])]:
        start = time.perf_counter()
        result = leaning.place_outlets(frame, vectors, reference=None, **PLACE_SETTINGS, regularization=c,
                                       seed=topic_seed,
                                       standardize=standardize, texts=texts, lexical_weight=w,
                                       tfidf_regularization=tfidf_c, topic_clusters=topic_clusters,
                                       topic_free_share=share)
        probe = f"{'StandardScaler + ' if standardize else ''}LR C={c:g}"
        if share:
            seed_note = f", seed {topic_seed}" if topic_seeds else ""
            probe = (f"({1 - share:g} x vectors + {share:g} x topic-free vectors (k={topic_clusters}{seed_note})), "
                     f"{probe}")
        rows.append({"vectors": f"{name} + TF-IDF", "probe": f"hybrid: {w:g} x TF-IDF (C={tfidf_c:g}) + "
                     f"{1 - w:g} x {probe}", **{key: result.metrics[key] for key in METRIC_KEYS},
                     **{key: result.metrics[key] for key in EXTRA_KEYS if key in result.metrics},
                     "probe_s": time.perf_counter() - start})
        logger.info("%s", rows[-1])
        if topics is not None and w == weights[0] and share == shares[0]:
            table = leaning.leaning_by_topic(frame["outlet"].to_numpy(), result.article_scores, topics, min_articles=3)
            print(f"\nLeaning by topic, {rows[-1]['vectors']}, {rows[-1]['probe']} ({len(table)} topics, widest "
                  f"spread first; raw held-out scores):")
            print(pd.concat([table.head(10), table.tail(3)]).drop(columns="keywords").round(3).to_markdown(index=False))
    return rows


def window_level_rows(frame: pd.DataFrame, cache: "WindowCache", texts: list[str], *, name: str, max_windows: int,
                      c: float) -> list[dict]:
    """A standardised probe fitted on single windows (each with its article's label); an article's
    probabilities are its windows', token-weighted."""
    from opensentiment_pipeline.core.analysis import leaning

    rated = leaning.article_labels(frame, None).notna().to_numpy()
    vectors, owner, tokens = [], [], []
    for row, text in enumerate(t for t, r in zip(texts, rated) if r):
        h = text_hash(text)
        for w in range(max_windows):
            if (h, w) in cache.windows:
                vector, n = cache.windows[(h, w)]
                vectors.append(vector / np.linalg.norm(vector))
                owner.append(row)
                tokens.append(n)
    windows, owner, tokens = np.stack(vectors), np.array(owner), np.array(tokens, dtype=float)
    start = time.perf_counter()

    class WindowProbe:
        def __init__(self, train: np.ndarray, y: np.ndarray):
            mask = np.isin(owner, train)
            self.model = leaning._probe_model(c, standardize=True).fit(windows[mask], y[owner[mask]])

        def predict(self, numbers: np.ndarray) -> np.ndarray:
            mask = np.isin(owner, numbers)
            weighted = pd.DataFrame(leaning._proba(self.model, windows[mask]) * tokens[mask, None])
            summed = weighted.groupby(owner[mask]).sum()
            per_article = summed.to_numpy() / pd.Series(tokens[mask]).groupby(owner[mask]).sum().to_numpy()[:, None]
            return pd.DataFrame(per_article, index=summed.index).reindex(numbers).to_numpy()

    proba, y, groups = held_out_proba(frame, WindowProbe)
    return [metric_row(name, f"window-level StandardScaler + LR C={c:g}, {len(windows):,} windows", proba, y, groups,
                       start)]


def nested_rows(frame: pd.DataFrame, vectors: np.ndarray, texts: list[str], *, name: str, weights: list[float],
                shares: list[float], c: float, tfidf_c: float, topic_clusters: int, seed: int) -> list[dict]:
    """An estimate of choosing the blend on the data itself, which no choice has seen: inside each outer training
    fold, 4 inner outlet-disjoint folds score every (lexical weight, topic-free share) pair by inner Spearman +
    macro-F1; the best pair, refitted on the whole outer training fold, scores the held-out outlets. The three
    probes are the asset's (`fit_tfidf_probe`, standardised `_probe_model`, the topic-free vectors of
    `remove_directions`), so the inner blends cost no refit."""
    from sklearn.model_selection import GroupKFold

    from opensentiment_pipeline.core.analysis import leaning

    start = time.perf_counter()
    labels = leaning.article_labels(frame, None)
    outlets = frame["outlet"].astype(str).to_numpy()
    rated, folds = leaning.rated_folds(outlets, labels, PLACE_SETTINGS["n_folds"])
    y, groups = labels[rated].to_numpy(), outlets[rated]
    documents = np.asarray(texts, dtype=object)[rated]
    views = (vectors[rated],
             leaning.remove_directions(vectors, topic_clusters=topic_clusters, covariates=None, seed=seed)[rated])

    def view_proba(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        """(3 views, len(test), 3 classes): words, vectors, topic-free vectors, fitted on `train`."""
        words = leaning._proba(leaning.fit_tfidf_probe(documents[train], y[train], tfidf_c), documents[test])
        probes = [leaning._proba(leaning._probe_model(c, standardize=True).fit(x[train], y[train]), x[test])
                  for x in views]
        return np.stack([words, *probes])

    def blend(p: np.ndarray, w: float, s: float) -> np.ndarray:
        return w * p[0] + (1 - w) * ((1 - s) * p[1] + s * p[2])

    pairs = [(w, s) for w in weights for s in shares]
    proba, chosen = np.zeros((len(y), 3)), []
    for k, (train, test) in enumerate(folds):
        inner = np.zeros((3, len(train), 3))
        for inner_train, inner_test in GroupKFold(n_splits=4).split(train, groups=groups[train]):
            inner[:, inner_test] = view_proba(train[inner_train], train[inner_test])
        scores = {}
        for w, s in pairs:
            m = leaning.cv_metrics(groups[train], y[train], blend(inner, w, s), min_articles=PLACE_SETTINGS["min_articles"])
            scores[(w, s)] = m["outlet_cv_spearman"] + m["outlet_cv_macro_f1"]
        best = max(pairs, key=lambda pair: scores[pair])
        chosen.append(best)
        proba[test] = blend(view_proba(train, test), *best)
        logger.info("nested fold %d: chose lexical weight %g, topic-free share %g (inner score %.3f)", k, *best,
                    scores[best])
    pick = "; ".join(f"{w:g}/{s:g}" for w, s in chosen)
    return [metric_row(f"{name} + TF-IDF", f"nested: weight/share chosen per outer fold from {weights} x {shares} "
                       f"(chosen: {pick})", proba, y, groups, start)]


def lora_rows(articles: pd.DataFrame, args: argparse.Namespace) -> list[dict]:
    """A LoRA leaning adapter (the sentiment adapter's recipe with leaning labels) per outlet-disjoint fold,
    scored like the probes. With --lora-per-outlet, the embedding probe is rerun on the same subset beside it."""
    import leaning_training  # benchmarks/leaning_training.py, next to this script

    from opensentiment_pipeline.core.analysis import leaning
    from opensentiment_pipeline.defs.assets.model import SentimentAdapterConfig

    subset = articles if not args.lora_per_outlet else articles.groupby("outlet").head(args.lora_per_outlet)
    frame = subset[["outlet", "leaning"]].reset_index(drop=True)
    labels = leaning.article_labels(frame, None)
    outlets = frame["outlet"].astype(str).to_numpy()
    rated, folds = leaning.rated_folds(outlets, labels, PLACE_SETTINGS["n_folds"])
    texts = subset["embed_text"].to_numpy()[rated]
    settings = SentimentAdapterConfig(base_model=args.encoder).model_dump()
    settings.update(epochs=args.lora_epochs, max_length=args.lora_max_length, device=args.device, patience=1)
    settings.pop("seed")
    start = time.perf_counter()
    proba, history = leaning_training.lora_held_out_proba(texts, labels[rated].to_numpy(), outlets[rated], folds,
                                                          settings=settings, seed=args.seed,
                                                          adversary_weight=args.lora_adversary)
    print(pd.DataFrame(history).round(3).to_markdown(index=False))
    name = f"LoRA leaning adapter ({args.encoder.split('/')[-1]}, {args.lora_max_length} tokens, {len(texts):,} articles)"
    adversary = f", outlet adversary weight {args.lora_adversary:g}" if args.lora_adversary else ""
    rows = [metric_row(name, f"its own head, {args.lora_epochs} epochs max, epoch chosen on held-out outlets{adversary}",
                       proba,
                       labels[rated].to_numpy(), outlets[rated], start)]
    if args.lora_per_outlet:
        cache = WindowCache(Path(args.cache_dir), encoder_spec=args.encoder, max_length=args.max_length)
        vectors = cache.vectors(subset["embed_text"].tolist(), max_windows=1)
        rows += probe_rows(frame, vectors, name=f"frozen, title + lead, same {len(texts):,} articles", cs=[1.0],
                           directions=[0], seed=args.seed)
    return rows


PROJECTION = dict(hidden=128, epochs=30, learning_rate=1e-3, weight_decay=1e-2, dropout=0.1, batch_size=64)
PLACE_SETTINGS = dict(n_folds=5, n_axes=3, min_articles=5, n_bootstrap=200)
NESTED_WEIGHTS, NESTED_SHARES = [0.3, 0.5, 0.7], [0.0, 0.5, 1.0]
EXTRA_KEYS = ("embedding_outlet_cv_spearman", "topic_free_outlet_cv_spearman")
METRIC_KEYS = ("outlet_cv_macro_f1", "outlet_cv_spearman", "outlet_label_macro_f1", "median_score_left",
               "median_score_center", "median_score_right")


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    articles = load_articles(args.data, per_outlet=args.per_outlet, seed=args.seed, strip=not args.no_strip)
    chunk_settings = [int(v) for v in args.chunks.split(",") if v]  # none: only the TF-IDF reference
    cache = WindowCache(Path(args.cache_dir), encoder_spec=args.encoder, max_length=args.max_length)
    texts = articles["embed_text"].tolist()
    if chunk_settings:
        cache.fill(texts, max_windows=max(chunk_settings), device=args.device)
    if args.embed_only:
        return 0
    frame = articles[["outlet", "leaning"]]
    cs = [float(v) for v in args.c.split(",")]
    std_cs = [float(v) for v in args.std_c.split(",") if v]
    hybrid_weights = [float(v) for v in args.hybrid.split(",") if v]
    tfidf_cs = [float(v) for v in args.tfidf_c.split(",") if v]
    rows, unsupervised, costs = [], [], []
    for chunks in chunk_settings:
        name = f"{args.encoder.split('/')[-1]} {'title + lead' if chunks == 1 else f'<= {chunks} windows'}"
        vectors = cache.vectors(texts, max_windows=chunks)
        per_text, seconds = cache.cost(texts, max_windows=chunks)
        costs.append({"vectors": name, "windows_per_article": per_text, "embedding_s": seconds,
                      "articles_per_s": len(texts) / seconds})
        rows += probe_rows(frame, vectors, name=name, cs=cs, seed=args.seed,
                           directions=[int(v) for v in args.outlet_directions.split(",") if v])
        if std_cs:
            rows += standardised_rows(frame, vectors, name=name, cs=std_cs, seed=args.seed)
            if args.window_level:
                rows += window_level_rows(frame, cache, texts, name=name, max_windows=chunks, c=std_cs[0])
        shares = [float(v) for v in args.topic_free.split(",") if v] or [0.0]
        if hybrid_weights and tfidf_cs:
            rows += hybrid_rows(frame, vectors, texts, name=name, weights=hybrid_weights,
                                c=std_cs[0] if std_cs else cs[0], standardize=bool(std_cs), tfidf_c=tfidf_cs[0],
                                seed=args.seed, topics=articles["topic"].tolist() if args.by_topic else None,
                                shares=shares, topic_clusters=args.topic_clusters,
                                topic_seeds=[int(v) for v in args.topic_seeds.split(",") if v])
        if args.nested and tfidf_cs:
            rows += nested_rows(frame, vectors, texts, name=name, weights=NESTED_WEIGHTS, shares=NESTED_SHARES,
                                c=std_cs[0] if std_cs else 0.1, tfidf_c=tfidf_cs[0],
                                topic_clusters=args.topic_clusters, seed=args.seed)
        rows += adversarial_rows(frame, vectors, name=name, weights=[float(w) for w in args.adversary.split(",") if w],
                                 seed=args.seed)
        unsupervised += unsupervised_rows(frame, vectors, texts, name=name, topic_clusters=args.topic_clusters,
                                          seed=args.seed)
    if args.lora_epochs:
        rows += lora_rows(articles, args)
    rows += tfidf_rows(frame, texts, cs=tfidf_cs)
    print(f"# leaning_probe {dt.date.today()} | {platform.machine()}, {os.cpu_count()} CPUs | "
          f"python {sys.version.split()[0]}")
    print(f"{len(articles):,} articles, {articles['outlet'].nunique()} outlets (at most {args.per_outlet} each), "
          f"{'raw' if args.no_strip else 'boilerplate stripped'}; windows of {args.max_length} tokens")
    if costs:
        print(pd.DataFrame(costs).round(2).to_markdown(index=False))
    print(pd.DataFrame(rows).round(3).to_markdown(index=False))
    print("\nUnsupervised axis 1 (ratings hidden; sign arbitrary, |rho| counts):" if unsupervised else "")
    if unsupervised:
        print(pd.DataFrame(unsupervised).round(3).to_markdown(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
