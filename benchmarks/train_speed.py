"""Training throughput: the project's `train_adapter` loop vs a plain peft loop, side by side, same data.

The plain loop is what a user would write from peft's examples: `AutoModelForSequenceClassification` +
`get_peft_model(LoraConfig(task_type="SEQ_CLS", r=8, target_modules=["query","value"], lora_dropout=0.1))`,
AdamW, every batch padded to `max_length`, fp32 on the CPU (bf16 autocast on CUDA). The project's loop runs
with its shipped defaults (SentimentAdapterConfig). Both train for one epoch on the same real NewsMTSC
pairs; the script prints samples/s of each and the ratio.

    python benchmarks/train_speed.py --n 1024 [--device auto]
"""

import argparse
import tempfile
import time

import pandas as pd
import torch

from opensentiment_pipeline.core import modeling, sources, training
from opensentiment_pipeline.core.schema import SENTIMENT_LABELS
from opensentiment_pipeline.defs.assets.model import SentimentAdapterConfig


def load_pairs(path: str, n: int, seed: int) -> pd.DataFrame:
    spec = sources.SourceSpec(name="newsmtsc", format="newsmtsc", path=path, limit=n, seed=seed, split="train")
    return sources.read_source(spec).articles[["text", "target", "label"]].reset_index(drop=True)


def plain_peft_epoch(frame: pd.DataFrame, *, batch_size: int, max_length: int, device: torch.device) -> float:
    """One epoch of the textbook loop; returns samples/s."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = modeling.resolve_model_path("packaged:all-MiniLM-L6-v2")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=3)
    model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, lora_dropout=0.1,
                                             target_modules=["query", "value"])).to(device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4)
    labels = torch.tensor([SENTIMENT_LABELS.index(x) for x in frame["label"]])
    model.train()
    start = time.perf_counter()
    for i in range(0, len(frame), batch_size):
        part = frame.iloc[i : i + batch_size]
        batch = tokenizer(part["target"].tolist(), part["text"].tolist(), padding="max_length", truncation=True,
                          max_length=max_length, return_tensors="pt").to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = model(**batch, labels=labels[i : i + batch_size].to(device)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return len(frame) / (time.perf_counter() - start)


def project_epoch(frame: pd.DataFrame, *, device: str) -> float:
    """One epoch of train_adapter with the shipped defaults; returns training samples/s."""
    settings = SentimentAdapterConfig().model_dump()
    settings.update(epochs=1, device=device)
    examples = frame.assign(split=["val" if i % 20 == 0 else "train" for i in range(len(frame))])
    with tempfile.TemporaryDirectory() as out:
        return training.train_adapter(examples, out_dir=out, **settings).samples_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/newsmtsc/train.jsonl", help="NewsMTSC jsonl")
    parser.add_argument("--n", type=int, default=1024, help="training pairs per loop")
    parser.add_argument("--max-length", type=int, default=128, help="the plain loop pads every batch to this")
    parser.add_argument("--batch-size", type=int, default=32, help="plain loop batch size")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    args = parser.parse_args()
    device = training.resolve_device(args.device)
    frame = load_pairs(args.data, args.n, seed=0)
    torch.manual_seed(0)
    plain = plain_peft_epoch(frame, batch_size=args.batch_size, max_length=args.max_length, device=device)
    ours = project_epoch(frame, device=str(device))
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu x{torch.get_num_threads()} threads"
    print(f"device: {name}; {len(frame)} NewsMTSC pairs, one epoch each")
    print(f"plain peft loop (padded to {args.max_length}, fp32/bf16 autocast): {plain:8.1f} samples/s")
    print(f"opensentiment train_adapter (shipped defaults):              {ours:8.1f} samples/s")
    print(f"speed-up: {ours / plain:.2f}x")


if __name__ == "__main__":
    main()
