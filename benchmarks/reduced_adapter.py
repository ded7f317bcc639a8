"""A reduced sentiment adapter for measurements when the full `make shared-data-full` adapter is not at hand.

The shipped `configs/shared_data_full.yaml` settings (MiniLM, LoRA r 16 on the auto modules, max_length 96,
batch 32, lr 1e-3), trained for 2 epochs on a seeded sample of its training rows: 2,400 NewsMTSC pairs and 1,200
Financial PhraseBank sentences, early-stopped on 300 + 150 of its validation rows. `article_sentiment_quality.py`
reads its figures with this adapter (benchmarks/RESULTS.md, "Sentiment in articles, toward entities, over time").

    PYTHONPATH=. HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reduced_adapter.py \
        --examples .opensentiment/assets/sentiment_examples.parquet --out ADAPTER_DIR
"""

from __future__ import annotations

import argparse
import logging

import pandas as pd
import torch

from opensentiment_pipeline.core.model import training

# (source, split) -> rows sampled with random_state 0
SAMPLE = {("newsmtsc", "train"): 2400, ("fpb", "train"): 1200, ("newsmtsc", "val"): 300, ("fpb", "val"): 150}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", required=True, help="the sentiment_examples asset of make shared-data-full")
    parser.add_argument("--out", required=True, help="folder for the adapter")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(1)
    examples = pd.read_parquet(args.examples)
    parts = []
    for (source, split), n in SAMPLE.items():
        part = examples[(examples["source"] == source) & (examples["split"] == split)]
        if part.empty:
            raise ValueError(f"{args.examples} has no {source} rows in split {split!r}; pass the sentiment_examples of "
                             "make shared-data-full (NewsMTSC + Financial PhraseBank)")
        parts.append(part.sample(n=min(n, len(part)), random_state=0))
    result = training.train_adapter(
        pd.concat(parts, ignore_index=True), base_model="packaged:all-MiniLM-L6-v2", out_dir=args.out,
        num_layers=None, lora_r=16, lora_alpha=32, lora_dropout=0.0, target_modules=["auto"], max_length=96,
        learning_rate=1e-3, weight_decay=0.01, warmup_ratio=0.06, epochs=2, batch_size=32, grad_accum=1, patience=3,
        seed=13, device="cpu", precision="auto", progress=True)
    print(f"val macro-F1 {result.best_val_macro_f1:.3f} (epoch {result.best_epoch}), {result.train_seconds:.0f} s")


if __name__ == "__main__":
    main()
