"""Sentiment where people read it: whole articles, headlines and targets, on data no training run reads.

One run, one adapter (`--adapter`, a folder saved by `train_adapter`), every figure read once:

1. Validation (choosing): the neutral band of the sentence aggregation, on the `val` rows of `--examples`
   (the `sentiment_examples` asset: NewsMTSC + Financial PhraseBank), each sentence scored without its target,
   as article sentences are.
2. BASIL articles (`author_feeling_main_event`, 300 articles): macro-F1 of the head on the average of up to eight
   256-token windows (the `article_embeddings` default before sentences), of the sentence aggregation with the
   validation band, of the head on the token-weighted mean of the sentence vectors, of the majority class, and
   of TF-IDF + logistic regression trained on the `train` sentences of `--examples`. The same run times the
   adapter pass over windows against the sentence pass (splitting included) on these articles.
3. GoodNewsEveryone (4,999 headlines): polarity from the dominant emotion (joy, love, pride, trust, positive
   anticipation and positive surprise positive; the other nine negative). Positive-vs-negative macro-F1 over the
   headlines the model does not call neutral, and the share it calls neutral.
4. BASIL bias spans (1,726): the sentence holding each span (the title for sentence_idx -1) scored with the
   (target, sentence) pair input and with the sentence alone; the target is BASIL's entity name with spaces
   ("Barack_Obama" -> "Barack Obama"). The gold is binary, so the prediction is the larger of p(negative) and
   p(positive); the share whose 3-way argmax is neutral is reported beside it.

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/article_sentiment_quality.py --adapter ADAPTER_DIR \
        --examples .opensentiment/assets/sentiment_examples.parquet --data ../shared/data --out RESULTS_DIR
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.analysis import article_sentiment
from opensentiment_pipeline.core.model import evaluation, modeling, training
from opensentiment_pipeline.core.vectors import encoding, sentences

logger = logging.getLogger("article_sentiment_quality")
LABELS3 = ["negative", "neutral", "positive"]
BASIL_LABELS = {"neg": "negative", "neu": "neutral", "pos": "positive"}
GNE_POSITIVE = {"joy", "love_including_like", "pride", "trust", "positive_anticipation_including_optimism",
                "positive_surprise"}
BAND_GRID = np.round(np.arange(0.0, 0.951, 0.025), 3)
WINDOWS = {"max_length": 256, "max_chunks": 8}  # ArticleEmbeddingsConfig's defaults
MAX_SENTENCES = 64


def scores(y_true, y_pred, labels, seed=0) -> dict:
    result = evaluation.classification_scores(y_true, y_pred, labels=labels)
    low, high = evaluation.bootstrap_macro_f1(y_true, y_pred, labels=labels, n_resamples=1000, seed=seed)
    return {"macro_f1": round(result["macro_f1"], 4), "ci95": [round(low, 4), round(high, 4)], "n": result["n"],
            "per_class_f1": {k: round(v["f1"], 4) for k, v in result["per_class"].items()},
            "predicted": pd.Series(list(y_pred)).value_counts().to_dict()}


def choose_band(model, tokenizer, manifest, examples: pd.DataFrame, batch_size: int) -> dict:
    val = _head(examples[examples["split"] == "val"])
    proba = training.predict_proba(model, tokenizer, val[["text"]], manifest=manifest, batch_size=batch_size)
    band, f1 = article_sentiment.choose_neutral_band(proba, val["label"].tolist(), labels=manifest.labels,
                                                     grid=BAND_GRID)
    return {"neutral_band": band, "val_macro_f1_at_band": round(f1, 4), "val_rows": len(val)}


LIMIT: int | None = None  # --limit


def _head(frame: pd.DataFrame) -> pd.DataFrame:
    return frame if LIMIT is None else frame.head(LIMIT)


def basil_articles(model, tokenizer, manifest, data: Path, examples: pd.DataFrame, band: float,
                   batch_size: int) -> dict:
    articles = _head(pd.read_parquet(data / "basil" / "basil_articles.parquet"))
    texts = [f"{t}. {x}" if isinstance(t, str) and t.strip() else x for t, x in zip(articles["title"], articles["text"])]
    gold = articles["author_feeling_main_event"].map(BASIL_LABELS).tolist()
    ids = articles["article_id"].tolist()

    started = time.perf_counter()
    _, window_proba = encoding.embed_and_predict(model, tokenizer, texts, labels=manifest.labels,
                                                 batch_size=batch_size, device="cpu", **WINDOWS)
    window_seconds = time.perf_counter() - started
    started = time.perf_counter()
    scored = sentences.score_sentences(model, tokenizer, texts, ids, labels=manifest.labels,
                                       max_sentences=MAX_SENTENCES, max_length=manifest.max_length,
                                       batch_size=batch_size, device="cpu")
    sentence_seconds = time.perf_counter() - started

    by_article = article_sentiment.aggregate_sentences(scored.sentences, neutral_band=band).set_index("article_id")
    aggregated = by_article.loc[ids, "sentiment"].tolist()
    window = [manifest.labels[k] for k in window_proba.argmax(1)]
    # The head on the token-weighted mean of the sentence vectors: the vector article_embeddings now stores.
    position = np.searchsorted(np.unique(scored.text_idx), scored.text_idx)
    mean_vectors = encoding.combine_chunks(scored.pooled, position, scored.sentences["n_tokens"].to_numpy(),
                                           n_texts=len(texts), normalize=False)
    import torch

    with torch.inference_mode():
        logits = modeling.classifier_head(model)(torch.from_numpy(mean_vectors))
    sentence_mean_head = [manifest.labels[k] for k in logits.argmax(1).tolist()]
    train = _head(examples[examples["split"] == "train"])
    tfidf = evaluation.tfidf_baseline(train["text"].tolist(), train["label"].tolist(), texts, seed=0)
    majority = pd.Series(gold).value_counts().idxmax()
    return {
        "n_articles": len(texts),
        "gold": pd.Series(gold).value_counts().to_dict(),
        "window_average_head": scores(gold, window, LABELS3),
        "sentence_aggregation": scores(gold, aggregated, LABELS3),
        "head_on_sentence_mean_vector": scores(gold, sentence_mean_head, LABELS3),
        "majority_class": {**scores(gold, [majority] * len(gold), LABELS3), "label": majority},
        "tfidf_lr_on_sentences": scores(gold, tfidf, LABELS3),
        "cost": {
            "window_pass_seconds": round(window_seconds, 2),
            "sentence_pass_seconds": round(sentence_seconds, 2),
            "window_ms_per_article": round(1000 * window_seconds / len(texts), 1),
            "sentence_ms_per_article": round(1000 * sentence_seconds / len(texts), 1),
            "sentences_per_article": round(len(scored.sentences) / len(texts), 2),
            "basil_gold_sentences_per_article": round(float(articles["n_sentences"].mean()), 2),
        },
    }


def embedding_cost(model, tokenizer, manifest, data: Path, batch_size: int) -> dict:
    """Wall and CPU seconds of the adapter pass over windows and of the sentence pass (splitting included) on the
    BASIL article texts (no labels read). CPU time of this single-threaded process is what the comparison
    rests on: on a shared machine the wall time of two passes run minutes apart depends on the other jobs."""
    articles = _head(pd.read_parquet(data / "basil" / "basil_articles.parquet", columns=["title", "text"]))
    texts = [f"{t}. {x}" if isinstance(t, str) and t.strip() else x for t, x in zip(articles["title"], articles["text"])]
    ids = [str(i) for i in range(len(texts))]
    out: dict = {"n_articles": len(texts)}
    passes = {
        "windows": lambda: encoding.embed_and_predict(model, tokenizer, texts, labels=manifest.labels,
                                                      batch_size=batch_size, device="cpu", **WINDOWS),
        "sentences": lambda: sentences.score_sentences(model, tokenizer, texts, ids, labels=manifest.labels,
                                                       max_sentences=MAX_SENTENCES, max_length=manifest.max_length,
                                                       batch_size=batch_size, device="cpu"),
    }
    for name in ("sentences", "windows"):  # the reverse of the articles stage's order
        wall, cpu = time.perf_counter(), time.process_time()
        passes[name]()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        out[name] = {"wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
                     "cpu_ms_per_article": round(1000 * cpu / len(texts), 1)}
    out["windows_over_sentences_cpu"] = round(out["windows"]["cpu_seconds"] / out["sentences"]["cpu_seconds"], 2)
    return out


def gne_headlines(model, tokenizer, manifest, data: Path, batch_size: int) -> dict:
    gne = _head(pd.read_csv(data / "goodnewseveryone" / "gne-release-v1.0.tsv", sep="\t"))
    gold = np.where(gne["dominant_emotion"].isin(GNE_POSITIVE), "positive", "negative")
    proba = training.predict_proba(model, tokenizer, pd.DataFrame({"text": gne["headline"].astype(str)}),
                                   manifest=manifest, batch_size=batch_size)
    pred = np.array([manifest.labels[k] for k in proba.argmax(1)])
    called = pred != "neutral"
    return {"n_headlines": len(gne), "gold": pd.Series(gold).value_counts().to_dict(),
            "neutral_share": round(float(1 - called.mean()), 4),
            "pos_vs_neg_on_non_neutral": scores(gold[called].tolist(), pred[called].tolist(), ["negative", "positive"])}


def basil_spans(model, tokenizer, manifest, data: Path, batch_size: int) -> dict:
    spans = _head(pd.read_parquet(data / "basil" / "basil_bias_spans.parquet"))
    sents = pd.read_parquet(data / "basil" / "basil_sentences.parquet")
    titles = pd.read_parquet(data / "basil" / "basil_articles.parquet").set_index("article_id")["title"]
    lookup = sents.set_index(["article_id", "sentence_idx"])["sentence"]
    text = [titles[a] if i == -1 else lookup[(a, i)] for a, i in zip(spans["article_id"], spans["sentence_idx"])]
    target = spans["target"].fillna("").str.replace("_", " ").str.strip()
    gold = spans["polarity"].map(BASIL_LABELS).tolist()
    out = {"n_spans": len(spans), "gold": pd.Series(gold).value_counts().to_dict(),
           "spans_without_target": int((target == "").sum())}
    neg, pos = manifest.labels.index("negative"), manifest.labels.index("positive")
    for name, frame in (("with_target", pd.DataFrame({"text": text, "target": target.where(target != "", None)})),
                        ("sentence_only", pd.DataFrame({"text": text}))):
        proba = training.predict_proba(model, tokenizer, frame, manifest=manifest, batch_size=batch_size)
        pred = np.where(proba[:, pos] > proba[:, neg], "positive", "negative").tolist()
        out[name] = {**scores(gold, pred, ["negative", "positive"]),
                     "neutral_argmax_share": round(float((proba.argmax(1) == manifest.labels.index("neutral")).mean()), 4)}
    majority = pd.Series(gold).value_counts().idxmax()
    out["majority_class"] = {**scores(gold, [majority] * len(gold), ["negative", "positive"]), "label": majority}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", type=Path, required=True, help="adapter folder saved by train_adapter")
    parser.add_argument("--examples", type=Path, required=True, help="sentiment_examples Parquet (train/val rows)")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data folder")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, required=True, help="folder for one JSON file per stage")
    parser.add_argument("--stages", default="validation,articles,cost,gne,spans",
                        help="comma-separated stages to run; separate processes may run different stages side by "
                             "side into one --out (articles reads the band from validation.json there)")
    parser.add_argument("--limit", type=int, help="smoke test: only the first N rows of each data set")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    global LIMIT
    LIMIT = args.limit
    torch.set_num_threads(args.threads)
    manifest, tokenizer, model = modeling.load_adapter(args.adapter)
    if not manifest.pair_input:
        raise SystemExit(f"{args.adapter} was trained without (target, sentence) pairs; the span measurement needs one")
    examples = pd.read_parquet(args.examples)
    args.out.mkdir(parents=True, exist_ok=True)
    for stage in args.stages.split(","):
        started = time.perf_counter()
        if stage == "validation":
            result = choose_band(model, tokenizer, manifest, examples, args.batch_size)
        elif stage == "articles":
            band_file = args.out / "validation.json"
            if not band_file.exists():
                raise SystemExit(f"{band_file} is missing: run --stages validation first (the band is chosen there)")
            band = json.loads(band_file.read_text())["neutral_band"]
            result = basil_articles(model, tokenizer, manifest, args.data, examples, band, args.batch_size)
        elif stage == "cost":
            result = embedding_cost(model, tokenizer, manifest, args.data, args.batch_size)
        elif stage == "gne":
            result = gne_headlines(model, tokenizer, manifest, args.data, args.batch_size)
        elif stage == "spans":
            result = basil_spans(model, tokenizer, manifest, args.data, args.batch_size)
        else:
            raise SystemExit(f"unknown stage {stage!r}; expected validation, articles, cost, gne or spans")
        result = {**result, "adapter": str(args.adapter), "adapter_max_length": manifest.max_length,
                  "threads": args.threads, "limit": args.limit,
                  "stage_wall_seconds": round(time.perf_counter() - started, 1)}
        text = json.dumps(result, indent=2, default=str)
        print(text)
        (args.out / f"{stage}.json").write_text(text)


if __name__ == "__main__":
    main()
