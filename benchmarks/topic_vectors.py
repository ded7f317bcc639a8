"""Do the vectors that search, the outlet map and the leaning axis read keep source topics?

Embeds a seeded sample of ABP articles (title + lead, as `article_embeddings` does, via the project's ABP reader)
with `encoding.embed_articles`: the topic vector (frozen base encoder, adapter switched off) and the sentiment vector
(adapter on) from one loaded model. Reports, for both, same-topic precision@10 (ABP `topic` labels) and the NMI
between the outlet map's HDBSCAN clusters (`cluster_outlets`, the shared_data settings) and the topics, plus the
cost of each pass. Without `--adapter` it first trains a small sentiment adapter on Financial PhraseBank's train
rows with `train_adapter` (r16 on query/key/value/dense, lr 1e-3), so the script runs from the shared data alone.

    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/topic_vectors.py --n 1500 [--adapter DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import pandas as pd

from opensentiment_pipeline.core.analysis import clustering
from opensentiment_pipeline.core.ingest import sources
from opensentiment_pipeline.core.model import modeling, training
from opensentiment_pipeline.core.vectors import encoding, topic_quality
from opensentiment_pipeline.defs.assets.vectors import article_texts

ABP = "../shared/data/article_bias_prediction/abp_articles_text_sample_cap300_per_source.parquet"
FPB = "../shared/data/financial_phrasebank/fpb_by_agreement.parquet"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1500, help="ABP articles sampled (seeded)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--adapter", help="a sentiment_adapter folder; default: train a small one on FPB")
    parser.add_argument("--train-rows", type=int, default=1500, help="FPB train rows for the small adapter")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the small adapter")
    parser.add_argument("--backend", default="onnx", choices=["torch", "onnx"])
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--min-cluster-size", type=int, default=30, help="HDBSCAN, as configs/shared_data.yaml")
    return parser.parse_args()


def small_adapter(out_dir: str, *, rows: int, epochs: int, seed: int) -> str:
    fpb = sources.read_source(sources.SourceSpec(name="fpb", format="financial_phrasebank", path=FPB,
                                                 test_size=0.2, split_seed=0)).articles
    train = fpb[fpb["split"] == "train"].sample(n=rows, random_state=seed)
    examples = train[["text", "label"]].assign(split=np.where(np.arange(rows) % 10 == 0, "val", "train"))
    result = training.train_adapter(
        examples, base_model="packaged:all-MiniLM-L6-v2", out_dir=out_dir, num_layers=None, lora_r=16, lora_alpha=32,
        lora_dropout=0.0, target_modules=["query", "key", "value", "dense"], max_length=64, learning_rate=1e-3,
        weight_decay=0.01, warmup_ratio=0.06, epochs=epochs, batch_size=32, grad_accum=1, patience=2, seed=seed,
        device="cpu", precision="auto")
    print(f"small adapter: {rows} FPB rows, {epochs} epochs, val macro-F1 {result.best_val_macro_f1:.3f}, "
          f"{result.train_seconds:.0f} s")
    return out_dir


def main() -> None:
    args = parse_args()
    abp = sources.read_source(sources.SourceSpec(name="abp", format="article_bias_prediction", path=ABP)).articles
    articles = abp[abp["topic"].notna()].sample(n=args.n, random_state=args.seed).reset_index(drop=True)
    with tempfile.TemporaryDirectory() as tmp:
        adapter = args.adapter or small_adapter(tmp, rows=args.train_rows, epochs=args.epochs, seed=args.seed)
        manifest, tokenizer, model = modeling.load_adapter(adapter)
        start = time.perf_counter()
        vectors = encoding.embed_articles(model, tokenizer, article_texts(articles, True), labels=manifest.labels,
                                        batch_size=32, max_length=args.max_length, device="cpu", max_chunks=1,
                                        backend=args.backend)
        seconds = time.perf_counter() - start
    print(f"embedded {len(articles)} articles, both vectors, backend {args.backend}: {seconds:.0f} s "
          f"({len(articles) / seconds:.1f} articles/s)")
    labels = articles["topic"].tolist()
    frame = articles.assign(sentiment=[manifest.labels[i] for i in vectors.proba.argmax(1)])
    print(f"\nchance (sum of squared topic shares): {topic_quality.topic_chance(labels):.3f}; "
          f"{articles['topic'].nunique()} topics\n")
    print("| vectors | topic P@10 | share of base | cluster-topic NMI | clusters | noise share |")
    print("|---|---|---|---|---|---|")
    base = topic_quality.topic_precision_at_k(vectors.topic, labels, k=10)
    for name, matrix in (("topic (frozen base encoder)", vectors.topic), ("sentiment (adapter)", vectors.sentiment)):
        p10 = topic_quality.topic_precision_at_k(matrix, labels, k=10)
        result = clustering.cluster_outlets(frame, matrix, n_components=2, n_neighbors=15, min_dist=0.1,
                                            metric="cosine", min_cluster_size=args.min_cluster_size, min_samples=None,
                                            top_k=8, random_state=42, projection="umap", n_outlet_groups=None,
                                            min_topic_articles=5)
        clusters = frame[["article_id"]].merge(result.points[["article_id", "cluster"]], on="article_id")
        nmi = topic_quality.cluster_topic_nmi(clusters["cluster"].to_numpy(), labels)
        print(f"| {name} | {p10:.3f} | {p10 / base:.2f} | {nmi:.3f} | {result.n_clusters} | "
              f"{result.noise_share:.2f} |")
    print(f"\npredicted sentiment: {pd.Series(frame['sentiment']).value_counts().to_dict()}")


if __name__ == "__main__":
    main()
